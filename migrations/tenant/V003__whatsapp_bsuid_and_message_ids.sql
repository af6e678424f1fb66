-- WhatsApp contacts without a phone number, and messages recorded once.
--
-- 1. WhatsApp usernames (2026) let a customer write without sharing a phone
--    number; the Cloud API then identifies them by a business-scoped user id
--    (BSUID, e.g. 'KZ.13491208655302741918'). A dialog is known by its phone,
--    its BSUID or both, never by neither. The lead recorder and capi_event
--    look dialogs up by either.
ALTER TABLE wa_dialogs ADD COLUMN bsuid text;
ALTER TABLE wa_dialogs ADD CONSTRAINT wa_dialogs_bsuid_key UNIQUE (bsuid);
ALTER TABLE wa_dialogs ALTER COLUMN phone DROP NOT NULL;
ALTER TABLE wa_dialogs ADD CONSTRAINT wa_dialogs_phone_or_bsuid_check CHECK (phone IS NOT NULL OR bsuid IS NOT NULL);

-- 2. Messages and CAPI log rows of such a dialog have no phone either.
ALTER TABLE wa_messages ADD COLUMN bsuid text;
ALTER TABLE wa_messages ALTER COLUMN phone DROP NOT NULL;
ALTER TABLE wa_messages ADD CONSTRAINT wa_messages_phone_or_bsuid_check CHECK (phone IS NOT NULL OR bsuid IS NOT NULL);
CREATE INDEX idx_wa_messages_bsuid_created_at ON wa_messages (bsuid, created_at DESC) WHERE bsuid IS NOT NULL;

ALTER TABLE capi_events_log ADD COLUMN bsuid text;
ALTER TABLE capi_events_log ALTER COLUMN phone DROP NOT NULL;

ALTER TABLE leads ADD COLUMN bsuid text;

-- 3. A message delivered twice (gateway retries, webhook re-deliveries) must
--    be recorded once: its counters drive the level-1 CAPI event. message_id
--    is the channel's own id (Baileys key.id, Cloud API wamid), unique per
--    channel. Adopted databases may log one waba_message_id several times
--    (the old webhook service deduplicated in memory only): the earliest row
--    of each id takes it, the later copies keep their waba_message_id and
--    stay without a message_id, so no row is lost and the index can be built.
ALTER TABLE wa_messages ADD COLUMN message_id text;
UPDATE wa_messages AS m
   SET message_id = m.waba_message_id
  FROM (SELECT DISTINCT ON (channel, waba_message_id) id
          FROM wa_messages
         WHERE waba_message_id IS NOT NULL
         ORDER BY channel, waba_message_id, created_at NULLS LAST, id) AS first
 WHERE m.id = first.id;
CREATE UNIQUE INDEX wa_messages_channel_message_id_key ON wa_messages (channel, message_id);
