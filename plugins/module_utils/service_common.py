# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""What the platform's shared services (webhook, upload) have in common.

Both run from the services image the server role builds, without ansible:
standard library, psycopg2 and requests only.

* **Tenant registry.** The tenant role writes one JSON file per tenant,
  ``<slug>.json``, into a directory mounted read-only into the service
  (``OPENCLAW_TENANTS_DIR``). A service knows a tenant only through its file:
  a request for any other slug touches neither the database nor the disk
  beyond one ``stat``, and nothing is cached per unknown slug.
* **Tenant databases as the tenant's own role.** A service reads and writes a
  tenant's data with that tenant's credentials, one short connection per
  request. Whatever the tenant planted in its database (triggers, defaults,
  rules, functions) therefore runs with rights the tenant already has; a
  shared role granted on every tenant's tables would run one tenant's trigger
  with access to all the others.
* **HTTP plumbing.** A threading server with a bounded body, JSON log lines
  and a clean stop on SIGTERM.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.openclaw.standalone.plugins.module_utils.pgsession import PINNED_SEARCH_PATH
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import derived_names, slug_problems

try:
    import psycopg2
except ImportError:  # the registry and the HTTP plumbing work without it
    psycopg2 = None

# Every registry file carries these keys; a service may require more.
TENANT_KEYS = ("slug", "database", "db_user", "db_password")
MAX_REGISTRY_FILE = 64 * 1024
# A tenant's database answers within these bounds or the request fails: a
# tenant that locks its own tables must not hold a service thread forever.
CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 10000
LOCK_TIMEOUT_MS = 5000
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
_API_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")
_SECRET_IN_TEXT = re.compile(r"(access_token=|Bearer\s+|OAuth\s+|password=)[^&\s'\"]+", re.IGNORECASE)


class ServiceError(Exception):
    """A problem the service reports to its caller with an HTTP status, without internals."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def log(level, src, msg, **fields):
    """One JSON line: errors to stderr, the rest to stdout. Values are data, never formatted into msg."""
    line = {"ts": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"), "level": level, "src": src, "msg": msg}
    line.update(fields)
    text = redact(json.dumps(line, default=str, ensure_ascii=False))
    stream = sys.stderr if level == "error" else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def redact(text):
    """Text with anything that looks like a token or password replaced."""
    return _SECRET_IN_TEXT.sub(lambda match: match.group(1) + "<redacted>", text)


def env_text(name, default=None, required=False):
    value = os.environ.get(name, "")
    if value:
        return value
    if required:
        raise SystemExit("%s is not set" % name)
    return default


def env_int(name, default, minimum=0):
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit("%s must be an integer, got %r" % (name, raw)) from None
    if value < minimum:
        raise SystemExit("%s must be at least %d, got %d" % (name, minimum, value))
    return value


def env_flag(name, default=False):
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit("%s must be true or false, got %r" % (name, raw))


class GraphSettings:
    """Where the Graph API is (``OPENCLAW_GRAPH_URL``, ``OPENCLAW_GRAPH_VIDEO_URL``), its version and CA bundle."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.url = (environ.get("OPENCLAW_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/")
        # Meta takes large video uploads on its own host; tests point both at one stand-in.
        self.video_url = (environ.get("OPENCLAW_GRAPH_VIDEO_URL") or self.url.replace("://graph.", "://graph-video.", 1)).rstrip("/")
        self.api_version = environ.get("OPENCLAW_GRAPH_API_VERSION") or "v25.0"
        if not _API_VERSION.fullmatch(self.api_version):
            raise SystemExit("OPENCLAW_GRAPH_API_VERSION must look like v25.0, got %r" % self.api_version)
        # A CA bundle path, or True for the system's trust store.
        self.verify = environ.get("OPENCLAW_GRAPH_CA_FILE") or True

    def endpoint(self, *parts, video=False):
        return "/".join([self.video_url if video else self.url, self.api_version, *[str(part).strip("/") for part in parts]])


class DatabaseSettings:
    """How a service reaches PostgreSQL (``PG_HOST``, ``PG_PORT``, ``PG_SSLMODE``)."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.host = environ.get("PG_HOST") or "127.0.0.1"
        self.port = int(environ.get("PG_PORT") or 5432)
        self.sslmode = environ.get("PG_SSLMODE") or "prefer"


class TenantRegistry:
    """The tenants a service may act for: ``<directory>/<slug>.json``, re-read when a file changes."""

    def __init__(self, directory, required=()):
        self.directory = directory
        self.required = tuple(TENANT_KEYS) + tuple(required)
        self._lock = threading.Lock()
        self._cache = {}

    def get(self, slug):
        """The tenant's entry, or None for a slug that is not a valid, registered tenant."""
        if not isinstance(slug, str) or slug_problems(slug, reserved=()):
            return None
        path = os.path.join(self.directory, slug + ".json")
        try:
            stat = os.stat(path)
        except OSError:
            with self._lock:
                self._cache.pop(slug, None)
            return None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            cached = self._cache.get(slug)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        entry = self._load(path, slug)
        with self._lock:
            if entry is None:
                self._cache.pop(slug, None)
            else:
                self._cache[slug] = (stamp, entry)
        return entry

    def slugs(self):
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(name[: -len(".json")] for name in names if name.endswith(".json") and self.get(name[: -len(".json")]) is not None)

    def _load(self, path, slug):
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_REGISTRY_FILE + 1)
            if len(raw) > MAX_REGISTRY_FILE:
                raise ValueError("larger than %d bytes" % MAX_REGISTRY_FILE)
            entry = json.loads(raw.decode("utf-8"))
        except (OSError, ValueError) as exc:
            log("error", "registry", "unreadable tenant file", tenant=slug, error=type(exc).__name__)
            return None
        missing = [key for key in self.required if not isinstance(entry, dict) or not entry.get(key)]
        if missing:
            log("error", "registry", "tenant file lacks keys", tenant=slug, missing=missing)
            return None
        names = derived_names(slug)
        if entry["slug"] != slug or entry["database"] != names["database"] or entry["db_user"] != names["role"]:
            # The file names the tenant; its content may not point at another tenant's database.
            log("error", "registry", "tenant file names another tenant", tenant=slug)
            return None
        return entry


def tenant_connection(tenant, database, application_name):
    """A connection to the tenant's database as the tenant's own role, bounded in time."""
    if psycopg2 is None:
        raise ServiceError(503, "python3-psycopg2 is not installed")
    try:
        return psycopg2.connect(
            host=database.host,
            port=database.port,
            dbname=tenant["database"],
            user=tenant["db_user"],
            password=tenant["db_password"],
            sslmode=database.sslmode,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=application_name,
            options="%s -c statement_timeout=%d -c lock_timeout=%d" % (PINNED_SEARCH_PATH, STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS),
        )
    except psycopg2.Error:
        # libpq's text can name host and user; the caller learns only that it failed.
        raise ServiceError(503, "the tenant's database is not reachable") from None


class BodyTooLarge(ServiceError):
    def __init__(self, limit):
        super().__init__(413, "request body larger than %d bytes" % limit)


def read_body(handler, limit):
    """The request body, refused before reading when its declared length is over ``limit``."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        raise ServiceError(411, "a Content-Length is required")
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        raise ServiceError(400, "invalid Content-Length") from None
    if length < 0:
        raise ServiceError(400, "invalid Content-Length")
    if length > limit:
        raise BodyTooLarge(limit)
    return handler.rfile.read(length) if length else b""


class ServiceHandler(BaseHTTPRequestHandler):
    """Request handler base: quiet default logging, JSON and text answers, no server banner details."""

    server_version = "openclaw-service"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Slow clients may not hold a thread forever.
    timeout = 60
    src = "server"

    def log_message(self, format, *args):  # signature of BaseHTTPRequestHandler; requests are logged by the services
        pass

    def send_body(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, payload, headers=None):
        self.send_body(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8", headers)

    def send_text(self, status, text, headers=None):
        self.send_body(status, text.encode("utf-8"), "text/plain; charset=utf-8", headers)


class ServiceServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


# All interfaces of the service container: it is published on the host's loopback only.
def serve(handler_class, port, host="0.0.0.0", src="server", ready=None):  # noqa: S104
    """Run ``handler_class`` until SIGTERM or SIGINT, then finish and return."""
    server = ServiceServer((host, port), handler_class)

    def stop(_signum, _frame):
        # shutdown() waits for serve_forever, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("info", src, "listening", port=server.server_address[1])
    if ready is not None:
        ready(server)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        log("info", src, "stopped")
