"""The tenant role and the openclaw_tenant module on the real Docker engine, with the offline runtime image.

One isolated server (its own network, PostgreSQL container, runtime image,
directories and nginx map directory) is converged once for the module; each
test converges tenants on it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import urllib.error
import urllib.request
import uuid

import psycopg2
import pytest
import yaml

from harness.ansible import REPO_ROOT, recap, run, run_module
from harness.catalog import snapshot
from harness.common import free_ports
from harness.docker import remove_everything_named
from harness.servers import isolated_server

SERVER = "srvt"
TENANT_PLAYBOOK = "tests/playbooks/tenants_only.yml"
MIGRATIONS = REPO_ROOT / "migrations" / "tenant"


class Site:
    def __init__(self, client, images, root):
        self.client = client
        self.ident = "oct" + uuid.uuid4().hex[:6]
        self.root = root
        self.inventory_path = root / "hosts.yml"
        (self.postgres_port,) = free_ports(1)
        self.server = {
            **isolated_server(self.ident, root, images, self.postgres_port),
            "openclaw_nginx_openclaw_dir": str(root / "nginx"),
            "openclaw_nginx_install": False,
        }
        self.tenants = {}
        self.common = {"openclaw_domain": "example.test"}

    @property
    def image(self):
        return f"{self.ident}-runtime:2026.2.17"

    def tenant(self, name, **settings):
        return {"openclaw_server": SERVER, "openclaw_slug": self.slug(name), **settings}

    def slug(self, name):
        return f"{self.ident}{name}"

    def write_inventory(self, tenants, extra_vars=None):
        inventory = {
            "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", **self.common, **(extra_vars or {})}},
            "openclaw_servers": {"hosts": {SERVER: self.server}},
            "openclaw_tenants": {"hosts": tenants},
        }
        self.inventory_path.write_text(yaml.safe_dump(inventory), encoding="utf-8")

    def play(self, playbook, tenants, *options, extra_vars=None):
        self.write_inventory(tenants, extra_vars)
        completed = run("ansible-playbook", "-i", str(self.inventory_path), playbook, *options, timeout=900)
        completed.recap = recap(completed.stdout)
        return completed

    def converge(self, tenants, *options, **extra_vars):
        return self.play(TENANT_PLAYBOOK, tenants, *options, extra_vars=extra_vars)

    def container(self, name):
        import docker

        try:
            return self.client.containers.get(f"openclaw-{self.slug(name)}")
        except docker.errors.NotFound:
            return None

    def state_dir(self, name):
        return self.root / "clients" / self.slug(name) / ".openclaw"

    def token(self, name):
        return (self.state_dir(name).parent / "gateway_token").read_text(encoding="utf-8").strip()

    def superuser_dsn(self, database):
        password = (self.root / "secrets" / "postgres_password").read_text(encoding="utf-8").strip()
        return f"host=127.0.0.1 port={self.postgres_port} user=postgres password={password} dbname={database}"

    def file_hashes(self, name):
        hashes = {}
        for path in sorted(self.state_dir(name).rglob("*")):
            if path.is_file():
                hashes[str(path.relative_to(self.state_dir(name)))] = hashlib.sha256(path.read_bytes()).hexdigest()
        return hashes

    def cleanup(self):
        remove_everything_named(self.client, self.ident)


@pytest.fixture(scope="module")
def site(docker_client, test_images, tmp_path_factory):
    built = Site(docker_client, test_images, tmp_path_factory.mktemp("site"))
    try:
        completed = built.play("playbooks/server.yml", {})
        assert completed.returncode == 0, completed.stdout[-5000:]
        yield built
    finally:
        built.cleanup()


def gateway_answers(port):
    """The gateway's own refusal of an unauthenticated request (2026.2.17 has no health endpoint)."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
    except urllib.error.HTTPError as error:
        return error.code == 401
    return False


def ok(completed, host):
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
    return completed.recap[host]


def test_create_converge_again_and_hardening(site):
    tenants = {"alpha": site.tenant("alpha", openclaw_port=free_ports(1)[0])}
    first = site.converge(tenants, "-vvv")
    assert ok(first, "alpha")["changed"] > 0
    container = site.container("alpha")
    # Ready means the gateway answers on its port; Docker's own first check comes later.
    assert container is not None and container.attrs["State"]["Health"]["Status"] in ("starting", "healthy")
    assert gateway_answers(tenants["alpha"]["openclaw_port"])
    token = site.token("alpha")
    assert len(token) == 64
    assert token not in first.stdout + first.stderr, "the gateway token reached -vvv output"
    db_password = (site.root / "secrets" / f"db-{site.slug('alpha')}.password").read_text(encoding="utf-8").strip()
    assert db_password not in first.stdout + first.stderr

    host_config = container.attrs["HostConfig"]
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host_config["SecurityOpt"]
    assert host_config["Init"] is True
    assert host_config["Memory"] == 2 * 1024**3 and host_config["PidsLimit"] == 512 and host_config["NanoCpus"] == 10**9
    assert host_config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
    bindings = [binding for entries in host_config["PortBindings"].values() for binding in entries]
    assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}
    assert not any("docker.sock" in mount["Source"] for mount in container.attrs["Mounts"])
    assert container.attrs["Config"]["User"] == "1001:1001"
    labels = container.labels
    assert labels["org.openclaw.standalone.tenant"] == site.slug("alpha") and labels["org.openclaw.standalone.server"] == SERVER
    environment = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert environment["OPENCLAW_GATEWAY_TOKEN"] == token
    assert environment["OPENCLAW_DB_URL"].startswith(f"postgresql://openclaw_{site.slug('alpha')}:")
    assert "postgres:" not in environment["OPENCLAW_DB_URL"].split("@")[0]

    # The workspace: modes, ownership, rendered files, skills as copies.
    state = site.state_dir("alpha")
    assert (state.parent / "gateway_token").stat().st_mode & 0o777 == 0o600 and (state.parent / "gateway_token").stat().st_uid == 0
    assert state.stat().st_mode & 0o777 == 0o700 and state.stat().st_uid == 1001
    config = json.loads((state / "openclaw.json").read_text(encoding="utf-8"))
    assert config["gateway"]["port"] == 18789
    assert site.slug("alpha") in (state / "workspace" / "TOOLS.md").read_text(encoding="utf-8")
    skills = sorted(path.parent.name for path in (state / "workspace" / "skills").glob("*/SKILL.md"))
    assert len(skills) == 11 and not any(path.is_symlink() for path in (state / "workspace" / "skills").rglob("*"))

    # The tenant's own role reaches its own database and no other.
    url = environment["OPENCLAW_DB_URL"].replace(f"@{site.ident}-postgres:5432", f"@127.0.0.1:{site.postgres_port}")
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM config")
        assert cursor.fetchone()[0] == 1
    connection.close()
    with pytest.raises(psycopg2.OperationalError, match=r"permission denied|not permitted|no pg_hba"):
        psycopg2.connect(url.rsplit("/", 1)[0] + "/openclaw").close()

    container_id = container.id
    hashes = site.file_hashes("alpha")
    second = site.converge(tenants)
    assert ok(second, "alpha")["changed"] == 0, second.stdout[-6000:]
    assert site.container("alpha").id == container_id
    assert site.file_hashes("alpha") == hashes


def test_template_change_updates_files_without_recreating(site):
    tenants = {"beta": site.tenant("beta", openclaw_port=free_ports(1)[0])}
    ok(site.converge(tenants), "beta")
    container_id = site.container("beta").id
    token = site.token("beta")

    # A variable only TOOLS.md uses: the file changes, the gateway keeps running.
    tenants["beta"]["openclaw_upload_url"] = "https://uploads.example.test/beta/"
    changed = site.converge(tenants, "--diff")
    assert ok(changed, "beta")["changed"] == 1
    assert "uploads.example.test/beta" in (site.state_dir("beta") / "workspace" / "TOOLS.md").read_text(encoding="utf-8")
    assert site.container("beta").id == container_id

    # A new image recreates the container, with the same token and data.
    site.client.images.get(site.image).tag(f"{site.ident}-runtime", "v2")
    site.server["openclaw_runtime_tag"] = "v2"
    try:
        recreated = site.converge(tenants)
        assert ok(recreated, "beta")["changed"] == 1
        # Same image id under another tag: the configuration (image reference) changed.
        assert site.container("beta").id != container_id
        assert site.token("beta") == token
        environment = dict(item.split("=", 1) for item in site.container("beta").attrs["Config"]["Env"])
        assert environment["OPENCLAW_GATEWAY_TOKEN"] == token
    finally:
        del site.server["openclaw_runtime_tag"]


def test_agent_files_survive_and_removed_skills_go(site):
    tenants = {"gamma": site.tenant("gamma", openclaw_port=free_ports(1)[0])}
    ok(site.converge(tenants), "gamma")
    workspace = site.state_dir("gamma") / "workspace"
    agent_files = {
        "MEMORY.md": "the client prefers mornings",
        "SOUL.md": "calm",
        "USER.md": "Aliya",
        "AGENTS.md": "generated by OpenClaw",
        "memory/2026-11-29.md": "notes",
        "skills/my-own/SKILL.md": "made by the agent",
    }
    for relative, text in agent_files.items():
        (workspace / relative).parent.mkdir(parents=True, exist_ok=True)
        (workspace / relative).write_text(text, encoding="utf-8")
    (site.state_dir("gamma") / "devices" / "paired.json").write_text("{}", encoding="utf-8")

    # A skill removed from the server's copy disappears from the workspace; the agent's own stay.
    shipped = site.root / "lib" / "skills" / "fb-report"
    saved = {path: path.read_bytes() for path in shipped.rglob("*") if path.is_file()}
    for path in saved:
        path.unlink()
    shipped.rmdir()
    try:
        ok(site.converge(tenants), "gamma")
        assert not (workspace / "skills" / "fb-report").exists()
        assert (workspace / "skills" / "fb-leads" / "SKILL.md").is_file()
    finally:
        shipped.mkdir()
        for path, data in saved.items():
            path.write_bytes(data)
    for relative, text in agent_files.items():
        assert (workspace / relative).read_text(encoding="utf-8") == text, relative
    assert (site.state_dir("gamma") / "devices" / "paired.json").is_file()


def test_check_mode_predicts_and_changes_nothing(site):
    slug_ports = free_ports(2)
    existing = {"delta": site.tenant("delta", openclaw_port=slug_ports[0])}
    ok(site.converge(existing), "delta")
    before_ids = site.container("delta").id
    before_hashes = site.file_hashes("delta")
    before_catalog = snapshot(site.superuser_dsn(f"openclaw_{site.slug('delta')}"))

    planned = dict(existing)
    planned["delta"] = {**existing["delta"], "openclaw_upload_url": "https://changed.example.test/"}
    planned["epsilon"] = site.tenant("epsilon", openclaw_port=slug_ports[1])
    check = site.converge(planned, "--check", "--diff")
    assert ok(check, "delta")["changed"] == 1
    assert ok(check, "epsilon")["changed"] > 0
    assert "changed.example.test" in check.stdout
    assert site.container("delta").id == before_ids
    assert site.file_hashes("delta") == before_hashes
    assert snapshot(site.superuser_dsn(f"openclaw_{site.slug('delta')}")) == before_catalog
    assert site.container("epsilon") is None
    assert not site.state_dir("epsilon").exists()
    with psycopg2.connect(site.superuser_dsn("postgres")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (f"openclaw_{site.slug('epsilon')}",))
        assert cursor.fetchone()[0] == 0
    connection.close()

    # The real run then changes exactly what the plan named.
    applied = site.converge(planned)
    assert ok(applied, "delta")["changed"] == 1
    assert ok(applied, "epsilon")["changed"] > 0
    assert site.container("delta").id == before_ids


def test_absent_keeps_data_and_purge_archives(site):
    tenants = {"zeta": site.tenant("zeta", openclaw_port=free_ports(1)[0])}
    ok(site.converge(tenants), "zeta")
    (site.state_dir("zeta") / "workspace" / "MEMORY.md").write_text("keep me", encoding="utf-8")
    database = f"openclaw_{site.slug('zeta')}"

    tenants["zeta"]["openclaw_tenant_state"] = "absent"
    ok(site.converge(tenants), "zeta")
    assert site.container("zeta") is None
    assert (site.state_dir("zeta") / "workspace" / "MEMORY.md").read_text(encoding="utf-8") == "keep me"
    with psycopg2.connect(site.superuser_dsn(database)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM config")
    connection.close()
    assert ok(site.converge(tenants), "zeta")["changed"] == 0

    tenants["zeta"]["openclaw_tenant_purge"] = True
    ok(site.converge(tenants), "zeta")
    assert not site.state_dir("zeta").parent.exists()
    archives = list((site.root / "backups").glob(f"{site.slug('zeta')}-workspace-*.tar.gz"))
    assert len(archives) == 1
    with tarfile.open(archives[0]) as archive:
        assert f"{site.slug('zeta')}/.openclaw/workspace/MEMORY.md" in archive.getnames()
    assert list((site.root / "backups").glob(f"{database}-*.dump")), "the database was dropped without a dump"
    with pytest.raises(psycopg2.OperationalError, match="does not exist"):
        psycopg2.connect(site.superuser_dsn(database)).close()


def test_two_tenants_converge_in_parallel(site):
    ports = free_ports(2)
    tenants = {"eta": site.tenant("eta", openclaw_port=ports[0]), "theta": site.tenant("theta", openclaw_port=ports[1])}
    completed = site.converge(tenants, "--forks", "5")
    ok(completed, "eta")
    ok(completed, "theta")
    assert site.container("eta").id != site.container("theta").id
    routes = (site.root / "nginx" / "tenants.map").read_text(encoding="utf-8")
    assert f"{site.slug('eta')} 127.0.0.1:{ports[0]};" in routes
    assert f"{site.slug('theta')} 127.0.0.1:{ports[1]};" in routes
    assert site.token("eta") != site.token("theta")


def test_a_failing_tenant_does_not_stop_the_others_of_its_server(site):
    # Both tenants are converged by one module run for the server; one of them cannot be.
    ports = free_ports(2)
    tenants = {"iota": site.tenant("iota", openclaw_port=ports[0]), "kappa": site.tenant("kappa", openclaw_port=ports[1])}
    blocker = site.root / "clients" / site.slug("kappa")
    blocker.write_text("not a workspace\n", encoding="utf-8")
    try:
        completed = site.converge(tenants)
        assert completed.returncode != 0
        assert completed.recap["kappa"]["failed"] == 1, completed.stdout[-6000:]
        assert "is not a regular file, not a directory; refusing to touch it" in completed.stdout  # the failure says what is in the way
        assert completed.recap["iota"]["failed"] == 0
        assert completed.recap["iota"]["changed"] >= 1
        assert site.container("iota").status == "running"
        assert site.container("kappa") is None
        routes = (site.root / "nginx" / "tenants.map").read_text(encoding="utf-8")
        assert f"{site.slug('iota')} 127.0.0.1:{ports[0]};" in routes
        assert site.slug("kappa") not in routes  # a tenant that failed gets no route
    finally:
        blocker.unlink()


def test_rotate_token_recreates_with_a_new_token(site):
    tenants = {"iota": site.tenant("iota", openclaw_port=free_ports(1)[0])}
    ok(site.converge(tenants), "iota")
    token, container_id = site.token("iota"), site.container("iota").id
    rotated = site.converge(tenants, "-v", openclaw_rotate_token=True)
    ok(rotated, "iota")
    assert site.token("iota") != token and site.container("iota").id != container_id
    assert site.token("iota") not in rotated.stdout
    # The token is shown only when asked for, for the tenant named.
    shown = site.play("playbooks/show_access.yml", tenants, "-e", "tenant=iota")
    assert shown.returncode == 0 and f"Token: {site.token('iota')}" in shown.stdout
    assert f"https://{site.slug('iota')}.example.test" in shown.stdout
    unnamed = site.play("playbooks/show_access.yml", tenants)
    assert unnamed.returncode != 0 and "Name one tenant" in unnamed.stdout and site.token("iota") not in unnamed.stdout


def test_adopting_a_tenant_made_by_the_old_scripts(site, docker_client):
    slug = site.slug("legacy")
    (port,) = free_ports(1)
    database = f"openclaw_{slug}"
    # The old platform: database from its schema (no history), data in it, as the superuser.
    admin = psycopg2.connect(site.superuser_dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{database}"')
    admin.close()
    with psycopg2.connect(site.superuser_dsn(database)) as connection, connection.cursor() as cursor:
        cursor.execute((MIGRATIONS / "V001__baseline.sql").read_text(encoding="utf-8"))
        cursor.execute("INSERT INTO wa_dialogs (phone, name) VALUES ('+77011234567', 'Aliya')")
    connection.close()
    # Its workspace, token and agent files, owned by 1001.
    state = site.state_dir("legacy")
    (state / "workspace" / "skills" / "fb-report").mkdir(parents=True)
    (state / "workspace" / "skills" / "fb-report" / "SKILL.md").write_text("old copy", encoding="utf-8")
    (state / "workspace" / "MEMORY.md").write_text("long memory", encoding="utf-8")
    (state / "openclaw.json").write_text("{}", encoding="utf-8")
    old_token = uuid.uuid4().hex
    (state / "gateway_token").write_text(old_token + "\n", encoding="utf-8")
    subprocess.run(["chown", "-R", "1001:1001", str(state)], check=True)
    # Its container, started the way create-client.sh started it (but on loopback: tests never listen elsewhere).
    legacy = docker_client.containers.run(
        site.image,
        name=f"openclaw-{slug}",
        detach=True,
        environment={"OPENCLAW_GATEWAY_TOKEN": old_token, "OPENCLAW_DB_URL": f"postgresql://postgres:pw@{site.ident}-postgres:5432/{database}"},
        volumes={str(state): {"bind": "/home/openclaw/.openclaw", "mode": "rw"}, "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}},
        ports={"18790/tcp": ("127.0.0.1", port)},
        network=f"{site.ident}-net",
        restart_policy={"Name": "unless-stopped"},
    )

    tenants = {"legacy": site.tenant("legacy", openclaw_port=port)}
    adopted = site.converge(tenants)
    ok(adopted, "legacy")
    container = site.container("legacy")
    assert container.id != legacy.id
    assert site.token("legacy") == old_token
    assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert not any("docker.sock" in mount["Source"] for mount in container.attrs["Mounts"])
    assert (state / "workspace" / "MEMORY.md").read_text(encoding="utf-8") == "long memory"
    with psycopg2.connect(site.superuser_dsn(database)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name FROM wa_dialogs WHERE phone = '+77011234567'")
        assert cursor.fetchone()[0] == "Aliya"
        cursor.execute("SELECT count(*) FROM openclaw_meta.schema_history")
        assert cursor.fetchone()[0] >= 2
    connection.close()
    assert ok(site.converge(tenants), "legacy")["changed"] == 0


def test_unhealthy_gateway_fails_with_its_log_lines(site, docker_client, tmp_path):
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM {site.image}\nENTRYPOINT ["sh", "-c", "echo gateway refused to start: port already bound >&2; exec sleep 600"]\n', encoding="utf-8"
    )
    broken = f"{site.ident}-broken:test"
    docker_client.images.build(path=str(context), tag=broken, rm=True)
    (port,) = free_ports(1)
    clients = site.root / "clients"
    result = run_module(
        "openclaw.standalone.openclaw_tenant",
        {"slug": site.slug("broken"), "port": port, "image": broken, "network": f"{site.ident}-net", "clients_dir": str(clients), "wait_timeout": 8},
    )
    assert result.failed
    assert "did not become healthy" in result.result["msg"]
    assert "gateway refused to start: port already bound" in result.result["msg"]


def test_bad_input_is_refused_before_any_change(site):
    clients = site.root / "clients"
    for slug, fragment in (("Default", "slug"), ("default", "default"), ("a--b", "slug-double-hyphen")):
        result = run_module("openclaw.standalone.openclaw_tenant", {"slug": slug, "port": 18990, "image": site.image, "clients_dir": str(clients)})
        assert result.failed and fragment in result.result["msg"] and "nothing was changed" in result.result["msg"]
        assert not (clients / slug).exists()
    result = run_module(
        "openclaw.standalone.openclaw_tenant",
        {"slug": site.slug("files"), "port": 18991, "image": site.image, "clients_dir": str(clients), "files": {"workspace/MEMORY.md": "x"}},
    )
    assert result.failed and "belongs to the agent" in result.result["msg"]
    assert not (clients / site.slug("files")).exists()


def test_rolling_upgrade_stops_at_the_first_unhealthy_batch(site):
    ports = free_ports(3)
    tenants = {name: site.tenant(name, openclaw_port=port) for name, port in zip(("ra", "rb", "rc"), ports)}
    ok(site.converge(tenants), "rc")
    before = {name: site.container(name).id for name in tenants}
    old_image = site.container("ra").attrs["Image"]

    # A new image (a build input changed); rb cannot run in it (6 MiB of memory), so its batch fails.
    site.server["openclaw_runtime_build_args"] = {"UPGRADE_MARKER": uuid.uuid4().hex}
    tenants["rb"]["openclaw_tenant_memory"] = "6m"
    tenants["rb"]["openclaw_tenant_wait_timeout"] = 15
    try:
        upgrade = site.play("playbooks/rolling_upgrade.yml", tenants, "-e", "openclaw_rolling_batch=1")
    finally:
        del site.server["openclaw_runtime_build_args"]
    assert upgrade.returncode != 0
    upgraded = site.container("ra")
    assert upgraded.id != before["ra"] and upgraded.attrs["Image"] != old_image
    assert upgraded.attrs["State"]["Health"]["Status"] in ("starting", "healthy") and gateway_answers(ports[0])
    assert upgrade.recap["rb"]["failed"] == 1
    # The batch after the failed one was never started: rc still runs the old image, untouched.
    assert site.container("rc").id == before["rc"] and site.container("rc").attrs["Image"] == old_image
    assert "rc" not in upgrade.recap or upgrade.recap["rc"]["changed"] == 0
