# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""The platform's webhook service: Meta Lead Ads per tenant and the WhatsApp Business number routing.

    GET  /health                 200 ok
    GET  /webhook/<slug>         Lead Ads subscribe (the tenant's leadgen_verify_token)
    POST /webhook/<slug>         Lead Ads leads of the tenant's Page
    GET  /webhooks/waba          WhatsApp Business subscribe (WABA_VERIFY_TOKEN)
    POST /webhooks/waba          WhatsApp Business messages, routed by phone_number_id

Every post is checked against its app secret before it is answered: a bad or
missing signature is a 403 and nothing is recorded.

WhatsApp Business messages are recorded in the tenant's database before the
post is answered (a few milliseconds each): a 200 means they are stored, and a
database that cannot be reached answers 503, so Meta delivers again; the
unique message id makes a redelivery harmless. Forwarding to the gateway can
take seconds and is left to a small pool of workers. Lead Ads posts are
answered at once and the lead fetched by the workers: the Graph API call would
hold Meta's request; a fetch that fails afterwards is logged, not redelivered.
The queue is bounded; when it is full the answer is 503, so Meta delivers
again later instead of the service growing without limit.

Tenant data is read and written as the tenant's own role
(service_common.tenant_connection). The shared database is read with the
service's own role, only the columns of the routing query. No CAPI event is
sent here: level 1 comes from the tenant container's ``openclaw-capi sweep``.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import urllib.parse

from ansible_collections.openclaw.standalone.plugins.module_utils import leads, meta_webhooks
from ansible_collections.openclaw.standalone.plugins.module_utils.service_common import (
    CONNECT_TIMEOUT,
    DatabaseSettings,
    GraphSettings,
    ServiceError,
    ServiceHandler,
    ServiceServer,
    TenantRegistry,
    env_int,
    env_text,
    log,
    read_body,
    serve,
    tenant_connection,
)

try:
    import psycopg2
except ImportError:
    psycopg2 = None

try:
    import requests
except ImportError:
    requests = None

SRC = "webhook"
DEFAULT_MAX_BODY = 1024 * 1024
GATEWAY_TIMEOUT = 5
GRAPH_TIMEOUT = 10
TELEGRAM_TIMEOUT = 5
# Seconds a WhatsApp Business post waits for a free recording slot before 503.
RECORDING_WAIT = 10
WORKERS = 4
QUEUE_MAX = 256
LEAD_FIELDS = "id,ad_id,form_id,created_time,field_data"
_LEADGEN_PATH = re.compile(r"/webhook/([^/]{1,64})")
_TELEGRAM_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
_TELEGRAM_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z0-9_]{5,64}")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")
_GATEWAY_URL = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")
WEBHOOK_KEYS = ("gateway_url", "hooks_token", "leadgen_verify_token")


class WebhookConfig:
    """Everything the service reads from its environment (see main())."""

    def __init__(self, environ):
        self.registry = TenantRegistry(environ.get("OPENCLAW_TENANTS_DIR") or "/run/openclaw/tenants")
        self.database = DatabaseSettings(environ)
        self.graph = GraphSettings(environ)
        self.shared_database = environ.get("OPENCLAW_SHARED_DATABASE") or "openclaw"
        self.shared_user = environ.get("PG_USER") or ""
        self.shared_password = environ.get("PG_PASSWORD") or ""
        self.waba_verify_token = environ.get("WABA_VERIFY_TOKEN") or ""
        self.waba_app_secret = environ.get("WABA_APP_SECRET") or ""
        self.leadgen_app_secret = environ.get("LEADGEN_APP_SECRET") or ""
        self.allow_unsigned = _flag("OPENCLAW_WEBHOOK_ALLOW_UNSIGNED", environ.get("OPENCLAW_WEBHOOK_ALLOW_UNSIGNED"))
        max_body = environ.get("OPENCLAW_WEBHOOK_MAX_BODY") or str(DEFAULT_MAX_BODY)
        if not max_body.isdigit() or int(max_body) < 1024:
            raise SystemExit("OPENCLAW_WEBHOOK_MAX_BODY must be a number of bytes, at least 1024, got %r" % max_body)
        self.max_body = int(max_body)
        self.telegram_url = (environ.get("OPENCLAW_TELEGRAM_URL") or "https://api.telegram.org").rstrip("/")
        code = environ.get("OPENCLAW_DEFAULT_COUNTRY_CODE") or None
        if code is not None and not _COUNTRY_CODE.fullmatch(code):
            raise SystemExit("OPENCLAW_DEFAULT_COUNTRY_CODE must be 1-3 digits, got %r" % code)
        self.default_country_code = code
        self.workers = WORKERS
        self.queue_max = QUEUE_MAX


def _flag(name, raw):
    value = (raw or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    # A typo must not silently mean "false" (or "true").
    raise SystemExit("%s must be true or false, got %r" % (name, raw))


def _country_code(tenant, config):
    code = str(tenant.get("default_country_code") or "")
    return code if _COUNTRY_CODE.fullmatch(code) else config.default_country_code


class WebhookApp:
    """The service's state: configuration, the worker pool and its bounded queue."""

    def __init__(self, config):
        self.config = config
        self.jobs = queue.Queue(maxsize=config.queue_max)
        # Requests recording WhatsApp Business messages at once, each with one tenant connection.
        self._recording = threading.BoundedSemaphore(max(1, config.workers) * 2)
        self._threads = []
        self._lock = threading.Lock()

    # -- worker pool ---------------------------------------------------------------------
    def start(self):
        for number in range(self.config.workers):
            thread = threading.Thread(target=self._work, name="webhook-worker-%d" % number, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self):
        for _thread in self._threads:
            self.jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def submit(self, job, *args):
        if not self.try_submit(job, *args):
            raise ServiceError(503, "busy, deliver again later")

    def try_submit(self, job, *args):
        try:
            self.jobs.put_nowait((job, args))
        except queue.Full:
            return False
        return True

    def wait_idle(self):
        """Block until every submitted job is done (tests, and a graceful stop)."""
        self.jobs.join()

    def _work(self):
        while True:
            item = self.jobs.get()
            try:
                if item is None:
                    return
                job, args = item
                job(*args)
            except Exception as exc:  # noqa: BLE001 - one bad job must not end the worker
                log("error", SRC, "job failed", error=type(exc).__name__)
            finally:
                self.jobs.task_done()

    # -- Lead Ads ------------------------------------------------------------------------
    def leadgen_secret(self, tenant):
        return tenant.get("app_secret") or self.config.leadgen_app_secret

    def accept_leadgen(self, slug, tenant, raw, header):
        self._check(raw, header, self.leadgen_secret(tenant), tenant=slug)
        document = meta_webhooks.load_json(raw)
        found = meta_webhooks.parse_leadgen(document)
        for hook in found:
            self.submit(self.process_lead, slug, tenant, hook)
        return len(found)

    def process_lead(self, slug, tenant, hook):
        conn = tenant_connection(tenant, self.config.database, "openclaw-webhook")
        try:
            if leads.lead_form_known(conn, hook["leadgen_id"]):
                log("info", "leadgen", "lead already recorded", tenant=slug, leadgen_id=hook["leadgen_id"])
                return
            settings = self._tenant_settings(conn)
            token = settings.get("fb_page_access_token") or settings.get("fb_access_token")
            if not token:
                log("warning", "leadgen", "the tenant has no Page access token; lead not fetched", tenant=slug, leadgen_id=hook["leadgen_id"])
                return
            graph_lead = self._fetch_lead(slug, hook["leadgen_id"], token)
            if graph_lead is None:
                return
            lead = meta_webhooks.map_lead(graph_lead, hook, _country_code(tenant, self.config))
            if lead["phone_raw"] and not lead["phone"]:
                log("warning", "leadgen", "the lead's phone number is not a number; recorded without it", tenant=slug, leadgen_id=hook["leadgen_id"])
            result = leads.record_lead_form(conn, lead)
        finally:
            conn.close()
        log("info", "leadgen", "lead recorded" if result["recorded"] else "lead already recorded", tenant=slug, leadgen_id=hook["leadgen_id"])
        if result["recorded"]:
            self._notify_telegram(slug, settings, lead)

    @staticmethod
    def _tenant_settings(conn):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT fb_page_access_token, fb_access_token, telegram_bot_token, telegram_chat_id FROM public.config ORDER BY id LIMIT 1",
            )
            row = cur.fetchone()
        conn.rollback()
        names = ("fb_page_access_token", "fb_access_token", "telegram_bot_token", "telegram_chat_id")
        return {name: (value if isinstance(value, str) and value.strip() else None) for name, value in zip(names, row or (None,) * 4)}

    def _fetch_lead(self, slug, leadgen_id, token):
        url = self.config.graph.endpoint(leadgen_id)
        try:
            # The token travels in the Authorization header: a URL ends up in
            # proxies' and servers' logs.
            response = requests.get(
                url,
                params={"fields": LEAD_FIELDS},
                headers={"Authorization": "Bearer " + token},
                timeout=GRAPH_TIMEOUT,
                verify=self.config.graph.verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log("error", "leadgen", "Graph API not reachable", tenant=slug, leadgen_id=leadgen_id, error=type(exc).__name__)
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            code = body.get("error", {}).get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
            log("error", "leadgen", "Graph API refused the lead", tenant=slug, leadgen_id=leadgen_id, status=response.status_code, code=code)
            return None
        return body

    def _notify_telegram(self, slug, settings, lead):
        token, chat = settings.get("telegram_bot_token"), settings.get("telegram_chat_id")
        if not token or not chat:
            return
        if not _TELEGRAM_TOKEN.fullmatch(token.strip()) or not _TELEGRAM_CHAT.fullmatch(chat.strip()):
            log("warning", "telegram", "the tenant's Telegram bot token or chat id is malformed; no notice sent", tenant=slug)
            return
        text = "New Lead Ads lead\nName: %s\nPhone: %s" % (lead.get("name") or "-", lead.get("phone") or lead.get("phone_raw") or "-")
        try:
            # Telegram's API takes the bot token only in the path; the URL is never logged.
            response = requests.post(
                "%s/bot%s/sendMessage" % (self.config.telegram_url, token.strip()),
                json={"chat_id": chat.strip(), "text": text},
                timeout=TELEGRAM_TIMEOUT,
                allow_redirects=False,
            )
            if not 200 <= response.status_code < 300:
                log("warning", "telegram", "notice not accepted", tenant=slug, status=response.status_code)
        except requests.RequestException as exc:
            log("warning", "telegram", "notice not sent", tenant=slug, error=type(exc).__name__)

    # -- WhatsApp Business ------------------------------------------------------------------
    def mappings(self, phone_ids):
        """{phone_number_id: (slug, app secret)} for the active mappings among ``phone_ids``."""
        if not phone_ids:
            return {}
        if psycopg2 is None:
            raise ServiceError(503, "python3-psycopg2 is not installed")
        try:
            conn = psycopg2.connect(
                host=self.config.database.host,
                port=self.config.database.port,
                dbname=self.config.shared_database,
                user=self.config.shared_user,
                password=self.config.shared_password,
                sslmode=self.config.database.sslmode,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="openclaw-webhook",
                options="-c statement_timeout=5000",
            )
        except psycopg2.Error:
            raise ServiceError(503, "the shared database is not reachable") from None
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT waba_phone_id, slug, waba_app_secret, waba_access_token FROM public.waba_phone_mapping"
                    " WHERE waba_phone_id = ANY(%s) AND is_active IS TRUE",
                    (list(phone_ids),),
                )
                rows = cur.fetchall()
        except psycopg2.Error:
            raise ServiceError(503, "the routing table is not readable") from None
        finally:
            conn.close()
        # A number without an access token cannot be answered: not routed (as the seed did).
        return {phone_id: (slug, secret) for phone_id, slug, secret, access in rows if access}

    def accept_waba(self, raw, header):
        document = meta_webhooks.load_json(raw)
        phone_ids = meta_webhooks.waba_phone_ids(document)
        routes = self.mappings(phone_ids)
        for phone_id in phone_ids:
            if phone_id not in routes:
                log("warning", "waba", "unknown or inactive phone number id; its messages are dropped", phone_number_id=phone_id)
        # Every tenant named in the post must find its own secret's signature:
        # one post cannot carry another tenant's messages past a check.
        for slug, secret in routes.values():
            self._check(raw, header, secret or self.config.waba_app_secret, tenant=slug)
        if not routes and not phone_ids:
            # Status-only or foreign posts still need the platform's signature.
            self._check(raw, header, self.config.waba_app_secret)
        batches = {}
        for phone_id, msg in meta_webhooks.parse_waba(document, None):
            if phone_id in routes:
                batches.setdefault(routes[phone_id][0], []).append(msg)
        # Recorded before Meta is answered: a 200 means the messages are in the
        # tenant's database, and anything not recorded answers 503, which Meta
        # delivers again (the unique message id makes that harmless). Only the
        # forwarding to the gateway is left to the workers.
        if not self._recording.acquire(timeout=RECORDING_WAIT):
            raise ServiceError(503, "busy, deliver again later")
        try:
            unrecorded = 0
            for slug, messages in batches.items():
                forwards, missed = self.record_waba(slug, document, messages)
                unrecorded += missed
                if forwards and not self.try_submit(self.forward_waba, slug, forwards):
                    # Recorded already: a redelivery would not forward them again.
                    self.forward_waba(slug, forwards)
        finally:
            self._recording.release()
        if unrecorded:
            raise ServiceError(503, "not every message could be recorded; deliver again later")
        return sum(len(messages) for messages in batches.values())

    def record_waba(self, slug, document, messages):
        """Record one tenant's messages as the tenant; (tenant and messages to forward, count not recorded)."""
        tenant = self.config.registry.get(slug)
        if tenant is None:
            log("error", "waba", "the mapped tenant is not registered", tenant=slug)
            return None, 0
        code = _country_code(tenant, self.config)
        if code:
            # Parse again with the tenant's country code for national numbers.
            by_id = {msg["message_id"]: msg for _phone_id, msg in meta_webhooks.parse_waba(document, code)}
            messages = [by_id.get(msg["message_id"], msg) for msg in messages]
        try:
            conn = tenant_connection(tenant, self.config.database, "openclaw-webhook")
        except ServiceError:
            log("error", "waba", "the tenant's database is not reachable; messages not recorded", tenant=slug)
            return None, len(messages)
        forwards, missed = [], 0
        try:
            for msg in messages:
                try:
                    result = leads.record_inbound(conn, msg)
                except psycopg2.Error as exc:
                    conn.rollback()
                    missed += 1
                    log("error", "waba", "message not recorded", tenant=slug, message_id=msg["message_id"], error=type(exc).__name__)
                    continue
                if not result["recorded"]:
                    log("info", "waba", "message already recorded", tenant=slug, message_id=msg["message_id"])
                    continue
                log("info", "waba", "message recorded", tenant=slug, message_id=msg["message_id"], lead=result.get("lead"))
                if msg.get("text"):
                    forwards.append(msg)
        finally:
            conn.close()
        return (tenant, forwards) if forwards else None, missed

    def forward_waba(self, slug, forwards):
        tenant, messages = forwards
        for msg in messages:
            self._forward(slug, tenant, msg)

    def _forward(self, slug, tenant, msg):
        gateway, token = tenant.get("gateway_url"), tenant.get("hooks_token")
        if not gateway or not token or not _GATEWAY_URL.fullmatch(str(gateway).rstrip("/")):
            log("warning", "waba-gw", "the tenant has no usable gateway_url or hooks_token; message not forwarded", tenant=slug)
            return
        try:
            response = requests.post(
                str(gateway).rstrip("/") + "/hooks/agent",
                json=meta_webhooks.forward_payload(msg),
                headers={"Authorization": "Bearer " + token},
                timeout=GATEWAY_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log("warning", "waba-gw", "gateway not reachable", tenant=slug, error=type(exc).__name__)
            return
        if 200 <= response.status_code < 300:
            log("info", "waba-gw", "forwarded", tenant=slug, message_id=msg["message_id"], status=response.status_code)
        else:
            log("warning", "waba-gw", "gateway refused the message", tenant=slug, message_id=msg["message_id"], status=response.status_code)

    # -- shared ---------------------------------------------------------------------------
    def _check(self, raw, header, secret, tenant=None):
        if not secret and self.config.allow_unsigned:
            log("warning", SRC, "accepting an unsigned post: no app secret is configured", tenant=tenant)
        try:
            meta_webhooks.check_signature(raw, header, secret, self.config.allow_unsigned)
        except meta_webhooks.WebhookError as exc:
            log("warning", SRC, "post refused", tenant=tenant, reason=exc.message)
            raise ServiceError(exc.status, "forbidden") from None


def make_handler(app):
    """The request handler class bound to ``app``."""
    config = app.config

    class WebhookHandler(ServiceHandler):
        src = SRC

        def _route(self):
            split = urllib.parse.urlsplit(self.path)
            path = split.path
            # The first of repeated names wins.
            query = dict(reversed(urllib.parse.parse_qsl(split.query, keep_blank_values=True)))
            if path == "/health":
                return "health", None, query
            if path == "/webhooks/waba":
                return "waba", None, query
            match = _LEADGEN_PATH.fullmatch(path)
            if match is not None:
                return "leadgen", match.group(1), query
            return None, None, query

        def _dispatch(self, method):
            try:
                kind, slug, query = self._route()
                if kind is None:
                    raise ServiceError(404, "not found")
                if kind == "health":
                    if method not in ("GET", "HEAD"):
                        raise ServiceError(405, "method not allowed")
                    self.send_text(200, "ok")
                    return
                tenant = None
                if kind == "leadgen":
                    # Known tenants only: an unknown slug costs one stat, no connection.
                    tenant = config.registry.get(slug)
                    if tenant is None:
                        raise ServiceError(404, "not found")
                if method == "GET":
                    token = tenant["leadgen_verify_token"] if tenant else config.waba_verify_token
                    try:
                        challenge = meta_webhooks.verify_subscription(query, token)
                    except meta_webhooks.WebhookError as exc:
                        raise ServiceError(exc.status, "forbidden" if exc.status == 403 else exc.message) from None
                    self.send_text(200, challenge)
                    return
                if method != "POST":
                    raise ServiceError(405, "method not allowed")
                raw = read_body(self, config.max_body)
                header = self.headers.get(meta_webhooks.SIGNATURE_HEADER)
                try:
                    if kind == "leadgen":
                        app.accept_leadgen(slug, tenant, raw, header)
                        self.send_text(200, "EVENT_RECEIVED")
                    else:
                        app.accept_waba(raw, header)
                        self.send_json(200, {"success": True})
                except meta_webhooks.WebhookError as exc:
                    raise ServiceError(exc.status, exc.message) from None
            except ServiceError as exc:
                if exc.status in (411, 413):
                    self.close_connection = True
                headers = {"Allow": "GET, POST"} if exc.status == 405 else None
                self.send_text(exc.status, exc.message if exc.status != 404 else "not found", headers)

        def do_GET(self):
            self._dispatch("GET")

        def do_HEAD(self):
            self._dispatch("HEAD")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def do_PATCH(self):
            self._dispatch("PATCH")

    return WebhookHandler


def make_server(app, host="127.0.0.1", port=0):
    """A server for ``app`` not yet serving (tests run it on a thread)."""
    return ServiceServer((host, port), make_handler(app))


def main(environ=None):
    """Entry point of ``openclaw-webhook`` (environment: see the services contract in the README)."""
    environ = os.environ if environ is None else environ
    if requests is None or psycopg2 is None:
        raise SystemExit("python3-requests and python3-psycopg2 are required")
    env_text("PG_USER", required=True)
    config = WebhookConfig(environ)
    app = WebhookApp(config)
    app.start()
    try:
        serve(make_handler(app), env_int("PORT", 3000, minimum=1), src=SRC)
    finally:
        app.stop()
    return 0
