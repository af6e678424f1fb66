"""A loopback HTTPS stand-in for Meta's Graph API Conversions API endpoint.

``POST /{version}/{dataset_id}/events`` is answered the way graph.facebook.com
answers it, with the documented rules enforced (token, dataset, batch size,
event time window, business-messaging allowlist, hashing, Purchase value) and
Graph's success and error bodies. Production code reaches it only through a
configurable base URL and CA bundle, so it never knows it is not Meta.

Faults (5xx, throttling, token errors, slow answers) can be queued with
``inject``; every request is recorded without its access token.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hmac
import json
import re
import secrets
import shutil
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from .common import LOOPBACK, HarnessError
from .tls import issue_local_certificate

HEALTH_PATH = "/__standin/health"
MAX_EVENTS = 1000
MAX_EVENT_AGE = 7 * 24 * 3600
MAX_FUTURE_SKEW = 60
MAX_DELAY = 30.0
MAX_BODY = 32 * 1024 * 1024
IDLE_TIMEOUT = 30.0

ACTION_SOURCES = frozenset(("email", "website", "app", "phone_call", "chat", "physical_store", "system_generated", "business_messaging", "other"))
BUSINESS_MESSAGING_EVENTS = frozenset(
    (
        "Purchase",
        "LeadSubmitted",
        "QualifiedLead",
        "InitiateCheckout",
        "AddToCart",
        "ViewContent",
        "OrderCreated",
        "OrderShipped",
        "OrderDelivered",
        "OrderCanceled",
        "OrderReturned",
        "CartAbandoned",
        "RatingProvided",
        "ReviewProvided",
    )
)
# The user_data keys each messaging channel needs, all sent unhashed.
MESSAGING_CHANNEL_IDS = {
    "whatsapp": ("whatsapp_business_account_id", "ctwa_clid"),
    "messenger": ("page_id", "page_scoped_user_id"),
    "instagram": ("instagram_business_account_id", "ig_sid"),
}
HASHED_USER_FIELDS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
UNHASHED_USER_FIELDS = (
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
    "whatsapp_business_account_id",
    "instagram_business_account_id",
)
USER_IDENTIFIERS = HASHED_USER_FIELDS + UNHASHED_USER_FIELDS

_VERSION = re.compile(r"^v(\d+)\.(\d+)$")
_EVENTS_PATH = re.compile(r"^/([^/]+)/([^/]+)/events/?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_SECRET_IN_TEXT = re.compile(r"(access_token=|Bearer\s+|OAuth\s+)[^&\s'\"]+", re.IGNORECASE)

_FAULT_KEYS = frozenset(("status", "body", "headers", "error_code", "error_subcode", "is_transient", "message", "type", "delay"))

# HTTP status, message, error_subcode and is_transient for the error codes a fault can name.
_KNOWN_ERRORS: dict[int, tuple[int, str, int | None, bool]] = {
    1: (500, "An unknown error occurred", None, True),
    2: (500, "An unexpected error has occurred. Please retry your request later.", None, True),
    4: (400, "(#4) Application request limit reached", None, True),
    10: (400, "(#10) Application does not have permission for this action", None, False),
    17: (400, "(#17) User request limit reached", 2446079, True),
    100: (400, "(#100) Invalid parameter", None, False),
    190: (400, "Invalid OAuth access token - Cannot parse access token", None, False),
    200: (400, "(#200) Permissions error", None, False),
    341: (400, "(#341) Application limit reached", None, True),
    368: (400, "(#368) The action attempted has been deemed abusive or is otherwise disallowed", None, False),
    613: (400, "(#613) Calls to this api have exceeded the rate limit.", 1487742, True),
}
for _code in range(80000, 80015):
    _KNOWN_ERRORS[_code] = (400, f"(#{_code}) There have been too many calls from this ad-account. Wait a bit and try again.", None, True)


def fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


def redact(text: str) -> str:
    """Text with anything that looks like an access token replaced, for log lines."""
    return _SECRET_IN_TEXT.sub(lambda match: match.group(1) + "<redacted>", text)


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    error_type: str | None = None,
    user_title: str | None = None,
    user_msg: str | None = None,
    is_transient: bool = False,
    blame: list | None = None,
) -> dict:
    """An error body shaped like Graph's."""
    error: dict[str, Any] = {
        "message": message,
        "type": error_type or "OAuthException",
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = is_transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    if blame is not None:
        error["error_data"] = {"blame_field_specs": blame}
    error["fbtrace_id"] = fbtrace_id()
    return {"error": error}


class _Reject(Exception):
    """A request the rules refuse: HTTP status and Graph body."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body
        self.headers = headers or {}


def _invalid(message: str, *, subcode: int | None = None, title: str | None = None, user_msg: str | None = None, blame: list | None = None) -> _Reject:
    return _Reject(
        400,
        graph_error(100, message, subcode=subcode, user_title=title, user_msg=user_msg, blame=blame),
    )


def _event_invalid(index: int, fields: tuple, subcode: int | None, title: str, detail: str) -> _Reject:
    """Code 100 for event ``index``, with Graph's blame_field_specs pointing at it."""
    return _invalid(
        "Invalid parameter",
        subcode=subcode,
        title=title,
        user_msg=f"data[{index}]: {detail}",
        blame=[["data", index, *fields]],
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _version_tuple(version: str) -> tuple[int, int] | None:
    match = _VERSION.match(version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _check_fault(fault: Any) -> dict:
    if not isinstance(fault, dict):
        raise ValueError(f"a fault is a dict, not {fault!r}")
    unknown = set(fault) - _FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(_FAULT_KEYS)}")
    if not {"status", "error_code", "delay"} & set(fault):
        raise ValueError(f"a fault needs status, error_code or delay: {fault!r}")
    if "delay" in fault:
        delay = fault["delay"]
        if not _is_number(delay) or not 0 <= delay <= MAX_DELAY:
            raise ValueError(f"delay must be a number of seconds between 0 and {MAX_DELAY:.0f}: {fault!r}")
    if "status" in fault and (not _is_int(fault["status"]) or not 100 <= fault["status"] <= 599):
        raise ValueError(f"status must be an HTTP status code: {fault!r}")
    if "error_code" in fault and not _is_int(fault["error_code"]):
        raise ValueError(f"error_code must be an int: {fault!r}")
    if "body" in fault and "status" not in fault:
        raise ValueError(f"a raw body needs its status: {fault!r}")
    return dict(fault)


def _fault_response(fault: dict) -> tuple[int, Any, dict]:
    """Status, body and extra headers an injected fault answers with."""
    headers = dict(fault.get("headers") or {})
    if "body" in fault:
        return fault["status"], fault["body"], headers
    code = fault.get("error_code")
    if code is None:
        status = fault["status"]
        if status >= 500:
            code = 2
        elif status == 429:
            code = 4
        else:
            code = 100
    default_status, default_message, default_subcode, default_transient = _KNOWN_ERRORS.get(code, (400, f"(#{code}) Injected error", None, False))
    status = fault.get("status", default_status)
    subcode = fault.get("error_subcode", default_subcode)
    error_type = fault.get("type", "OAuthException")
    body = graph_error(
        code,
        fault.get("message", default_message),
        subcode=subcode,
        error_type=error_type,
        is_transient=bool(fault.get("is_transient", default_transient)),
    )
    if code == 190:
        headers.setdefault("WWW-Authenticate", 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token"')
    return status, body, headers


@dataclass
class GraphRequest:
    """What a route added with ``GraphAPIStandin.route`` is given.

    ``headers`` have lower-case names; ``raw`` is the body as received;
    ``record`` is the request's entry in ``requests()`` (routes may add keys);
    ``token`` is the access token from the Authorization header, the body or
    the query string (``record["token_source"]`` says which), or None.
    """

    method: str
    path: str
    match: re.Match
    query: dict
    headers: dict
    raw: bytes
    record: dict
    token: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: GraphAPIStandin, context: ssl.SSLContext):
        self.standin = standin
        self.tls_context = context
        self.connections: set = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def finish_request(self, request, client_address) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow
        # client never holds up accept().
        request.settimeout(IDLE_TIMEOUT)
        try:
            connection = self.tls_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            self.standin._log(f"TLS handshake with {client_address[0]}:{client_address[1]} failed: {exc}")
            return
        with self.connections_lock:
            self.connections.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            with self.connections_lock:
                self.connections.discard(connection)
            with contextlib.suppress(OSError):
                connection.close()

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        self.standin._log(f"connection from {client_address[0]}:{client_address[1]} ended: {type(exc).__name__}: {redact(str(exc))}")

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graph-api-standin"
    sys_version = ""
    server: _Server

    def log_message(self, format, *args) -> None:
        self.server.standin._log(redact(format % args))

    def log_request(self, code="-", size="-") -> None:
        """Requests are logged by the stand-in itself, without their query strings."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(413, graph_error(100, "(#100) Request body too large"), {})
            return
        if self.command == "GET" and urllib.parse.urlsplit(self.path).path == HEALTH_PATH:
            self._send(200, {"ok": True}, {})
            return
        self.server.standin._handle(self, raw)

    def _send(self, status: int, body: Any, headers: dict) -> bool:
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode("utf-8")
            content_type = "application/json; charset=UTF-8"
        elif isinstance(body, bytes):
            payload = body
            content_type = "text/html; charset=UTF-8"
        else:
            payload = str(body).encode("utf-8")
            content_type = "text/html; charset=UTF-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "private, no-cache, no-store, must-revalidate")
            trace = body.get("fbtrace_id") if isinstance(body, dict) else None
            if trace is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
                trace = body["error"].get("fbtrace_id")
            if trace:
                self.send_header("x-fb-trace-id", trace)
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        return True


@dataclass
class GraphAPIStandin:
    """Meta's ``/{version}/{dataset_id}/events`` edge on https://127.0.0.1:<port>."""

    min_version: str = "v21.0"
    host: str = LOOPBACK
    port: int = 0
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openclaw-graph-api-")))
    clock: Callable[[], float] = time.time
    log_requests: bool = True

    def __post_init__(self) -> None:
        if _version_tuple(self.min_version) is None:
            raise ValueError(f"min_version {self.min_version!r} must look like v21.0")
        self._lock = threading.Lock()
        self._datasets: dict[str, str] = {}
        self._records: list[dict] = []
        self._faults: collections.deque = collections.deque()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ca_file: Path | None = None
        self._routes: list[tuple[str, re.Pattern, Callable[[GraphRequest], tuple[int, Any, dict]]]] = []

    def route(self, method: str, pattern: str, answer: Callable[[GraphRequest], tuple[int, Any, dict]]) -> None:
        """Serve another Graph edge: ``answer`` gets a GraphRequest and returns (status, body, headers).

        ``pattern`` is a regular expression matched against the whole path
        (``/v25.0/<id>/adimages``); routes are tried in the order they were
        added, after the Conversions API edge. Requests are recorded (without
        their token) like every other; faults queued with ``inject`` stay for
        the events edge.
        """
        with self._lock:
            self._routes.append((method.upper(), re.compile(pattern), answer))

    @property
    def url(self) -> str:
        """Base URL to use instead of https://graph.facebook.com (no trailing slash)."""
        if self._server is None:
            raise HarnessError("the Graph API stand-in is not running")
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """PEM of the per-run CA that signed the stand-in's certificate."""
        if self._ca_file is None:
            raise HarnessError("the Graph API stand-in has no certificate until start()")
        return self._ca_file

    def events_url(self, dataset_id: str, version: str = "v25.0") -> str:
        return f"{self.url}/{version}/{dataset_id}/events"

    def add_dataset(self, dataset_id: str, token: str) -> None:
        """Create a dataset (pixel) that ``token`` may write events to."""
        if not _nonempty_str(dataset_id) or "/" in dataset_id:
            raise ValueError(f"dataset id {dataset_id!r} must be a non-empty path segment")
        if not _nonempty_str(token):
            raise ValueError("a dataset token must be a non-empty string")
        with self._lock:
            self._datasets[dataset_id] = token

    def inject(self, *faults: dict) -> None:
        """Queue faults; each subsequent POST to an events edge consumes one before any validation."""
        checked = [_check_fault(fault) for fault in faults]
        with self._lock:
            self._faults.extend(checked)

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        """Forget recorded requests and queued faults (datasets stay)."""
        with self._lock:
            self._records.clear()
            self._faults.clear()

    def requests(self) -> list[dict]:
        """Copies of every request recorded so far, in arrival order; in-flight ones have status None."""
        with self._lock:
            return copy.deepcopy(self._records)

    def accepted_events(self, dataset_id: str | None = None) -> list[dict]:
        """Events of every request answered 200, optionally for one dataset."""
        return [
            event
            for record in self.requests()
            if record["status"] == 200 and record["events_received"] and (dataset_id is None or record["dataset_id"] == dataset_id)
            for event in record["events"]
        ]

    def start(self) -> GraphAPIStandin:
        if self._server is not None:
            return self
        self._stopping.clear()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        ca_file, cert_file, key_file = issue_local_certificate(
            self.work_dir, names=("localhost",), ips=(self.host,), prefix="graph-api", ca_common_name="openclaw test Graph API stand-in CA"
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert_file), str(key_file))
        try:
            server = _Server((self.host, self.port), self, context)
        except OSError as exc:
            raise HarnessError(f"Graph API stand-in cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._server = server
        self._ca_file = ca_file
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="graph-api-standin", daemon=True)
        self._thread.start()
        self._wait_ready(10)
        return self

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + HEALTH_PATH, context=context, timeout=2) as response:  # noqa: S310 - https to our own loopback server
                    if response.status == 200:
                        return
            except OSError as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise HarnessError(f"Graph API stand-in did not answer {HEALTH_PATH} within {timeout:.0f}s: {last_error}")

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._ca_file = None
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> GraphAPIStandin:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _log(self, line: str) -> None:
        if not self.log_requests:
            return
        with self._lock:
            tokens = list(self._datasets.values())
        for token in tokens:
            line = line.replace(token, "<redacted>")
        sys.stderr.write(f"graph-api stand-in: {line}\n")

    def _handle(self, handler: _Handler, raw: bytes) -> None:
        split = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(split.path)
        query_pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        token_in_query = any(name == "access_token" for name, _value in query_pairs)
        content_type = handler.headers.get("Content-Type")
        params, body_error = _parse_body(content_type, raw)
        record: dict[str, Any] = {
            "method": handler.command,
            "path": path,
            "version": None,
            "dataset_id": None,
            "query": {name: value for name, value in query_pairs if name != "access_token"},
            "token_in_query": token_in_query,
            "token_source": None,
            "token_valid": False,
            "token_authorized": False,
            "appsecret_proof": False,
            "content_type": content_type,
            "user_agent": handler.headers.get("User-Agent"),
            "body": {name: value for name, value in params.items() if name != "access_token"} if params is not None else None,
            "body_error": body_error,
            "events": [],
            "test_event_code": None,
            "partner_agent": None,
            "fault": None,
            "status": None,
            "response": None,
            "events_received": 0,
            "delivered": None,
            "received_at": self.clock(),
        }
        data = params.get("data") if params else None
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                record["body_error"] = "param data must be an array encoded as JSON"
            else:
                record["body"]["data"] = data
        if isinstance(data, list):
            record["events"] = data
        if params:
            for name in ("test_event_code", "partner_agent"):
                if name in params:
                    record[name] = params[name]
            record["appsecret_proof"] = "appsecret_proof" in params
        events_edge = _EVENTS_PATH.match(path)
        if events_edge:
            record["version"], record["dataset_id"] = events_edge.group(1), events_edge.group(2)

        with self._lock:
            datasets = dict(self._datasets)
        token, record["token_source"] = _find_token(handler.headers.get("Authorization"), params, query_pairs)
        if token is not None:
            record["token_valid"] = any(hmac.compare_digest(token.encode(), known.encode()) for known in datasets.values())
            allowed = datasets.get(record["dataset_id"] or "")
            record["token_authorized"] = allowed is not None and hmac.compare_digest(token.encode(), allowed.encode())

        with self._lock:
            fault = self._faults.popleft() if events_edge and handler.command == "POST" and self._faults else None
            record["fault"] = copy.deepcopy(fault)
            self._records.append(record)

        request_headers = {name.lower(): value for name, value in handler.headers.items()}
        status, body, headers = self._answer(handler.command, path, events_edge, fault, token, datasets, data, record, request_headers, raw)
        if self._stopping.is_set():
            # Stopped while this request waited: drop it unanswered, as a server going away would.
            handler.close_connection = True
            delivered = False
        else:
            delivered = handler._send(status, body, headers)
        with self._lock:
            record["status"] = status
            record["response"] = body
            record["delivered"] = delivered
            if status == 200 and isinstance(body, dict):
                record["events_received"] = body.get("events_received", 0)
        summary = f"{handler.command} {path} -> {status}"
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            summary += f" code {error.get('code')}" + (f"/{error['error_subcode']}" if "error_subcode" in error else "")
        elif isinstance(body, dict) and "events_received" in body:
            summary += f" events_received {body['events_received']}"
        if fault is not None:
            summary += f" (injected {sorted(fault)})"
        if not delivered:
            summary += " (answer not delivered: client gone or stand-in stopping)"
        self._log(summary)

    def _answer(self, method, path, events_edge, fault, token, datasets, data, record, headers, raw) -> tuple[int, Any, dict]:
        if fault is not None:
            delay = fault.get("delay")
            if delay:
                self._stopping.wait(delay)
            if "status" in fault or "error_code" in fault:
                return _fault_response(fault)
        if not events_edge:
            with self._lock:
                routes = list(self._routes)
            for route_method, pattern, answer in routes:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    return answer(GraphRequest(method, path, match, record["query"], headers, raw, record, token))
        if not events_edge or method != "POST":
            if method == "POST":
                return 404, graph_error(100, f"Unknown path components: {path}"), {}
            return 404, graph_error(803, "(#803) Some of the aliases you requested do not exist: " + path.strip("/")), {}
        try:
            received = self._validate(record["version"], record["dataset_id"], token, datasets, data, record)
        except _Reject as reject:
            return reject.status, reject.body, reject.headers
        return 200, {"events_received": received, "messages": [], "fbtrace_id": fbtrace_id()}, {"facebook-api-version": record["version"]}

    def _validate(self, version: str, dataset_id: str, token: str | None, datasets: dict, data: Any, record: dict) -> int:
        wanted = _version_tuple(version)
        if wanted is None:
            raise _invalid(f"Unsupported post request. Unknown path components: /{version}/{dataset_id}/events")
        if wanted < _version_tuple(self.min_version):
            raise _Reject(
                400,
                graph_error(
                    2635,
                    f"(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: {self.min_version} or newer.",
                    error_type="OAuthException",
                ),
            )
        if token is None or not record["token_valid"]:
            raise _Reject(
                400,
                graph_error(190, "Invalid OAuth access token - Cannot parse access token"),
                {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token"'},
            )
        if dataset_id not in datasets or not record["token_authorized"]:
            raise _invalid(
                f"Unsupported post request. Object with ID '{dataset_id}' does not exist, cannot be loaded due to missing permissions, "
                "or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                subcode=33,
            )
        if data is None:
            detail = record["body_error"] or "The parameter data is required"
            raise _invalid(f"(#100) {detail}")
        if not isinstance(data, list):
            raise _invalid("(#100) param data must be an array.")
        if not data:
            raise _invalid("(#100) param data must be a non-empty array.")
        if len(data) > MAX_EVENTS:
            raise _invalid(
                f"(#100) param data must be an array with at most {MAX_EVENTS} elements.",
                title="Too Many Events",
                user_msg=f"You can send up to {MAX_EVENTS} events per request; this request has {len(data)}.",
            )
        now = self.clock()
        for index, event in enumerate(data):
            _check_event(index, event, now)
        return len(data)


def _parse_body(content_type: str | None, raw: bytes) -> tuple[dict | None, str | None]:
    """Request parameters from a JSON or form-encoded body, and what was wrong with it, if anything."""
    if not raw:
        return {}, None
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "body is not UTF-8"
    if media_type == "application/json" or (not media_type and text.lstrip().startswith("{")):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return None, "a JSON body must be one valid JSON object"
        return parsed, None
    if media_type not in ("application/x-www-form-urlencoded", ""):
        return None, f"unsupported Content-Type {media_type}"
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True)), None


def _find_token(authorization: str | None, params: dict | None, query_pairs: list) -> tuple[str | None, str | None]:
    """The access token and where it came from: Authorization header, then body, then query string."""
    if authorization:
        scheme, _space, value = authorization.strip().partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip(), "header"
    if params and isinstance(params.get("access_token"), str) and params["access_token"]:
        return params["access_token"], "body"
    for name, value in query_pairs:
        if name == "access_token" and value:
            return value, "query"
    return None, None


def _hashed_values(value: Any) -> list | None:
    """The values of a hashed user_data field, or None when its shape is wrong."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    return None


def _check_event(index: int, event: Any, now: float) -> None:
    if not isinstance(event, dict):
        raise _event_invalid(index, (), None, "Invalid Event", "each event must be a JSON object.")

    event_name = event.get("event_name")
    if not _nonempty_str(event_name):
        raise _event_invalid(index, ("event_name",), None, "Missing Event Name", "event_name is required and must be a non-empty string.")

    event_time = event.get("event_time")
    if not _is_int(event_time):
        raise _event_invalid(index, ("event_time",), None, "Invalid Event Time", "event_time is required and must be an integer Unix timestamp in seconds.")
    if event_time < now - MAX_EVENT_AGE:
        raise _event_invalid(
            index,
            ("event_time",),
            2804003,
            "Event Timestamp Too Old",
            "The timestamp for this event is too far in the past. Events need to be sent from your server within 7 days of when they occurred.",
        )
    if event_time > now + MAX_FUTURE_SKEW:
        raise _event_invalid(
            index,
            ("event_time",),
            2804004,
            "Event Timestamp In The Future",
            "The timestamp for this event is in the future. Send the Unix time in seconds at which the event actually happened.",
        )

    action_source = event.get("action_source")
    if action_source not in ACTION_SOURCES:
        raise _event_invalid(
            index,
            ("action_source",),
            None,
            "Invalid Action Source",
            f"action_source {action_source!r} is not one of {', '.join(sorted(ACTION_SOURCES))}.",
        )

    user_data = event.get("user_data")
    if not isinstance(user_data, dict) or not user_data:
        raise _event_invalid(index, ("user_data",), None, "Missing User Data", "user_data is required and must be a non-empty object.")
    if not any(user_data.get(name) not in (None, "", []) for name in USER_IDENTIFIERS):
        raise _event_invalid(
            index,
            ("user_data",),
            2804050,
            "Too Few Customer Information Parameters",
            "user_data must contain at least one customer information parameter.",
        )

    if action_source == "business_messaging":
        _check_business_messaging(index, event, user_data)

    for name in HASHED_USER_FIELDS:
        if name not in user_data:
            continue
        values = _hashed_values(user_data[name])
        if values is None or not all(_SHA256.match(value) for value in values):
            raise _event_invalid(
                index,
                ("user_data", name),
                2804019,
                "Invalid Parameter Hashing",
                f"user_data.{name} must be normalized and then hashed with SHA-256 (64 lowercase hex characters), as a string or a list of strings.",
            )

    custom_data = event.get("custom_data")
    if custom_data is not None and not isinstance(custom_data, dict):
        raise _event_invalid(index, ("custom_data",), None, "Invalid Custom Data", "custom_data must be an object.")
    custom_data = custom_data or {}
    if event_name == "Purchase" and not (_is_number(custom_data.get("value")) and isinstance(custom_data.get("currency"), str)):
        raise _event_invalid(
            index,
            ("custom_data", "value" if not _is_number(custom_data.get("value")) else "currency"),
            2804009,
            "Missing Value for Purchase Event",
            "Purchase events need custom_data.value (a number) and custom_data.currency (an ISO 4217 code).",
        )
    if "currency" in custom_data and not (isinstance(custom_data["currency"], str) and _CURRENCY.match(custom_data["currency"])):
        raise _event_invalid(index, ("custom_data", "currency"), None, "Invalid Currency Code", "custom_data.currency must be a three-letter ISO 4217 code.")
    if "value" in custom_data and not _is_number(custom_data["value"]):
        raise _event_invalid(index, ("custom_data", "value"), None, "Invalid Value", "custom_data.value must be a number.")

    if "event_id" in event and not isinstance(event["event_id"], str):
        raise _event_invalid(index, ("event_id",), None, "Invalid Event ID", "event_id must be a string.")


def _check_business_messaging(index: int, event: dict, user_data: dict) -> None:
    channel = event.get("messaging_channel")
    if channel not in MESSAGING_CHANNEL_IDS:
        raise _event_invalid(
            index,
            ("messaging_channel",),
            None,
            "Invalid Messaging Channel",
            f"business_messaging events need messaging_channel set to one of {', '.join(sorted(MESSAGING_CHANNEL_IDS))}, not {channel!r}.",
        )
    for name in MESSAGING_CHANNEL_IDS[channel]:
        value = user_data.get(name)
        if not _nonempty_str(value):
            raise _event_invalid(
                index,
                ("user_data", name),
                None,
                "Missing Messaging Parameter",
                f"user_data.{name} is required for {channel} business_messaging events and must be a non-empty string.",
            )
        if _HEX64.match(value):
            raise _event_invalid(
                index,
                ("user_data", name),
                2804019,
                "Invalid Parameter Hashing",
                f"user_data.{name} must not be hashed; send it exactly as received.",
            )
    if event["event_name"] not in BUSINESS_MESSAGING_EVENTS:
        raise _event_invalid(
            index,
            ("event_name",),
            2804066,
            "Messaging Event Invalid Event Type",
            f"{event['event_name']!r} is not supported for business_messaging events; use one of {', '.join(sorted(BUSINESS_MESSAGING_EVENTS))}.",
        )


class FakeResponse:
    """What `requests` returns, for unit tests that answer Graph calls in process."""

    def __init__(self, status, payload):
        self.status_code = status
        self._payload = payload

    def json(self):
        return self._payload
