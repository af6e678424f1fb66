-- Conversions API for WhatsApp business messaging (capi_event module).
--
-- 1. Business-messaging events must name the WhatsApp Business Account in
--    user_data; the baseline had nowhere to keep it. partner_agent identifies
--    the sending platform to Meta when a partner name was assigned.
ALTER TABLE capi_settings ADD COLUMN whatsapp_business_account_id text;
ALTER TABLE capi_settings ADD COLUMN partner_agent text;

-- 2. CompleteRegistration, the baseline's level-2 default, is rejected for
--    business messaging (subcode 2804066). QualifiedLead is the allowed event
--    for "the lead qualified"; existing rows that kept the old default move to
--    it so they keep working, rows with a deliberate other name stay as they are.
ALTER TABLE capi_settings ALTER COLUMN l2_event_name SET DEFAULT 'QualifiedLead';
UPDATE capi_settings SET l2_event_name = 'QualifiedLead'
 WHERE l2_event_name = 'CompleteRegistration' AND channel = 'whatsapp';

-- 3. Meta does not deduplicate business-messaging events. Besides the lock the
--    module takes per dialog and level, this index makes a second success for
--    the same event_id impossible. A database adopted from the old scripts may
--    already log one event_id as sent twice; the later rows are re-marked as
--    errors (kept, with a note) so the index can be built.
UPDATE capi_events_log AS later
   SET status = 'error',
       error_text = concat_ws('; ', later.error_text, 'duplicate success for this event_id, re-marked by migration V002')
  FROM capi_events_log AS earlier
 WHERE later.status = 'success' AND earlier.status = 'success'
   AND later.event_id = earlier.event_id
   AND (later.sent_at, later.id::text) > (earlier.sent_at, earlier.id::text);
CREATE UNIQUE INDEX idx_capi_events_log_success_event_id ON capi_events_log (event_id) WHERE status = 'success' AND event_id IS NOT NULL;

-- 4. Every attempt is logged; its number and the Graph trace id make a
--    retried send readable in the log.
ALTER TABLE capi_events_log ADD COLUMN attempt integer;
ALTER TABLE capi_events_log ADD COLUMN fbtrace_id text;
