"""A stand-in for the OpenClaw gateway, for tests that run without the real one.

It answers on the gateway's port and paths with the gateway's auth rules, so
proxies, firewalls, service units and health probes can be tested offline:

* ``GET /healthz``, ``/readyz`` (and ``/health``) answer 200 JSON without auth.
* Everything else needs the token when token auth is on, either as
  ``Authorization: Bearer <token>`` or as ``?token=<token>``; otherwise 401.
* ``GET /`` returns a small HTML page naming the stand-in and showing the
  forwarding headers it received.
* ``GET /__standin/request`` echoes the request as JSON (not a real gateway
  path: it lets tests see exactly what a proxy forwarded).
* A WebSocket upgrade on any path completes a real RFC 6455 handshake and
  echoes messages back.

Only the standard library is used so it runs on a bare Debian python3.
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
import signal
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

VERSION = "2026.2.17-standin"
SERVICE = "openclaw-gateway-standin"
DEFAULT_PORT = 18789
# "lan" listens on every interface on purpose: it is what `--bind lan` means.
BIND_ADDRESSES = {"loopback": "127.0.0.1", "lan": "0.0.0.0"}  # noqa: S104
PUBLIC_PATHS = {"/healthz", "/readyz", "/health"}
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

    def __init__(self, address: tuple[str, int], token: str | None) -> None:
        self.token = token
        super().__init__(address, GatewayHandler)


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
        self.drain_body()
        self.route()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def route(self) -> None:
        path = urlsplit(self.path).path
        if self.command in ("GET", "HEAD") and path in PUBLIC_PATHS:
            status = "ready" if path == "/readyz" else "live"
            self.send_json(200, {"ok": True, "status": status, "service": SERVICE, "version": VERSION})
            return
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
        else:
            self.send_json(404, {"ok": False, "error": "not_found", "path": path})

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


def config_path() -> Path:
    override = os.environ.get("OPENCLAW_CONFIG_PATH")
    if override:
        return Path(override)
    return Path(os.environ.get("HOME", str(Path.home()))) / ".openclaw" / "openclaw.json"


def load_config() -> None:
    """Log whether a config file is there; the stand-in does not act on it."""
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log(f"no config at {path}; using command line and environment only")
    except (OSError, ValueError) as error:
        log(f"config at {path} could not be read ({error}); ignoring it")
    else:
        keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
        log(f"loaded config from {path} (top-level keys: {keys or 'none'})")


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
    load_config()
    host = BIND_ADDRESSES[args.bind]
    try:
        server = GatewayServer((host, args.port), args.token)
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
