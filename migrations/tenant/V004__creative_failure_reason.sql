-- Creatives uploaded through the upload service.
--
-- 1. The seed's service left a creative 'processing' forever when Meta
--    refused it. The service now marks it 'failed'; the reason (Meta's error
--    text, without any token) is kept for the agent to read and report.
ALTER TABLE creatives ADD COLUMN failure_reason text;
