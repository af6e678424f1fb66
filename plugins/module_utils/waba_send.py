# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""``openclaw-waba send``: the agent's reply to a WhatsApp Business customer.

    openclaw-waba send --to <phone or business-scoped user id> [--file PATH]

The answer is read from standard input (or the file), never from an argument,
so the agent's text never passes through a shell. It is sent with the
WhatsApp Cloud API (``POST /{version}/{phone_number_id}/messages``, the access
token in the Authorization header) and then logged as an outbound message with
leads.record_outbound, so the tenant's history holds both sides. Output, logs
and exit codes are those of ``openclaw-lead`` (leadloop_cli).

Free-form text reaches a customer only within 24 hours of their last
message (the dialog's ``waba_window_expires_at``, set by the webhook service);
outside it the command sends nothing and exits 3.

Environment:
    OPENCLAW_WABA_PHONE_ID          the number's phone_number_id (default: config.waba_phone_id)
    OPENCLAW_WABA_ACCESS_TOKEN      the number's access token (default: config.waba_access_token)
    OPENCLAW_DB_URL                 the tenant database as the tenant's role (required)
    OPENCLAW_GRAPH_URL, OPENCLAW_GRAPH_API_VERSION, OPENCLAW_DEFAULT_COUNTRY_CODE, REQUESTS_CA_BUNDLE
"""

from __future__ import annotations

import os
import re
import sys

from ansible_collections.openclaw.standalone.plugins.module_utils import capi, leadloop_cli, leads
from ansible_collections.openclaw.standalone.plugins.module_utils.leadloop_cli import (
    EXIT_DATABASE,
    EXIT_INPUT,
    EXIT_META,
    EXIT_NOT_FOUND,
    Failure,
    Parser,
)

try:
    import requests
except ImportError:
    requests = None

MAX_TEXT = 4096  # the Cloud API's limit for a text message body
TIMEOUT = 10
_PHONE_ID = re.compile(r"[0-9]{1,32}")


def read_text(path):
    if path:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(leadloop_cli.MAX_STDIN + 1)
        except OSError as exc:
            raise Failure(EXIT_INPUT, "cannot read --file: %s" % exc.strerror) from None
    else:
        raw = sys.stdin.buffer.read(leadloop_cli.MAX_STDIN + 1)
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Failure(EXIT_INPUT, "the answer is not UTF-8 text") from None
    if not text:
        raise Failure(EXIT_INPUT, "the answer is empty")
    if len(text) > MAX_TEXT:
        raise Failure(EXIT_INPUT, "the answer is longer than %d characters; split it" % MAX_TEXT)
    return text


def recipient(raw):
    try:
        if leads.classify_identity(raw) == "bsuid":
            return None, leads.check_bsuid(raw)
        return capi.normalize_phone(raw, leadloop_cli.country_code()), None
    except (capi.CapiError, leads.LeadInputError) as exc:
        raise Failure(EXIT_INPUT, "--to: %s" % exc) from None


def graph_endpoint(phone_id):
    url, version = leadloop_cli.graph_settings()
    return "%s/%s/%s/messages" % (url.rstrip("/"), version, phone_id)


def credentials(conn):
    """The number's phone_number_id and access token: the environment, else the tenant's config row."""
    phone_id = os.environ.get("OPENCLAW_WABA_PHONE_ID") or ""
    token = os.environ.get("OPENCLAW_WABA_ACCESS_TOKEN") or ""
    if not (phone_id and token):
        with conn.cursor() as cur:
            cur.execute("SELECT waba_phone_id, waba_access_token FROM public.config ORDER BY id LIMIT 1")
            row = cur.fetchone() or (None, None)
        conn.rollback()
        phone_id = phone_id or (row[0] or "").strip()
        token = token or (row[1] or "").strip()
    if not _PHONE_ID.fullmatch(phone_id):
        raise Failure(EXIT_INPUT, "no WhatsApp Business phone_number_id (OPENCLAW_WABA_PHONE_ID or config.waba_phone_id, digits)")
    if not token:
        raise Failure(EXIT_INPUT, "no WhatsApp Business access token (OPENCLAW_WABA_ACCESS_TOKEN or config.waba_access_token)")
    return phone_id, token


def window_open(conn, phone, bsuid):
    """Whether the customer wrote within the last 24 hours (free-form replies are allowed only then)."""
    with conn.cursor() as cur:
        dialog = leads.find_dialog(cur, phone, bsuid)
        if dialog is None:
            conn.rollback()
            return False
        cur.execute("SELECT waba_window_expires_at > pg_catalog.now() FROM public.wa_dialogs WHERE id = %s", (dialog["id"],))
        row = cur.fetchone()
    conn.rollback()
    return bool(row and row[0])


def waba_send(args, src):
    phone, bsuid = recipient(args.to)
    text = read_text(args.file)
    if requests is None:
        raise Failure(leadloop_cli.EXIT_ERROR, "python3-requests is not installed")
    # Connect first: a database that is down fails before anything is sent.
    conn = leadloop_cli.connect(src)
    try:
        phone_id, token = credentials(conn)
        url = graph_endpoint(phone_id)
        if not window_open(conn, phone, bsuid):
            raise Failure(
                EXIT_NOT_FOUND,
                "the customer has not written within 24 hours (or is unknown): only an approved template message can reach them now",
                window="closed",
            )
        try:
            response = requests.post(
                url,
                json={"messaging_product": "whatsapp", "recipient_type": "individual", "to": phone or bsuid, "type": "text", "text": {"body": text}},
                headers={"Authorization": "Bearer " + token},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise Failure(EXIT_META, "the Graph API is not reachable: %s" % type(exc).__name__) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
            raise Failure(
                EXIT_META, "Meta did not accept the message", status=response.status_code, meta_code=error.get("code"), meta_message=error.get("message")
            )
        message_id = messages[0].get("id")
        msg = leads.parse_outbound({"to": phone or bsuid, "text": text, "message_id": message_id, "channel": "waba"})
        try:
            logged = leads.record_outbound(conn, msg)
        except leadloop_cli.DATABASE_ERRORS as exc:
            raise Failure(EXIT_DATABASE, "sent, but not logged: %s" % leadloop_cli.error_text(exc), sent=True, message_id=message_id) from None
    finally:
        conn.close()
    return {"sent": True, "message_id": message_id, "to": phone or bsuid, "logged": logged["recorded"], "dialog_id": logged.get("dialog_id")}


def waba_parser():
    parser = Parser(prog="openclaw-waba", description="Answer a WhatsApp Business customer (the text on stdin or in --file).")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="send one text message and log it")
    send.add_argument("--to", required=True, help="customer's phone number or business-scoped user id")
    send.add_argument("--file", help="read the answer from this file instead of stdin")
    send.set_defaults(func=waba_send)
    return parser


def waba_main(argv=None):
    return leadloop_cli.run(waba_parser(), argv)
