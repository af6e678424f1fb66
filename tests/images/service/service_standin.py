"""A shared-service stand-in: GET /health answers ok; GET /__standin/env lists the contract variables it got."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTRACT = (
    "PORT",
    "PG_HOST",
    "PG_PORT",
    "PG_USER",
    "PG_PASSWORD",
    "FB_WEBHOOK_VERIFY_TOKEN",
    "WABA_VERIFY_TOKEN",
    "WABA_APP_SECRET",
    "META_GRAPH_API_VERSION",
    "ANTHROPIC_API_KEY",
    "MAX_FILE_SIZE_MB",
)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self.reply(200, "text/plain", b"ok")
        elif self.path == "/__standin/env":
            # Names only, plus the non-secret values tests compare.
            present = {name: bool(os.environ.get(name)) for name in CONTRACT}
            shown = {name: os.environ.get(name) for name in ("PORT", "PG_HOST", "PG_PORT", "PG_USER", "META_GRAPH_API_VERSION", "MAX_FILE_SIZE_MB")}
            self.reply(200, "application/json", json.dumps({"present": present, "values": shown}).encode())
        else:
            self.reply(404, "text/plain", b"not found")

    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "3000"))), Handler).serve_forever()  # noqa: S104 - inside a container
