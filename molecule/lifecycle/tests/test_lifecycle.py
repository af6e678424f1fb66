"""After the side effect: each tenant is where its inventory change put it, and nothing else moved."""

from __future__ import annotations

import json

testinfra_hosts = ["molecule-srv"]

ROOT = "/tmp/openclaw-molecule-lifecycle"
POSTGRES = "openclaw-molecule-postgres"


def container(host, name):
    result = host.run("docker inspect %s", name)
    return json.loads(result.stdout)[0] if result.rc == 0 else None


def database_exists(host, name):
    result = host.run("docker exec %s psql -U postgres -tAc %s", POSTGRES, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")
    assert result.rc == 0, result.stderr
    return result.stdout.strip() == "1"


def routes(host):
    return host.file(f"{ROOT}/nginx/openclaw/tenants.map").content_string


def test_template_change_reached_the_file_without_recreating_the_gateway(host):
    tools = host.file(f"{ROOT}/clients/molkept/.openclaw/workspace/TOOLS.md").content_string
    assert "https://uploads.molecule.test/changed/" in tools
    before = host.file(f"{ROOT}/molkept.container-id").content_string.strip()
    assert container(host, "openclaw-molkept")["Id"] == before


def test_added_tenant_runs_and_is_routed(host):
    added = container(host, "openclaw-moladded")
    assert added is not None and added["State"]["Running"] and added["State"]["Health"]["Status"] in ("starting", "healthy")
    # Any answer of the gateway (2026.2.17 has no health endpoint): its 401 to a request without the token.
    assert host.run("curl -sS -o /dev/null -w %{http_code} http://127.0.0.1:28812/healthz").stdout.strip() == "401"
    assert "moladded 127.0.0.1:28812;" in routes(host)
    assert database_exists(host, "openclaw_moladded")


def test_absent_tenant_is_gone_but_its_data_is_kept(host):
    assert container(host, "openclaw-molremoved") is None
    assert "molremoved" not in routes(host)
    assert host.file(f"{ROOT}/clients/molremoved/.openclaw/workspace/MEMORY.md").content_string == "remember the client\n"
    assert host.file(f"{ROOT}/clients/molremoved/gateway_token").exists
    assert database_exists(host, "openclaw_molremoved")


def test_purged_tenant_was_archived_and_dumped_then_removed(host):
    assert container(host, "openclaw-molpurged") is None
    assert not host.file(f"{ROOT}/clients/molpurged").exists
    assert not database_exists(host, "openclaw_molpurged")
    backups = host.run("ls %s", f"{ROOT}/backups").stdout.split()
    assert any(name.startswith("molpurged-workspace-") and name.endswith(".tar.gz") for name in backups), backups
    assert any(name.startswith("openclaw_molpurged-") and name.endswith(".dump") for name in backups), backups
