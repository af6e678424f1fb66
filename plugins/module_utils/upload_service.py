# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""The upload service: a client uploads a video or image, it becomes a Facebook ad creative.

Paths (nginx strips the public prefix ``/openclaw/upload/``):

    GET  /health                          ok
    GET  /<slug>/                         the upload page (static HTML, strict CSP)
    GET  /<slug>/app.js                   the page's script (static)
    GET  /<slug>/directions               active directions            (Authorization)
    POST /<slug>/upload?direction_id=&title=   raw file as the body    (Authorization)
    GET  /<slug>/creatives/<id>           status and failure reason    (Authorization)

Authorization is ``Bearer <token>`` with a signed upload link token of that
tenant (upload_links). The body is streamed to a temp file, its type decided
from its magic bytes, a ``creatives`` row inserted 'processing' and the Graph
work done by a small bounded pool of workers; whatever goes wrong there marks
the creative 'failed' with the reason, so no creative stays 'processing'.

Environment: PORT (3001), OPENCLAW_TENANTS_DIR, PG_HOST, PG_PORT, PG_SSLMODE,
OPENCLAW_GRAPH_URL, OPENCLAW_GRAPH_VIDEO_URL, OPENCLAW_GRAPH_API_VERSION,
OPENCLAW_GRAPH_CA_FILE, MAX_FILE_SIZE_MB (500), OPENCLAW_UPLOAD_TMP (/tmp),
OPENCLAW_UPLOAD_CHUNK_MB (50: larger videos use the resumable upload),
OPENCLAW_UPLOAD_VIDEO_TIMEOUT (600 s of video processing at most),
OPENCLAW_UPLOAD_POLL_INTERVAL (5 s between status polls),
OPENCLAW_UPLOAD_WORKERS (2) and OPENCLAW_UPLOAD_QUEUE (8 waiting uploads; more -> 503).
Registry keys: slug, database, db_user, db_password, upload_secret.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import os
import queue
import re
import tempfile
import threading
import urllib.parse
import uuid

from ansible_collections.openclaw.standalone.plugins.module_utils import creatives, upload_links
from ansible_collections.openclaw.standalone.plugins.module_utils.service_common import (
    DatabaseSettings,
    GraphSettings,
    ServiceError,
    ServiceHandler,
    TenantRegistry,
    env_int,
    log,
    serve,
    tenant_connection,
)

SRC = "upload"
READ_CHUNK = 1024 * 1024
MAX_TITLE = 200
WORKERS = 2
QUEUE_SIZE = 8
_PATH = re.compile(r"/([a-z0-9-]{1,63})(/.*)?")
_CREATIVE = re.compile(r"/creatives/([0-9a-fA-F-]{36})")
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
# One fixed statement per legacy column: no column name is ever built from data.
LEGACY_UPDATES = {
    column: "UPDATE public.creatives SET " + column + " = %s WHERE id = %s"  # noqa: S608 - column from a fixed list
    for column in creatives.LEGACY_COLUMNS.values()
}
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}

# Static: nothing of the request is ever written into it. Relative URLs, so it
# works at /openclaw/upload/<slug>/ behind nginx and at /<slug>/ directly.
PAGE = """<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Upload a creative</title>
<script src="app.js" defer></script>
</head>
<body>
<h1>Upload a creative</h1>
<p id="state">Loading…</p>
<p><label>Direction <select id="direction"></select></label></p>
<p><label>Title <input id="title" maxlength="200"></label></p>
<p><input id="file" type="file" accept="image/jpeg,image/png,video/mp4,video/quicktime"></p>
<p><button id="send" type="button" disabled>Upload</button></p>
</body>
</html>
"""

SCRIPT = """'use strict';
(function () {
  var token = decodeURIComponent(window.location.hash.replace(/^#/, ''));
  // The token stays out of the address bar, history and any later referrer.
  if (window.history && window.history.replaceState) { window.history.replaceState(null, '', window.location.pathname); }
  var auth = { 'Authorization': 'Bearer ' + token };
  function $(id) { return document.getElementById(id); }
  function say(text) { $('state').textContent = text; }
  function poll(id) {
    fetch('creatives/' + encodeURIComponent(id), { headers: auth }).then(function (r) { return r.json(); }).then(function (c) {
      if (c.status === 'processing') { setTimeout(function () { poll(id); }, 3000); return; }
      say(c.status === 'ready' ? 'Creative ready.' : 'Failed: ' + (c.failure_reason || 'unknown reason'));
      $('send').disabled = false;
    }).catch(function () { say('Connection lost.'); });
  }
  document.addEventListener('DOMContentLoaded', function () {
    if (!token) { say('This link has no access key. Ask for a new link.'); return; }
    fetch('directions', { headers: auth }).then(function (r) {
      if (r.status === 401) { throw new Error('The link has expired. Ask for a new link.'); }
      return r.json();
    }).then(function (list) {
      list.forEach(function (d) {
        var o = document.createElement('option'); o.value = d.id; o.textContent = d.name; $('direction').appendChild(o);
      });
      say(list.length ? 'Choose a file.' : 'No active directions.');
      $('send').disabled = !list.length;
    }).catch(function (e) { say(e.message); });
    $('send').addEventListener('click', function () {
      var file = $('file').files[0];
      if (!file) { say('Choose a file.'); return; }
      var query = 'direction_id=' + encodeURIComponent($('direction').value) + '&title=' + encodeURIComponent($('title').value || file.name);
      $('send').disabled = true; say('Uploading…');
      var headers = { 'Authorization': 'Bearer ' + token, 'Content-Type': file.type || 'application/octet-stream' };
      fetch('upload?' + query, { method: 'POST', headers: headers, body: file })
        .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (a) {
          if (a[0] !== 202) { say(a[1].error || 'Upload refused.'); $('send').disabled = false; return; }
          say('Processing…'); poll(a[1].creative_id);
        }).catch(function () { say('Connection lost.'); $('send').disabled = false; });
    });
  });
})();
"""


INTERRUPTED = "the upload service restarted before the creative was made; upload the file again"


def media_type(head):
    """'image' or 'video' from a file's first bytes, else None (the declared type is not trusted)."""
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    # ISO base media (MP4, MOV): a box size then 'ftyp'.
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video"
    return None


def _number(environ, name, default, kind=int, minimum=1):
    raw = environ.get(name) or ""
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SystemExit("%s must be a number, got %r" % (name, raw)) from None
    if value < minimum:
        raise SystemExit("%s must be at least %s, got %s" % (name, minimum, raw))
    return value


class UploadConfig:
    """The service's settings from the environment (see the module's docstring for the names)."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.tenants_dir = environ.get("OPENCLAW_TENANTS_DIR") or "/run/openclaw/tenants"
        self.max_bytes = _number(environ, "MAX_FILE_SIZE_MB", 500) * 1024 * 1024
        self.tmp_dir = environ.get("OPENCLAW_UPLOAD_TMP") or "/tmp"  # noqa: S108 - the container's own /tmp by default
        self.chunk_bytes = _number(environ, "OPENCLAW_UPLOAD_CHUNK_MB", 50) * 1024 * 1024
        self.video_timeout = _number(environ, "OPENCLAW_UPLOAD_VIDEO_TIMEOUT", 600)
        self.poll_interval = _number(environ, "OPENCLAW_UPLOAD_POLL_INTERVAL", 5.0, kind=float, minimum=0.01)
        self.workers = _number(environ, "OPENCLAW_UPLOAD_WORKERS", WORKERS)
        self.queue_size = _number(environ, "OPENCLAW_UPLOAD_QUEUE", QUEUE_SIZE)
        self.graph = GraphSettings(environ)
        self.database = DatabaseSettings(environ)


class UploadApp:
    """The service's state: tenants, settings and the bounded pool of Graph workers."""

    def __init__(self, config):
        self.config = config
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.registry = TenantRegistry(config.tenants_dir, required=("upload_secret",))
        self.jobs = queue.Queue(maxsize=config.queue_size)
        self.threads = [threading.Thread(target=self._work, name="upload-worker-%d" % index, daemon=True) for index in range(config.workers)]
        for thread in self.threads:
            thread.start()

    def connect(self, tenant):
        return tenant_connection(tenant, self.config.database, "openclaw-upload")

    def submit(self, job):
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _work(self):
        while True:
            job = self.jobs.get()
            try:
                self.process(*job)
            finally:
                self.jobs.task_done()

    def process(self, tenant, creative_id, direction_id, kind, path):
        """The Graph work for one creative; it ends 'ready' or 'failed', never 'processing'."""
        try:
            result = self._graph_work(tenant, direction_id, kind, path)
        except creatives.GraphFailure as failure:
            self._fail(tenant, creative_id, failure.reason)
        except (ValueError, ServiceError) as exc:
            self._fail(tenant, creative_id, creatives.GraphFailure(str(exc)).reason)
        except Exception as exc:  # noqa: BLE001 - any failure must end the creative's 'processing'
            log("error", SRC, "creative failed unexpectedly", tenant=tenant["slug"], creative=creative_id, error=type(exc).__name__)
            self._fail(tenant, creative_id, "internal error")
        else:
            self._ready(tenant, creative_id, result)
        finally:
            _remove(path)

    def _graph_work(self, tenant, direction_id, kind, path):
        conn = self.connect(tenant)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT fb_access_token, fb_ad_account_id, fb_page_id, fb_instagram_id FROM public.config WHERE id = 1")
                config = cur.fetchone()
                cur.execute("SELECT objective FROM public.directions WHERE id = %s", (direction_id,))
                direction = cur.fetchone()
                cur.execute(
                    "SELECT description, client_question, site_url, utm_tag, lead_form_id, app_store_url, instagram_url"
                    " FROM public.default_ad_settings WHERE direction_id = %s",
                    (direction_id,),
                )
                row = cur.fetchone()
                names = [column[0] for column in cur.description]
        finally:
            conn.close()
        if not config or not config[0] or not config[1] or not config[2]:
            raise ValueError("Facebook is not configured for this tenant (access token, ad account or page missing)")
        if not direction:
            raise ValueError("the direction no longer exists")
        token, account, page_id, instagram_id = config
        objective = direction[0] or "whatsapp"
        settings = dict(zip(names, row)) if row else {}
        ads = creatives.GraphAds(self.config.graph, token, account, poll_interval=self.config.poll_interval, video_timeout=self.config.video_timeout)
        result = {"objective": objective, "fb_video_id": None, "fb_image_hash": None}
        if kind == "image":
            image_hash, _url = ads.upload_image(path)
            media = {"type": "image", "image_hash": image_hash}
            result["fb_image_hash"] = image_hash
        else:
            video_id = ads.upload_video(path, self.config.chunk_bytes)
            picture = ads.wait_video(video_id)
            media = {"type": "video", "video_id": video_id, "image_url": picture}
            result["fb_video_id"] = video_id
        result["fb_creative_id"] = ads.create_with_fallbacks(objective, media, settings, page_id, instagram_id)
        return result

    def _ready(self, tenant, creative_id, result):
        legacy = creatives.LEGACY_COLUMNS.get(result["objective"])
        conn = self.connect(tenant)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "UPDATE public.creatives SET fb_video_id = %s, fb_image_hash = %s, fb_creative_id = %s, status = 'ready',"
                    " failure_reason = NULL, updated_at = now() WHERE id = %s",
                    (result["fb_video_id"], result["fb_image_hash"], result["fb_creative_id"], creative_id),
                )
                if legacy:
                    cur.execute(LEGACY_UPDATES[legacy], (result["fb_creative_id"], creative_id))
            log("info", SRC, "creative ready", tenant=tenant["slug"], creative=creative_id, fb_creative_id=result["fb_creative_id"])
        except Exception as exc:  # noqa: BLE001
            log("error", SRC, "cannot record the ready creative", tenant=tenant["slug"], creative=creative_id, error=type(exc).__name__)
            self._fail(tenant, creative_id, "the creative was made but could not be recorded")
        finally:
            conn.close()

    def recover_interrupted(self):
        """Mark failed what a previous run of the service left 'processing'.

        The queue lives in this process only: a creative made 'processing'
        before this process started lost its file with the old process and
        would wait forever. Uploads this process accepts meanwhile are newer
        than its start (the database's and the server's clocks agree to NTP's
        precision) and are left alone. Each tenant is updated as its own role;
        one unreachable tenant does not stop the others. Returns the count.
        """
        recovered = 0
        for slug in self.registry.slugs():
            tenant = self.registry.get(slug)
            try:
                conn = self.connect(tenant)
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute(
                            "UPDATE public.creatives SET status = 'failed', failure_reason = %s, updated_at = now()"
                            " WHERE status = 'processing' AND created_at < %s",
                            (INTERRUPTED, self.started),
                        )
                        recovered += cur.rowcount
                finally:
                    conn.close()
            except Exception as exc:  # noqa: BLE001 - logged; the other tenants are still recovered
                log("error", SRC, "cannot recover interrupted creatives", tenant=slug, error=type(exc).__name__)
        if recovered:
            log("warning", SRC, "creatives interrupted by a restart marked failed", count=recovered)
        return recovered

    def _fail(self, tenant, creative_id, reason):
        log("error", SRC, "creative failed", tenant=tenant["slug"], creative=creative_id, reason=reason)
        try:
            conn = self.connect(tenant)
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(
                        "UPDATE public.creatives SET status = 'failed', failure_reason = %s, updated_at = now() WHERE id = %s",
                        (reason[: creatives.MAX_REASON], creative_id),
                    )
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - logged; nothing else can be done
            log("error", SRC, "cannot mark the creative failed", tenant=tenant["slug"], creative=creative_id, error=type(exc).__name__)


def _remove(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


def make_handler(app):
    class UploadHandler(ServiceHandler):
        src = SRC

        def do_GET(self):
            self._dispatch("GET")

        def do_HEAD(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def _dispatch(self, method):
            try:
                self._route(method)
            except ServiceError as exc:
                self.close_connection = exc.status in (411, 413) or self.close_connection
                self.send_json(exc.status, {"error": exc.message})
            except Exception as exc:  # noqa: BLE001
                log("error", SRC, "request failed", error=type(exc).__name__)
                self.close_connection = True
                self.send_json(500, {"error": "internal error"})

        def _route(self, method):
            split = urllib.parse.urlsplit(self.path)
            path = split.path
            if path == "/health" and method == "GET":
                self.send_text(200, "ok")
                return
            match = _PATH.fullmatch(path)
            tenant = app.registry.get(match.group(1)) if match else None
            if tenant is None:
                raise ServiceError(404, "not found")
            rest = match.group(2) or ""
            if method == "GET" and rest == "":
                # Relative redirect: keeps the nginx prefix; the slug is a registered one.
                self.send_body(301, b"", "text/plain", {"Location": urllib.parse.quote(tenant["slug"]) + "/"})
                return
            if method == "GET" and rest == "/":
                self.send_body(200, PAGE.encode("utf-8"), "text/html; charset=utf-8", PAGE_HEADERS)
                return
            if method == "GET" and rest == "/app.js":
                self.send_body(200, SCRIPT.encode("utf-8"), "application/javascript; charset=utf-8", PAGE_HEADERS)
                return
            if rest not in ("/directions", "/upload") and not _CREATIVE.fullmatch(rest):
                raise ServiceError(404, "not found")
            self._authorize(tenant)
            if method == "GET" and rest == "/directions":
                self._directions(tenant)
            elif method == "POST" and rest == "/upload":
                self._upload(tenant, urllib.parse.parse_qs(split.query))
            elif method == "GET" and _CREATIVE.fullmatch(rest):
                self._creative(tenant, _CREATIVE.fullmatch(rest).group(1))
            else:
                raise ServiceError(405, "method not allowed")

        def _authorize(self, tenant):
            token = upload_links.bearer_token(self.headers.get("Authorization"))
            if not upload_links.verify_token(tenant["upload_secret"], tenant["slug"], token):
                self.close_connection = True
                raise ServiceError(401, "a valid upload link is required")

        def _query(self, tenant, statement, params=()):
            conn = app.connect(tenant)
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(statement, params)
                    return cur.fetchall() if cur.description else None
            except ServiceError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database's text stays in the log
                log("error", SRC, "database error", tenant=tenant["slug"], error=type(exc).__name__)
                raise ServiceError(500, "database error") from None
            finally:
                conn.close()

        def _directions(self, tenant):
            rows = self._query(tenant, "SELECT id::text, name, objective FROM public.directions WHERE is_active ORDER BY name LIMIT 500")
            self.send_json(200, [{"id": row[0], "name": row[1], "objective": row[2]} for row in rows])

        def _creative(self, tenant, creative_id):
            try:
                uuid.UUID(creative_id)
            except ValueError:
                raise ServiceError(404, "not found") from None
            rows = self._query(tenant, "SELECT id::text, status, failure_reason, fb_creative_id FROM public.creatives WHERE id = %s", (creative_id,))
            if not rows:
                raise ServiceError(404, "not found")
            row = rows[0]
            self.send_json(200, {"creative_id": row[0], "status": row[1], "failure_reason": row[2], "fb_creative_id": row[3]})

        def _upload(self, tenant, query):
            direction_id = (query.get("direction_id") or [""])[0]
            title = (query.get("title") or [""])[0].strip()[:MAX_TITLE] or "Creative"
            try:
                direction_id = str(uuid.UUID(direction_id))
            except ValueError:
                raise ServiceError(400, "direction_id must be a direction's id") from None
            path = self._receive()
            try:
                with open(path, "rb") as handle:
                    kind = media_type(handle.read(16))
                if kind is None:
                    raise ServiceError(415, "only JPEG or PNG images and MP4 or MOV videos are accepted")
                rows = self._query(
                    tenant,
                    "INSERT INTO public.creatives (title, media_type, status, direction_id)"
                    " SELECT %s, %s, 'processing', id FROM public.directions WHERE id = %s AND is_active RETURNING id::text",
                    (title, kind, direction_id),
                )
                if not rows:
                    raise ServiceError(404, "no active direction with this id")
                creative_id = rows[0][0]
                if not app.submit((tenant, creative_id, direction_id, kind, path)):
                    app._fail(tenant, creative_id, "the upload service is busy; upload again later")
                    raise ServiceError(503, "the upload service is busy; try again later")
                path = None  # the worker owns the file now
            finally:
                if path is not None:
                    _remove(path)
            log("info", SRC, "creative accepted", tenant=tenant["slug"], creative=creative_id, media_type=kind)
            self.send_json(202, {"creative_id": creative_id, "status": "processing"})

        def _receive(self):
            """The body streamed into a temp file, refused before reading when it is declared too large."""
            if self.headers.get("Transfer-Encoding"):
                raise ServiceError(411, "a Content-Length is required")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                raise ServiceError(411, "a Content-Length is required") from None
            if length <= 0:
                raise ServiceError(400, "the file is empty")
            if length > app.config.max_bytes:
                raise ServiceError(413, "the file is larger than %d MB" % (app.config.max_bytes // (1024 * 1024)))
            handle = tempfile.NamedTemporaryFile(dir=app.config.tmp_dir, prefix="openclaw-upload-", delete=False)  # noqa: SIM115 - closed below
            try:
                remaining = length
                while remaining:
                    chunk = self.rfile.read(min(READ_CHUNK, remaining))
                    if not chunk:
                        raise ServiceError(400, "the upload was cut off")
                    handle.write(chunk)
                    remaining -= len(chunk)
                handle.close()
            except BaseException:
                handle.close()
                _remove(handle.name)
                self.close_connection = True
                raise
            return handle.name

    return UploadHandler


def escape(text):
    """HTML-escaped text (kept for any page that ever names a tenant)."""
    return html.escape(str(text), quote=True)


def main():
    config = UploadConfig()
    port = env_int("PORT", 3001, minimum=1)
    app = UploadApp(config)
    # In the background: the service answers (and its health check passes) while tenants are visited.
    threading.Thread(target=app.recover_interrupted, name="upload-recovery", daemon=True).start()
    serve(make_handler(app), port, src=SRC)
    return 0
