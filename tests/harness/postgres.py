"""A throwaway PostgreSQL cluster: initdb + pg_ctl from Debian's postgresql package."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2.sql

from .common import LOOPBACK, HarnessError, free_port, running_as_root, unprivileged_user


def postgres_bindir() -> str | None:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0,
    )
    return str(Path(candidates[-1]).parent) if candidates else None


@dataclass
class PostgresCluster:
    """A private cluster on 127.0.0.1:<free port> with scram password auth."""

    bindir: str
    base_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openclaw-pg-")))
    port: int = field(default_factory=free_port)
    superuser: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    host: str = LOOPBACK
    # TLS: ssl=on with a server certificate for ``tls_names`` signed by a CA made
    # for this cluster only (``ssl_rootcert``). ``tls_only`` also makes pg_hba.conf
    # refuse every TCP connection that is not encrypted.
    tls: bool = False
    tls_only: bool = False
    tls_names: tuple[str, ...] = ("localhost",)
    tls_ips: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def tls_dir(self) -> Path:
        return self.base_dir / "tls"

    @property
    def ssl_rootcert(self) -> Path:
        """The CA that signed the cluster's certificate (only with tls=True)."""
        return self.tls_dir / "postgres-ca.pem"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        user = user or self.superuser
        password = self.password if password is None else password
        return f"host={self.host} port={self.port} dbname={dbname} user={user} password={password} connect_timeout=5"

    def connection_options(self) -> dict:
        """The collection's login_* module options for this cluster."""
        return {
            "login_host": self.host,
            "login_port": self.port,
            "login_user": self.superuser,
            "login_password": self.password,
        }

    def admin(self, *statements: str) -> None:
        """Run statements that cannot run in a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = list(args)
        if running_as_root():
            # initdb and postgres refuse to run as root.
            command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
        return subprocess.run(command, check=False, capture_output=True, text=True, **kwargs)

    def start(self) -> PostgresCluster:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        if running_as_root():
            uid, gid = unprivileged_user("postgres")
            os.chown(self.base_dir, uid, gid)
            os.chown(pwfile, uid, gid)
        init = self._run(
            f"{self.bindir}/initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            self.superuser,
            "--pwfile",
            str(pwfile),
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        )
        pwfile.unlink()
        if init.returncode != 0:
            raise HarnessError(f"initdb failed ({init.returncode}): {init.stderr.strip() or init.stdout.strip()}")
        options = f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.base_dir} -c fsync=off -c max_connections=200"
        if self.tls or self.tls_only:
            options += self._configure_tls()
        started = self._run(
            f"{self.bindir}/pg_ctl",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--options",
            options,
            "--wait",
            "--timeout=60",
            "start",
        )
        if started.returncode != 0:
            log = self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""
            raise HarnessError(f"pg_ctl start failed ({started.returncode}): {started.stderr.strip()}\n{log[-2000:]}")
        return self

    def _configure_tls(self) -> str:
        from .tls import issue_local_certificate

        _ca, cert, key = issue_local_certificate(
            self.tls_dir, names=self.tls_names, ips=self.tls_ips, prefix="postgres", ca_common_name="openclaw test PostgreSQL CA"
        )
        if running_as_root():
            # postgres reads its key only when it owns it (0600).
            uid, gid = unprivileged_user("postgres")
            for path in (self.tls_dir, cert, key):
                os.chown(path, uid, gid)
        if self.tls_only:
            (self.data_dir / "pg_hba.conf").write_text(
                "local all all scram-sha-256\nhostssl all all all scram-sha-256\nhostnossl all all all reject\n", encoding="utf-8"
            )
        return f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def stop(self) -> None:
        if self.data_dir.exists():
            self._run(f"{self.bindir}/pg_ctl", "--pgdata", str(self.data_dir), "--mode=immediate", "--wait", "stop")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def text_columns_holding(connection, needle: str) -> list[tuple[str, str]]:
    """Every (table, column) of every table the connection sees whose text holds ``needle``: where a secret leaked to."""
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED')"
        )
        for schema, table, column in cursor.fetchall():
            cursor.execute(
                psycopg2.sql.SQL("SELECT count(*) FROM {}.{} WHERE strpos({}::text, %s) > 0").format(
                    psycopg2.sql.Identifier(schema), psycopg2.sql.Identifier(table), psycopg2.sql.Identifier(column)
                ),
                (needle,),
            )
            if cursor.fetchone()[0]:
                hits.append((table, column))
    return hits
