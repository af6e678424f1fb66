# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""WhatsApp messages into a tenant database: dialogs, the message log and leads.

Runs inside the tenant's container (``openclaw-lead``), so it imports no
ansible: it gets a psycopg2 connection whose search_path is pinned to the
catalog, names every table with its schema and passes every value as a
parameter. Customer text (names, messages) is data from end to end.

Three shapes of one inbound message are understood:

* the gateway's internal hook event ``message:received``
  (``{"type": "message", "action": "received", "context": {...}}``);
* a raw Baileys ``WAMessage`` (``key.remoteJid``, ``pushName``, ``message``);
* a WhatsApp Cloud API webhook: the whole envelope, its ``value`` object, or
  ``{"message": ..., "contact": ...}`` (one message each).

Lead Ads form leads (fetched by the webhook service) are recorded once per
leadgen_id by record_lead_form.

Recording is idempotent per message id: the message row is inserted first
with ``ON CONFLICT DO NOTHING`` on the unique (channel, message_id) index, and
a second delivery rolls the transaction back before any counter moves.
"""

from __future__ import annotations

import json
import re

from ansible_collections.openclaw.standalone.plugins.module_utils.capi import CapiError, normalize_phone

try:
    from psycopg2 import sql
except ImportError:  # parsing works without it; recording needs a connection anyway
    sql = None

CHANNELS = ("baileys", "waba")
# wa_messages.message_type's CHECK list (baseline); other kinds are logged as
# 'text' with their real kind in metadata.kind.
MESSAGE_TYPES = ("text", "image", "audio", "document", "button", "interactive", "sticker", "video")
CONVERSION_SOURCES = {"baileys": "whatsapp_baileys", "waba": "WABA"}
# The Cloud API's customer service window.
WABA_WINDOW_SECONDS = 24 * 3600
MAX_TEXT = 65536
MAX_NAME = 256
MAX_ID = 256

# A business-scoped user id ('KZ.13491208655302741918', parent 'KZ.ENT.…'), or a
# WhatsApp LID ('123456789012345@lid') when Baileys did not reveal the phone.
_BSUID = re.compile(r"[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}")
_LID = re.compile(r"[0-9]{1,32}@lid")
_JID_SUFFIXES = ("@s.whatsapp.net", "@c.us")

_BAILEYS_TYPES = {
    "conversation": "text",
    "extendedTextMessage": "text",
    "imageMessage": "image",
    "audioMessage": "audio",
    "pttMessage": "audio",
    "videoMessage": "video",
    "ptvMessage": "video",
    "documentMessage": "document",
    "documentWithCaptionMessage": "document",
    "stickerMessage": "sticker",
    "buttonsResponseMessage": "button",
    "templateButtonReplyMessage": "button",
    "listResponseMessage": "interactive",
    "interactiveResponseMessage": "interactive",
}
_WABA_TYPES = {"text": "text", "image": "image", "audio": "audio", "voice": "audio", "video": "video", "document": "document", "sticker": "sticker"}
_WABA_TYPES.update(button="button", interactive="interactive")


class LeadInputError(Exception):
    """The input is not one inbound WhatsApp message this recorder understands."""


def _text(value, limit=None):
    """A non-empty stripped string, or None (the seed's 'first non-empty trimmed string wins')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    return value[:limit] if limit else value


def _first(*values, limit=None):
    for value in values:
        text = _text(value, limit)
        if text is not None:
            return text
    return None


def _dict(value):
    return value if isinstance(value, dict) else {}


def _get(obj, *path):
    for key in path:
        obj = _dict(obj).get(key)
    return obj


def _timestamp(value):
    """Unix seconds from a number, a numeric string or protobuf Long {low, high}; None when absent or odd."""
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        value = (value.get("high") or 0) * 2**32 + (value["low"] & 0xFFFFFFFF)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    # Milliseconds (the gateway's Date.now()) to seconds.
    return value // 1000 if value > 10**11 else value


def classify_identity(raw):
    """'phone' or 'bsuid' for a recipient given as either."""
    text = _text(raw) or ""
    if _BSUID.fullmatch(text) or _LID.fullmatch(text):
        return "bsuid"
    return "phone"


def check_bsuid(raw):
    text = _text(raw, MAX_ID + 1)
    if text is None:
        return None
    if not (_BSUID.fullmatch(text) or _LID.fullmatch(text)):
        raise LeadInputError("bsuid %r is not a business-scoped user id (like KZ.13491208655302741918)" % text[:80])
    return text


def _phone(raw, default_country_code):
    text = _text(raw)
    if text is None:
        return None
    if text.startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    for suffix in _JID_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    # A device suffix ('77011234567:12@s.whatsapp.net') is not part of the number.
    text = text.split(":", 1)[0]
    try:
        return normalize_phone(text, default_country_code)
    except CapiError as exc:
        raise LeadInputError(str(exc)) from None


# -- parsing -------------------------------------------------------------------
def parse_inbound(document, default_country_code=None):
    """One inbound message as a dict of plain values, or {"ignore": reason} for messages that are not a customer's."""
    if not isinstance(document, dict):
        raise LeadInputError("the input must be one JSON object")
    if isinstance(document.get("context"), dict) and ("action" in document or "type" in document):
        return _parse_gateway_event(document, default_country_code)
    if isinstance(document.get("key"), dict):
        return _parse_baileys(document, default_country_code)
    if "entry" in document or "messages" in document or isinstance(document.get("message"), dict):
        return _parse_waba(document, default_country_code)
    raise LeadInputError("not a gateway message:received event, a Baileys message or a WhatsApp Cloud API message")


def _message(channel, message_id, phone, bsuid, name, text, kind, timestamp, source_id=None, ctwa_clid=None, referral=None):
    if phone is None and bsuid is None:
        raise LeadInputError("the message names neither a phone number nor a business-scoped user id")
    message_type = kind if kind in MESSAGE_TYPES else "text"
    metadata = {"kind": kind}
    if timestamp:
        metadata["timestamp"] = timestamp
    if referral:
        metadata["referral"] = referral
    return {
        "channel": channel,
        "message_id": _text(message_id, MAX_ID),
        "phone": phone,
        "bsuid": bsuid,
        "name": name,
        "text": text,
        "message_type": message_type,
        "timestamp": timestamp,
        "source_id": source_id,
        "ctwa_clid": ctwa_clid,
        "metadata": metadata,
    }


def _parse_gateway_event(event, default_country_code):
    if event.get("type") not in (None, "message") or event.get("action") not in (None, "received"):
        return {"ignore": "not a message:received event"}
    context = event["context"]
    metadata = _dict(context.get("metadata"))
    channel_id = _first(context.get("channelId"), metadata.get("provider"), metadata.get("surface"))
    if channel_id is not None and "whatsapp" not in channel_id.lower():
        return {"ignore": "not a WhatsApp message (channel %s)" % channel_id[:40]}
    # The gateway may pass the provider's own message along; it carries the ad referral.
    for key in ("raw", "message", "baileys"):
        raw = metadata.get(key)
        if isinstance(raw, dict) and isinstance(raw.get("key"), dict):
            return _parse_baileys(raw, default_country_code)
    sender = _first(metadata.get("senderE164"), context.get("from"), metadata.get("senderId"))
    if sender is None:
        raise LeadInputError("context.from is empty")
    if sender.endswith("@g.us") or sender.endswith("@broadcast") or metadata.get("isGroup") is True:
        return {"ignore": "group or broadcast message"}
    bsuid = check_bsuid(metadata.get("senderBsuid") or metadata.get("bsuid"))
    phone = None
    if classify_identity(sender) == "bsuid":
        bsuid = bsuid or check_bsuid(sender)
    else:
        phone = _phone(sender, default_country_code)
    referral = _dict(metadata.get("referral"))
    return _message(
        "baileys",
        _first(context.get("messageId"), metadata.get("messageId")),
        phone,
        bsuid,
        _first(metadata.get("senderName"), limit=MAX_NAME),
        _first(context.get("content"), limit=MAX_TEXT),
        "text",
        _timestamp(context.get("timestamp")),
        source_id=_first(referral.get("sourceId"), referral.get("source_id"), metadata.get("sourceId")),
        ctwa_clid=_first(referral.get("ctwaClid"), referral.get("ctwa_clid"), metadata.get("ctwaClid")),
        referral=referral or None,
    )


def _baileys_contexts(msg):
    """contextInfo objects in the seed's order, then those of any other message kind."""
    content = _dict(msg.get("message"))
    found = [_dict(msg.get("contextInfo")), _dict(_get(content, "extendedTextMessage", "contextInfo")), _dict(content.get("contextInfo"))]
    for kind, body in content.items():
        if kind != "extendedTextMessage" and isinstance(body, dict) and isinstance(body.get("contextInfo"), dict):
            found.append(body["contextInfo"])
    return found


def _parse_baileys(msg, default_country_code):
    key = msg["key"]
    if key.get("fromMe") is True:
        return {"ignore": "sent by this account (fromMe)"}
    jid = _first(key.get("remoteJid"), msg.get("remoteJid"))
    if jid is None:
        raise LeadInputError("key.remoteJid is empty")
    if jid.endswith("@g.us") or jid.endswith("@broadcast") or jid.endswith("@newsletter"):
        return {"ignore": "group, broadcast or channel message"}
    alt = _first(key.get("remoteJidAlt"), msg.get("remoteJidAlt"), key.get("senderPn"))
    phone = bsuid = None
    if jid.endswith("@lid"):
        if alt is not None and not alt.endswith("@lid"):
            phone = _phone(alt, default_country_code)
        else:
            # A linked id is not a phone number: keep it (without a device
            # suffix) as the dialog's user id.
            local = jid.partition("@")[0].split(":", 1)[0]
            bsuid = check_bsuid(local + "@lid")
    else:
        phone = _phone(jid, default_country_code)

    contexts = _baileys_contexts(msg)
    ctx = contexts[0] or contexts[1] or contexts[2]
    content = _dict(msg.get("message"))
    source_id = _first(
        _get(contexts[0], "referral", "sourceId"),
        _get(contexts[0], "referral", "source_id"),
        _get(contexts[0], "externalAdReply", "sourceId"),
        _get(contexts[0], "externalAdReply", "source_id"),
        _get(contexts[1], "referral", "sourceId"),
        _get(contexts[1], "externalAdReply", "sourceId"),
        _get(msg, "referral", "sourceId"),
        _get(msg, "referral", "source_id"),
        *(_get(other, "externalAdReply", "sourceId") for other in contexts[2:]),
        *(_get(other, "referral", "sourceId") for other in contexts[2:]),
    )
    referral = _dict(ctx.get("referral")) or _dict(msg.get("referral"))
    ad_reply = _dict(ctx.get("externalAdReply"))
    conversation = _dict(msg.get("conversationContext")) or _dict(ctx.get("conversationContext"))
    promotion = _dict(msg.get("referredProductPromotion"))
    ctwa_clid = _first(
        referral.get("ctwaClid"),
        referral.get("ctwa_clid"),
        conversation.get("ctwaClid"),
        conversation.get("referralCtwaClid"),
        promotion.get("ctwaClid"),
        promotion.get("ctwa_clid"),
        ctx.get("ctwaClid"),
        ad_reply.get("ctwaClid"),
        msg.get("ctwaClid"),
        msg.get("ctwa_clid"),
        *(_get(other, "externalAdReply", "ctwaClid") for other in contexts[1:]),
    )
    kind = next((_BAILEYS_TYPES.get(name, name) for name in content if name not in ("messageContextInfo", "contextInfo")), "text")
    text = _first(
        content.get("conversation"),
        _get(content, "extendedTextMessage", "text"),
        _get(content, "imageMessage", "caption"),
        _get(content, "videoMessage", "caption"),
        _get(content, "documentMessage", "caption"),
        _get(content, "buttonsResponseMessage", "selectedDisplayText"),
        _get(content, "templateButtonReplyMessage", "selectedDisplayText"),
        _get(content, "listResponseMessage", "title"),
        limit=MAX_TEXT,
    )
    ad = {name: ad_reply[name] for name in ("sourceId", "sourceType", "sourceUrl", "title", "ctwaClid") if _text(ad_reply.get(name))}
    return _message(
        "baileys",
        key.get("id"),
        phone,
        bsuid,
        _first(msg.get("pushName"), msg.get("verifiedBizName"), msg.get("contactName"), limit=MAX_NAME),
        text,
        kind,
        _timestamp(msg.get("messageTimestamp")),
        source_id=source_id,
        ctwa_clid=ctwa_clid,
        referral=ad or referral or None,
    )


def _waba_value(document):
    if "entry" in document:
        values = [
            _dict(change.get("value"))
            for entry in document.get("entry") or []
            for change in _dict(entry).get("changes") or []
            if _dict(change).get("field", "messages") == "messages" and _dict(change.get("value")).get("messages")
        ]
        if len(values) != 1:
            raise LeadInputError("the webhook holds %d message batches; pass one message at a time" % len(values))
        return values[0]
    return document


def _parse_waba(document, default_country_code):
    if isinstance(document.get("message"), dict):
        message, contacts = document["message"], [document.get("contact")] if isinstance(document.get("contact"), dict) else []
    else:
        value = _waba_value(document)
        messages = value.get("messages")
        if not isinstance(messages, list) or len(messages) != 1 or not isinstance(messages[0], dict):
            raise LeadInputError("expected exactly one item in messages[]")
        message = messages[0]
        contacts = [item for item in value.get("contacts") or [] if isinstance(item, dict)]
    sender = _text(message.get("from"))
    sender_id = _first(message.get("from_user_id"), message.get("user_id"))
    contact = next((item for item in contacts if sender and _text(item.get("wa_id")) == sender), None)
    contact = contact or next((item for item in contacts if sender_id and _text(item.get("user_id")) == sender_id), None)
    contact = contact or (contacts[0] if len(contacts) == 1 else {})
    phone_raw = sender or _text(contact.get("wa_id"))
    bsuid = check_bsuid(sender_id or contact.get("user_id"))
    phone = _phone(phone_raw, default_country_code) if phone_raw else None
    kind = _text(message.get("type")) or "text"
    body = _dict(message.get(kind))
    text = _first(
        _get(message, "text", "body"),
        _get(message, "button", "text"),
        _get(message, "interactive", "button_reply", "title"),
        _get(message, "interactive", "list_reply", "title"),
        body.get("caption"),
        limit=MAX_TEXT,
    )
    referral = _dict(message.get("referral"))
    keep = ("source_id", "source_type", "source_url", "headline", "ctwa_clid", "media_type")
    return _message(
        "waba",
        message.get("id"),
        phone,
        bsuid,
        _first(_get(contact, "profile", "name"), limit=MAX_NAME),
        text,
        _WABA_TYPES.get(kind, kind),
        _timestamp(message.get("timestamp")),
        source_id=_first(referral.get("source_id")),
        ctwa_clid=_first(referral.get("ctwa_clid")),
        referral={name: referral[name] for name in keep if _text(referral.get(name))} or None,
    )


def parse_outbound(document, default_country_code=None):
    if not isinstance(document, dict):
        raise LeadInputError("the input must be one JSON object")
    channel = document.get("channel") or "baileys"
    if channel not in CHANNELS:
        raise LeadInputError("channel must be one of %s" % ", ".join(CHANNELS))
    to = _text(document.get("to"))
    if to is None:
        raise LeadInputError("'to' (phone number or business-scoped user id) is required")
    phone = bsuid = None
    if classify_identity(to) == "bsuid":
        bsuid = check_bsuid(to)
    else:
        phone = _phone(to, default_country_code)
    text = document.get("text")
    if text is not None and not isinstance(text, str):
        raise LeadInputError("'text' must be a string")
    return {
        "channel": channel,
        "message_id": _text(document.get("message_id"), MAX_ID),
        "phone": phone,
        "bsuid": bsuid,
        "text": text[:MAX_TEXT] if text else None,
        "message_type": "text",
        "metadata": {"kind": "text"},
    }


# -- recording -------------------------------------------------------------------
DIALOG_COLUMNS = ("id", "phone", "bsuid", "name", "ctwa_clid", "source_id", "creative_id", "direction_id")


def _lock_identities(cur, phone, bsuid):
    # One recorder per contact at a time, so "look up, then insert or update"
    # cannot race; keys in a fixed order so two recorders never deadlock.
    keys = sorted(key for key in ("openclaw.lead/phone/%s" % phone if phone else None, "openclaw.lead/bsuid/%s" % bsuid if bsuid else None) if key)
    for key in keys:
        cur.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%s, 0))", (key,))


def find_dialog(cur, phone=None, bsuid=None):
    """The dialog of a BSUID or phone (stored as digits, or '+digits' by the old webhook service)."""
    select = sql.SQL("SELECT {} FROM public.wa_dialogs ").format(sql.SQL(", ").join(sql.Identifier(name) for name in DIALOG_COLUMNS))
    if bsuid:
        cur.execute(select + sql.SQL("WHERE bsuid = %s"), (bsuid,))
        row = cur.fetchone()
        if row is not None:
            return dict(zip(DIALOG_COLUMNS, row))
    if phone:
        cur.execute(select + sql.SQL("WHERE phone = ANY(%s) ORDER BY phone LIMIT 1"), ([phone, "+" + phone],))
        row = cur.fetchone()
        if row is not None:
            return dict(zip(DIALOG_COLUMNS, row))
    return None


def _insert_message(cur, msg, direction, phone, bsuid):
    cur.execute(
        "INSERT INTO public.wa_messages (phone, bsuid, direction, channel, message_text, message_type, message_id, waba_message_id, metadata)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
        " ON CONFLICT (channel, message_id) DO NOTHING RETURNING id",
        (
            phone,
            bsuid,
            direction,
            msg["channel"],
            msg.get("text"),
            msg["message_type"],
            msg["message_id"],
            msg["message_id"] if msg["channel"] == "waba" else None,
            json.dumps(msg.get("metadata") or {}),
        ),
    )
    row = cur.fetchone()
    return None if row is None else row[0]


def _taken(cur, column, value, dialog_id):
    cur.execute(sql.SQL("SELECT 1 FROM public.wa_dialogs WHERE {} = %s AND id <> %s").format(sql.Identifier(column)), (value, dialog_id))
    return cur.fetchone() is not None


def record_inbound(conn, msg):
    """Record one parsed inbound message in one transaction; returns the outcome as a dict."""
    phone, bsuid = msg["phone"], msg["bsuid"]
    with conn.cursor() as cur:
        _lock_identities(cur, phone, bsuid)
        dialog = find_dialog(cur, phone, bsuid)
        stored_phone = dialog["phone"] if dialog and dialog["phone"] else phone
        message_row = _insert_message(cur, msg, "inbound", stored_phone, (dialog or {}).get("bsuid") or bsuid)
        if message_row is None:
            conn.rollback()
            known = str(dialog["id"]) if dialog else None
            return {"recorded": False, "duplicate": True, "channel": msg["channel"], "message_id": msg["message_id"], "dialog_id": known}

        creative_id = direction_id = None
        if msg["source_id"]:
            cur.execute("SELECT creative_id, direction_id FROM public.ad_creative_mapping WHERE ad_id = %s LIMIT 1", (msg["source_id"],))
            row = cur.fetchone()
            if row is not None:
                creative_id, direction_id = row
        window = msg["channel"] == "waba"
        if dialog is None:
            cur.execute(
                "INSERT INTO public.wa_dialogs (phone, bsuid, name, incoming_count, outgoing_count, capi_msg_count, first_message, last_message,"
                " ctwa_clid, source_id, creative_id, direction_id, waba_window_expires_at)"
                " VALUES (%s, %s, %s, 1, 0, 1, pg_catalog.now(), pg_catalog.now(), %s, %s, %s, %s,"
                " CASE WHEN %s THEN pg_catalog.now() + pg_catalog.make_interval(secs => %s) END)"
                " RETURNING id",
                (phone, bsuid, msg["name"], msg["ctwa_clid"], msg["source_id"], creative_id, direction_id, window, WABA_WINDOW_SECONDS),
            )
            dialog_id = cur.fetchone()[0]
            created = True
        else:
            dialog_id = dialog["id"]
            created = False
            # Fill in the identifier the dialog lacked, unless another dialog holds it.
            new_phone = phone if phone and not dialog["phone"] and not _taken(cur, "phone", phone, dialog_id) else None
            new_bsuid = bsuid if bsuid and not dialog["bsuid"] and not _taken(cur, "bsuid", bsuid, dialog_id) else None
            # Attribution is last-touch: a new ad click replaces the old one,
            # and the creative and direction follow the ad it names.
            cur.execute(
                "UPDATE public.wa_dialogs SET"
                " incoming_count = COALESCE(incoming_count, 0) + 1, capi_msg_count = COALESCE(capi_msg_count, 0) + 1,"
                " last_message = pg_catalog.now(), updated_at = pg_catalog.now(),"
                " phone = COALESCE(phone, %s), bsuid = COALESCE(bsuid, %s), name = COALESCE(%s, name),"
                " ctwa_clid = COALESCE(%s, ctwa_clid), source_id = COALESCE(%s, source_id),"
                " creative_id = CASE WHEN %s IS NULL THEN creative_id ELSE %s::uuid END,"
                " direction_id = CASE WHEN %s IS NULL THEN direction_id ELSE %s::uuid END,"
                " waba_window_expires_at = CASE WHEN %s THEN pg_catalog.now() + pg_catalog.make_interval(secs => %s) ELSE waba_window_expires_at END"
                " WHERE id = %s",
                (
                    new_phone,
                    new_bsuid,
                    msg["name"],
                    msg["ctwa_clid"],
                    msg["source_id"],
                    creative_id,
                    creative_id,
                    direction_id,
                    direction_id,
                    window,
                    WABA_WINDOW_SECONDS,
                    dialog_id,
                ),
            )
            stored_phone = dialog["phone"] or new_phone
            bsuid = dialog["bsuid"] or new_bsuid or bsuid

        lead = None
        if msg["source_id"] or msg["ctwa_clid"]:
            lead = _upsert_lead(cur, msg, stored_phone or None, bsuid, creative_id, direction_id)
        conn.commit()
    return {
        "recorded": True,
        "duplicate": False,
        "channel": msg["channel"],
        "message_id": msg["message_id"],
        "dialog_id": str(dialog_id),
        "dialog_created": created,
        "lead": lead,
        "source_id": msg["source_id"],
        "ctwa_clid": msg["ctwa_clid"],
        "creative_id": str(creative_id) if creative_id else None,
    }


def _upsert_lead(cur, msg, phone, bsuid, creative_id, direction_id):
    """One WhatsApp lead per chat (the baseline's unique index on chat_id); last-touch attribution."""
    digits = phone.lstrip("+") if phone else None
    chats = [value for value in (digits, "+" + digits if digits else None, bsuid) if value]
    cur.execute("SELECT id FROM public.leads WHERE source_type = 'whatsapp' AND chat_id = ANY(%s) ORDER BY created_at LIMIT 1", (chats,))
    row = cur.fetchone()
    if row is not None:
        cur.execute(
            "UPDATE public.leads SET name = COALESCE(%s, name), ad_id = COALESCE(%s, ad_id), ctwa_clid = COALESCE(%s, ctwa_clid),"
            " creative_id = COALESCE(%s, creative_id), direction_id = COALESCE(%s, direction_id),"
            " phone = COALESCE(phone, %s), bsuid = COALESCE(bsuid, %s), updated_at = pg_catalog.now() WHERE id = %s",
            (msg["name"], msg["source_id"], msg["ctwa_clid"], creative_id, direction_id, phone, bsuid, row[0]),
        )
        return "updated"
    cur.execute(
        "INSERT INTO public.leads (name, phone, bsuid, ad_id, ctwa_clid, chat_id, source_type, creative_id, direction_id, conversion_source)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'whatsapp', %s, %s, %s)",
        (msg["name"], phone, bsuid, msg["source_id"], msg["ctwa_clid"], digits or bsuid, creative_id, direction_id, CONVERSION_SOURCES[msg["channel"]]),
    )
    return "created"


def record_outbound(conn, msg):
    """Log one message sent to a customer and count it on the dialog (created when unknown)."""
    phone, bsuid = msg["phone"], msg["bsuid"]
    with conn.cursor() as cur:
        _lock_identities(cur, phone, bsuid)
        dialog = find_dialog(cur, phone, bsuid)
        stored_phone = dialog["phone"] if dialog and dialog["phone"] else phone
        message_row = _insert_message(cur, msg, "outbound", stored_phone, (dialog or {}).get("bsuid") or bsuid)
        if message_row is None:
            conn.rollback()
            return {"recorded": False, "duplicate": True, "channel": msg["channel"], "message_id": msg["message_id"]}
        if dialog is None:
            cur.execute(
                "INSERT INTO public.wa_dialogs (phone, bsuid, incoming_count, outgoing_count, capi_msg_count) VALUES (%s, %s, 0, 1, 0) RETURNING id",
                (phone, bsuid),
            )
            dialog_id = cur.fetchone()[0]
        else:
            dialog_id = dialog["id"]
            cur.execute(
                "UPDATE public.wa_dialogs SET outgoing_count = COALESCE(outgoing_count, 0) + 1, updated_at = pg_catalog.now() WHERE id = %s",
                (dialog_id,),
            )
        conn.commit()
    return {
        "recorded": True,
        "duplicate": False,
        "channel": msg["channel"],
        "message_id": msg["message_id"],
        "dialog_id": str(dialog_id),
        "dialog_created": dialog is None,
    }


# -- Lead Ads forms -------------------------------------------------------------------
LEAD_FORM_SOURCE = "facebook_lead_form"


def lead_form_known(conn, leadgen_id):
    """Whether the form's lead is recorded already (so it need not be fetched from Meta again)."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM public.leads WHERE leadgen_id = %s", (leadgen_id,))
        known = cur.fetchone() is not None
    conn.rollback()
    return known


def record_lead_form(conn, lead):
    """Record one Lead Ads form lead once per leadgen_id; returns {"recorded": new?, ...}.

    ``lead`` holds leadgen_id, ad_id, form_id, name, phone, email (see
    meta_webhooks.map_lead). The creative and direction come from the ad, as
    for WhatsApp leads; the baseline's unique leadgen_id makes a second
    delivery a no-op even when two arrive at once.
    """
    leadgen_id = _text(lead.get("leadgen_id"), MAX_ID)
    if leadgen_id is None:
        raise LeadInputError("a form lead needs its leadgen_id")
    ad_id = _text(lead.get("ad_id"), MAX_ID)
    with conn.cursor() as cur:
        creative_id = direction_id = None
        if ad_id:
            cur.execute("SELECT creative_id, direction_id FROM public.ad_creative_mapping WHERE ad_id = %s LIMIT 1", (ad_id,))
            row = cur.fetchone()
            if row is not None:
                creative_id, direction_id = row
        cur.execute(
            "INSERT INTO public.leads (name, phone, email, leadgen_id, ad_id, form_id, source_type, utm_source, creative_id, direction_id, conversion_source)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'lead_form', %s, %s, %s, 'lead_form')"
            " ON CONFLICT (leadgen_id) DO NOTHING RETURNING id",
            (
                _text(lead.get("name"), MAX_NAME),
                _text(lead.get("phone"), 32),
                _text(lead.get("email"), MAX_NAME),
                leadgen_id,
                ad_id,
                _text(lead.get("form_id"), MAX_ID),
                LEAD_FORM_SOURCE,
                creative_id,
                direction_id,
            ),
        )
        row = cur.fetchone()
        conn.commit()
    return {
        "recorded": row is not None,
        "duplicate": row is None,
        "lead_id": str(row[0]) if row else None,
        "leadgen_id": leadgen_id,
        "creative_id": str(creative_id) if creative_id and row else None,
        "direction_id": str(direction_id) if direction_id and row else None,
    }
