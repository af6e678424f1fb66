# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""The tenant runtime's lead-loop commands, ``openclaw-lead`` and ``openclaw-capi``.

Installed in the tenant image with the module utils they share with the
``capi_event`` module (capi, capi_tenant, leads, pgsession, validation) and run
without ansible, as the tenant's own PostgreSQL role.

    openclaw-lead record        stdin: one inbound WhatsApp message (gateway hook event,
                                Baileys WAMessage, or Cloud API webhook message)
    openclaw-lead outbound      stdin: {"to": phone or BSUID, "text": ..., "message_id": ...,
                                "channel": "baileys" | "waba"}
    openclaw-capi send --level {2,3} (--phone P | --bsuid B) [--value N --currency XXX] [--dry-run]
    openclaw-capi sweep [--limit N] [--dry-run]
    openclaw-capi status (--phone P | --bsuid B)

Customer text (names, messages) is read from stdin as JSON only, never from
arguments, and reaches the database as query parameters only; nothing here
starts a shell or another program. Every run prints one JSON line to stdout
(``{"ok": true|false, "command": ..., ...}``) and logs JSON lines to stderr.

Environment:
    OPENCLAW_DB_URL                 libpq URL of the tenant database, as the tenant's role (required)
    OPENCLAW_TENANT                 tenant slug, part of CAPI event ids (default: from the database
                                    name openclaw_<slug>)
    OPENCLAW_GRAPH_URL              Graph API base URL (default https://graph.facebook.com)
    OPENCLAW_GRAPH_API_VERSION      Graph API version (default capi.DEFAULT_API_VERSION)
    OPENCLAW_DEFAULT_COUNTRY_CODE   country calling code for nationally written phone numbers
    REQUESTS_CA_BUNDLE              CA bundle for the Graph API (honoured by requests)
The CAPI access token is read from capi_settings, never from arguments or the environment.

Exit codes:
    0  done: recorded, duplicate or ignored message; event sent, already sent or skipped;
       sweep finished (events Meta rejected are listed in "rejected" and logged)
    1  unexpected error
    2  bad usage or bad input (arguments, stdin JSON, phone, BSUID, environment values)
    3  not found: no such dialog, or no active capi_settings row
    4  database: cannot connect, a superuser login (refused), or an SQL error
    5  Meta did not accept the event (or the sweep stopped on an error that is not about one event)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import time
import traceback

from ansible_collections.openclaw.standalone.plugins.module_utils import capi, capi_tenant, leads
from ansible_collections.openclaw.standalone.plugins.module_utils.pgsession import PINNED_SEARCH_PATH, error_text
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import slug_problems

try:
    import psycopg2
except ImportError:
    psycopg2 = None
    DATABASE_ERRORS = ()
else:
    DATABASE_ERRORS = (psycopg2.Error,)

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_NOT_FOUND, EXIT_DATABASE, EXIT_META = 0, 1, 2, 3, 4, 5
MAX_STDIN = 1024 * 1024
_DATABASE = re.compile(r"openclaw_([a-z0-9-]+)")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


class Failure(Exception):
    def __init__(self, code, message, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def log(level, msg, src, **fields):
    line = {"ts": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"), "level": level, "src": src, "msg": msg}
    line.update(fields)
    sys.stderr.write(json.dumps(line, default=str) + "\n")


def emit(payload):
    sys.stdout.write(json.dumps(payload, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


def read_stdin():
    raw = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(raw) > MAX_STDIN:
        raise Failure(EXIT_INPUT, "stdin holds more than %d bytes" % MAX_STDIN)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Failure(EXIT_INPUT, "stdin is not one JSON document: %s" % type(exc).__name__) from None


def country_code():
    value = os.environ.get("OPENCLAW_DEFAULT_COUNTRY_CODE") or None
    if value is not None and not _COUNTRY_CODE.fullmatch(value):
        raise Failure(EXIT_INPUT, "OPENCLAW_DEFAULT_COUNTRY_CODE must be 1-3 digits, e.g. 7")
    return value


def connect(src):
    url = os.environ.get("OPENCLAW_DB_URL")
    if not url:
        raise Failure(EXIT_INPUT, "OPENCLAW_DB_URL is not set")
    if psycopg2 is None:
        raise Failure(EXIT_ERROR, "python3-psycopg2 is not installed")
    try:
        conn = psycopg2.connect(url, options=PINNED_SEARCH_PATH, application_name=src, connect_timeout=10)
    except psycopg2.Error as exc:
        # libpq's message can quote the URL's host and user, never its password.
        raise Failure(EXIT_DATABASE, "cannot connect to the tenant database: %s" % error_text(exc)) from None
    if capi_tenant.is_superuser(conn):
        conn.close()
        raise Failure(
            EXIT_DATABASE,
            "OPENCLAW_DB_URL logs in as a superuser; these commands run as the tenant's own role only, so nothing "
            "planted in the tenant's tables runs with superuser rights",
        )
    return conn


def tenant_slug(conn):
    slug = os.environ.get("OPENCLAW_TENANT")
    if not slug:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.current_database()")
            match = _DATABASE.fullmatch(cur.fetchone()[0])
        conn.rollback()
        if match is None:
            raise Failure(EXIT_INPUT, "OPENCLAW_TENANT is not set and the database is not named openclaw_<slug>")
        slug = match.group(1)
    problems = slug_problems(slug, variable="OPENCLAW_TENANT")
    if problems:
        raise Failure(EXIT_INPUT, "; ".join(str(problem) for problem in problems))
    return slug


def identity(args):
    if args.phone is not None:
        try:
            return capi.normalize_phone(args.phone, country_code()), None
        except capi.CapiError as exc:
            raise Failure(EXIT_INPUT, str(exc)) from None
    try:
        return None, leads.check_bsuid(args.bsuid)
    except leads.LeadInputError as exc:
        raise Failure(EXIT_INPUT, str(exc)) from None


# -- openclaw-lead ------------------------------------------------------------------
def lead_record(args, src):
    document = read_stdin()
    try:
        msg = leads.parse_inbound(document, country_code())
    except leads.LeadInputError as exc:
        raise Failure(EXIT_INPUT, str(exc)) from None
    if "ignore" in msg:
        return {"recorded": False, "ignored": msg["ignore"]}
    if not msg["message_id"]:
        log("warning", "the message has no id; a second delivery would be counted again", src)
    conn = connect(src)
    try:
        return leads.record_inbound(conn, msg)
    finally:
        conn.close()


def lead_outbound(args, src):
    try:
        msg = leads.parse_outbound(read_stdin(), country_code())
    except leads.LeadInputError as exc:
        raise Failure(EXIT_INPUT, str(exc)) from None
    conn = connect(src)
    try:
        return leads.record_outbound(conn, msg)
    finally:
        conn.close()


# -- openclaw-capi -------------------------------------------------------------------
def graph_settings():
    """(base URL, API version) of the Graph API from the container's environment, checked."""
    graph_url = os.environ.get("OPENCLAW_GRAPH_URL") or capi.DEFAULT_GRAPH_URL
    if not graph_url.startswith("https://"):
        raise Failure(EXIT_INPUT, "OPENCLAW_GRAPH_URL must be an https:// URL")
    version = os.environ.get("OPENCLAW_GRAPH_API_VERSION") or capi.DEFAULT_API_VERSION
    problem = capi.api_version_problem(version)
    if problem:
        raise Failure(EXIT_INPUT, "OPENCLAW_GRAPH_API_VERSION: " + problem)
    return graph_url, version


def sender(conn, args, src, level=None):
    graph_url, version = graph_settings()
    value = getattr(args, "value", None)
    currency = getattr(args, "currency", None)
    options = {
        "level": level,
        "value": value,
        "currency": currency.upper() if currency else None,
        "graph_url": graph_url,
        "api_version": version,
        "timeout": 10,
        "retries": 3,
        "verify": True,
        "non_ctwa": "chat",
        # A booking without a value is an order placed, not a Purchase Meta would refuse.
        "booking_event": capi_tenant.BOOKING_EVENT,
    }
    dbname = "the tenant database"
    return capi_tenant.TenantSender(conn, tenant_slug(conn), dbname, options, check_mode=args.dry_run, warn=lambda message: log("warning", message, src))


def run_sender(call, tenant_sender):
    try:
        return call()
    except capi_tenant.TenantError as exc:
        code = {"not_found": EXIT_NOT_FOUND, "meta": EXIT_META}.get(exc.kind, EXIT_INPUT)
        raise Failure(code, exc.msg, **dict(tenant_sender.result, **exc.extra)) from None


def capi_send(args, src):
    if (args.value is None) != (args.currency is None):
        raise Failure(EXIT_INPUT, "--value and --currency go together")
    if args.currency is not None and not _CURRENCY.fullmatch(args.currency):
        raise Failure(EXIT_INPUT, "--currency must be an ISO 4217 code such as KZT")
    phone, bsuid = identity(args)
    conn = connect(src)
    try:
        tenant_sender = sender(conn, args, src, level=args.level)
        result = run_sender(lambda: tenant_sender.send(phone=phone, bsuid=bsuid, shown=phone or bsuid), tenant_sender)
    finally:
        conn.close()
    return dict(result, dry_run=args.dry_run)


def capi_sweep(args, src):
    conn = connect(src)
    try:
        tenant_sender = sender(conn, args, src, level=1)
        result = run_sender(lambda: tenant_sender.sweep(limit=args.limit), tenant_sender)
    finally:
        conn.close()
    if result["rejected"]:
        log("warning", "%d level 1 events were not accepted and were logged as errors" % len(result["rejected"]), src)
    return dict(result, dry_run=args.dry_run)


def capi_status(args, src):
    phone, bsuid = identity(args)
    conn = connect(src)
    try:
        args.dry_run = True
        tenant_sender = sender(conn, args, src)
        return run_sender(lambda: tenant_sender.status(phone=phone, bsuid=bsuid), tenant_sender)
    finally:
        conn.close()


# -- argument parsing ----------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """Usage errors as the one JSON line too."""

    def error(self, message):
        emit({"ok": False, "command": self.prog, "exit": EXIT_INPUT, "error": message})
        self.exit(EXIT_INPUT)


def positive(text):
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def non_negative(text):
    number = float(text)
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError("must be a number of at least 0")
    return number


def identity_options(parser):
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="customer's phone number (any common notation)")
    who.add_argument("--bsuid", help="customer's business-scoped user id, e.g. KZ.13491208655302741918")


def lead_parser():
    parser = Parser(prog="openclaw-lead", description="Record WhatsApp messages in the tenant database (JSON on stdin).")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("record", help="one inbound message: gateway hook event, Baileys WAMessage or Cloud API message").set_defaults(func=lead_record)
    commands.add_parser("outbound", help='one sent message: {"to", "text", "message_id", "channel"}').set_defaults(func=lead_outbound)
    return parser


def capi_parser():
    parser = Parser(prog="openclaw-capi", description="Meta Conversions API events of the tenant's WhatsApp dialogs.")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="level 2 (qualified) or 3 (booking) for one dialog, once")
    send.add_argument("--level", type=int, choices=(2, 3), required=True)
    identity_options(send)
    send.add_argument("--value", type=non_negative, help="booking value; makes level 3 a Purchase (with --currency)")
    send.add_argument("--currency", help="ISO 4217 currency of --value")
    send.add_argument("--dry-run", action="store_true", help="build and validate the event; send and write nothing")
    send.set_defaults(func=capi_send)
    sweep = commands.add_parser("sweep", help="level 1 for every dialog over the threshold")
    sweep.add_argument("--limit", type=positive)
    sweep.add_argument("--dry-run", action="store_true")
    sweep.set_defaults(func=capi_sweep)
    status = commands.add_parser("status", help="the dialog's levels, read-only")
    identity_options(status)
    status.set_defaults(func=capi_status)
    return parser


def run(parser, argv):
    args = parser.parse_args(argv)
    src = "%s %s" % (parser.prog, args.command)
    started = time.monotonic()
    try:
        result = args.func(args, src)
    except Failure as failure:
        log("error", failure.message, src)
        emit(dict(failure.extra, ok=False, command=src, exit=failure.code, error=failure.message))
        return failure.code
    except DATABASE_ERRORS as exc:
        log("error", "database error: %s" % error_text(exc), src)
        emit({"ok": False, "command": src, "exit": EXIT_DATABASE, "error": "database error: %s" % error_text(exc)})
        return EXIT_DATABASE
    except Exception as exc:  # noqa: BLE001 - one JSON line even then; never the request (it holds the token)
        log("error", "unexpected error: %s" % type(exc).__name__, src, trace=traceback.format_exc(limit=5))
        emit({"ok": False, "command": src, "exit": EXIT_ERROR, "error": "unexpected error: %s" % type(exc).__name__})
        return EXIT_ERROR
    log("info", "done", src, seconds=round(time.monotonic() - started, 3))
    emit(dict(result, ok=True, command=src))
    return EXIT_OK


def lead_main(argv=None):
    return run(lead_parser(), argv)


def capi_main(argv=None):
    return run(capi_parser(), argv)
