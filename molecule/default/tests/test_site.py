"""What the converged site looks like from the server: containers, bindings, databases, routes, files."""

from __future__ import annotations

import json

import pytest

testinfra_hosts = ["molecule-srv"]

TENANTS = {"molalpha": 28801, "molbeta": 28802}
ROOT = "/tmp/openclaw-molecule-default"
HTTPS_PORT = 28443
DOMAIN = "molecule.test"
POSTGRES = "openclaw-molecule-postgres"
POSTGRES_PORT = 25435


def inspect(host, name):
    result = host.run("docker inspect %s", name)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)[0]


def psql(host, sql, url=None):
    """psql as the superuser over the PostgreSQL container's socket, or with ``url`` from the server itself.

    A URL login goes through the loopback-published port, the way the server's
    own clients connect (pg_hba.conf accepts no TCP login from inside the
    PostgreSQL container).
    """
    if url is None:
        return host.run("docker exec %s psql -U postgres -d postgres -tAc %s", POSTGRES, sql)
    return host.run("psql %s -tAc %s", url, sql)


@pytest.mark.parametrize("slug", sorted(TENANTS))
def test_tenant_container_runs_hardened(host, slug):
    container = inspect(host, f"openclaw-{slug}")
    # Docker checks every 30 s; before its first check the state is "starting".
    assert container["State"]["Running"] and container["State"]["Health"]["Status"] in ("starting", "healthy")
    config = container["HostConfig"]
    assert config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in config["SecurityOpt"]
    assert config["Init"] is True and config["Memory"] > 0 and config["PidsLimit"] > 0 and config["NanoCpus"] > 0
    assert config["RestartPolicy"]["Name"] == "unless-stopped"
    assert not any("docker.sock" in mount["Source"] for mount in container["Mounts"])


@pytest.mark.parametrize(("slug", "port"), sorted(TENANTS.items()))
def test_gateway_port_is_bound_to_loopback_only(host, slug, port):
    bindings = inspect(host, f"openclaw-{slug}")["HostConfig"]["PortBindings"]
    assert {binding["HostIp"] for entries in bindings.values() for binding in entries} == {"127.0.0.1"}
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_postgres_is_bound_to_loopback_only(host):
    bindings = inspect(host, POSTGRES)["HostConfig"]["PortBindings"]
    assert {binding["HostIp"] for entries in bindings.values() for binding in entries} == {"127.0.0.1"}


@pytest.mark.parametrize("slug", sorted(TENANTS))
def test_database_and_own_role_exist(host, slug):
    assert psql(host, f"SELECT 1 FROM pg_database WHERE datname = 'openclaw_{slug}'").stdout.strip() == "1"
    assert psql(host, f"SELECT rolsuper FROM pg_roles WHERE rolname = 'openclaw_{slug}'").stdout.strip() == "f"


def test_tenant_role_cannot_open_another_tenants_database(host):
    password = host.file(f"{ROOT}/secrets/db-molalpha.password").content_string.strip()
    own = psql(host, "SELECT current_user", f"postgresql://openclaw_molalpha:{password}@127.0.0.1:{POSTGRES_PORT}/openclaw_molalpha")
    assert own.rc == 0 and own.stdout.strip() == "openclaw_molalpha"
    other = psql(host, "SELECT 1", f"postgresql://openclaw_molalpha:{password}@127.0.0.1:{POSTGRES_PORT}/openclaw_molbeta")
    assert other.rc != 0 and "permission denied" in other.stderr


@pytest.mark.parametrize("slug", sorted(TENANTS))
def test_nginx_routes_each_slug_over_tls(host, slug):
    token = host.file(f"{ROOT}/clients/{slug}/gateway_token").content_string.strip()
    name = f"{slug}.{DOMAIN}"
    resolve = f"{name}:{HTTPS_PORT}:127.0.0.1"
    # The gateway behind the route is this tenant's: only its own token opens it.
    seen = host.run("curl -sk -H %s --resolve %s https://%s:%s/__standin/request", f"Authorization: Bearer {token}", resolve, name, str(HTTPS_PORT))
    assert json.loads(seen.stdout)["headers"]["host"] == name
    refused = host.run("curl -sk -o /dev/null -w %%{http_code} --resolve %s https://%s:%s/__standin/request", resolve, name, str(HTTPS_PORT))
    assert refused.stdout.strip() == "401"


@pytest.mark.parametrize("slug", sorted(TENANTS))
def test_token_file_is_private(host, slug):
    token = host.file(f"{ROOT}/clients/{slug}/gateway_token")
    assert token.mode == 0o600 and token.uid == 0
    assert host.file(f"{ROOT}/clients/{slug}/.openclaw").mode == 0o700
