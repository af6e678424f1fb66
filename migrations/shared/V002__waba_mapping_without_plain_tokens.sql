-- No credential of a tenant kept in plain text in waba_phone_mapping.
--
-- The webhook service reads this table with its own role; whoever can read it
-- (that role, a leaked dump, a backup) must not learn tokens it does not need.
--
-- 1. waba_access_token: the webhook only tests that the number has a token
--    (a number without one is skipped); replies go through the tenant's own
--    configuration. The column keeps a fingerprint, 'sha256:' and the hex
--    SHA-256 of the token: present when the token is, changed when it is
--    rotated, useless to call the Graph API with. Access tokens are long and
--    random, so an unsalted hash cannot be reversed by guessing.
UPDATE public.waba_phone_mapping
   SET waba_access_token = 'sha256:' || encode(sha256(convert_to(waba_access_token, 'UTF8')), 'hex')
 WHERE waba_access_token IS NOT NULL AND waba_access_token !~ '^sha256:[0-9a-f]{64}$';
ALTER TABLE public.waba_phone_mapping
  ADD CONSTRAINT waba_phone_mapping_access_token_fingerprint
  CHECK (waba_access_token IS NULL OR waba_access_token ~ '^sha256:[0-9a-f]{64}$');

-- 2. gateway_token: the tenant's gateway token is the master key of that
--    tenant's agent. The webhook would send it to /hooks/agent, which the
--    gateways do not enable (no hooks section in openclaw.json), so it buys
--    nothing and exposes every tenant to whoever reads this table. The column
--    stays (the webhook selects it; NULL means "do not forward") but can no
--    longer hold a value. gateway_token_sha256 records which token the tenant
--    has (same fingerprint form as above), so a rotation still shows here.
ALTER TABLE public.waba_phone_mapping ADD COLUMN gateway_token_sha256 text;
UPDATE public.waba_phone_mapping
   SET gateway_token_sha256 = 'sha256:' || encode(sha256(convert_to(gateway_token, 'UTF8')), 'hex'),
       gateway_token = NULL
 WHERE gateway_token IS NOT NULL;
ALTER TABLE public.waba_phone_mapping
  ADD CONSTRAINT waba_phone_mapping_no_gateway_token CHECK (gateway_token IS NULL),
  ADD CONSTRAINT waba_phone_mapping_gateway_token_fingerprint
  CHECK (gateway_token_sha256 IS NULL OR gateway_token_sha256 ~ '^sha256:[0-9a-f]{64}$');

-- waba_app_secret stays as it is: the webhook computes the HMAC of each
-- request body with it, which needs the secret itself.
