"""External PostgreSQL over TLS: the modules verify the server's certificate and never fall back to plain text.

The cluster here accepts TCP connections only over TLS (pg_hba.conf: hostssl,
hostnossl reject), with a certificate for "localhost" signed by a CA made for
this module only. The migrations role runs in external mode with the default
sslmode (verify-full) and that CA; a wrong CA and a host name the certificate
does not name are refused before any SQL is sent.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import psycopg2
import pytest
import yaml

from harness.ansible import REPO_ROOT, recap, run
from harness.postgres import PostgresCluster, postgres_bindir
from harness.tls import issue_local_certificate

TENANT_VERSIONS = sorted(int(path.name[1:4]) for path in (REPO_ROOT / "migrations" / "tenant").glob("V*.sql"))
NEXT = TENANT_VERSIONS[-1] + 1


@pytest.fixture(scope="module")
def tls_cluster():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
    with PostgresCluster(bindir=bindir, tls_only=True, tls_names=("localhost",)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory):
    """A CA that signed nothing the cluster presents."""
    ca, _cert, _key = issue_local_certificate(tmp_path_factory.mktemp("other-ca"), prefix="other", ca_common_name="openclaw test other CA")
    return ca


def server_settings(cluster, **overrides):
    settings = {
        "openclaw_postgres_mode": "external",
        "openclaw_postgres_host": "localhost",
        "openclaw_postgres_port": cluster.port,
        "openclaw_postgres_password": cluster.password,
        "openclaw_postgres_ssl_rootcert": str(cluster.ssl_rootcert),
    }
    settings.update(overrides)
    return {name: value for name, value in settings.items() if value is not None}


def write_inventory(tmp_path, cluster, slug, **overrides):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "vars": {
                "openclaw_domain": "example.test",
                "openclaw_secrets_dir": str(tmp_path / "secrets"),
                "openclaw_backup_dir": str(tmp_path / "backups"),
                "openclaw_pg_dump_path": f"{cluster.bindir}/pg_dump",
                "openclaw_shared_database": f"openclaw_shared_{slug}",
                **local,
            }
        },
        "openclaw_servers": {"hosts": {"srv1": server_settings(cluster, **overrides)}},
        "openclaw_tenants": {"hosts": {slug: {"openclaw_server": "srv1", "openclaw_port": 18801}}},
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return path


@pytest.fixture
def slug(tls_cluster):
    slug = f"s{secrets.token_hex(3)}"
    yield slug
    tls_cluster.admin(
        f'DROP DATABASE IF EXISTS "openclaw_{slug}" WITH (FORCE)',
        f'DROP ROLE IF EXISTS "openclaw_{slug}"',
        f'DROP DATABASE IF EXISTS "openclaw_shared_{slug}" WITH (FORCE)',
    )


def databases(cluster, *names):
    with psycopg2.connect(cluster.dsn_for("postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY datname", (list(names),))
        return [row[0] for row in cur.fetchall()]


def connection_is_encrypted(dsn_or_url, **kwargs):
    with psycopg2.connect(dsn_or_url, connect_timeout=5, **kwargs) as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return cur.fetchone()[0]


def with_password(url, password):
    parts = urlsplit(url)
    netloc = f"{parts.username}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def test_plain_text_is_refused_by_the_cluster(tls_cluster):
    # The probe the role tests rely on: the same login succeeds encrypted and is refused in plain text.
    assert connection_is_encrypted(tls_cluster.dsn_for("postgres"), sslmode="verify-full", sslrootcert=str(tls_cluster.ssl_rootcert), host="localhost")
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(tls_cluster.dsn_for("postgres"), sslmode="disable")


def test_migrations_verify_the_server_and_tenants_connect_encrypted(tls_cluster, slug, tmp_path):
    # No openclaw_postgres_sslmode in the inventory: external mode defaults to verify-full.
    inventory = write_inventory(tmp_path, tls_cluster, slug)
    first = run("ansible-playbook", "-i", str(inventory), "playbooks/migrate.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    assert recap(first.stdout)[slug]["changed"] == 1
    assert "Migrations | migrate the shared database" in first.stdout
    assert tls_cluster.password not in first.stdout + first.stderr
    assert databases(tls_cluster, f"openclaw_{slug}", f"openclaw_shared_{slug}") == [f"openclaw_{slug}", f"openclaw_shared_{slug}"]

    # A pending migration is preceded by a pg_dump, which verifies the server the same way.
    migrations = tmp_path / "migrations"
    shutil.copytree(REPO_ROOT / "migrations", migrations)
    (migrations / "tenant" / f"V{NEXT:03d}__add_dialog_note.sql").write_text("ALTER TABLE wa_dialogs ADD COLUMN note text;\n", encoding="utf-8")
    second = run("ansible-playbook", "-i", str(inventory), "playbooks/migrate.yml", "-e", f"openclaw_migrations_dir={migrations}")
    assert second.returncode == 0, second.stdout[-4000:]
    assert len(list((tmp_path / "backups").glob(f"openclaw_{slug}-*-pre-v{NEXT:03d}.dump"))) == 1

    # The tenant's OPENCLAW_DB_URL as the tenant role builds it in external mode.
    playbook = tmp_path / "db_url.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "openclaw_tenants",
                    "gather_facts": False,
                    "vars_files": [str(REPO_ROOT / "roles/tenant/defaults/main.yml"), str(REPO_ROOT / "roles/tenant/vars/main.yml")],
                    "tasks": [{"ansible.builtin.copy": {"content": "{{ openclaw_tenant_db_url }}", "dest": str(tmp_path / "db_url")}}],
                }
            ]
        ),
        encoding="utf-8",
    )
    rendered = run("ansible-playbook", "-i", str(inventory), str(playbook), "-e", "openclaw_postgres_tenant_port=%d" % tls_cluster.port)
    assert rendered.returncode == 0, rendered.stdout[-4000:]
    url = (tmp_path / "db_url").read_text(encoding="utf-8")
    assert url == f"postgresql://openclaw_{slug}@localhost:{tls_cluster.port}/openclaw_{slug}?sslmode=require"
    assert parse_qs(urlsplit(url).query) == {"sslmode": ["require"]}
    password = (tmp_path / "secrets" / f"db-{slug}.password").read_text(encoding="utf-8").strip()
    # A tenant connecting with its own credentials: encrypted with the URL it is given ...
    assert connection_is_encrypted(with_password(url, password))
    # ... and refused when it asks for plain text.
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(with_password(url.replace("sslmode=require", "sslmode=disable"), password), connect_timeout=5)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"openclaw_postgres_ssl_rootcert": "wrong"}, "certificate verify failed"),
        ({"openclaw_postgres_host": "127.0.0.1"}, 'server certificate for "localhost"'),
    ],
    ids=["wrong-ca", "host-not-in-certificate"],
)
def test_an_unverified_server_is_refused_without_plain_text_fallback(tls_cluster, wrong_ca, slug, tmp_path, overrides, problem):
    if overrides.get("openclaw_postgres_ssl_rootcert") == "wrong":
        overrides = {"openclaw_postgres_ssl_rootcert": str(wrong_ca)}
    inventory = write_inventory(tmp_path, tls_cluster, slug, **overrides)
    failed = run("ansible-playbook", "-i", str(inventory), "playbooks/migrate.yml")
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert problem in output, failed.stdout[-4000:]
    # The message says which TLS settings were refused ...
    rootcert = overrides.get("openclaw_postgres_ssl_rootcert", str(tls_cluster.ssl_rootcert))
    assert f"sslmode verify-full, CA file {rootcert}" in output
    # ... and nothing was tried in plain text: the cluster's plain-text refusal never shows, nothing was created.
    assert "no encryption" not in output
    assert databases(tls_cluster, f"openclaw_{slug}", f"openclaw_shared_{slug}") == []
    assert tls_cluster.password not in output
    # The same inventory with the right CA and host connects (the failure above was the TLS check, not the cluster).
    fixed = write_inventory(tmp_path, tls_cluster, slug)
    assert run("ansible-playbook", "-i", str(fixed), "playbooks/migrate.yml", "--limit", "srv1").returncode == 0
    assert databases(tls_cluster, f"openclaw_shared_{slug}") == [f"openclaw_shared_{slug}"]


def test_verifying_without_a_ca_file_stops_at_preflight(tls_cluster, slug, tmp_path):
    inventory = write_inventory(tmp_path, tls_cluster, slug, openclaw_postgres_ssl_rootcert=None)
    refused = run("ansible-playbook", "-i", str(inventory), "playbooks/migrate.yml")
    assert refused.returncode != 0
    assert "openclaw_postgres_ssl_rootcert: is required with openclaw_postgres_sslmode verify-full" in refused.stdout
    assert "rule: postgres-ssl-rootcert" in refused.stdout
    # Preflight failed before any migration task ran.
    assert "Migrations | migrate the shared database" not in refused.stdout
    assert databases(tls_cluster, f"openclaw_shared_{slug}") == []
    # An explicit plain-text choice passes preflight and is then refused by the server itself.
    plain = write_inventory(tmp_path, tls_cluster, slug, openclaw_postgres_ssl_rootcert=None, openclaw_postgres_sslmode="disable")
    refused = run("ansible-playbook", "-i", str(plain), "playbooks/migrate.yml", "--limit", "srv1")
    assert refused.returncode != 0
    assert "(sslmode disable)" in refused.stdout and "no encryption" in refused.stdout, refused.stdout[-4000:]
