"""The shared services end to end, least privilege and secrets where they belong, on the real Docker engine.

One isolated server with both shared services (the services image the server
role builds from the collection) and one tenant with a WhatsApp Business
number is converged once for the module. A signed WhatsApp Business post
travels from the webhook's published port to the tenant's database and
gateway; an upload link made in the tenant's container opens its data at the
upload service. The services' own roles are probed with the credentials their
containers got, the shared database is searched for the tenant's tokens, and
the tenant's environment is checked for the platform's Anthropic key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import time
import urllib.error
import urllib.request
import uuid

import psycopg2
import psycopg2.sql
import pytest
import yaml

from harness.ansible import recap, run, run_module
from harness.common import free_ports
from harness.docker import remove_everything_named
from harness.postgres import text_columns_holding
from harness.servers import isolated_server, shared_services

SERVER = "srvt"
TENANT = "waba"
PHONE_ID = "106540352242922"
WABA_TOKEN = "wabaaccess-" + uuid.uuid4().hex
APP_SECRET = "wabaapp-" + uuid.uuid4().hex
MODULE = "openclaw.standalone.openclaw_service_role"
PLATFORM_KEY = "sk-ant-platform-" + uuid.uuid4().hex


class Site:
    def __init__(self, client, images, root):
        self.client = client
        self.ident = "ocp" + uuid.uuid4().hex[:6]
        self.root = root
        self.inventory_path = root / "hosts.yml"
        self.postgres_port, self.webhook_port, self.upload_port, self.tenant_port = free_ports(4)
        self.server = {
            **isolated_server(self.ident, root, images, self.postgres_port),
            "openclaw_nginx_openclaw_dir": str(root / "nginx"),
            "openclaw_nginx_install": False,
            **shared_services(self.ident, images, self.webhook_port, self.upload_port),
        }
        self.slug = f"{self.ident}{TENANT}"
        self.tenant = {
            "openclaw_server": SERVER,
            "openclaw_slug": self.slug,
            "openclaw_port": self.tenant_port,
            "openclaw_waba_phone_id": PHONE_ID,
            "openclaw_waba_phone_number": "+77011234567",
            "openclaw_waba_access_token": WABA_TOKEN,
            "openclaw_waba_app_secret": APP_SECRET,
        }
        # Set for every host, as a group_vars file would.
        self.common = {"openclaw_domain": "example.test", "openclaw_platform_anthropic_api_key": PLATFORM_KEY}

    def play(self, playbook, tenants, *options):
        inventory = {
            "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", **self.common}},
            "openclaw_servers": {"hosts": {SERVER: self.server}},
            "openclaw_tenants": {"hosts": tenants},
        }
        self.inventory_path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        completed = run("ansible-playbook", "-i", str(self.inventory_path), playbook, *options, timeout=900)
        completed.recap = recap(completed.stdout)
        return completed

    def converge_tenant(self, **settings):
        completed = self.play("tests/playbooks/tenants_only.yml", {TENANT: {**self.tenant, **settings}})
        assert completed.returncode == 0, completed.stdout[-6000:]
        return completed

    def env(self, container):
        entries = self.client.containers.get(container).attrs["Config"]["Env"] or []
        return dict(entry.split("=", 1) for entry in entries)

    def secret(self, name):
        return (self.root / "secrets" / name).read_text(encoding="utf-8").strip()

    def gateway_token(self):
        tenant_dir = self.root / "clients" / self.slug
        for path in (tenant_dir / "gateway_token", tenant_dir / ".openclaw" / "gateway_token"):
            if path.exists():
                return path.read_text(encoding="utf-8").strip()
        raise AssertionError("no gateway token file under %s" % tenant_dir)

    def connect(self, user, password, database):
        return psycopg2.connect(host="127.0.0.1", port=self.postgres_port, user=user, password=password, dbname=database, connect_timeout=10)

    def cleanup(self):
        remove_everything_named(self.client, self.ident)


@pytest.fixture(scope="module")
def site(docker_client, test_images, tmp_path_factory):
    built = Site(docker_client, test_images, tmp_path_factory.mktemp("privileges"))
    try:
        completed = built.play("playbooks/server.yml", {})
        assert completed.returncode == 0, completed.stdout[-6000:]
        built.converge_tenant()
        yield built
    finally:
        built.cleanup()


def loopback(port, path, body=None, headers=None):
    """(status, text) of a request to 127.0.0.1:<port>, whatever the status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {})
    try:
        with opener.open(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def waba_post(message_id, text, sender):
    message = {"from": sender, "id": message_id, "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "77011234567", "phone_number_id": PHONE_ID},
        "contacts": [{"wa_id": sender, "profile": {"name": "Aliya"}}],
        "messages": [message],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}]}).encode()


def signed(raw, secret):
    return {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()}


def fetch(connection, statement, values=None):
    """Run one statement in its own transaction, close the connection; its rows, if any."""
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement, values)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def tenant_rows(site, statement, values=None):
    role = f"openclaw_{site.slug}"
    return fetch(site.connect(role, site.secret(f"db-{site.slug}.password"), role), statement, values)


def gateway_hook_calls(site):
    token = site.gateway_token()
    status, body = loopback(site.tenant_port, "/__standin/hooks", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    return json.loads(body)["webhooks"]


def eventually(probe, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_registered_tenants_converge_to_no_change_and_check_mode_predicts_none(site):
    """With both services registered: a second converge and a --check --diff run report nothing to do."""
    again = site.converge_tenant()
    assert again.recap[TENANT]["changed"] == 0, again.stdout[-4000:]
    checked = site.play("tests/playbooks/tenants_only.yml", {TENANT: site.tenant}, "--check", "--diff")
    assert checked.returncode == 0 and checked.recap[TENANT]["changed"] == 0, checked.stdout[-4000:]


def test_registry_entries_are_the_tenants_own_and_readable_by_the_services_only(site):
    tenant_dir = site.root / "clients" / site.slug
    for service in ("webhook", "upload"):
        entry_file = site.root / "lib" / "services" / service / "tenants" / f"{site.slug}.json"
        info = entry_file.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, 10001), service
        entry = json.loads(entry_file.read_text(encoding="utf-8"))
        # The tenant's own role and password, never a service's or the superuser's.
        assert (entry["database"], entry["db_user"]) == (f"openclaw_{site.slug}", f"openclaw_{site.slug}")
        assert entry["db_password"] == site.secret(f"db-{site.slug}.password")
        assert site.secret("postgres_password") not in entry.values()
    webhook = json.loads((site.root / "lib" / "services" / "webhook" / "tenants" / f"{site.slug}.json").read_text(encoding="utf-8"))
    assert webhook["hooks_token"] == (tenant_dir / "hooks_token").read_text(encoding="utf-8").strip()
    assert webhook["leadgen_verify_token"] == (tenant_dir / "leadgen_verify_token").read_text(encoding="utf-8").strip()
    assert webhook["gateway_url"] == f"http://openclaw-{site.slug}:18790"
    for name in ("hooks_token", "leadgen_verify_token", "upload_secret"):
        assert stat.S_IMODE((tenant_dir / name).stat().st_mode) == 0o600, name
    # The gateway's own token is not among what the services hold.
    assert site.gateway_token() not in webhook.values()


def test_lead_ads_subscription_answers_only_the_tenants_own_verify_token(site):
    token = (site.root / "clients" / site.slug / "leadgen_verify_token").read_text(encoding="utf-8").strip()
    path = f"/webhook/{site.slug}?hub.mode=subscribe&hub.challenge=4242&hub.verify_token="
    assert loopback(site.webhook_port, path + token) == (200, "4242")
    # Attacks: the platform's WABA verify token, another tenant's path, nothing.
    assert loopback(site.webhook_port, path + site.server["openclaw_waba_verify_token"])[0] == 403
    assert loopback(site.webhook_port, path.replace(site.slug, site.slug + "x") + token)[0] == 404
    assert loopback(site.webhook_port, path)[0] == 403


def test_show_access_prints_the_meta_settings_only_when_asked(site):
    token = (site.root / "clients" / site.slug / "leadgen_verify_token").read_text(encoding="utf-8").strip()
    shown = site.play("playbooks/show_access.yml", {TENANT: site.tenant}, "-e", f"tenant={TENANT}", "-e", "show=meta")
    assert shown.returncode == 0, shown.stdout[-4000:]
    assert f"Lead Ads verify token: {token}" in shown.stdout
    assert f"https://example.test/openclaw/webhook/{site.slug}" in shown.stdout
    assert "https://example.test/openclaw/webhooks/waba" in shown.stdout
    assert site.server["openclaw_waba_verify_token"] not in shown.stdout
    # Positive control of the search: the default mode shows the gateway token, not this one.
    default = site.play("playbooks/show_access.yml", {TENANT: site.tenant}, "-e", f"tenant={TENANT}")
    assert site.gateway_token() in default.stdout and token not in default.stdout


def test_a_signed_whatsapp_business_message_reaches_the_tenants_database_and_gateway_once(site):
    sender = "7701" + str(uuid.uuid4().int)[:7]
    message_id = "wamid." + uuid.uuid4().hex
    hostile = "Цена? $(touch /tmp/pwned) `id`"
    raw = waba_post(message_id, hostile, sender)
    before = len(gateway_hook_calls(site))
    # Attacks first: unsigned, and signed with another secret, are refused and record nothing.
    assert loopback(site.webhook_port, "/webhooks/waba", raw, {"Content-Type": "application/json"})[0] in (401, 403)
    assert loopback(site.webhook_port, "/webhooks/waba", raw, signed(raw, "not-" + APP_SECRET))[0] in (401, 403)
    time.sleep(1)
    assert tenant_rows(site, "SELECT count(*) FROM wa_messages WHERE message_id = %s", (message_id,)) == [(0,)]
    # Positive control: signed with the number's app secret, and a replay of it.
    for _attempt in range(2):
        status, body = loopback(site.webhook_port, "/webhooks/waba", raw, signed(raw, APP_SECRET))
        assert status == 200, body
    recorded = eventually(lambda: tenant_rows(site, "SELECT direction, channel, message_text FROM wa_messages WHERE message_id = %s", (message_id,)))
    assert recorded == [("inbound", "waba", hostile)]
    calls = eventually(lambda: gateway_hook_calls(site)[before:])
    assert len(calls) == 1, calls
    assert calls[0]["action"] == "agent" and calls[0]["payload"]["sessionKey"] == f"hook:waba:{sender}"
    assert hostile in json.dumps(calls[0]["payload"], ensure_ascii=False)
    time.sleep(2)
    # Exactly once, by the database's own constraint, however often Meta retries.
    assert len(gateway_hook_calls(site)) == before + 1
    assert tenant_rows(site, "SELECT count(*) FROM wa_messages WHERE message_id = %s", (message_id,)) == [(1,)]
    assert tenant_rows(site, "SELECT incoming_count FROM wa_dialogs WHERE phone = %s", (sender,)) == [(1,)]


def test_an_upload_link_made_in_the_tenants_container_opens_only_its_data(site):
    container = site.client.containers.get(f"openclaw-{site.slug}")
    code, output = container.exec_run(["openclaw-upload-link", "--hours", "1"], user="1001:1001")
    assert code == 0, output
    link = output.decode().strip()
    assert link.startswith(f"https://example.test/openclaw/upload/{site.slug}/#")
    token = link.split("#", 1)[1]
    tenant_rows(site, "INSERT INTO directions (name, is_active) VALUES ('e2e direction', true)")
    status, body = loopback(site.upload_port, f"/{site.slug}/directions", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    assert "e2e direction" in [direction["name"] for direction in json.loads(body)]
    # Attacks: no token, a forged one, and the tenant's token on another slug's path.
    assert loopback(site.upload_port, f"/{site.slug}/directions")[0] == 401
    forged = token.split(".")[0] + "." + "0" * 64
    assert loopback(site.upload_port, f"/{site.slug}/directions", headers={"Authorization": f"Bearer {forged}"})[0] == 401
    assert loopback(site.upload_port, f"/{site.slug}x/directions", headers={"Authorization": f"Bearer {token}"})[0] == 404


def service_credentials(site, name):
    env = site.env(f"{site.ident}-{name}")
    return env["PG_USER"], env["PG_PASSWORD"]


def denied(action):
    """True when PostgreSQL refuses ``action`` for lack of privilege (and nothing else went wrong)."""
    try:
        action()
    except psycopg2.errors.InsufficientPrivilege:
        return True
    return False


def test_services_log_in_as_their_own_roles_never_the_superuser(site):
    superuser_password = site.secret("postgres_password")
    for name, role in (("webhook", "openclaw_service_webhook"), ("upload", "openclaw_service_upload")):
        env = site.env(f"{site.ident}-{name}")
        assert env["PG_USER"] == role, name
        # The password the container got is its role's, generated on the server (0600).
        password_file = site.root / "secrets" / f"service-{name}.password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert env["PG_PASSWORD"] == password_file.read_text(encoding="utf-8").strip()
        assert superuser_password not in env.values(), name
        assert PLATFORM_KEY not in env.values() and "ANTHROPIC_API_KEY" not in env, name
        # Attack: the service's password does not open the superuser.
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            site.connect("postgres", env["PG_PASSWORD"], "openclaw")
        # Positive control: the same connection with the superuser's own password works.
        site.connect("postgres", superuser_password, "openclaw").close()


def test_webhook_role_reads_its_columns_of_the_mapping_and_nothing_else(site):
    user, password = service_credentials(site, "webhook")
    connection = site.connect(user, password, "openclaw")
    connection.autocommit = True
    cursor = connection.cursor()
    try:
        # Positive control: the service's own routing query works.
        cursor.execute(
            "SELECT slug, waba_app_secret, waba_access_token, gateway_token FROM waba_phone_mapping WHERE waba_phone_id = %s AND is_active",
            (PHONE_ID,),
        )
        assert cursor.fetchone() == (site.slug, APP_SECRET, "sha256:" + hashlib.sha256(WABA_TOKEN.encode()).hexdigest(), None)

        attacks = {
            "read another column": "SELECT gateway_token_sha256 FROM waba_phone_mapping",
            "read the whole row": "SELECT * FROM waba_phone_mapping",
            "insert a route": f"INSERT INTO waba_phone_mapping (waba_phone_id, slug) VALUES ('99999', '{site.slug}')",
            "reroute a number": "UPDATE waba_phone_mapping SET slug = 'attacker'",
            "delete routes": "DELETE FROM waba_phone_mapping",
            "read the migration history": "SELECT * FROM openclaw_meta.schema_history",
            "create a table": "CREATE TABLE public.planted (id int)",
            "become superuser": f'ALTER ROLE "{user}" SUPERUSER',
            "create roles": "CREATE ROLE planted LOGIN PASSWORD 'x'",
            "read server files": "SELECT pg_read_file('/etc/passwd')",
        }
        allowed = [attack for attack, statement in attacks.items() if not denied(lambda statement=statement: cursor.execute(statement))]
        assert allowed == []
    finally:
        connection.close()

    # Attack: the tenant's database (where the seed's webhook would write leads) is not open to it.
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        site.connect(user, password, f"openclaw_{site.slug}")
    # Positive control: the tenant's own role opens it.
    site.connect(f"openclaw_{site.slug}", site.secret(f"db-{site.slug}.password"), f"openclaw_{site.slug}").close()


def test_upload_role_opens_no_openclaw_database(site):
    user, password = service_credentials(site, "upload")
    for database in ("openclaw", f"openclaw_{site.slug}"):
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            site.connect(user, password, database)
    # Positive control: the credentials are valid (PostgreSQL's maintenance database is open to every role).
    site.connect(user, password, "postgres").close()


def test_the_shared_database_holds_no_token_in_plain_text(site):
    token = site.gateway_token()
    connection = site.connect("postgres", site.secret("postgres_password"), "openclaw")
    try:
        assert text_columns_holding(connection, token) == []
        assert text_columns_holding(connection, WABA_TOKEN) == []
        # Positive controls: the same search finds what is stored, including the token's fingerprint.
        assert text_columns_holding(connection, PHONE_ID) == [("waba_phone_mapping", "waba_phone_id")]
        assert text_columns_holding(connection, hashlib.sha256(token.encode()).hexdigest()) == [("waba_phone_mapping", "gateway_token_sha256")]
    finally:
        connection.close()


def test_the_platform_key_reaches_a_tenant_only_when_it_opts_in(site):
    container = f"openclaw-{site.slug}"
    # Set for every host, but the tenant has not opted in.
    assert "ANTHROPIC_API_KEY" not in site.env(container)
    assert PLATFORM_KEY not in site.env(container).values()

    opted_in = site.converge_tenant(openclaw_tenant_share_group_secrets=True)
    assert opted_in.recap[TENANT]["changed"] > 0
    assert site.env(container)["ANTHROPIC_API_KEY"] == PLATFORM_KEY
    assert PLATFORM_KEY not in opted_in.stdout

    # The tenant's own key wins over the platform's, opt-in or not.
    own = "sk-ant-own-" + uuid.uuid4().hex
    site.converge_tenant(openclaw_tenant_share_group_secrets=True, openclaw_anthropic_api_key=own)
    assert site.env(container)["ANTHROPIC_API_KEY"] == own


def test_one_tenant_key_for_several_tenants_is_refused_unless_they_opt_in(site):
    """A key set at group level reaches every tenant: the preflight refuses it, before anything changes."""
    shared = "sk-ant-group-" + uuid.uuid4().hex
    tenants = {
        name: {"openclaw_server": SERVER, "openclaw_port": port, "openclaw_anthropic_api_key": shared} for name, port in (("alpha", 18601), ("beta", 18602))
    }
    refused = site.play("playbooks/preflight.yml", tenants)
    assert refused.returncode != 0
    assert refused.stdout.count("tenant-secret-shared") >= 2, refused.stdout[-4000:]
    assert shared not in refused.stdout
    # Positive control: the same inventory passes once the tenants opt in.
    for settings in tenants.values():
        settings["openclaw_tenant_share_group_secrets"] = True
    allowed = site.play("playbooks/preflight.yml", tenants)
    assert allowed.returncode == 0, allowed.stdout[-4000:]


def superuser_query(pg_cluster, database, statement, values=None):
    return fetch(psycopg2.connect(pg_cluster.dsn_for(database)), statement, values)


def test_service_role_module_converges_to_exactly_its_grants(pg_cluster, tmp_path):
    """openclaw_service_role alone, on the harness cluster: check mode, idempotence, and extra privileges revoked."""
    database = "shared_" + uuid.uuid4().hex[:8]
    other = "other_" + uuid.uuid4().hex[:8]
    role = "openclaw_service_t" + uuid.uuid4().hex[:6]
    password_file = tmp_path / "secrets" / "service.password"
    created = run_module("openclaw.standalone.openclaw_db_schema", {"name": database, "schema": "shared", **pg_cluster.connection_options()})
    assert created.result.get("failed") is not True, created.stdout
    # Like a tenant's database: no CONNECT for PUBLIC.
    pg_cluster.admin(f'CREATE DATABASE "{other}"', f'REVOKE CONNECT ON DATABASE "{other}" FROM PUBLIC')
    args = {
        "name": role,
        "password_file": str(password_file),
        "database": database,
        "grants": [{"table": "waba_phone_mapping", "privileges": ["SELECT"], "columns": ["waba_phone_id", "slug"]}],
        **pg_cluster.connection_options(),
    }
    try:
        predicted = run_module(MODULE, args, "--check")
        assert predicted.result["changed"] and not password_file.exists()
        assert superuser_query(pg_cluster, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)) == [(0,)]

        first = run_module(MODULE, args, "-vvv")
        assert first.result["changed"] and stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text(encoding="utf-8").strip()
        assert password not in first.stdout + first.stderr
        # The statements check mode predicted are the ones that ran (the password masked in both).
        assert predicted.result["executed_statements"] == first.result["executed_statements"]
        assert not run_module(MODULE, args).result["changed"]

        # Privileges someone added by hand are taken away again, and only those.
        pg_cluster.admin(f'GRANT CONNECT ON DATABASE "{other}" TO "{role}"')
        superuser_query(pg_cluster, database, f'GRANT UPDATE ON public.waba_phone_mapping TO "{role}"')
        pg_cluster.admin(f'ALTER ROLE "{role}" CREATEROLE')
        repaired = run_module(MODULE, args)
        assert sorted(repaired.result["executed_statements"]) == sorted(
            [
                f'ALTER ROLE "{role}" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
                f'REVOKE CONNECT ON DATABASE "{other}" FROM "{role}"',
                f'REVOKE UPDATE ON "public"."waba_phone_mapping" FROM "{role}"',
            ]
        )
        connection = psycopg2.connect(pg_cluster.dsn_for(database, user=role, password=password))
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT waba_phone_id, slug FROM waba_phone_mapping")  # positive control
            assert denied(lambda: cursor.execute("SELECT waba_app_secret FROM waba_phone_mapping"))
        connection.close()
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            psycopg2.connect(pg_cluster.dsn_for(other, user=role, password=password))

        # A name a tenant's role could have, or the superuser's, is refused before anything is touched.
        for name in ("openclaw_webhook", pg_cluster.superuser):
            refused = run_module(MODULE, {**args, "name": name})
            assert refused.failed and "nothing was changed" in refused.result["msg"]
    finally:
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
        pg_cluster.admin(f'DROP ROLE IF EXISTS "{role}"')
