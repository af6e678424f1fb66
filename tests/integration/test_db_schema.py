"""openclaw_db_schema against a real PostgreSQL cluster, called the way operators call it (ad hoc)."""

from __future__ import annotations

import secrets
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import psycopg2
import pytest

from harness import catalog
from harness.ansible import REPO_ROOT, run_module
from harness.common import free_port

MODULE = "openclaw.standalone.openclaw_db_schema"
TENANT_MIGRATIONS = REPO_ROOT / "migrations" / "tenant"
TENANT_VERSIONS = sorted(int(path.name[1:4]) for path in TENANT_MIGRATIONS.glob("V*.sql"))
LATEST = TENANT_VERSIONS[-1]

# What the migrations after the baseline change on purpose, against the seed's
# catalog (each change is explained in its migration file).
CHANGES_AFTER_BASELINE = sorted(
    [
        "capi_settings.whatsapp_business_account_id: extra column",
        "capi_settings.partner_agent: extra column",
        'capi_settings.l2_event_name: expected {"default": "\'CompleteRegistration\'::text", "not_null": false, "type": "text"},'
        ' found {"default": "\'QualifiedLead\'::text", "not_null": false, "type": "text"}',
        "capi_events_log.attempt: extra column",
        "capi_events_log.fbtrace_id: extra column",
        "capi_events_log: indexes extra: CREATE UNIQUE INDEX ON public.capi_events_log USING btree (event_id)"
        " WHERE ((status = 'success'::text) AND (event_id IS NOT NULL))",
        # V003: customers known by a business-scoped user id, messages recorded once.
        "capi_events_log.bsuid: extra column",
        'capi_events_log.phone: expected {"default": null, "not_null": true, "type": "text"}, found {"default": null, "not_null": false, "type": "text"}',
        "leads.bsuid: extra column",
        "wa_dialogs.bsuid: extra column",
        'wa_dialogs.phone: expected {"default": null, "not_null": true, "type": "text"}, found {"default": null, "not_null": false, "type": "text"}',
        "wa_dialogs: checks extra: CHECK (((phone IS NOT NULL) OR (bsuid IS NOT NULL)))",
        "wa_dialogs: indexes extra: CREATE UNIQUE INDEX ON public.wa_dialogs USING btree (bsuid)",
        "wa_dialogs: unique extra: UNIQUE (bsuid)",
        "wa_messages.bsuid: extra column",
        "wa_messages.message_id: extra column",
        'wa_messages.phone: expected {"default": null, "not_null": true, "type": "text"}, found {"default": null, "not_null": false, "type": "text"}',
        "wa_messages: checks extra: CHECK (((phone IS NOT NULL) OR (bsuid IS NOT NULL)))",
        "wa_messages: indexes extra: CREATE INDEX ON public.wa_messages USING btree (bsuid, created_at DESC) WHERE (bsuid IS NOT NULL)",
        "wa_messages: indexes extra: CREATE UNIQUE INDEX ON public.wa_messages USING btree (channel, message_id)",
        # V004: a creative the upload service could not make keeps the reason.
        "creatives.failure_reason: extra column",
    ]
)


def unique_slug() -> str:
    return "t" + secrets.token_hex(4)


def schema(pg_cluster, **args):
    return {**pg_cluster.connection_options(), **args}


def query(pg_cluster, dbname: str, statement: str, params=(), user=None, password=None):
    with psycopg2.connect(pg_cluster.dsn_for(dbname, user=user, password=password)) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def history(pg_cluster, dbname: str):
    return query(pg_cluster, dbname, "SELECT version, type, script, success FROM openclaw_meta.schema_history ORDER BY version")


def database_exists(pg_cluster, dbname: str) -> bool:
    return bool(query(pg_cluster, "postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)))


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for existing in directory.glob("*.sql"):
        existing.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def tenant(pg_cluster):
    """A tenant database name and owner role, dropped after the test."""
    slug = unique_slug()
    names = {"name": f"openclaw_{slug}", "owner": f"openclaw_{slug}", "owner_password": secrets.token_urlsafe(18)}
    yield names
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "{names["name"]}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{names["owner"]}"')


def test_baseline_alone_reproduces_the_seed_catalog_exactly(pg_cluster, tenant, tmp_path):
    baseline_only = tmp_path / "baseline"
    baseline_only.mkdir()
    shutil.copy(TENANT_MIGRATIONS / "V001__baseline.sql", baseline_only)
    created = run_module(MODULE, schema(pg_cluster, migrations_path=str(baseline_only), **tenant))
    assert created.result["applied"] == [1]
    assert catalog.differences(catalog.reference("tenant"), catalog.snapshot(pg_cluster.dsn_for(tenant["name"]))) == []


def test_fresh_database_gets_the_reference_schema_then_nothing_changes(pg_cluster, tenant):
    first = run_module(MODULE, schema(pg_cluster, **tenant), "--diff")
    assert first.returncode == 0, first.stdout + first.stderr
    result = first.result
    assert result["changed"] is True
    assert result["created"] == {"database": True, "role": True}
    assert result["applied"] == TENANT_VERSIONS
    assert result["version"] == LATEST
    assert result["diff"]["before"]["database"] == "absent"
    assert result["diff"]["after"]["version"] == LATEST

    dsn = pg_cluster.dsn_for(tenant["name"])
    assert sorted(catalog.differences(catalog.reference("tenant"), catalog.snapshot(dsn))) == CHANGES_AFTER_BASELINE
    assert history(pg_cluster, tenant["name"])[0] == (1, "SQL", "V001__baseline.sql", True)
    assert [row[0] for row in history(pg_cluster, tenant["name"])] == TENANT_VERSIONS
    assert query(pg_cluster, tenant["name"], "SELECT id FROM config") == [(1,)]
    assert query(pg_cluster, tenant["name"], "SELECT from_currency, to_currency, rate FROM currency_rates")[0][:2] == ("USD", "KZT")
    # Everything in public belongs to the tenant's role (its migrations ran as
    # that role); the history belongs to a role the tenant cannot act as, and the
    # tenant may only read it.
    owners = query(
        pg_cluster,
        tenant["name"],
        "SELECT DISTINCT nspname, pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE nspname IN ('public', 'openclaw_meta') ORDER BY 1",
    )
    assert owners == [("openclaw_meta", "openclaw_history_owner"), ("public", tenant["owner"])]
    assert query(pg_cluster, tenant["name"], "SELECT DISTINCT installed_by FROM openclaw_meta.schema_history") == [(tenant["owner"],)]
    as_tenant = {"user": tenant["owner"], "password": tenant["owner_password"]}
    assert query(pg_cluster, tenant["name"], "SELECT count(*) FROM openclaw_meta.schema_history", **as_tenant) == [(len(TENANT_VERSIONS),)]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        query(pg_cluster, tenant["name"], "DELETE FROM openclaw_meta.schema_history", **as_tenant)

    second = run_module(MODULE, schema(pg_cluster, **tenant))
    assert second.result["changed"] is False
    assert second.result["applied"] == []
    assert second.result["executed_statements"] == []

    checked = run_module(MODULE, schema(pg_cluster, **tenant), "--check")
    assert checked.result["changed"] is False
    assert checked.result["pending"] == []


def test_check_mode_on_a_missing_database_creates_nothing(pg_cluster, tenant):
    checked = run_module(MODULE, schema(pg_cluster, **tenant), "--check", "--diff")
    assert checked.returncode == 0, checked.stdout
    assert checked.result["changed"] is True
    assert checked.result["pending"] == TENANT_VERSIONS
    assert not database_exists(pg_cluster, tenant["name"])
    assert query(pg_cluster, "postgres", "SELECT 1 FROM pg_roles WHERE rolname = %s", (tenant["owner"],)) == []

    # The real run starts with exactly the statements check mode predicted
    # (it then also hands the objects its migrations created to the owner).
    real = run_module(MODULE, schema(pg_cluster, **tenant))
    predicted = checked.result["executed_statements"]
    assert predicted[:2] == [f'CREATE ROLE "{tenant["owner"]}" LOGIN PASSWORD ********', f'CREATE DATABASE "{tenant["name"]}" OWNER "{tenant["owner"]}"']
    # The history's owner role, once per cluster (another test may have created it).
    assert predicted[2:] in ([], ['CREATE ROLE "openclaw_history_owner" NOLOGIN'])
    assert real.result["executed_statements"][: len(predicted)] == predicted


def test_check_mode_reports_pending_and_writes_nothing(pg_cluster, tenant, tmp_path):
    migrations = write_migrations(tmp_path / "m", {"V001__first.sql": "CREATE TABLE first (id int PRIMARY KEY);\n"})
    assert run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant)).returncode == 0
    write_migrations(
        migrations,
        {"V001__first.sql": "CREATE TABLE first (id int PRIMARY KEY);\n", "V002__second.sql": "CREATE TABLE second (id int PRIMARY KEY);\n"},
    )
    before = catalog.snapshot(pg_cluster.dsn_for(tenant["name"]))
    checked = run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant), "--check")
    assert checked.result["changed"] is True
    assert checked.result["pending"] == [2]
    assert checked.result["version"] == 2
    assert catalog.snapshot(pg_cluster.dsn_for(tenant["name"])) == before
    assert history(pg_cluster, tenant["name"]) == [(1, "SQL", "V001__first.sql", True)]

    applied = run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant))
    assert applied.result["applied"] == [2]
    assert "second" in catalog.snapshot(pg_cluster.dsn_for(tenant["name"]))["tables"]


def test_changed_applied_file_fails_naming_it_unless_repaired(pg_cluster, tenant, tmp_path):
    migrations = write_migrations(tmp_path / "m", {"V001__first.sql": "CREATE TABLE first (id int);\n"})
    assert run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant)).returncode == 0
    write_migrations(migrations, {"V001__first.sql": "CREATE TABLE first (id bigint);\n"})

    drift = run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant))
    assert drift.returncode != 0
    assert "checksum of applied migration V001__first.sql changed" in drift.result["msg"]

    repaired = run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), repair=True, **tenant))
    assert repaired.returncode == 0, repaired.stdout
    assert repaired.result["changed"] is True
    assert repaired.result["repaired"] == ["V001__first.sql"]
    assert run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant)).result["changed"] is False


def test_failing_migration_rolls_back_completely_and_names_file_and_line(pg_cluster, tenant, tmp_path):
    good = "CREATE TABLE first (id int);\n"
    migrations = write_migrations(tmp_path / "m", {"V001__first.sql": good})
    assert run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant)).returncode == 0
    before = catalog.snapshot(pg_cluster.dsn_for(tenant["name"]))
    write_migrations(
        migrations,
        {"V001__first.sql": good, "V002__broken.sql": "CREATE TABLE second (id int);\nINSERT INTO second VALUES (1);\nSELECT no_such_column FROM second;\n"},
    )
    failed = run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant))
    assert failed.returncode != 0
    message = failed.result["msg"]
    assert "V002__broken.sql failed at line 3 and was rolled back" in message
    assert 'column "no_such_column" does not exist' in message
    assert catalog.snapshot(pg_cluster.dsn_for(tenant["name"])) == before
    assert history(pg_cluster, tenant["name"]) == [(1, "SQL", "V001__first.sql", True)]


def test_concurrent_runs_apply_each_migration_exactly_once(pg_cluster, tenant, tmp_path):
    # pg_sleep makes the first migration slow enough that the runs overlap.
    migrations = write_migrations(
        tmp_path / "m",
        {
            "V001__slow.sql": "SELECT pg_sleep(1.5);\nCREATE TABLE counter (n int);\n",
            "V002__insert.sql": "INSERT INTO counter VALUES (1);\n",
        },
    )
    runs = []

    def migrate():
        runs.append(run_module(MODULE, schema(pg_cluster, migrations_path=str(migrations), **tenant)))

    threads = [threading.Thread(target=migrate) for _index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert [run.returncode for run in runs] == [0, 0, 0], [run.stdout for run in runs]
    applied = sorted(version for run in runs for version in run.result["applied"])
    assert applied == [1, 2]
    assert query(pg_cluster, tenant["name"], "SELECT count(*) FROM counter") == [(1,)]
    assert [row[0] for row in history(pg_cluster, tenant["name"])] == [1, 2]


def seed_style_database(pg_cluster, dbname: str, drop_table: str | None = None):
    """A database as the seed's create-client.sh left it: baseline tables owned by postgres, rows, no history."""
    pg_cluster.admin(f'CREATE DATABASE "{dbname}"')
    with psycopg2.connect(pg_cluster.dsn_for(dbname)) as conn, conn.cursor() as cur:
        cur.execute((TENANT_MIGRATIONS / "V001__baseline.sql").read_text(encoding="utf-8"))
        cur.execute("UPDATE config SET fb_page_id = %s WHERE id = 1", ("page-42",))
        cur.execute("INSERT INTO wa_dialogs (phone, name, incoming_count) VALUES (%s, %s, %s)", ("77011234567", "Aliya", 5))
        # The old send script could log one event as sent twice.
        for minute in (1, 2):
            cur.execute(
                "INSERT INTO capi_events_log (phone, event_name, event_level, pixel_id, event_id, status, sent_at)"
                " VALUES ('77011234567', 'LeadSubmitted', 1, 'px', 'evt-dup', 'success', now() - %s * interval '1 minute')",
                (minute,),
            )
        if drop_table:
            cur.execute(f"DROP TABLE {drop_table} CASCADE")


def test_seed_style_database_is_adopted_without_touching_data(pg_cluster, tenant):
    seed_style_database(pg_cluster, tenant["name"])
    before = catalog.snapshot(pg_cluster.dsn_for(tenant["name"]))
    checked = run_module(MODULE, schema(pg_cluster, **tenant), "--check")
    assert checked.result["baselined"] is True
    assert catalog.snapshot(pg_cluster.dsn_for(tenant["name"])) == before
    assert query(pg_cluster, tenant["name"], "SELECT to_regclass('openclaw_meta.schema_history')") == [(None,)]

    adopted = run_module(MODULE, schema(pg_cluster, **tenant))
    assert adopted.returncode == 0, adopted.stdout
    assert adopted.result["baselined"] is True
    assert adopted.result["applied"] == TENANT_VERSIONS[1:]
    # Check mode predicted every statement of the adoption except the history
    # table's own ownership (it does not exist before the real run).
    real = [statement for statement in adopted.result["executed_statements"] if "openclaw_meta" not in statement]
    assert checked.result["executed_statements"] == real
    assert any(statement.startswith('ALTER TABLE "public"."wa_dialogs" OWNER TO') for statement in real)
    assert history(pg_cluster, tenant["name"])[0] == (1, "BASELINE", "V001__baseline.sql", True)
    assert query(pg_cluster, tenant["name"], "SELECT fb_page_id FROM config WHERE id = 1") == [("page-42",)]
    assert query(pg_cluster, tenant["name"], "SELECT phone, name, incoming_count FROM wa_dialogs") == [("77011234567", "Aliya", 5)]
    # V002 kept both log rows of the duplicate and re-marked the later one.
    assert query(pg_cluster, tenant["name"], "SELECT status FROM capi_events_log WHERE event_id = 'evt-dup' ORDER BY sent_at") == [("success",), ("error",)]
    # Adopted tables now belong to the tenant's role, which can use them.
    assert query(pg_cluster, tenant["name"], "SELECT count(*) FROM wa_dialogs", user=tenant["owner"], password=tenant["owner_password"]) == [(1,)]
    assert run_module(MODULE, schema(pg_cluster, **tenant)).result["changed"] is False


def test_partially_present_database_is_refused_naming_missing_tables(pg_cluster, tenant):
    # A table no later migration changes, so the forced baseline can go on.
    seed_style_database(pg_cluster, tenant["name"], drop_table="scoring_executions")
    refused = run_module(MODULE, schema(pg_cluster, **tenant))
    assert refused.returncode != 0
    assert "missing: scoring_executions" in refused.result["msg"]
    assert query(pg_cluster, tenant["name"], "SELECT to_regclass('openclaw_meta.schema_history')") == [(None,)]

    forced = run_module(MODULE, schema(pg_cluster, baseline="force", **tenant))
    assert forced.returncode == 0, forced.stdout
    assert forced.result["baselined"] is True


def test_tenant_role_cannot_open_another_tenants_database(pg_cluster, tenant):
    other = {"name": tenant["name"] + "x", "owner": tenant["owner"] + "x", "owner_password": secrets.token_urlsafe(18)}
    try:
        assert run_module(MODULE, schema(pg_cluster, **tenant)).returncode == 0
        assert run_module(MODULE, schema(pg_cluster, **other)).returncode == 0
        own = query(pg_cluster, tenant["name"], "SELECT current_user", user=tenant["owner"], password=tenant["owner_password"])
        assert own == [(tenant["owner"],)]
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            query(pg_cluster, other["name"], "SELECT 1", user=tenant["owner"], password=tenant["owner_password"])
    finally:
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{other["name"]}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{other["owner"]}"')


def test_changed_owner_password_is_set_and_never_printed(pg_cluster, tenant):
    assert run_module(MODULE, schema(pg_cluster, **tenant)).returncode == 0
    new_password = "rotated-" + secrets.token_hex(8)
    rotated = run_module(MODULE, schema(pg_cluster, **{**tenant, "owner_password": new_password}), "-vvv")
    assert rotated.result["changed"] is True
    assert any("PASSWORD ********" in statement for statement in rotated.result["executed_statements"])
    assert new_password not in rotated.stdout + rotated.stderr
    assert query(pg_cluster, tenant["name"], "SELECT 1", user=tenant["owner"], password=new_password) == [(1,)]
    assert run_module(MODULE, schema(pg_cluster, **{**tenant, "owner_password": new_password})).result["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "openclaw_Bad"}, "slug-charset"),
        ({"name": "aliya"}, "a tenant database is named openclaw_<slug>"),
        ({"name": 'openclaw_x"; DROP DATABASE postgres; --'}, "slug-charset"),
        ({"name": "openclaw_ok", "owner": "pg_admin"}, "reserved by PostgreSQL"),
        ({"name": "openclaw_ok", "owner": "Robert'); DROP TABLE"}, "role-name"),
        ({"name": "Openclaw", "schema": "shared"}, "database-name"),
    ],
)
def test_bad_names_are_refused_before_connecting(args, message):
    # Port 9 on loopback has no PostgreSQL: reaching it would be a connection error instead.
    refused = run_module(MODULE, {"login_host": "127.0.0.1", "login_port": 9, **args})
    assert refused.returncode != 0
    assert "invalid input, nothing was done" in refused.result["msg"]
    assert message in refused.result["msg"]


def test_unreachable_server_is_one_clear_error():
    refused = run_module(MODULE, {"name": "openclaw_down", "login_host": "127.0.0.1", "login_port": free_port(), "login_password": "x", "connect_timeout": 3})
    assert refused.returncode != 0
    assert refused.result["msg"].startswith("unable to connect to database postgres on 127.0.0.1:")
    assert "Traceback" not in refused.stdout


def test_absent_without_purge_is_refused(pg_cluster, tenant):
    assert run_module(MODULE, schema(pg_cluster, **tenant)).returncode == 0
    refused = run_module(MODULE, schema(pg_cluster, state="absent", **tenant))
    assert refused.returncode != 0
    assert "set purge=true to confirm" in refused.result["msg"]
    assert database_exists(pg_cluster, tenant["name"])


def test_purge_dumps_first_and_the_dump_restores(pg_cluster, tenant, tmp_path):
    assert run_module(MODULE, schema(pg_cluster, **tenant)).returncode == 0
    query(pg_cluster, tenant["name"], "INSERT INTO wa_dialogs (phone, name) VALUES ('77010000001', 'kept')")
    backups = tmp_path / "backups"

    checked = run_module(MODULE, schema(pg_cluster, state="absent", purge=True, backup_dir=str(backups), **tenant), "--check")
    assert checked.result["changed"] is True
    assert database_exists(pg_cluster, tenant["name"])
    assert not backups.exists()

    pg_dump = shutil.which("pg_dump") or f"{pg_cluster.bindir}/pg_dump"
    purged = run_module(MODULE, schema(pg_cluster, state="absent", purge=True, backup_dir=str(backups), pg_dump_path=pg_dump, **tenant))
    assert purged.returncode == 0, purged.stdout
    dump = Path(purged.result["backup_file"])
    assert dump.parent == backups
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert not database_exists(pg_cluster, tenant["name"])
    assert run_module(MODULE, schema(pg_cluster, state="absent", purge=True, backup_dir=str(backups), **tenant)).result["changed"] is False

    restored = tenant["name"] + "_restored"
    pg_cluster.admin(f'CREATE DATABASE "{restored}"')
    try:
        completed = subprocess.run(
            # The purge dropped the tenant's role too: restore without its grants.
            [
                f"{pg_cluster.bindir}/pg_restore",
                "--no-owner",
                "--no-privileges",
                "-h",
                pg_cluster.host,
                "-p",
                str(pg_cluster.port),
                "-U",
                "postgres",
                "-d",
                restored,
                str(dump),
            ],
            env={"PGPASSWORD": pg_cluster.password},
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert query(pg_cluster, restored, "SELECT name FROM wa_dialogs") == [("kept",)]
        assert [row[0] for row in query(pg_cluster, restored, "SELECT version FROM openclaw_meta.schema_history ORDER BY version")] == TENANT_VERSIONS
    finally:
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{restored}"')


def test_shared_database_matches_its_reference(pg_cluster, tmp_path):
    name = "openclaw_shared_" + secrets.token_hex(3)
    shared = REPO_ROOT / "migrations" / "shared"
    baseline_only = tmp_path / "baseline"
    baseline_only.mkdir()
    shutil.copy(shared / "V001__baseline.sql", baseline_only)
    try:
        created = run_module(MODULE, schema(pg_cluster, name=name, schema="shared", migrations_path=str(baseline_only)))
        assert created.returncode == 0, created.stdout
        assert created.result["applied"] == [1]
        assert catalog.differences(catalog.reference("shared"), catalog.snapshot(pg_cluster.dsn_for(name))) == []
        # The later files apply on top, run by the administrator that owns the shared database.
        migrated = run_module(MODULE, schema(pg_cluster, name=name, schema="shared"))
        assert migrated.returncode == 0, migrated.stdout
        assert [1, *migrated.result["applied"]] == sorted(int(path.name[1:4]) for path in shared.glob("V*.sql"))
        assert history(pg_cluster, name)[0] == (1, "SQL", "V001__baseline.sql", True)
        assert query(pg_cluster, name, "SELECT DISTINCT installed_by FROM openclaw_meta.schema_history") == [("postgres",)]
        assert run_module(MODULE, schema(pg_cluster, name=name, schema="shared")).result["changed"] is False
    finally:
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_existing_database_is_dumped_before_pending_migrations_with_retention(pg_cluster, tenant, tmp_path):
    backups = tmp_path / "backups"
    scripts = {"V001__first.sql": "CREATE TABLE t1 (id int);\n"}
    migrations = write_migrations(tmp_path / "m", scripts)
    options = schema(pg_cluster, migrations_path=str(migrations), backup=True, backup_keep=2, backup_dir=str(backups), **tenant)

    created = run_module(MODULE, options)
    assert "backup_file" not in created.result  # nothing to lose in a new database

    for version in (2, 3, 4):
        scripts[f"V{version:03d}__step.sql"] = f"CREATE TABLE t{version} (id int);\n"
        write_migrations(migrations, scripts)
        stepped = run_module(MODULE, options)
        assert stepped.returncode == 0, stepped.stdout
        assert stepped.result["applied"] == [version]
        assert stepped.result["backup_file"].endswith(f"-pre-v{version:03d}.dump")

    kept = sorted(path.name for path in backups.glob("*.dump"))
    assert [name.rsplit("-", 1)[-1] for name in kept] == ["v003.dump", "v004.dump"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in backups.glob("*.dump"))
    assert not list(backups.glob(".*partial"))

    unchanged = run_module(MODULE, options)
    assert unchanged.result["changed"] is False
    assert "backup_file" not in unchanged.result
    assert len(list(backups.glob("*.dump"))) == 2


def test_password_files_are_generated_on_the_host_once_and_never_printed(pg_cluster, tenant, tmp_path):
    secret_file = tmp_path / "secrets" / "db.password"
    superuser_file = tmp_path / "superuser.password"
    superuser_file.write_text(pg_cluster.password + "\n", encoding="utf-8")
    options = {
        **{key: value for key, value in schema(pg_cluster, **tenant).items() if key not in ("owner_password", "login_password")},
        "owner_password_file": str(secret_file),
        "login_password_file": str(superuser_file),
    }

    checked = run_module(MODULE, options, "--check")
    assert checked.result["changed"] is True
    assert not secret_file.exists()

    created = run_module(MODULE, options, "-vvv")
    assert created.returncode == 0, created.stdout
    assert created.result["generated_password_file"] == str(secret_file)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    password = secret_file.read_text(encoding="utf-8").strip()
    assert password not in created.stdout + created.stderr
    assert pg_cluster.password not in created.stdout + created.stderr
    assert query(pg_cluster, tenant["name"], "SELECT current_user", user=tenant["owner"], password=password) == [(tenant["owner"],)]

    again = run_module(MODULE, options)
    assert again.result["changed"] is False
    assert "generated_password_file" not in again.result
    assert secret_file.read_text(encoding="utf-8").strip() == password


def test_pruning_keeps_other_databases_dumps_whose_names_share_a_prefix(pg_cluster, tenant, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    # Dumps of another tenant whose slug extends this one's (openclaw_<slug>-2).
    neighbours = [backups / f"{tenant['name']}-2-20260101T00000000000{index}Z-pre-v002.dump" for index in range(3)]
    for path in neighbours:
        path.write_bytes(b"neighbour")
    scripts = {"V001__first.sql": "CREATE TABLE t1 (id int);\n"}
    migrations = write_migrations(tmp_path / "m", scripts)
    options = schema(pg_cluster, migrations_path=str(migrations), backup=True, backup_keep=1, backup_dir=str(backups), **tenant)
    assert run_module(MODULE, options).returncode == 0
    for version in (2, 3):
        scripts[f"V{version:03d}__step.sql"] = f"CREATE TABLE t{version} (id int);\n"
        write_migrations(migrations, scripts)
        assert run_module(MODULE, options).returncode == 0
    assert all(path.exists() for path in neighbours)
    assert len(list(backups.glob(f"{tenant['name']}-2026*-pre-v*.dump"))) == 1
