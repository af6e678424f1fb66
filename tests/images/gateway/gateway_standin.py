"""A stand-in for the OpenClaw gateway (release 2026.2.17), for tests that run without the real one.

It answers on the gateway's port and paths with the gateway's rules, so the
configuration the collection writes, proxies, firewalls, webhooks and hooks
are tested offline against what the real gateway would do. Facts and their
upstream sources: templates/README.md ("Gateway contract").

* Start-up: ``~/.openclaw/openclaw.json`` (or ``$OPENCLAW_CONFIG_PATH``) is
  read, ``${NAME}`` references are substituted from the environment (a
  missing or empty variable is fatal), and the result is checked against
  ``openclaw-gateway.schema.json`` (the schema the tenant role validates
  with): an unknown key, a wrong type or value, ``dmPolicy: open`` without
  ``"*"`` in ``allowFrom``, ``hooks.enabled`` without a token, a hooks token
  equal to the gateway token, or ``gateway.mode`` other than ``local`` make it
  exit with status 1 before listening, as the real gateway refuses to start.
  No file at all is refused unless ``--allow-unconfigured`` is given.
* Health: 2026.2.17 has no HTTP health endpoint, so ``/healthz`` and
  ``/readyz`` are ordinary paths (401 without the token, 404 with it). A
  probe must treat any HTTP answer as "the gateway is up".
* Everything else needs the gateway token, either as ``Authorization: Bearer
  <token>`` or as ``?token=<token>``; otherwise 401.
* Webhook ingress (``hooks.enabled``): ``POST <hooks.path>/agent`` and
  ``/wake`` with ``Authorization: Bearer <hooks token>`` or
  ``X-OpenClaw-Token``; a token in the query is 400, a wrong one 401, a body
  over ``hooks.maxBodyBytes`` (256 KiB) 413, invalid JSON 400, a missing
  ``message`` (agent) or ``text`` (wake) 400, a ``sessionKey`` without
  ``allowRequestSessionKey`` or outside ``allowedSessionKeyPrefixes`` 400;
  accepted agent runs are 202 ``{ok, runId}``, wakes 200 ``{ok, mode}``.
* Internal hooks (``hooks.internal.enabled``): HOOK.md + handler.js
  directories under ``~/.openclaw/hooks/`` and ``<workspace>/hooks/`` are
  loaded at start-up as the gateway's loader does. 2026.2.17 itself never
  emits ``message:received``; ``POST /__standin/emit`` (gateway token; not a
  real path) fires an event through the loaded handlers with node, the way
  later releases call them, so the collection's hook can be tested.
* ``GET /`` returns a small HTML page naming the stand-in and showing the
  forwarding headers it received; ``GET /__standin/request`` echoes the
  request; ``GET /__standin/hooks`` lists accepted webhook calls and hook
  runs (not real paths: they let tests see what arrived).
* A WebSocket upgrade on any path completes a real RFC 6455 handshake and
  echoes messages back.

Only the standard library and Debian's python3-jsonschema are used, so it
runs on a bare Debian python3.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

VERSION = "2026.2.17-standin"
SERVICE = "openclaw-gateway-standin"
DEFAULT_PORT = 18789
# "lan" listens on every interface on purpose: it is what `--bind lan` means.
BIND_ADDRESSES = {"loopback": "127.0.0.1", "lan": "0.0.0.0"}  # noqa: S104
HERE = Path(__file__).resolve().parent
# In the image the schema sits next to this file (build.sh copies it in); run
# from a checkout, it is the tenant role's own copy.
SCHEMA_FILE = next(
    (
        path
        for path in (HERE / "openclaw-gateway.schema.json", HERE.parents[2] / "roles" / "tenant" / "files" / "openclaw-gateway.schema.json")
        if path.is_file()
    ),
    HERE / "openclaw-gateway.schema.json",
)
HOOK_RUNNER = HERE / "run_hook.mjs"
DEFAULT_HOOKS_PATH = "/hooks"
DEFAULT_HOOKS_MAX_BODY = 256 * 1024
HOOK_TIMEOUT = 30
ENV_REFERENCE = re.compile(r"(\$?)\$\{([^}]*)\}")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Larger messages are refused rather than buffered: nothing in the tests
# needs them and an unbounded read is an easy way to exhaust memory.
WS_MAX_MESSAGE = 1 << 20

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

_TOKEN_IN_QUERY = re.compile(r"(?<=[?&]token=)[^&\s]*")


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{stamp} [gateway-standin] {message}", flush=True)


def redact(text: str) -> str:
    """Hide ?token= values so request logs never contain the secret."""
    return _TOKEN_IN_QUERY.sub("***", text)


class ProtocolError(Exception):
    """The peer broke RFC 6455; carries the close code to send back."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], token: str | None, config: dict | None = None, hooks: list | None = None) -> None:
        self.token = token
        self.config = config or {}
        self.hooks = hooks or []
        self.webhook_calls: list[dict] = []
        self.hook_runs: list[dict] = []
        self.lock = threading.Lock()
        super().__init__(address, GatewayHandler)

    @property
    def hooks_config(self) -> dict:
        hooks = self.config.get("hooks") or {}
        return hooks if hooks.get("enabled") is True else {}


class GatewayHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    server_version = f"{SERVICE}/{VERSION}"
    # HTTP/1.1 keeps connections alive, which reverse proxies rely on.
    protocol_version = "HTTP/1.1"

    # -- plumbing ---------------------------------------------------------

    def log_message(self, fmt: str, *args: object) -> None:
        log(f"{self.client_address[0]} {redact(fmt % args)}")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        code = getattr(code, "value", code)
        self.log_message('"%s" %s %s', self.requestline, code, size)

    def send_body(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: dict, extra: dict[str, str] | None = None) -> None:
        body = (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()
        self.send_body(status, body, "application/json; charset=utf-8", extra)

    def drain_body(self) -> None:
        """Read a request body so the next request on the connection parses."""
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        elif self.headers.get("Transfer-Encoding"):
            # Chunked bodies are not worth parsing here; end the connection.
            self.close_connection = True

    # -- auth -------------------------------------------------------------

    def presented_token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _space, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        tokens = parse_qs(urlsplit(self.path).query).get("token")
        return tokens[0] if tokens else None

    def authorised(self) -> bool:
        expected = self.server.token
        if not expected:
            return True
        presented = self.presented_token()
        return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())

    # -- routing ----------------------------------------------------------

    def do_GET(self) -> None:
        self.route()

    def do_HEAD(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it is larger than ``limit`` (then the connection ends)."""
        length = self.headers.get("Content-Length")
        if not length:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
            return b""
        if not length.isdigit() or int(length) > limit:
            self.close_connection = True
            return None
        return self.rfile.read(int(length))

    def route(self) -> None:
        path = urlsplit(self.path).path
        hooks = self.server.hooks_config
        base = (hooks.get("path") or DEFAULT_HOOKS_PATH).rstrip("/") if hooks else None
        if base and (path == base or path.startswith(base + "/")):
            self.serve_hook(path[len(base) :].strip("/"), hooks)
            return
        if self.command == "POST" and path == "/__standin/emit" and self.authorised():
            self.emit_event()
            return
        if self.command not in ("GET", "HEAD"):
            self.drain_body()
        if not self.authorised():
            body = {"ok": False, "error": "unauthorized", "message": "gateway token missing or invalid"}
            self.send_json(401, body, {"WWW-Authenticate": 'Bearer realm="openclaw-gateway"'})
            return
        if self.command == "GET" and self.is_websocket_upgrade():
            self.serve_websocket()
        elif self.command in ("GET", "HEAD") and path == "/":
            self.send_index()
        elif self.command == "GET" and path == "/__standin/request":
            self.send_json(200, self.describe_request())
        elif self.command == "GET" and path == "/__standin/hooks":
            with self.server.lock:
                self.send_json(200, {"ok": True, "webhooks": list(self.server.webhook_calls), "hook_runs": list(self.server.hook_runs)})
        else:
            self.send_json(404, {"ok": False, "error": "not_found", "path": path})

    # -- webhook ingress (hooks.*) ----------------------------------------

    def send_text(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
        self.send_body(status, (text + "\n").encode(), "text/plain; charset=utf-8", extra)

    def serve_hook(self, action: str, hooks: dict) -> None:  # noqa: PLR0911 - one answer per rule, in the gateway's order
        if "token" in parse_qs(urlsplit(self.path).query):
            self.drain_body()
            self.send_text(400, "Hook token must be provided via Authorization: Bearer <token> or X-OpenClaw-Token header (query parameters are not allowed).")
            return
        header = self.headers.get("Authorization", "")
        scheme, _space, value = header.partition(" ")
        presented = value.strip() if scheme.lower() == "bearer" else (self.headers.get("X-OpenClaw-Token") or "").strip()
        if not presented or not hmac.compare_digest(presented.encode(), str(hooks["token"]).encode()):
            self.drain_body()
            self.send_text(401, "Unauthorized")
            return
        if self.command != "POST":
            self.drain_body()
            self.send_text(405, "Method Not Allowed", {"Allow": "POST"})
            return
        if not action:
            self.drain_body()
            self.send_text(404, "Not Found")
            return
        body = self.read_body(int(hooks.get("maxBodyBytes") or DEFAULT_HOOKS_MAX_BODY))
        if body is None:
            self.send_json(413, {"ok": False, "error": "payload too large"})
            return
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            self.send_json(400, {"ok": False, "error": "invalid JSON"})
            return
        if not isinstance(payload, dict):
            self.send_json(400, {"ok": False, "error": "payload must be an object"})
            return
        if action == "wake":
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip():
                self.send_json(400, {"ok": False, "error": "text required"})
                return
            mode = payload.get("mode") if payload.get("mode") in ("now", "next-heartbeat") else "now"
            self.record_webhook("wake", payload, None)
            self.send_json(200, {"ok": True, "mode": mode})
        elif action == "agent":
            problem = self.agent_payload_problem(payload, hooks)
            if problem:
                self.send_json(400, {"ok": False, "error": problem})
                return
            run_id = str(uuid.uuid4())
            self.record_webhook("agent", payload, run_id)
            self.send_json(202, {"ok": True, "runId": run_id})
        else:
            self.send_text(404, "Not Found")

    def agent_payload_problem(self, payload: dict, hooks: dict) -> str | None:
        message = payload.get("message")
        if not isinstance(message, str) or not message.strip():
            return "message required"
        session_key = payload.get("sessionKey")
        if session_key is not None:
            if not hooks.get("allowRequestSessionKey"):
                return "sessionKey is disabled for external /hooks/agent payloads; set hooks.allowRequestSessionKey=true to enable"
            prefixes = hooks.get("allowedSessionKeyPrefixes") or []
            if not isinstance(session_key, str) or (prefixes and not any(session_key.startswith(prefix) for prefix in prefixes)):
                return "sessionKey must start with one of: " + ", ".join(prefixes)
        channel = payload.get("channel")
        channels = ["last", *sorted(key for key in (self.server.config.get("channels") or {}) if key != "defaults")]
        if channel is not None and channel not in channels:
            return "channel must be " + "|".join(channels)
        if "model" in payload and not (isinstance(payload["model"], str) and payload["model"].strip()):
            return "model required"
        return None

    def record_webhook(self, action: str, payload: dict, run_id: str | None) -> None:
        entry = {"action": action, "payload": payload, "runId": run_id, "client": self.client_address[0], "at": time.time()}
        with self.server.lock:
            self.server.webhook_calls.append(entry)
        log(f"hook {action} accepted" + (f" run {run_id}" if run_id else ""))

    # -- internal hooks ---------------------------------------------------

    def emit_event(self) -> None:
        body = self.read_body(1 << 20)
        try:
            event = json.loads(body or b"{}")
            event_name = f"{event['type']}:{event['action']}"
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"ok": False, "error": "an event needs type and action"})
            return
        event.setdefault("sessionKey", "")
        event.setdefault("context", {})
        event.setdefault("messages", [])
        event.setdefault("timestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        matched = [hook for hook in self.server.hooks if event_name in hook["events"] or event["type"] in hook["events"]]
        for hook in matched:
            threading.Thread(target=run_hook, args=(self.server, hook, event), daemon=True).start()
        # The gateway does not wait for hooks before it goes on with the message.
        self.send_json(202, {"ok": True, "event": event_name, "hooks": [hook["name"] for hook in matched]})

    def describe_request(self) -> dict:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return {
            "ok": True,
            "request_line": self.requestline,
            "method": self.command,
            "path": self.path,
            "http_version": self.request_version,
            "headers": headers,
            "raw_headers": [[name, value] for name, value in self.headers.items()],
            "client": {"host": self.client_address[0], "port": self.client_address[1]},
        }

    def send_index(self) -> None:
        shown = {name: self.headers.get(name, "(none)") for name in ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP")}
        rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in shown.items())
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>OpenClaw gateway stand-in</title></head>
<body>
<h1>OpenClaw gateway stand-in {html.escape(VERSION)}</h1>
<p>This is a test double, not the OpenClaw gateway. Client address: {html.escape(self.client_address[0])}</p>
<table>
{rows}
</table>
</body></html>
"""
        self.send_body(200, page.encode(), "text/html; charset=utf-8")

    # -- WebSocket --------------------------------------------------------

    def is_websocket_upgrade(self) -> bool:
        upgrade = self.headers.get("Upgrade", "").lower()
        connection = {part.strip().lower() for part in self.headers.get("Connection", "").split(",")}
        return upgrade == "websocket" and "upgrade" in connection

    def serve_websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "").strip()
        if self.headers.get("Sec-WebSocket-Version", "").strip() != "13" or not key:
            self.send_json(400, {"ok": False, "error": "bad_websocket_handshake"}, {"Sec-WebSocket-Version": "13"})
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode(), usedforsecurity=False).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        # After the upgrade the connection is no longer HTTP.
        self.close_connection = True
        try:
            self.echo_frames()
        except ProtocolError as error:
            log(f"{self.client_address[0]} websocket protocol error: {error}")
            self.send_frame(OP_CLOSE, struct.pack("!H", error.code) + str(error).encode()[:120])
        except (ConnectionError, OSError) as error:
            log(f"{self.client_address[0]} websocket closed: {error}")

    def read_exact(self, count: int) -> bytes:
        data = self.rfile.read(count)
        if len(data) != count:
            raise ConnectionError("peer went away mid-frame")
        return data

    def read_frame(self) -> tuple[bool, int, bytes]:
        first, second = self.read_exact(2)
        fin, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            raise ProtocolError(1002, "reserved bits set without an extension")
        if not second & 0x80:
            raise ProtocolError(1002, "client frames must be masked")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.read_exact(8))
        if opcode >= 0x8 and (length > 125 or not fin):
            raise ProtocolError(1002, "invalid control frame")
        if length > WS_MAX_MESSAGE:
            raise ProtocolError(1009, "message too big")
        mask = self.read_exact(4)
        payload = self.read_exact(length)
        return fin, opcode, bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))

    def send_frame(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([length])
        elif length < 1 << 16:
            header += bytes([126]) + struct.pack("!H", length)
        else:
            header += bytes([127]) + struct.pack("!Q", length)
        self.wfile.write(header + payload)
        self.wfile.flush()

    def echo_frames(self) -> None:
        log(f"{self.client_address[0]} websocket open {redact(self.path)}")
        message_opcode, parts = None, []
        while True:
            fin, opcode, payload = self.read_frame()
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_PONG:
                continue
            elif opcode == OP_CLOSE:
                # Answer with the peer's status code, as RFC 6455 section 5.5.1 asks.
                self.send_frame(OP_CLOSE, payload[:2])
                log(f"{self.client_address[0]} websocket closed by peer")
                return
            elif opcode in (OP_TEXT, OP_BINARY):
                if message_opcode is not None:
                    raise ProtocolError(1002, "new message before the previous one finished")
                message_opcode, parts = opcode, [payload]
            elif opcode == OP_CONTINUATION:
                if message_opcode is None:
                    raise ProtocolError(1002, "continuation without a message")
                parts.append(payload)
            else:
                raise ProtocolError(1002, f"unknown opcode {opcode:#x}")
            if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION) and fin:
                message = b"".join(parts)
                if len(message) > WS_MAX_MESSAGE:
                    raise ProtocolError(1009, "message too big")
                if message_opcode == OP_TEXT:
                    try:
                        message.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtocolError(1007, "text message is not UTF-8") from None
                self.send_frame(message_opcode, message)
                message_opcode, parts = None, []


def run_hook(server: GatewayServer, hook: dict, event: dict) -> None:
    """Calls one hook's handler with node, as the gateway imports and awaits it; failures are logged, never raised."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["node", str(HOOK_RUNNER), hook["handler"], hook["export"]],
            input=json.dumps(event).encode(),
            capture_output=True,
            timeout=HOOK_TIMEOUT,
            check=False,
        )
        status, output = result.returncode, (result.stdout + result.stderr).decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired) as error:
        status, output = None, str(error)
    handler_ms = None
    for line in output.splitlines():
        if line.startswith('{"handlerMs"'):
            handler_ms = json.loads(line)["handlerMs"]
    entry = {
        "hook": hook["name"],
        "event": f"{event['type']}:{event['action']}",
        "status": status,
        "output": output[-4000:],
        "handler_ms": handler_ms,
        "seconds": round(time.monotonic() - started, 3),
    }
    with server.lock:
        server.hook_runs.append(entry)
    log(f"hook {hook['name']} ran for {entry['event']}: status {status}")


def front_matter(text: str) -> dict:
    """HOOK.md front matter as the gateway's parser reads it: one `key: value` per line, metadata as JSON."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    fields: dict = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, colon, value = line.partition(":")
        if colon and key.strip():
            fields[key.strip()] = value.strip().strip('"')
    if "metadata" in fields:
        try:
            fields["metadata"] = json.loads(fields["metadata"])
        except ValueError:
            fields["metadata"] = {}
    return fields


def discover_hooks(config: dict, state_dir: Path) -> list[dict]:
    """Managed (~/.openclaw/hooks) then workspace hooks, filtered like the gateway's loader."""
    internal = (config.get("hooks") or {}).get("internal") or {}
    if internal.get("enabled") is not True:
        return []
    entries = internal.get("entries") or {}
    workspace = Path((((config.get("agents") or {}).get("defaults") or {}).get("workspace")) or state_dir / "workspace")
    found = []
    for root in (state_dir / "hooks", workspace / "hooks"):
        if not root.is_dir():
            continue
        for directory in sorted(path for path in root.iterdir() if path.is_dir()):
            manifest = directory / "HOOK.md"
            if not manifest.is_file():
                continue
            fields = front_matter(manifest.read_text(encoding="utf-8", errors="replace"))
            meta = (fields.get("metadata") or {}).get("openclaw") or {}
            name = fields.get("name") or directory.name
            handler = next(
                (directory / candidate for candidate in ("handler.js", "index.js", "handler.ts", "index.ts") if (directory / candidate).is_file()), None
            )
            if handler is None or (entries.get(name) or {}).get("enabled") is False:
                continue
            if handler.suffix == ".ts":
                log(f"hook {name}: TypeScript handlers need the gateway's own loader; the stand-in runs .js only")
                continue
            missing = [binary for binary in (meta.get("requires") or {}).get("bins") or [] if shutil.which(binary) is None]
            if missing:
                log(f"hook {name} skipped: missing {', '.join(missing)}")
                continue
            events = [str(event) for event in meta.get("events") or []]
            found.append({"name": name, "events": events, "handler": str(handler), "export": meta.get("export") or "default"})
            log(f"hook {name} registered for {', '.join(events) or 'nothing'}")
    return found


class ConfigError(Exception):
    """The gateway would refuse to start with this configuration."""


def config_path() -> Path:
    override = os.environ.get("OPENCLAW_CONFIG_PATH")
    if override:
        return Path(override)
    return Path(os.environ.get("HOME", str(Path.home()))) / ".openclaw" / "openclaw.json"


def substitute_env(value, path: str = ""):
    """${NAME} in every string from the environment; $${NAME} is a literal; a missing or empty NAME is fatal."""
    if isinstance(value, dict):
        return {key: substitute_env(item, f"{path}.{key}" if path else key) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_env(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        escape, name = match.groups()
        if escape or not ENV_NAME.fullmatch(name):
            return match.group(0)[len(escape) :] if escape else match.group(0)
        if not os.environ.get(name):
            raise ConfigError(f'Missing env var "{name}" referenced at config path: {path}')
        return os.environ[name]

    return ENV_REFERENCE.sub(replace, value)


def schema_errors(config: dict) -> list[str]:
    import jsonschema  # Debian's python3-jsonschema in the image; imported late so --version works without it

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    errors = []
    for error in jsonschema.Draft7Validator(schema).iter_errors(config):
        where = ".".join(str(part) for part in error.absolute_path) or "<root>"
        rule = error.schema.get("x-message") if isinstance(error.schema, dict) else None
        errors.append(f"{where}: {rule or error.message}")
    return sorted(errors)


def load_config(allow_unconfigured: bool, gateway_token: str | None) -> dict:
    """The configuration the gateway would run with, or ConfigError with the gateway's reason."""
    path = config_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if allow_unconfigured:
            log(f"no config at {path}; running unconfigured (--allow-unconfigured)")
            return {}
        raise ConfigError(f"Missing config at {path}. Run `openclaw setup` or set gateway.mode=local (or pass --allow-unconfigured).") from None
    except OSError as error:
        raise ConfigError(f"Invalid config at {path}: {error}") from None
    try:
        # The gateway reads JSON5; the collection writes plain JSON, which is what is checked here.
        data = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"Invalid config at {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid config at {path}: the top level must be an object")
    data = substitute_env(data)
    errors = schema_errors(data)
    if errors:
        raise ConfigError(f"Invalid config at {path}:\n" + "\n".join(f"- {error}" for error in errors))
    mode = (data.get("gateway") or {}).get("mode")
    if mode != "local" and not allow_unconfigured:
        raise ConfigError(f"Gateway start blocked: set gateway.mode=local (current: {mode or 'unset'}) or pass --allow-unconfigured.")
    hooks = data.get("hooks") or {}
    token = ((data.get("gateway") or {}).get("auth") or {}).get("token") or gateway_token
    if hooks.get("enabled") is True and token and hooks.get("token") == token:
        raise ConfigError("Invalid config: hooks.token must not match gateway auth token. Set a distinct hooks.token for hook ingress.")
    log(f"loaded config from {path} (top-level keys: {', '.join(sorted(data)) or 'none'})")
    return data


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="openclaw",
        description="OpenClaw gateway stand-in for tests (supports only `gateway` and `--version`).",
    )
    parser.add_argument("--version", action="version", version=VERSION)
    commands = parser.add_subparsers(dest="command", metavar="command")
    gateway = commands.add_parser("gateway", help="run the gateway stand-in")
    gateway.add_argument(
        "--bind",
        choices=sorted(BIND_ADDRESSES),
        default=os.environ.get("OPENCLAW_GATEWAY_BIND", "loopback"),
        help="loopback = 127.0.0.1 (default), lan = 0.0.0.0",
    )
    gateway.add_argument("--port", type=int, default=int(os.environ.get("OPENCLAW_GATEWAY_PORT", DEFAULT_PORT)))
    gateway.add_argument("--auth", choices=("token", "none"), default=None, help="token auth is on whenever a token is given")
    gateway.add_argument("--token", default=os.environ.get("OPENCLAW_GATEWAY_TOKEN") or None)
    # Accepted so the real gateway's container command line works unchanged.
    gateway.add_argument("--allow-unconfigured", action="store_true", help=argparse.SUPPRESS)
    gateway.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)

    # argparse's own message for an unknown sub-command lists the choices but
    # does not say that this is a stand-in; make that explicit.
    if argv and not argv[0].startswith("-") and argv[0] != "gateway":
        parser.exit(
            2,
            f"openclaw: unknown command '{argv[0]}': this is the gateway stand-in used in tests, "
            "it only supports `openclaw gateway` and `openclaw --version`\n",
        )
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        parser.exit(2, "openclaw: a command is required (only `gateway` is supported)\n")
    if args.auth == "token" and not args.token:
        parser.exit(2, "openclaw: --auth token needs --token or OPENCLAW_GATEWAY_TOKEN\n")
    if args.auth == "none":
        args.token = None
    if not 0 < args.port < 65536:
        parser.exit(2, f"openclaw: invalid port {args.port}\n")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.allow_unconfigured, args.token)
    except ConfigError as error:
        log(str(error))
        return 1
    hooks = discover_hooks(config, config_path().parent)
    host = BIND_ADDRESSES[args.bind]
    try:
        server = GatewayServer((host, args.port), args.token, config, hooks)
    except OSError as error:
        log(f"cannot listen on {host}:{args.port}: {error}")
        return 1

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            log(f"received {signal.Signals(signum).name}, shutting down")
            # shutdown() waits for serve_forever() to return, which runs in
            # this (the main) thread, so it has to be called from another one.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    auth = "token" if args.token else "none"
    log(f"openclaw gateway stand-in {VERSION} listening on ws://{host}:{args.port} (bind={args.bind}, auth={auth})")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
