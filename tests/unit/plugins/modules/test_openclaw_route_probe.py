"""The route probe: a gateway's answer counts, nginx's own 421/502/503/504 and no answer do not."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from typing import ClassVar

import pytest

from ansible_collections.openclaw.standalone.plugins.modules.openclaw_route_probe import probe
from harness.tls import issue_local_certificate

# The status each tenant's host name gets, as nginx would answer it.
ANSWERS = {"up": 200, "unauthorized": 401, "unrouted": 421, "down": 502, "starting": 503}


class Handler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self):
        tenant = self.headers["Host"].split(".", 1)[0]
        Handler.seen.append(tenant)
        self.send_response(ANSWERS.get(tenant, 404))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def nginx_like(tmp_path_factory):
    _ca, cert, key = issue_local_certificate(tmp_path_factory.mktemp("tls"), names=("*.bench.test",))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def params(port, retries=0):
    return dict(address="127.0.0.1", port=port, domain="bench.test", path="/healthz", timeout=5, retries=retries, delay=0)


@pytest.mark.parametrize("tenant", ["up", "unauthorized"])
def test_any_answer_of_the_gateway_counts(nginx_like, tenant):
    result = probe(params(nginx_like), tenant)
    assert result == dict(tenant=tenant, status=ANSWERS[tenant], attempts=1, up=True)


@pytest.mark.parametrize("tenant", ["unrouted", "down", "starting"])
def test_nginx_answering_for_the_gateway_is_down_after_every_retry(nginx_like, tenant):
    Handler.seen.clear()
    result = probe(params(nginx_like, retries=2), tenant)
    assert result == dict(tenant=tenant, status=ANSWERS[tenant], attempts=3, up=False)
    assert Handler.seen == [tenant] * 3  # positive control: each attempt reached the server with the tenant's name


def test_no_answer_at_all_is_down():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: the connection is refused
        assert probe(params(port), "up") == dict(tenant="up", status=None, attempts=1, up=False)
