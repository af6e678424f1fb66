"""The server role on this host's real Docker engine, with the offline images.

Every name the role creates (network, containers, volume, images, host
directories) is unique to the test and removed afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import time
import urllib.request
import uuid

import psycopg2
import pytest
import yaml

from harness.ansible import recap, run, run_module
from harness.common import free_ports
from harness.docker import remove_everything_named
from harness.servers import shared_services

PLAYBOOK = "playbooks/server.yml"
SERVER = "srvt"


class ServerUnderTest:
    """One isolated 'server' on this host: unique names, ports and directories."""

    def __init__(self, client, images, tmp_path):
        self.client = client
        self.images = images
        self.ident = "oct" + uuid.uuid4().hex[:8]
        self.root = tmp_path / "root"
        self.inventory_path = tmp_path / "hosts.yml"
        self.postgres_port, self.webhook_port, self.upload_port = free_ports(3)
        self.settings = {
            "openclaw_docker_network": f"{self.ident}-net",
            "openclaw_clients_dir": str(self.root / "home" / "clients"),
            "openclaw_backup_dir": str(self.root / "backups"),
            "openclaw_secrets_dir": str(self.root / "etc" / "secrets"),
            "openclaw_server_lib_dir": str(self.root / "lib"),
            "openclaw_postgres_image": images["postgres"],
            "openclaw_postgres_container": f"{self.ident}-postgres",
            "openclaw_postgres_volume": f"{self.ident}-pgdata",
            "openclaw_postgres_port": self.postgres_port,
            "openclaw_runtime_image": f"{self.ident}-runtime",
            "openclaw_runtime_base_image": images["gateway"],
            "openclaw_runtime_install": "none",
            "openclaw_runtime_pull_base": False,
            "openclaw_webhook_container": f"{self.ident}-webhook",
            "openclaw_upload_container": f"{self.ident}-upload",
        }

    def with_services(self):
        self.settings.update(shared_services(self.ident, self.images, self.webhook_port, self.upload_port))
        return self

    def service_secrets(self):
        return [self.settings[name] for name in ("openclaw_waba_verify_token", "openclaw_waba_app_secret")]

    def converge(self, *options, tenants=None, **overrides):
        server = {**self.settings, **overrides}
        inventory = {
            "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}},
            "openclaw_servers": {"hosts": {SERVER: server}},
            "openclaw_tenants": {"hosts": tenants or {}},
        }
        self.inventory_path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        completed = run("ansible-playbook", "-i", str(self.inventory_path), PLAYBOOK, *options, timeout=900)
        completed.recap = recap(completed.stdout)
        return completed

    def container(self, name):
        import docker

        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    def image_id(self, reference):
        import docker

        try:
            return self.client.images.get(reference).id
        except docker.errors.ImageNotFound:
            return None

    def network_exists(self):
        return any(network.name == self.settings["openclaw_docker_network"] for network in self.client.networks.list())

    def password(self):
        return (self.root / "etc" / "secrets" / "postgres_password").read_text(encoding="utf-8").strip()

    def cleanup(self):
        remove_everything_named(self.client, self.ident)


@pytest.fixture
def server(docker_client, test_images, tmp_path):
    under_test = ServerUnderTest(docker_client, test_images, tmp_path)
    yield under_test
    under_test.cleanup()


def ok(completed):
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    return completed.recap[SERVER]


def published_addresses(container):
    bindings = container.attrs["HostConfig"]["PortBindings"] or {}
    return {binding["HostIp"] for entries in bindings.values() for binding in entries or []}


def test_container_mode_converges_once_and_then_changes_nothing(server):
    server.with_services()
    first = server.converge("-v")
    assert ok(first)["changed"] > 0

    # PostgreSQL runs, answers with the password generated on the server, and has the shared schema.
    secret_file = server.root / "etc" / "secrets" / "postgres_password"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    connection = psycopg2.connect(host="127.0.0.1", port=server.postgres_port, user="postgres", password=server.password(), dbname="openclaw")
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.waba_phone_mapping') IS NOT NULL, count(*) FROM openclaw_meta.schema_history")
        has_table, migrations = cursor.fetchone()
    connection.close()
    assert has_table and migrations >= 1

    # Dumps are made by the container's own pg_dump through the installed wrapper, arguments as the module passes them.
    wrapper = server.root / "lib" / "bin" / "pg_dump-container"
    dump = subprocess.run(
        [str(wrapper), "--format=custom", "--host", "127.0.0.1", "--port", str(server.postgres_port), "--username", "postgres", "--dbname", "openclaw"],
        env={**os.environ, "PGPASSWORD": server.password()},
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.startswith(b"PGDMP")

    # Everything published is bound to loopback only.
    for name in ("postgres", "webhook", "upload"):
        container = server.container(f"{server.ident}-{name}")
        assert container is not None and container.status == "running", name
        assert published_addresses(container) == {"127.0.0.1"}, (name, container.attrs["HostConfig"]["PortBindings"])
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert container.attrs["State"]["Health"]["Status"] == "healthy", name
    postgres_host = server.container(f"{server.ident}-postgres").attrs["HostConfig"]
    assert postgres_host["ShmSize"] == 256 * 1024**2 and postgres_host["Init"] is True
    webhook = server.container(f"{server.ident}-webhook")
    assert webhook.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in webhook.attrs["HostConfig"]["SecurityOpt"]
    assert server.network_exists()

    # The services run the collection's own code as an unprivileged user, with their
    # environment contract and the database settings pointing at the container.
    for name, port in (("webhook", server.webhook_port), ("upload", server.upload_port)):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200 and b"ok" in response.read(), name
    webhook_env = dict(item.split("=", 1) for item in webhook.attrs["Config"]["Env"])
    assert webhook.attrs["Config"]["User"] == "10001"
    assert webhook.attrs["Config"]["Cmd"] == ["/usr/local/bin/openclaw-webhook"]
    assert all(webhook_env.get(name) for name in ("PG_HOST", "PG_PORT", "PG_USER", "PG_PASSWORD", "WABA_VERIFY_TOKEN", "WABA_APP_SECRET"))
    assert webhook_env["PG_HOST"] == f"{server.ident}-postgres"
    assert webhook_env["PG_PORT"] == "5432"
    assert webhook_env["PG_USER"] == "openclaw_service_webhook"
    upload = server.container(f"{server.ident}-upload")
    upload_env = dict(item.split("=", 1) for item in upload.attrs["Config"]["Env"])
    assert upload.attrs["Config"]["Cmd"] == ["/usr/local/bin/openclaw-upload"]
    assert upload_env["MAX_FILE_SIZE_MB"] == "500"
    assert upload_env["PG_PASSWORD"]
    registry = server.root / "lib" / "services" / "webhook" / "tenants"
    assert stat.S_IMODE(registry.stat().st_mode) == 0o750 and registry.stat().st_gid == 10001

    # No secret reached the output, even at -v.
    for secret in [server.password(), *server.service_secrets()]:
        assert secret not in first.stdout + first.stderr

    runtime = f"{server.ident}-runtime:2026.2.17"
    image_before = server.image_id(runtime)
    assert image_before is not None
    ids_before = {name: server.container(f"{server.ident}-{name}").id for name in ("postgres", "webhook", "upload")}

    second = server.converge()
    assert ok(second)["changed"] == 0, second.stdout[-6000:]
    assert server.image_id(runtime) == image_before, "a no-op converge rebuilt the runtime image"
    assert {name: server.container(f"{server.ident}-{name}").id for name in ids_before} == ids_before

    check = server.converge("--check", "--diff")
    assert ok(check)["changed"] == 0, check.stdout[-6000:]

    # A changed build argument rebuilds the image and nothing else.
    rebuilt = server.converge(openclaw_runtime_build_args={"OPENCLAW_UID": "1001", "EXTRA_MARKER": "1"})
    assert ok(rebuilt)["changed"] == 1, rebuilt.stdout[-6000:]
    assert server.image_id(runtime) not in (None, image_before)
    assert {name: server.container(f"{server.ident}-{name}").id for name in ids_before} == ids_before


def test_runtime_image_runs_a_gateway_behind_socat(server, docker_client, tmp_path):
    ok(server.converge())
    token = uuid.uuid4().hex
    (host_port,) = free_ports(1)
    # The smallest configuration the gateway starts with (it refuses to start without one).
    config = tmp_path / "openclaw.json"
    config.write_text(json.dumps({"gateway": {"mode": "local", "auth": {"mode": "token"}}}), encoding="utf-8")
    config.chmod(0o644)
    container = docker_client.containers.run(
        f"{server.ident}-runtime:2026.2.17",
        name=f"{server.ident}-gw",
        detach=True,
        environment={
            "OPENCLAW_GATEWAY_TOKEN": token,
            "OPENCLAW_CONFIG_PATH": "/etc/openclaw-test/openclaw.json",
            # The level-1 loop runs every second; its database is nowhere (loopback port 1), so
            # each sweep fails, is logged, and must not take the gateway down.
            "OPENCLAW_CAPI_SWEEP_INTERVAL": "1",
            "OPENCLAW_DB_URL": "postgresql://nobody@127.0.0.1:1/openclaw_nobody?connect_timeout=2",
        },
        volumes={str(config): {"bind": "/etc/openclaw-test/openclaw.json", "mode": "ro"}},
        ports={"18790/tcp": ("127.0.0.1", host_port)},
        init=True,
    )
    request = urllib.request.Request(f"http://127.0.0.1:{host_port}/__standin/request", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + 60
    while True:
        # socat accepts before the gateway behind it listens: retry until the gateway answers.
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                assert response.status == 200
                break
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    deadline = time.monotonic() + 30
    while '"command": "openclaw-capi sweep"' not in container.logs().decode(errors="replace"):
        assert time.monotonic() < deadline, container.logs().decode(errors="replace")[-2000:]
        time.sleep(0.5)
    container.reload()
    assert container.status == "running"
    assert "docker" not in container.exec_run(["sh", "-c", "command -v docker || echo none"]).output.decode()
    assert container.exec_run(["test", "-e", "/var/run/docker.sock"]).exit_code != 0
    assert container.exec_run(["id", "-u"]).output.decode().strip() == "1001"
    # Without a token the image refuses to start an open gateway.
    refused = docker_client.containers.run(f"{server.ident}-runtime:2026.2.17", name=f"{server.ident}-notoken", detach=True)
    assert refused.wait(timeout=30)["StatusCode"] == 64


def test_check_mode_on_a_fresh_host_changes_nothing(server):
    completed = server.converge("--check", "--diff")
    assert ok(completed)["changed"] > 0
    assert not server.root.exists()
    assert not server.network_exists()
    assert server.container(f"{server.ident}-postgres") is None
    assert server.image_id(f"{server.ident}-runtime:2026.2.17") is None
    assert not server.client.volumes.list(filters={"name": server.ident})


def test_external_mode_installs_no_postgres_and_migrates_the_shared_database(server, pg_cluster):
    database = f"{server.ident}_shared"
    external = dict(
        openclaw_postgres_mode="external",
        openclaw_postgres_host=pg_cluster.host,
        openclaw_postgres_port=pg_cluster.port,
        openclaw_postgres_password=pg_cluster.password,
        # The harness cluster listens on loopback without TLS (test_postgres_tls covers verify-full).
        openclaw_postgres_sslmode="disable",
        openclaw_shared_database=database,
    )
    ok(server.converge(**external))
    assert server.container(f"{server.ident}-postgres") is None
    connection = psycopg2.connect(pg_cluster.dsn_for(database))
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.waba_phone_mapping') IS NOT NULL")
        assert cursor.fetchone()[0]
    connection.close()
    assert ok(server.converge(**external))["changed"] == 0
    pg_cluster.admin(f'DROP DATABASE "{database}" WITH (FORCE)')


def test_orphans_are_reported_and_removed_only_on_request(server, docker_client, test_images):
    ok(server.converge())
    labels = {"org.openclaw.standalone.managed": "true", "org.openclaw.standalone.role": "tenant", "org.openclaw.standalone.server": SERVER}
    started = {}
    for slug in ("kept", "ghost"):
        started[slug] = docker_client.containers.run(
            test_images["gateway"],
            name=f"{server.ident}-{slug}",
            detach=True,
            labels={**labels, "org.openclaw.standalone.tenant": f"{server.ident}{slug}"},
            environment={"OPENCLAW_GATEWAY_TOKEN": "t"},
        )
    # Another inventory server's tenant on the same engine is not ours to judge.
    docker_client.containers.run(
        test_images["gateway"],
        name=f"{server.ident}-elsewhere",
        detach=True,
        labels={**labels, "org.openclaw.standalone.server": "other", "org.openclaw.standalone.tenant": "elsewhere"},
        environment={"OPENCLAW_GATEWAY_TOKEN": "t"},
    )
    workspace = server.root / "home" / "clients" / f"{server.ident}ghost" / ".openclaw"
    workspace.mkdir(parents=True)
    (workspace / "MEMORY.md").write_text("remember", encoding="utf-8")
    tenants = {
        f"{server.ident}kept": {"openclaw_server": SERVER, "openclaw_port": 18001, "openclaw_domain": "example.test"},
    }

    reported = server.converge(tenants=tenants)
    assert ok(reported)["changed"] == 0
    assert f"{server.ident}-ghost" in reported.stdout
    assert f"{server.ident}-elsewhere" not in reported.stdout.split("orphaned tenant containers", 1)[-1]
    assert server.container(f"{server.ident}-ghost") is not None

    pruned = server.converge(tenants=tenants, openclaw_prune_orphans=True)
    assert ok(pruned)["changed"] == 1
    assert server.container(f"{server.ident}-ghost") is None
    assert server.container(f"{server.ident}-kept") is not None
    assert server.container(f"{server.ident}-elsewhere") is not None
    assert (workspace / "MEMORY.md").read_text(encoding="utf-8") == "remember"


def test_a_missing_service_secret_fails_before_any_change(server):
    server.with_services()
    del server.settings["openclaw_waba_app_secret"]
    completed = server.converge()
    assert completed.returncode != 0
    assert "openclaw_waba_app_secret" in completed.stdout
    assert "service-secret" in completed.stdout
    assert not server.root.exists()
    assert not server.network_exists()


def test_image_module_rebuilds_only_when_the_dockerfile_changes(docker_client, test_images, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(f"FROM {test_images['base']}\nRUN echo one > /marker\n", encoding="utf-8")
    name = f"oct{uuid.uuid4().hex[:8]}-image:test"
    args = {"name": name, "build_context": str(context)}
    try:
        first = run_module("openclaw.standalone.openclaw_image", args)
        assert first.result["changed"] and first.result["built"], first.stdout
        again = run_module("openclaw.standalone.openclaw_image", args)
        assert not again.result["changed"] and again.result["image_id"] == first.result["image_id"]
        dockerfile.write_text(f"FROM {test_images['base']}\nRUN echo two > /marker\n", encoding="utf-8")
        predicted = run_module("openclaw.standalone.openclaw_image", args, "--check")
        assert predicted.result["changed"] and predicted.result["image_id"] == first.result["image_id"]
        changed = run_module("openclaw.standalone.openclaw_image", args)
        assert changed.result["built"] and changed.result["image_id"] != first.result["image_id"]
        dockerfile.write_text(f"FROM {test_images['base']}\nRUN exit 3\n", encoding="utf-8")
        failed = run_module("openclaw.standalone.openclaw_image", args)
        assert failed.failed and "building" in failed.result["msg"]
    finally:
        for image in docker_client.images.list():
            if any(tag.startswith(name.split(":", maxsplit=1)[0]) for tag in image.tags):
                docker_client.images.remove(image.id, force=True)


def test_container_module_refuses_public_ports_before_touching_anything(docker_client, test_images):
    name = f"oct{uuid.uuid4().hex[:8]}-public"
    result = run_module(
        "openclaw.standalone.openclaw_container",
        {"name": name, "image": test_images["gateway"], "ports": [{"container_port": 18789, "host_port": 18789, "host_ip": "0.0.0.0"}]},  # noqa: S104 - the address under test
    )
    assert result.failed
    assert "ports[0].host_ip must be a loopback address" in result.result["msg"]
    assert not docker_client.containers.list(all=True, filters={"name": name})
