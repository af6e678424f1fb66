"""Self-test of the harness: every real service starts, answers and stops."""

from __future__ import annotations

import datetime
import ssl
import time
import urllib.error
import urllib.request

import psycopg2
import pytest
from cryptography import x509

from harness.common import free_port
from harness.docker import TEST_LABEL


def http_get(url: str, headers: dict | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_postgres_accepts_password_and_runs_queries(pg_cluster):
    with psycopg2.connect(pg_cluster.dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE harness_probe (id int PRIMARY KEY, note text)")
        cur.execute("INSERT INTO harness_probe VALUES (%s, %s)", (1, "hello"))
        cur.execute("SELECT note FROM harness_probe WHERE id = %s", (1,))
        assert cur.fetchone() == ("hello",)
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone() == ("127.0.0.1",)
        cur.execute("DROP TABLE harness_probe")


def test_postgres_rejects_a_wrong_password(pg_cluster):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(pg_cluster.dsn_for("postgres", password="wrong-password"))


def test_nginx_serves_validates_and_reloads(nginx_server):
    status, body = http_get(f"http://127.0.0.1:{nginx_server.http_port}/__harness")
    assert (status, body) == (200, f"harness nginx {nginx_server.http_port}\n")

    site = nginx_server.conf_d / "probe.conf"
    site.write_text(
        f"server {{ listen 127.0.0.1:{nginx_server.https_port}; location / {{ return 200 'probe v1\\n'; }} }}\n",
        encoding="utf-8",
    )
    nginx_server.reload()
    assert http_get(f"http://127.0.0.1:{nginx_server.https_port}/") == (200, "probe v1\n")

    site.write_text("server { listen 127.0.0.1:1; this is not nginx; }\n", encoding="utf-8")
    checked = nginx_server.test_config()
    assert checked.returncode != 0
    assert "unknown directive" in checked.stderr


def test_pebble_issues_a_wildcard_certificate_over_dns01(pebble, tmp_path):
    assert "newOrder" in pebble.directory()
    result = pebble.certbot(["harness.test", "*.harness.test"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]

    live = tmp_path / "config" / "live" / "harness.test"
    cert = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((live / "chain.pem").read_bytes())
    root = x509.load_pem_x509_certificate(pebble.root_ca.read_bytes())

    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["*.harness.test", "harness.test"]
    # The leaf is signed by the intermediate, which is signed by Pebble's root.
    cert.verify_directly_issued_by(chain[0])
    chain[-1].verify_directly_issued_by(root)
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc)


def wait_until(probe, timeout: float, what: str):
    """Call probe() until it returns a truthy value; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, urllib.error.URLError, psycopg2.OperationalError) as error:
            last_error = error
        time.sleep(0.25)
    pytest.fail(f"{what} not ready within {timeout:.0f}s (last error: {last_error})")


@pytest.mark.docker
def test_gateway_standin_image_answers_and_checks_the_token(docker_client, test_images):
    port = free_port()
    container = docker_client.containers.run(
        test_images["gateway"],
        detach=True,
        environment={"OPENCLAW_GATEWAY_TOKEN": "harness-token"},
        ports={"18789/tcp": ("127.0.0.1", port)},
        labels={TEST_LABEL: "harness"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # Like OpenClaw 2026.2.17 there is no health endpoint: /healthz needs the token like any path.
        status, body = wait_until(lambda: http_get(f"{base}/healthz"), 30, "gateway stand-in")
        assert status == 401
        assert '"unauthorized"' in body
        assert http_get(f"{base}/healthz", headers={"Authorization": "Bearer harness-token"})[0] == 404
        assert http_get(f"{base}/")[0] == 401
        assert http_get(f"{base}/", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert http_get(f"{base}/", headers={"Authorization": "Bearer harness-token"})[0] == 200
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"]["18789/tcp"]
        assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_postgres_image_honours_the_official_environment_contract(docker_client, test_images):
    port = free_port()
    container = docker_client.containers.run(
        test_images["postgres"],
        detach=True,
        environment={"POSTGRES_PASSWORD": "harness-pw", "POSTGRES_DB": "probe", "POSTGRES_USER": "owner"},
        ports={"5432/tcp": ("127.0.0.1", port)},
        labels={TEST_LABEL: "harness"},
    )
    try:
        dsn = f"host=127.0.0.1 port={port} dbname=probe user=owner password=harness-pw connect_timeout=3"

        def query():
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                cur.execute("SELECT current_database(), current_user")
                return cur.fetchone()

        assert wait_until(query, 60, "postgres image") == ("probe", "owner")
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(dsn.replace("harness-pw", "wrong"))
    finally:
        container.remove(force=True, v=True)
