"""playbooks/migrate.yml with the migrations role, against a real PostgreSQL cluster."""

from __future__ import annotations

import json
import secrets
import shutil
import stat
import sys

import psycopg2
import pytest
import yaml

from harness.ansible import REPO_ROOT, ansible_env, recap, run

TENANT_VERSIONS = sorted(int(path.name[1:4]) for path in (REPO_ROOT / "migrations" / "tenant").glob("V*.sql"))
SHARED_VERSIONS = sorted(int(path.name[1:4]) for path in (REPO_ROOT / "migrations" / "shared").glob("V*.sql"))
NEXT = TENANT_VERSIONS[-1] + 1


def inventory_of(pg_cluster, tmp_path, layout):
    """An inventory with servers on the harness cluster (this host) and their tenants, {server: [slug, ...]}; its path and the shared database."""
    shared = "openclaw_shared_" + next(iter(layout.values()))[0]
    server = {"openclaw_postgres_host": pg_cluster.host, "openclaw_postgres_port": pg_cluster.port, "openclaw_postgres_password": pg_cluster.password}
    inventory = {
        "all": {
            "vars": {
                "openclaw_domain": "example.test",
                "openclaw_secrets_dir": str(tmp_path / "secrets"),
                "openclaw_backup_dir": str(tmp_path / "backups"),
                "openclaw_pg_dump_path": f"{pg_cluster.bindir}/pg_dump",
                "openclaw_shared_database": shared,
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            }
        },
        "openclaw_servers": {"hosts": dict.fromkeys(layout, server)},
        "openclaw_tenants": {
            "hosts": {
                slug: {"openclaw_server": name, "openclaw_port": 18801 + 10 * number + index}
                for number, (name, slugs) in enumerate(layout.items())
                for index, slug in enumerate(slugs)
            }
        },
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return path, shared


def drop_tenants(pg_cluster, slugs, shared):
    pg_cluster.admin(
        *[f'DROP DATABASE IF EXISTS "openclaw_{slug}" WITH (FORCE)' for slug in slugs],
        *[f'DROP ROLE IF EXISTS "openclaw_{slug}"' for slug in slugs],
        f'DROP DATABASE IF EXISTS "{shared}" WITH (FORCE)',
    )


@pytest.fixture
def site(pg_cluster, tmp_path):
    """An inventory with one server (this host) and three tenants on the harness cluster."""
    slugs = [f"m{secrets.token_hex(3)}" for _index in range(3)]
    path, shared = inventory_of(pg_cluster, tmp_path, {"srv1": slugs})
    yield {"inventory": path, "slugs": slugs, "tmp": tmp_path, "shared": shared}
    drop_tenants(pg_cluster, slugs, shared)


def versions(pg_cluster, dbname):
    with psycopg2.connect(pg_cluster.dsn_for(dbname)) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM openclaw_meta.schema_history ORDER BY version")
        return [row[0] for row in cur.fetchall()]


def test_migrate_playbook_converges_then_changes_nothing(pg_cluster, site):
    first = run("ansible-playbook", "-i", str(site["inventory"]), "playbooks/migrate.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    counters = recap(first.stdout)
    assert counters["srv1"]["changed"] >= 1
    for slug in site["slugs"]:
        assert counters[slug]["changed"] == 1  # one call: password generated, database created and migrated
        assert versions(pg_cluster, f"openclaw_{slug}") == TENANT_VERSIONS
        secret = site["tmp"] / "secrets" / f"db-{slug}.password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        password = secret.read_text(encoding="utf-8").strip()
        assert len(password) == 40
        assert password not in first.stdout + first.stderr
        # The generated password is the role's real password.
        with psycopg2.connect(pg_cluster.dsn_for(f"openclaw_{slug}", user=f"openclaw_{slug}", password=password)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM config")
            assert cur.fetchone() == (1,)
    assert versions(pg_cluster, site["shared"]) == SHARED_VERSIONS
    assert pg_cluster.password not in first.stdout + first.stderr

    second = run("ansible-playbook", "-i", str(site["inventory"]), "playbooks/migrate.yml", "-v")
    assert second.returncode == 0, second.stdout[-4000:]
    assert {host: counters["changed"] for host, counters in recap(second.stdout).items() if host != "localhost"} == dict.fromkeys(["srv1", *site["slugs"]], 0)
    assert pg_cluster.password not in second.stdout + second.stderr
    # Nothing was pending, so nothing was dumped.
    assert sorted((site["tmp"] / "backups").glob("*.dump")) == []


def test_new_migration_is_planned_by_check_then_applied_with_a_dump_per_database(pg_cluster, site):
    assert run("ansible-playbook", "-i", str(site["inventory"]), "playbooks/migrate.yml").returncode == 0
    migrations = site["tmp"] / "migrations"
    shutil.copytree(REPO_ROOT / "migrations", migrations)
    (migrations / "tenant" / f"V{NEXT:03d}__add_dialog_note.sql").write_text("ALTER TABLE wa_dialogs ADD COLUMN note text;\n", encoding="utf-8")
    extra = ["-e", f"openclaw_migrations_dir={migrations}"]

    plan = run("ansible-playbook", "-i", str(site["inventory"]), "playbooks/migrate.yml", "--check", "--diff", *extra)
    assert plan.returncode == 0, plan.stdout[-4000:]
    planned = {host: counters["changed"] for host, counters in recap(plan.stdout).items()}
    assert planned["srv1"] == 0
    assert all(planned[slug] == 1 for slug in site["slugs"]), planned
    for slug in site["slugs"]:
        assert versions(pg_cluster, f"openclaw_{slug}") == TENANT_VERSIONS

    applied = run("ansible-playbook", "-i", str(site["inventory"]), "playbooks/migrate.yml", *extra)
    assert applied.returncode == 0, applied.stdout[-4000:]
    for slug in site["slugs"]:
        assert versions(pg_cluster, f"openclaw_{slug}") == [*TENANT_VERSIONS, NEXT]
        dumps = list((site["tmp"] / "backups").glob(f"openclaw_{slug}-*-pre-v{NEXT:03d}.dump"))
        assert len(dumps) == 1
    changed = {host: counters["changed"] for host, counters in recap(applied.stdout).items() if host != "localhost"}
    assert changed == {"srv1": 0, **dict.fromkeys(site["slugs"], 1)}


@pytest.fixture
def two_servers(pg_cluster, tmp_path):
    """Two servers (both on the harness cluster) with three and two tenants."""
    layout = {"srv1": [f"m{secrets.token_hex(3)}" for _index in range(3)], "srv2": [f"m{secrets.token_hex(3)}" for _index in range(2)]}
    path, shared = inventory_of(pg_cluster, tmp_path, layout)
    yield {"inventory": path, "layout": layout, "tmp": tmp_path}
    drop_tenants(pg_cluster, [slug for slugs in layout.values() for slug in slugs], shared)


def result_records(tmp_path, *args):
    """ansible-playbook with every task result logged as data; (completed run, records)."""
    log = tmp_path / f"results-{secrets.token_hex(4)}.jsonl"
    env = ansible_env(
        OPENCLAW_RESULT_LOG=str(log),
        ANSIBLE_CALLBACK_PLUGINS=str(REPO_ROOT / "tests" / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="result_log",
    )
    completed = run("ansible-playbook", *args, env=env)
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return completed, records


def test_one_run_per_server_and_a_failing_database_fails_only_its_tenant(pg_cluster, two_servers):
    inventory = str(two_servers["inventory"])
    first, records = result_records(two_servers["tmp"], "-i", inventory, "playbooks/migrate.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    server_runs = [record for record in records if record["action"] == "openclaw.standalone.openclaw_tenant_databases" and record["status"] != "skipped"]
    # Exactly one module run per server, made on one of its tenants, covering exactly its tenants.
    assert len(server_runs) == 2, [(record["host"], record["status"]) for record in server_runs]
    covered = sorted(sorted(record["result"]["databases"]) for record in server_runs)
    assert covered == sorted(sorted(f"openclaw_{slug}" for slug in slugs) for slugs in two_servers["layout"].values())

    # One tenant of srv1 already has the column the next migration adds: its migration fails.
    broken, *healthy = two_servers["layout"]["srv1"]
    healthy += two_servers["layout"]["srv2"]
    with psycopg2.connect(pg_cluster.dsn_for(f"openclaw_{broken}")) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE wa_dialogs ADD COLUMN note text")
    migrations = two_servers["tmp"] / "migrations"
    shutil.copytree(REPO_ROOT / "migrations", migrations)
    (migrations / "tenant" / f"V{NEXT:03d}__add_dialog_note.sql").write_text("ALTER TABLE wa_dialogs ADD COLUMN note text;\n", encoding="utf-8")
    applied = run("ansible-playbook", "-i", inventory, "playbooks/migrate.yml", "-e", f"openclaw_migrations_dir={migrations}")
    assert applied.returncode != 0
    counters = recap(applied.stdout)
    assert counters[broken]["failed"] == 1
    assert f"openclaw_{broken}" in applied.stdout and "already exists" in applied.stdout
    for slug in healthy:
        assert (counters[slug]["failed"], counters[slug]["changed"]) == (0, 1), (slug, counters[slug])
        assert versions(pg_cluster, f"openclaw_{slug}") == [*TENANT_VERSIONS, NEXT]
    # The failed migration's transaction was rolled back: nothing recorded for it.
    assert versions(pg_cluster, f"openclaw_{broken}") == TENANT_VERSIONS
    assert pg_cluster.password not in applied.stdout + applied.stderr
