"""The nginx role against a real nginx: TLS routing by slug, WebSocket, and reloads that never leave a broken config live."""

from __future__ import annotations

import base64
import http.client
import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading

import pytest
import yaml

from harness.ansible import REPO_ROOT, recap, run
from harness.common import free_ports, stop_process, wait_for_port
from harness.tls import issue_local_certificate

DOMAIN = "example.test"
STANDIN = REPO_ROOT / "tests" / "images" / "gateway" / "gateway_standin.py"
PLAYBOOK = "tests/playbooks/nginx_site.yml"


@pytest.fixture
def site(nginx_server, tmp_path):
    """Two gateway stand-ins as tenants behind the harness nginx, managed by the role."""
    ca, cert, key = issue_local_certificate(tmp_path / "tls", names=(DOMAIN, f"*.{DOMAIN}"))
    http_port, https_port, status_port, alpha_port, beta_port = free_ports(5)
    gateways = []
    for port in (alpha_port, beta_port):
        process = subprocess.Popen(
            [sys.executable, str(STANDIN), "gateway", "--bind", "loopback", "--port", str(port), "--token", f"token-{port}", "--allow-unconfigured"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        gateways.append(process)
        wait_for_port(port, 15, "gateway stand-in", process=process)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    settings = {
        "openclaw_domain": DOMAIN,
        "openclaw_nginx_confirm_timeout": 5,
        **nginx_server.role_variables(http_port, https_port, status_port, cert, key),
    }
    inventory = {
        "all": {"vars": {**local, **settings}},
        "openclaw_servers": {"hosts": {"srv1": {}}},
        "openclaw_tenants": {
            "hosts": {"alpha": {"openclaw_server": "srv1", "openclaw_port": alpha_port}, "beta": {"openclaw_server": "srv1", "openclaw_port": beta_port}}
        },
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    yield {"inventory": path, "ca": ca, "https_port": https_port, "http_port": http_port, "status_port": status_port, "nginx": nginx_server, "tmp": tmp_path}
    for process in gateways:
        stop_process(process)


def converge(site, *options):
    return run("ansible-playbook", "-i", str(site["inventory"]), PLAYBOOK, *options)


def https(site, host, path="/", headers=None):
    context = ssl.create_default_context(cafile=str(site["ca"]))
    # Connect to loopback but present the tenant's name for SNI and Host.
    connection = http.client.HTTPSConnection("127.0.0.1", site["https_port"], context=context, timeout=10)
    connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", site["https_port"]), timeout=10), server_hostname=host)
    connection.request("GET", path, headers={"Host": host, **(headers or {})})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def test_each_slug_is_routed_over_tls_and_a_second_run_changes_nothing(site):
    first = converge(site)
    assert first.returncode == 0, first.stdout[-4000:]

    status, body = https(
        site, f"alpha.{DOMAIN}", "/__standin/request", {"Authorization": f"Bearer token-{site_port(site, 'alpha')}", "X-Forwarded-For": "6.6.6.6"}
    )
    assert status == 200, body
    assert '"127.0.0.1"' in body  # X-Forwarded-For overwritten with the client address, not appended
    assert "6.6.6.6" not in body
    assert https(site, f"beta.{DOMAIN}", "/", {"Authorization": f"Bearer token-{site_port(site, 'beta')}"})[0] == 200
    # Tenants' tokens do not cross: alpha's token is wrong for beta's gateway.
    assert https(site, f"beta.{DOMAIN}", "/", {"Authorization": f"Bearer token-{site_port(site, 'alpha')}"})[0] == 401
    assert https(site, f"nobody.{DOMAIN}")[0] == 421

    redirect = http.client.HTTPConnection("127.0.0.1", site["http_port"], timeout=5)
    redirect.request("GET", "/x", headers={"Host": f"alpha.{DOMAIN}"})
    response = redirect.getresponse()
    assert (response.status, response.getheader("Location")) == (301, f"https://alpha.{DOMAIN}/x")

    second = converge(site)
    assert second.returncode == 0
    assert all(counters["changed"] == 0 for counters in recap(second.stdout).values()), second.stdout[-3000:]


def site_port(site, tenant):
    return yaml.safe_load(site["inventory"].read_text())["openclaw_tenants"]["hosts"][tenant]["openclaw_port"]


def test_websocket_upgrade_passes_through(site):
    assert converge(site).returncode == 0
    context = ssl.create_default_context(cafile=str(site["ca"]))
    with socket.create_connection(("127.0.0.1", site["https_port"]), timeout=10) as raw, context.wrap_socket(raw, server_hostname=f"alpha.{DOMAIN}") as tls:
        key = base64.b64encode(os.urandom(16)).decode()
        tls.sendall(
            (
                f"GET /ws?token=token-{site_port(site, 'alpha')} HTTP/1.1\r\nHost: alpha.{DOMAIN}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = tls.recv(4096).decode()
        assert head.startswith("HTTP/1.1 101"), head
        payload = b"hello through nginx"
        mask = os.urandom(4)
        tls.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload)))
        frame = tls.recv(4096)
        assert frame[0] == 0x81
        assert frame[2 : 2 + frame[1]] == payload


def test_broken_config_is_refused_and_the_old_one_keeps_serving(site):
    assert converge(site).returncode == 0
    site_file = site["nginx"].conf_d / "openclaw.conf"
    good = site_file.read_text()
    # A route added by hand with a syntax error in the map.
    map_file = site["nginx"].prefix / "openclaw" / "tenants.map"
    map_file.write_text(map_file.read_text() + "broken {;\n")
    failed = converge(site)
    assert failed.returncode != 0
    assert "failed nginx -t" in failed.stdout
    assert "The last good files were restored and reloaded." in failed.stdout
    assert "broken" not in map_file.read_text()
    assert site_file.read_text() == good
    assert https(site, f"alpha.{DOMAIN}", "/", {"Authorization": f"Bearer token-{site_port(site, 'alpha')}"})[0] == 200


def test_a_listen_port_in_use_is_caught_after_reload_and_rolled_back(site):
    assert converge(site).returncode == 0
    (busy,) = free_ports(1)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", busy))
    blocker.listen()
    try:
        # nginx -t ignores "address in use"; only the confirmation notices the reload did not apply.
        failed = converge(site, "-e", f"openclaw_nginx_http_port={busy}")
        assert failed.returncode != 0
        assert "did not start serving" in failed.stdout
        assert "The last good files were restored and reloaded." in failed.stdout
        assert f":{busy}" not in (site["nginx"].conf_d / "openclaw.conf").read_text()
        assert https(site, f"beta.{DOMAIN}", "/", {"Authorization": f"Bearer token-{site_port(site, 'beta')}"})[0] == 200
    finally:
        blocker.close()


def test_check_mode_predicts_a_route_change_and_touches_nothing(site, tmp_path):
    assert converge(site).returncode == 0
    map_file = site["nginx"].prefix / "openclaw" / "tenants.map"
    before = map_file.read_text()
    inventory = yaml.safe_load(site["inventory"].read_text())
    inventory["openclaw_tenants"]["hosts"]["gamma"] = {"openclaw_server": "srv1", "openclaw_port": site_port(site, "alpha")}
    site["inventory"].write_text(yaml.safe_dump(inventory), encoding="utf-8")
    plan = converge(site, "--check", "--diff")
    assert plan.returncode == 0, plan.stdout[-3000:]
    counters = recap(plan.stdout)
    assert counters["gamma"]["changed"] == 1
    assert (counters["alpha"]["changed"], counters["beta"]["changed"]) == (0, 0)
    assert counters["srv1"]["changed"] >= 1, plan.stdout[-6000:]  # the reload it would do
    assert "+gamma 127.0.0.1:" in plan.stdout
    assert map_file.read_text() == before
    assert https(site, f"gamma.{DOMAIN}")[0] == 421
    applied = converge(site)
    assert applied.returncode == 0
    assert https(site, f"gamma.{DOMAIN}", "/", {"Authorization": f"Bearer token-{site_port(site, 'alpha')}"})[0] == 200


def test_an_undersized_map_hash_fails_the_run(site):
    assert converge(site).returncode == 0
    map_file = site["nginx"].prefix / "openclaw" / "tenants.map"
    map_file.write_text(map_file.read_text() + "".join(f"tenant-number-{index:05d} 127.0.0.1:{20000 + index};\n" for index in range(1000)))
    failed = converge(site, "-e", "openclaw_nginx_map_hash_max_size=512", "-e", "openclaw_nginx_map_hash_bucket_size=64")
    assert failed.returncode != 0
    assert "could not build optimal map_hash" in failed.stdout
    assert "tenant-number" not in map_file.read_text()  # the last good map came back
    sized = run("ansible-playbook", "-i", str(site["inventory"]), PLAYBOOK)
    assert sized.returncode == 0, sized.stdout[-3000:]


class PathEcho(http.server.BaseHTTPRequestHandler):
    """An upstream that answers with the path and body size it received."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            received += len(self.rfile.read(min(65536, length - received)))
        body = f"{self.path} {received}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args):
        pass


def test_shared_service_locations_when_configured(site):
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PathEcho)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    port = upstream.server_address[1]
    try:
        assert converge(site, "-e", f"openclaw_webhook_port={port}", "-e", f"openclaw_upload_port={port}").returncode == 0
        assert https(site, DOMAIN, "/openclaw/webhooks/waba?hub.mode=subscribe") == (200, "/webhooks/waba?hub.mode=subscribe 0")
        assert https(site, DOMAIN, "/openclaw/webhook/aliya") == (200, "/webhook/aliya 0")
        assert https(site, DOMAIN, "/elsewhere")[0] == 404
        # Two megabytes: more than nginx's default body limit of one.
        context = ssl.create_default_context(cafile=str(site["ca"]))
        connection = http.client.HTTPSConnection("127.0.0.1", site["https_port"], context=context, timeout=30)
        connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", site["https_port"]), timeout=30), server_hostname=DOMAIN)
        connection.request("POST", "/openclaw/upload/aliya/video.mp4", body=b"x" * (2 * 1024 * 1024), headers={"Host": DOMAIN})
        response = connection.getresponse()
        assert (response.status, response.read().decode()) == (200, f"/aliya/video.mp4 {2 * 1024 * 1024}")
        # Without the services configured, the bare domain has no server of its own.
        assert converge(site).returncode == 0
        assert https(site, DOMAIN, "/openclaw/webhooks/waba")[0] == 421
    finally:
        upstream.shutdown()
