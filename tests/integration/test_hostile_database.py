"""A hostile tenant's database: nothing it plants runs with an administrator's rights.

Every attack is set up the way a tenant container could: logged in with the
tenant's own role and password (its OPENCLAW_DB_URL). Each probe records
current_user and session_user when it runs and tries to escalate (RESET ROLE,
then ALTER ROLE <tenant> SUPERUSER); a probe that fired inside an
administrator's session would succeed. Positive controls show each probe is
real: it fires when the tenant triggers it itself, and the converges, the
--check run and capi_event still do their work.
"""

from __future__ import annotations

import secrets
import shutil
import sys

import psycopg2
import pytest
import yaml

from harness.ansible import REPO_ROOT, ansible_env, run, run_module

MODULE = "openclaw.standalone.openclaw_db_schema"
TENANT_VERSIONS = sorted(int(path.name[1:4]) for path in (REPO_ROOT / "migrations" / "tenant").glob("V*.sql"))
NEXT = TENANT_VERSIONS[-1] + 1
TOKEN = "EAAG-hostile-" + secrets.token_hex(10)
DATASET = "424242424242"

# The probe: records who runs it, then tries to become superuser. Runs with the
# rights of its caller (SECURITY INVOKER), as a tenant's trigger would.
PROBE = """
CREATE TABLE public.probe_log (context text, cur_user text, sess_user text, outcome text);
CREATE FUNCTION public.probe(context text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    RESET ROLE;
    EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '{role}');
    INSERT INTO public.probe_log VALUES (context, current_user, session_user, 'escalated');
  EXCEPTION WHEN others THEN
    INSERT INTO public.probe_log VALUES (context, current_user, session_user, SQLERRM);
  END;
END $$;
"""

TRIGGERS = """
CREATE FUNCTION public.probe_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM public.probe('trigger on ' || TG_TABLE_NAME);
  RETURN NULL;
END $$;
CREATE TRIGGER probe AFTER INSERT OR UPDATE ON public.wa_dialogs FOR EACH ROW EXECUTE FUNCTION public.probe_trigger();
CREATE TRIGGER probe AFTER INSERT OR UPDATE ON public.capi_events_log FOR EACH ROW EXECUTE FUNCTION public.probe_trigger();
"""

# Look-alikes of what an administrator's session calls, put first on the
# database's search_path (a database owner may ALTER DATABASE ... SET it).
SHADOWS = """
CREATE FUNCTION public.pg_try_advisory_lock(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.probe('shadow pg_try_advisory_lock'); RETURN pg_catalog.pg_try_advisory_lock($1); END $$;
CREATE FUNCTION public.pg_advisory_unlock(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.probe('shadow pg_advisory_unlock'); RETURN pg_catalog.pg_advisory_unlock($1); END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.probe('shadow now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $$
BEGIN PERFORM public.probe('shadow to_regclass'); RETURN pg_catalog.to_regclass($1); END $$;
CREATE FUNCTION public.pg_get_userbyid(oid) RETURNS name LANGUAGE plpgsql AS $$
BEGIN PERFORM public.probe('shadow pg_get_userbyid'); RETURN pg_catalog.pg_get_userbyid($1); END $$;
CREATE FUNCTION public.name_eq_text(name, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.probe('shadow operator ='); RETURN $1::text OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.name_eq_text);
"""


def connect_as(pg_cluster, dbname, user=None, password=None):
    conn = psycopg2.connect(pg_cluster.dsn_for(dbname, user=user, password=password))
    conn.autocommit = True
    return conn


def execute(pg_cluster, dbname, statement, params=None, user=None, password=None):
    conn = connect_as(pg_cluster, dbname, user, password)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def is_superuser(pg_cluster, role):
    return execute(pg_cluster, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)) == [(True,)]


def probe_rows(pg_cluster, tenant):
    return execute(pg_cluster, tenant["db"], "SELECT context, cur_user, sess_user, outcome FROM public.probe_log ORDER BY 1")


@pytest.fixture(scope="module")
def tenant(pg_cluster, tmp_path_factory, graph_api_server):
    """One tenant converged by migrate.yml, its password generated on the 'server', with a dialog and CAPI settings."""
    tmp = tmp_path_factory.mktemp("hostile")
    slug = "h" + secrets.token_hex(3)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    migrations = tmp / "migrations"
    shutil.copytree(REPO_ROOT / "migrations", migrations)
    inventory = {
        "all": {
            "vars": {
                "openclaw_domain": "example.test",
                "openclaw_secrets_dir": str(tmp / "secrets"),
                "openclaw_backup_dir": str(tmp / "backups"),
                "openclaw_pg_dump_path": f"{pg_cluster.bindir}/pg_dump",
                "openclaw_shared_database": "openclaw_shared_" + slug,
                "openclaw_migrations_dir": str(migrations),
                **local,
            }
        },
        "openclaw_servers": {
            "hosts": {
                "srv1": {
                    "openclaw_postgres_host": pg_cluster.host,
                    "openclaw_postgres_port": pg_cluster.port,
                    "openclaw_postgres_password": pg_cluster.password,
                }
            }
        },
        "openclaw_tenants": {"hosts": {slug: {"openclaw_server": "srv1", "openclaw_port": 18851}}},
    }
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    converged = run("ansible-playbook", "-i", str(path), "playbooks/migrate.yml")
    assert converged.returncode == 0, converged.stdout[-4000:]
    password = (tmp / "secrets" / f"db-{slug}.password").read_text(encoding="utf-8").strip()
    names = {"slug": slug, "db": f"openclaw_{slug}", "role": f"openclaw_{slug}", "password": password, "inventory": path, "migrations": migrations}
    graph_api_server.add_dataset(DATASET, TOKEN)
    execute(
        pg_cluster,
        names["db"],
        "INSERT INTO capi_settings (pixel_id, access_token, whatsapp_business_account_id) VALUES (%s, %s, '109876543210987');"
        "INSERT INTO wa_dialogs (phone, name, incoming_count, ctwa_clid, last_message)"
        " VALUES ('77015550001', 'Probe', 5, 'ARAkProbe', now() - interval '1 hour')",
        (DATASET, TOKEN),
        user=names["role"],
        password=password,
    )
    yield names
    pg_cluster.admin(
        f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)',
        f'DROP DATABASE IF EXISTS "openclaw_shared_{slug}" WITH (FORCE)',
        f'DROP ROLE IF EXISTS "{names["role"]}"',
    )


def as_tenant(tenant):
    return {"user": tenant["role"], "password": tenant["password"]}


def test_tenant_cannot_replace_or_change_the_history(pg_cluster, tenant):
    # Positive controls: the tenant reads the history and uses its own tables.
    assert execute(pg_cluster, tenant["db"], "SELECT count(*) FROM openclaw_meta.schema_history", **as_tenant(tenant)) == [(len(TENANT_VERSIONS),)]
    assert execute(pg_cluster, tenant["db"], "SELECT count(*) FROM public.wa_dialogs", **as_tenant(tenant)) == [(1,)]
    execute(pg_cluster, tenant["db"], "CREATE TABLE public.scratch (id int); DROP TABLE public.scratch", **as_tenant(tenant))

    escalate = "CREATE FUNCTION public.rows() RETURNS SETOF openclaw_meta.schema_history LANGUAGE sql AS 'SELECT * FROM openclaw_meta.schema_history'"
    execute(pg_cluster, tenant["db"], escalate, **as_tenant(tenant))
    attacks = [
        "DROP TABLE openclaw_meta.schema_history",
        "ALTER TABLE openclaw_meta.schema_history RENAME TO old_history",
        "ALTER SCHEMA openclaw_meta RENAME TO old_meta",
        "DROP SCHEMA openclaw_meta CASCADE",
        "CREATE VIEW openclaw_meta.schema_history_v AS SELECT * FROM public.rows()",
        "CREATE TRIGGER probe BEFORE INSERT ON openclaw_meta.schema_history FOR EACH ROW EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()",
        "CREATE RULE probe AS ON INSERT TO openclaw_meta.schema_history DO INSTEAD NOTHING",
        "ALTER TABLE openclaw_meta.schema_history ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE openclaw_meta.schema_history ALTER COLUMN installed_on SET DEFAULT public.now()",
        "INSERT INTO openclaw_meta.schema_history (version, description, type, script, checksum, installed_by, execution_time, success)"
        " VALUES (999, 'x', 'SQL', 'V999__x.sql', 'x', 'x', 0, true)",
        "DELETE FROM openclaw_meta.schema_history",
        "ALTER ROLE openclaw_history_owner LOGIN",
        "SET ROLE openclaw_history_owner",
    ]
    for attack in attacks:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            execute(pg_cluster, tenant["db"], attack, **as_tenant(tenant))
    owners = execute(
        pg_cluster,
        tenant["db"],
        "SELECT pg_get_userbyid(nspowner), (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'openclaw_meta.schema_history'::regclass)"
        " FROM pg_namespace WHERE nspname = 'openclaw_meta'",
    )
    assert owners == [("openclaw_history_owner", "openclaw_history_owner")]
    execute(pg_cluster, tenant["db"], "DROP FUNCTION public.rows()", **as_tenant(tenant))


@pytest.fixture(scope="module")
def planted(pg_cluster, tenant, graph_api_server):
    """Triggers on the tables a migration and capi_event write, look-alike functions first on the search_path;
    then a --check, a converge that applies a new migration, and capi_event, as operators run them."""
    execute(pg_cluster, tenant["db"], PROBE.format(role=tenant["role"]) + TRIGGERS + SHADOWS, **as_tenant(tenant))
    execute(pg_cluster, tenant["db"], f'ALTER DATABASE "{tenant["db"]}" SET search_path = public, pg_catalog', **as_tenant(tenant))
    # The next migration writes the table the tenant put a trigger on.
    (tenant["migrations"] / "tenant" / f"V{NEXT:03d}__summarise_dialogs.sql").write_text("UPDATE wa_dialogs SET summary = 'reviewed';\n", encoding="utf-8")
    inventory = ["-i", str(tenant["inventory"])]
    # Which role each connection logs in as (the pre-migration dump's too).
    pg_cluster.admin("ALTER SYSTEM SET log_connections = on", "SELECT pg_reload_conf()")
    log_start = pg_cluster.log_file.stat().st_size
    checked = run("ansible-playbook", *inventory, "playbooks/migrate.yml", "--check")
    after_check = probe_rows(pg_cluster, tenant)
    migrated = run("ansible-playbook", *inventory, "playbooks/migrate.yml")
    env = ansible_env(REQUESTS_CA_BUNDLE=str(graph_api_server.ca_file))
    graph_api_server.reset()
    sent = run(
        "ansible-playbook", *inventory, "playbooks/capi_event.yml", "--limit", tenant["slug"],
        "-e", "phone=77015550001", "-e", "level=1", "-e", f"openclaw_capi_graph_url={graph_api_server.url}", env=env,
    )  # fmt: skip
    pg_cluster.admin("ALTER SYSTEM RESET log_connections", "SELECT pg_reload_conf()")
    with open(pg_cluster.log_file, encoding="utf-8", errors="replace") as log:
        log.seek(log_start)
        logins = [line.split("connection authorized: ", 1)[1].strip() for line in log if "connection authorized: " in line]
    return {
        "checked": checked,
        "after_check": after_check,
        "migrated": migrated,
        "sent": sent,
        "requests": graph_api_server.requests(),
        "logins": logins,
    }


def test_tenant_triggers_run_only_as_the_tenant(pg_cluster, tenant, planted):
    assert planted["checked"].returncode == 0, planted["checked"].stdout[-3000:]
    assert planted["migrated"].returncode == 0, planted["migrated"].stdout[-3000:]
    assert planted["sent"].returncode == 0, planted["sent"].stdout[-3000:]
    # Check mode ran nothing a tenant planted.
    assert planted["after_check"] == []
    # The migration was applied and recorded, the event sent: the probes were in the way of real work.
    history = execute(pg_cluster, tenant["db"], "SELECT version, installed_by FROM openclaw_meta.schema_history ORDER BY version")
    assert history[-1] == (NEXT, tenant["role"])
    assert len(planted["requests"]) == 1
    rows = probe_rows(pg_cluster, tenant)
    # Positive control: the triggers fired, for the migration (wa_dialogs) and for capi_event (capi_events_log).
    assert {"trigger on wa_dialogs", "trigger on capi_events_log"} <= {row[0] for row in rows}
    triggered = [row for row in rows if row[0].startswith("trigger")]
    assert all(row[1:3] == (tenant["role"], tenant["role"]) for row in triggered), triggered
    assert all(row[3] != "escalated" for row in triggered), triggered
    assert not is_superuser(pg_cluster, tenant["role"])


def test_dumps_and_migrations_log_in_as_the_tenant(pg_cluster, tenant, planted):
    assert planted["migrated"].returncode == 0, planted["migrated"].stdout[-3000:]
    into_tenant_db = [login for login in planted["logins"] if f"database={tenant['db']} " in login + " "]
    # Positive control: the pre-migration dump and the migration connected, as the tenant.
    assert any(f"user={tenant['role']} " in login and "application_name=pg_dump" in login for login in into_tenant_db), into_tenant_db
    assert len(list((tenant["inventory"].parent / "backups").glob(f"{tenant['db']}-*-pre-v{NEXT:03d}.dump"))) == 1
    # The superuser entered the tenant's database only for the history, the lock and ownership: never pg_dump.
    assert not [login for login in into_tenant_db if "user=postgres " in login and "pg_dump" in login]


def test_lookalike_functions_and_operators_are_never_called_by_an_administrator(pg_cluster, tenant, planted):
    assert planted["migrated"].returncode == 0, planted["migrated"].stdout[-3000:]
    assert planted["sent"].returncode == 0, planted["sent"].stdout[-3000:]
    shadowed = [row for row in probe_rows(pg_cluster, tenant) if row[0].startswith("shadow")]
    assert all(row[1:3] == (tenant["role"], tenant["role"]) for row in shadowed), shadowed
    # Positive control: in a session that does not pin its search_path - the
    # tenant's own - the database's setting puts the look-alikes first.
    for call in ("SELECT now()", "SELECT pg_try_advisory_lock(1)", "SELECT to_regclass('public.wa_dialogs')", "SELECT 'a'::name = 'a'::text"):
        execute(pg_cluster, tenant["db"], call, **as_tenant(tenant))
    contexts = {row[0] for row in probe_rows(pg_cluster, tenant) if row[2] == tenant["role"]}
    assert {"shadow now", "shadow pg_try_advisory_lock", "shadow to_regclass", "shadow operator ="} <= contexts
    # A superuser session without the pinned path would have called them too.
    execute(pg_cluster, tenant["db"], "SELECT now()")
    assert [row[3] for row in probe_rows(pg_cluster, tenant) if row[2] == "postgres"] == ["escalated"]
    execute(pg_cluster, "postgres", f'ALTER ROLE "{tenant["role"]}" NOSUPERUSER')
    execute(pg_cluster, tenant["db"], "DELETE FROM public.probe_log WHERE sess_user OPERATOR(pg_catalog.=) 'postgres'")
    assert not is_superuser(pg_cluster, tenant["role"])


@pytest.fixture
def adopted(pg_cluster):
    """A second tenant database, converged by the module, whose history the test then tampers with as the superuser
    (modelling a database adopted with something already planted)."""
    slug = "h" + secrets.token_hex(3)
    names = {"slug": slug, "db": f"openclaw_{slug}", "role": f"openclaw_{slug}", "password": secrets.token_urlsafe(18)}
    options = {**pg_cluster.connection_options(), "name": names["db"], "owner": names["role"], "owner_password": names["password"]}
    created = run_module(MODULE, options)
    assert created.returncode == 0, created.stdout
    execute(pg_cluster, names["db"], PROBE.format(role=names["role"]), **as_tenant(names))
    execute(
        pg_cluster,
        names["db"],
        "CREATE FUNCTION public.history_rows() RETURNS SETOF openclaw_meta.schema_history LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM public.probe('history view'); RETURN QUERY SELECT * FROM openclaw_meta.real_history; END $$;"
        "CREATE FUNCTION public.history_trigger() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM public.probe('history trigger'); RETURN NEW; END $$",
        **as_tenant(names),
    )
    yield {**names, "options": options}
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{names["role"]}"')


@pytest.mark.parametrize(
    ("plant", "refusal"),
    [
        (
            "ALTER TABLE openclaw_meta.schema_history RENAME TO real_history;"
            " CREATE VIEW openclaw_meta.schema_history AS SELECT * FROM public.history_rows();"
            " ALTER VIEW openclaw_meta.schema_history OWNER TO openclaw_history_owner;"
            ' GRANT SELECT ON openclaw_meta.schema_history, openclaw_meta.real_history TO "{role}"',
            "it is a view, not a plain table",
        ),
        (
            "CREATE TRIGGER probe BEFORE INSERT OR UPDATE ON openclaw_meta.schema_history FOR EACH ROW EXECUTE FUNCTION public.history_trigger()",
            "triggers: probe",
        ),
        (
            "ALTER TABLE openclaw_meta.schema_history ALTER COLUMN installed_by SET DEFAULT public.history_trigger_name()",
            "using objects outside pg_catalog: function public.history_trigger_name()",
        ),
    ],
    ids=["view", "trigger", "default"],
)
def test_a_planted_history_is_refused_and_never_run(pg_cluster, adopted, tmp_path, plant, refusal):
    execute(pg_cluster, adopted["db"], "CREATE FUNCTION public.history_trigger_name() RETURNS text LANGUAGE plpgsql AS $$"
            " BEGIN PERFORM public.probe('history default'); RETURN 'x'; END $$", **as_tenant(adopted))  # fmt: skip
    execute(pg_cluster, adopted["db"], plant.format(role=adopted["role"]))
    # Positive control: the planted object is live - the tenant's own use runs it.
    if "VIEW" in plant:
        execute(pg_cluster, adopted["db"], "SELECT count(*) FROM openclaw_meta.schema_history", **as_tenant(adopted))
        assert [row[0] for row in probe_rows(pg_cluster, adopted)] == ["history view"]
        execute(pg_cluster, adopted["db"], "DELETE FROM public.probe_log", **as_tenant(adopted))

    migrations = tmp_path / "m"
    shutil.copytree(REPO_ROOT / "migrations" / "tenant", migrations)
    (migrations / f"V{NEXT:03d}__next.sql").write_text("CREATE TABLE public.next_table (id int);\n", encoding="utf-8")
    for options in ((), ("--check",)):
        refused = run_module(MODULE, {**adopted["options"], "migrations_path": str(migrations)}, *options)
        assert refused.returncode != 0, refused.stdout
        assert "openclaw_meta.schema_history is not safe to read or write as an administrator" in refused.result["msg"]
        assert refusal in refused.result["msg"]
        assert refused.result["applied"] == []
    assert probe_rows(pg_cluster, adopted) == []
    assert execute(pg_cluster, adopted["db"], "SELECT to_regclass('public.next_table')") == [(None,)]
    assert not is_superuser(pg_cluster, adopted["role"])


def test_history_an_older_version_left_to_the_tenant_is_taken_over(pg_cluster, adopted):
    # Older collection versions gave openclaw_meta to the tenant's role.
    execute(
        pg_cluster,
        adopted["db"],
        f'ALTER SCHEMA openclaw_meta OWNER TO "{adopted["role"]}"; ALTER TABLE openclaw_meta.schema_history OWNER TO "{adopted["role"]}"',
    )
    checked = run_module(MODULE, adopted["options"], "--check")
    assert checked.returncode == 0, checked.stdout
    assert 'ALTER SCHEMA "openclaw_meta" OWNER TO "openclaw_history_owner"' in checked.result["executed_statements"]
    assert checked.result["pending"] == []
    taken = run_module(MODULE, adopted["options"])
    assert taken.returncode == 0, taken.stdout
    assert taken.result["executed_statements"] == checked.result["executed_statements"]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        execute(pg_cluster, adopted["db"], "DROP TABLE openclaw_meta.schema_history", **as_tenant(adopted))
    assert execute(pg_cluster, adopted["db"], "SELECT count(*) FROM openclaw_meta.schema_history", **as_tenant(adopted)) == [(len(TENANT_VERSIONS),)]
    assert run_module(MODULE, adopted["options"]).result["changed"] is False

    # The same older layout with a trigger the tenant added while it owned the table.
    execute(
        pg_cluster,
        adopted["db"],
        f'ALTER SCHEMA openclaw_meta OWNER TO "{adopted["role"]}"; ALTER TABLE openclaw_meta.schema_history OWNER TO "{adopted["role"]}"',
    )
    execute(
        pg_cluster,
        adopted["db"],
        "CREATE TRIGGER probe BEFORE INSERT ON openclaw_meta.schema_history FOR EACH ROW EXECUTE FUNCTION public.history_trigger()",
        **as_tenant(adopted),
    )
    refused = run_module(MODULE, adopted["options"])
    assert refused.returncode != 0
    assert "triggers: probe" in refused.result["msg"]
    # Refused before anything else: the take-over was rolled back with it.
    owner = execute(pg_cluster, adopted["db"], "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'openclaw_meta.schema_history'::regclass")
    assert owner == [(adopted["role"],)]
    assert probe_rows(pg_cluster, adopted) == []
    assert not is_superuser(pg_cluster, adopted["role"])
