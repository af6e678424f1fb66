"""Parsing of inbound WhatsApp messages in the three shapes the lead recorder accepts, without a database."""

from __future__ import annotations

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import capi, leads

HOSTILE = "Robert'); DROP TABLE leads;-- $(touch /tmp/pwned) `id`\nEOF\n"


def baileys(**extra):
    message = {
        "key": {"remoteJid": "77011234567@s.whatsapp.net", "fromMe": False, "id": "3EB0ABC"},
        "pushName": "Aliya",
        "messageTimestamp": 1800000000,
        "message": {
            "extendedTextMessage": {
                "text": "Hello",
                "contextInfo": {"externalAdReply": {"sourceId": "120210000000001", "ctwaClid": "ARAkLkA8rmlFeiCk", "sourceType": "ad"}},
            }
        },
    }
    message.update(extra)
    return message


def test_baileys_ad_click_gives_phone_name_ad_and_click_id():
    msg = leads.parse_inbound(baileys())
    assert (msg["channel"], msg["message_id"], msg["phone"], msg["bsuid"]) == ("baileys", "3EB0ABC", "77011234567", None)
    assert (msg["name"], msg["text"], msg["message_type"]) == ("Aliya", "Hello", "text")
    assert (msg["source_id"], msg["ctwa_clid"]) == ("120210000000001", "ARAkLkA8rmlFeiCk")
    assert msg["metadata"]["timestamp"] == 1800000000


def test_baileys_referral_wins_over_external_ad_reply_as_in_the_seed():
    message = baileys(
        contextInfo={"referral": {"sourceId": "ad-ref", "ctwaClid": "clid-ref"}, "externalAdReply": {"sourceId": "ad-ear", "ctwaClid": "clid-ear"}}
    )
    msg = leads.parse_inbound(message)
    assert (msg["source_id"], msg["ctwa_clid"]) == ("ad-ref", "clid-ref")


def test_baileys_image_caption_context_is_read_too():
    message = baileys(message={"imageMessage": {"caption": "photo", "contextInfo": {"externalAdReply": {"sourceId": "ad-img", "ctwaClid": "clid-img"}}}})
    msg = leads.parse_inbound(message)
    assert (msg["message_type"], msg["text"], msg["source_id"], msg["ctwa_clid"]) == ("image", "photo", "ad-img", "clid-img")


def test_baileys_lid_uses_the_alternative_phone_or_keeps_the_lid_as_user_id():
    with_alt = baileys(key={"remoteJid": "123456789012345@lid", "remoteJidAlt": "77011234567@s.whatsapp.net", "id": "X"})
    assert leads.parse_inbound(with_alt)["phone"] == "77011234567"
    without = leads.parse_inbound(baileys(key={"remoteJid": "123456789012345:7@lid", "id": "Y"}))
    assert (without["phone"], without["bsuid"]) == (None, "123456789012345@lid")


@pytest.mark.parametrize("key", [{"remoteJid": "77011234567@s.whatsapp.net", "fromMe": True, "id": "1"}, {"remoteJid": "1203630@g.us", "id": "2"}])
def test_own_and_group_messages_are_ignored(key):
    assert "ignore" in leads.parse_inbound(baileys(key=key))


def test_hostile_name_and_text_are_kept_verbatim_as_data():
    message = baileys(pushName=HOSTILE)
    message["message"]["extendedTextMessage"]["text"] = HOSTILE
    msg = leads.parse_inbound(message)
    assert msg["name"] == HOSTILE.strip()
    assert msg["text"] == HOSTILE.strip()


def test_gateway_event():
    event = {
        "type": "message",
        "action": "received",
        "sessionKey": "agent:main:whatsapp:dm:+77011234567",
        "context": {
            "from": "+77011234567",
            "content": "Hi",
            "timestamp": 1800000000000,
            "channelId": "whatsapp",
            "messageId": "ABCD",
            "metadata": {"senderName": "Aliya", "senderE164": "+77011234567"},
        },
    }
    msg = leads.parse_inbound(event)
    assert (msg["channel"], msg["message_id"], msg["phone"], msg["name"], msg["text"]) == ("baileys", "ABCD", "77011234567", "Aliya", "Hi")
    assert msg["timestamp"] == 1800000000
    telegram = dict(event, context=dict(event["context"], channelId="telegram"))
    assert "ignore" in leads.parse_inbound(telegram)


def test_gateway_event_with_the_raw_baileys_message_keeps_the_ad_click():
    event = {
        "type": "message",
        "action": "received",
        "context": {"from": "+77011234567", "content": "Hello", "channelId": "whatsapp", "metadata": {"raw": baileys()}},
    }
    assert leads.parse_inbound(event)["ctwa_clid"] == "ARAkLkA8rmlFeiCk"


def waba_value(message, contact):
    return {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "contacts": [contact], "messages": [message]}


def test_waba_message_with_referral_and_bsuid():
    message = {
        "from": "77011234567",
        "from_user_id": "KZ.13491208655302741918",
        "id": "wamid.HBgL",
        "timestamp": "1800000000",
        "type": "text",
        "text": {"body": "Price?"},
        "referral": {"source_id": "120210000000002", "source_type": "ad", "ctwa_clid": "ARA-waba"},
    }
    contact = {"profile": {"name": "Aliya"}, "wa_id": "77011234567", "user_id": "KZ.13491208655302741918"}
    for document in (
        waba_value(message, contact),
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": waba_value(message, contact)}]}]},
        {"message": message, "contact": contact},
    ):
        msg = leads.parse_inbound(document)
        assert (msg["channel"], msg["message_id"], msg["phone"], msg["bsuid"], msg["name"]) == (
            "waba",
            "wamid.HBgL",
            "77011234567",
            "KZ.13491208655302741918",
            "Aliya",
        )
        assert (msg["source_id"], msg["ctwa_clid"], msg["text"]) == ("120210000000002", "ARA-waba", "Price?")


def test_waba_message_without_phone_is_known_by_its_bsuid():
    message = {"user_id": "US.99887766", "id": "wamid.2", "type": "text", "text": {"body": "hi"}}
    msg = leads.parse_inbound(waba_value(message, {"profile": {"name": "X"}, "user_id": "US.99887766"}))
    assert (msg["phone"], msg["bsuid"]) == (None, "US.99887766")


def test_unknown_message_kinds_are_logged_as_text_with_their_kind():
    message = {"from": "77011234567", "id": "wamid.3", "type": "location", "location": {"latitude": 1}}
    msg = leads.parse_inbound(waba_value(message, {}))
    assert (msg["message_type"], msg["metadata"]["kind"]) == ("text", "location")


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"hello": "world"},
        {"key": {"remoteJid": "", "id": "1"}},
        {"key": {"remoteJid": "abc$(id)@s.whatsapp.net", "id": "1"}},
        {"messages": [{"id": "1", "type": "text"}], "contacts": []},
        {"messages": [{"from": "1", "id": "1"}, {"from": "2", "id": "2"}]},
        {"message": {"id": "1", "from_user_id": "not a bsuid; DROP"}},
    ],
)
def test_bad_input_is_refused(document):
    with pytest.raises(leads.LeadInputError):
        leads.parse_inbound(document)


def test_phones_are_normalised_like_capi():
    for raw in ("+7 701 123-45-67", "77011234567@s.whatsapp.net", "whatsapp:+77011234567"):
        assert leads._phone(raw, None) == capi.normalize_phone("+77011234567")


def test_outbound():
    msg = leads.parse_outbound({"to": "+7 701 123 45 67", "text": "Thanks", "message_id": "m1", "channel": "waba"})
    assert (msg["phone"], msg["bsuid"], msg["channel"], msg["text"]) == ("77011234567", None, "waba", "Thanks")
    assert leads.parse_outbound({"to": "KZ.1234", "text": "x"})["bsuid"] == "KZ.1234"
    with pytest.raises(leads.LeadInputError):
        leads.parse_outbound({"to": "x", "channel": "sms"})
