"""site.yml end to end on two "servers" of this machine, each with its own nginx, network and directories.

srvA runs PostgreSQL in a container, srvB uses an existing cluster (the
harness's). Each gets only its own tenants; the plan (--check --diff) names
exactly the hosts a converge then changes.
"""

from __future__ import annotations

import http.client
import ssl
import uuid
from pathlib import Path

import pytest
import yaml

from harness.ansible import recap, run
from harness.common import free_ports
from harness.docker import remove_everything_named

PLAYBOOK = "playbooks/site.yml"


# The gateway (2026.2.17 has no health endpoint) refuses an unauthenticated
# request with 401: that answer proves the route reached a gateway; nginx says
# 421 for a host it routes nowhere.
GATEWAY_ANSWERED = 401
NO_ROUTE = 421


def https_status(port, host, path="/healthz"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        return connection.getresponse().status
    finally:
        connection.close()


class TwoServers:
    def __init__(self, client, images, nginx_factory, pg_cluster, root):
        self.client = client
        self.ident = "ocs" + uuid.uuid4().hex[:6]
        self.root = root
        self.domain = "site.test"
        self.ports = {}
        self.servers = {}
        for name in ("srvA", "srvB"):
            nginx = nginx_factory()
            http_port, https_port, status_port, postgres_port = free_ports(4)
            base = root / name
            certs = base / "certs"
            settings = {
                "openclaw_docker_network": f"{self.ident}-{name.lower()}-net",
                "openclaw_clients_dir": str(base / "clients"),
                "openclaw_backup_dir": str(base / "backups"),
                "openclaw_secrets_dir": str(base / "secrets"),
                "openclaw_server_lib_dir": str(base / "lib"),
                "openclaw_runtime_image": f"{self.ident}-runtime",
                "openclaw_runtime_base_image": images["gateway"],
                "openclaw_runtime_install": "none",
                "openclaw_runtime_pull_base": False,
                "openclaw_cert_install_packages": False,
                "openclaw_cert_dir": str(certs),
                **nginx.role_variables(http_port, https_port, status_port, certs / "fullchain.pem", certs / "privkey.pem"),
            }
            if name == "srvA":
                settings.update(
                    openclaw_postgres_image=images["postgres"],
                    openclaw_postgres_container=f"{self.ident}-postgres",
                    openclaw_postgres_volume=f"{self.ident}-pgdata",
                    openclaw_postgres_port=postgres_port,
                )
            else:
                settings.update(
                    openclaw_postgres_mode="external",
                    openclaw_postgres_host=pg_cluster.host,
                    openclaw_postgres_port=pg_cluster.port,
                    openclaw_postgres_password=pg_cluster.password,
                    # The harness cluster listens on loopback without TLS (test_postgres_tls covers verify-full).
                    openclaw_postgres_sslmode="disable",
                    openclaw_shared_database=f"{self.ident}_shared",
                )
            self.servers[name] = settings
            self.ports[name] = https_port
        self.inventory_path = root / "hosts.yml"

    def slug(self, name):
        return f"{self.ident}{name}"

    def tenant(self, name, server, port, **settings):
        return {"openclaw_server": server, "openclaw_slug": self.slug(name), "openclaw_port": port, **settings}

    def converge(self, tenants, *options):
        inventory = {
            "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "openclaw_domain": self.domain}},
            "openclaw_servers": {"hosts": self.servers},
            "openclaw_tenants": {"hosts": tenants},
        }
        self.inventory_path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        completed = run("ansible-playbook", "-i", str(self.inventory_path), PLAYBOOK, "--forks", "10", *options, timeout=1200)
        completed.recap = recap(completed.stdout)
        assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
        return completed

    def cleanup(self, pg_cluster):
        remove_everything_named(self.client, self.ident)
        databases = [f"{self.ident}_shared", f"openclaw_{self.slug('b1')}"]
        for database in databases:
            pg_cluster.admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        pg_cluster.admin(f'DROP ROLE IF EXISTS "openclaw_{self.slug("b1")}"')


@pytest.fixture
def sharded(docker_client, test_images, nginx_factory, pg_cluster, tmp_path):
    site = TwoServers(docker_client, test_images, nginx_factory, pg_cluster, tmp_path)
    yield site
    site.cleanup(pg_cluster)


def changed_hosts(completed):
    return {host for host, counters in completed.recap.items() if counters.get("changed", 0) > 0}


def test_sharded_site_converges_serves_and_plans_exactly(sharded):
    ports = free_ports(4)
    tenants = {
        "a1": sharded.tenant("a1", "srvA", ports[0]),
        "a2": sharded.tenant("a2", "srvA", ports[1]),
        # On real servers b1 could reuse a1's port; here both "servers" share one loopback.
        "b1": sharded.tenant("b1", "srvB", ports[2]),
    }
    sharded.converge(tenants)

    # Each server routes only its own tenants, over TLS, through its own nginx.
    map_a = Path(sharded.servers["srvA"]["openclaw_nginx_openclaw_dir"], "tenants.map").read_text(encoding="utf-8")
    map_b = Path(sharded.servers["srvB"]["openclaw_nginx_openclaw_dir"], "tenants.map").read_text(encoding="utf-8")
    assert sharded.slug("a1") in map_a and sharded.slug("a2") in map_a and sharded.slug("b1") not in map_a
    assert sharded.slug("b1") in map_b and sharded.slug("a1") not in map_b
    assert https_status(sharded.ports["srvA"], f"{sharded.slug('a1')}.{sharded.domain}") == GATEWAY_ANSWERED
    assert https_status(sharded.ports["srvB"], f"{sharded.slug('b1')}.{sharded.domain}") == GATEWAY_ANSWERED
    assert https_status(sharded.ports["srvB"], f"{sharded.slug('a1')}.{sharded.domain}") == NO_ROUTE
    for name, server in (("a1", "srvA"), ("a2", "srvA"), ("b1", "srvB")):
        container = sharded.client.containers.get(f"openclaw-{sharded.slug(name)}")
        assert container.labels["org.openclaw.standalone.server"] == server
        assert container.attrs["HostConfig"]["NetworkMode"] == sharded.servers[server]["openclaw_docker_network"]
    # Only srvA runs a PostgreSQL container; srvB uses the existing cluster.
    postgres = sharded.client.containers.list(all=True, filters={"label": "org.openclaw.standalone.role=postgres", "name": sharded.ident})
    assert [container.name for container in postgres] == [f"{sharded.ident}-postgres"]

    again = sharded.converge(tenants)
    assert changed_hosts(again) == set(), again.stdout[-6000:]

    # The plan for an inventory change: a2's workspace file, a new tenant a3 on srvA.
    tenants["a2"] = {**tenants["a2"], "openclaw_upload_url": f"https://uploads.{sharded.domain}/a2/"}
    tenants["a3"] = sharded.tenant("a3", "srvA", ports[3])
    plan = sharded.converge(tenants, "--check", "--diff")
    planned = changed_hosts(plan)
    assert planned == {"a2", "a3", "srvA"}, plan.stdout[-8000:]
    assert f"uploads.{sharded.domain}/a2/" in plan.stdout
    assert sharded.client.containers.list(all=True, filters={"name": f"openclaw-{sharded.slug('a3')}"}) == []

    applied = sharded.converge(tenants)
    assert changed_hosts(applied) == planned
    assert https_status(sharded.ports["srvA"], f"{sharded.slug('a3')}.{sharded.domain}") == GATEWAY_ANSWERED


def test_plan_for_new_servers_changes_nothing(sharded):
    ports = free_ports(2)
    tenants = {"a1": sharded.tenant("a1", "srvA", ports[0]), "b1": sharded.tenant("b1", "srvB", ports[1])}
    plan = sharded.converge(tenants, "--check", "--diff")
    assert changed_hosts(plan) == {"srvA", "srvB", "a1", "b1"}, plan.stdout[-8000:]
    assert not sharded.client.containers.list(all=True, filters={"name": sharded.ident})
    assert not sharded.client.networks.list(names=[sharded.ident])
    for server in ("srvA", "srvB"):
        assert not Path(sharded.servers[server]["openclaw_clients_dir"]).exists()
        assert not Path(sharded.servers[server]["openclaw_secrets_dir"]).exists()
