# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Versioned SQL migrations with a history table, a lock and one transaction per file.

The engine is small on purpose: files named V<NNN>__<description>.sql, applied
in version order, each in its own transaction together with its history row,
serialized by a session-level advisory lock. Check mode reads and never writes.
"""

from __future__ import annotations

import hashlib
import re
import time

from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import error_text, psycopg2, sql

HISTORY_SCHEMA = "openclaw_meta"
HISTORY_TABLE = "schema_history"

# Any 64-bit constant works: advisory locks are scoped to the current database.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"openclaw.standalone migrations").digest()[:8], "big", signed=True)

_FILENAME = re.compile(r"V(?P<version>[0-9]{3,})__(?P<description>[A-Za-z0-9_]+)\.sql")
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:public\.)?\"?(?P<name>[a-z_][a-z0-9_]*)\"?", re.IGNORECASE | re.MULTILINE)


class MigrationError(Exception):
    """A migration problem the operator must act on; the message names the file or database."""


class Migration:
    __slots__ = ("checksum", "description", "script", "sql", "version")

    def __init__(self, script, sql_text):
        match = _FILENAME.fullmatch(script)
        if not match:
            raise MigrationError("migration file name %r does not match V<NNN>__<description>.sql" % script)
        self.version = int(match.group("version"))
        self.description = match.group("description").replace("_", " ")
        self.script = script
        self.sql = sql_text
        self.checksum = checksum(sql_text)

    def created_tables(self):
        """Tables this migration creates (used to recognise an adopted database)."""
        return sorted(set(match.group("name") for match in _CREATE_TABLE.finditer(strip_sql_comments(self.sql))))


def checksum(sql_text):
    # Line endings are normalised so a checkout with CRLF does not count as drift.
    return hashlib.sha256(sql_text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def strip_sql_comments(sql_text):
    return re.sub(r"--[^\n]*", "", sql_text)


def load_migrations(files):
    """Migrations from a list of {script, sql} dicts, sorted, versions unique."""
    migrations = sorted((Migration(item["script"], item["sql"]) for item in files), key=lambda m: m.version)
    seen = {}
    for migration in migrations:
        if migration.version in seen:
            raise MigrationError("migration version %d is used twice: %s and %s" % (migration.version, seen[migration.version], migration.script))
        seen[migration.version] = migration.script
    if not migrations:
        raise MigrationError("no migration files were given")
    return migrations


def error_line(sql_text, exc):
    """1-based line of the error position PostgreSQL reported, or None."""
    position = getattr(getattr(exc, "diag", None), "statement_position", None)
    if not position:
        return None
    return sql_text[: int(position) - 1].count("\n") + 1


class HistoryRow:
    __slots__ = ("checksum", "description", "kind", "script", "success", "version")

    def __init__(self, version, description, script, checksum_value, kind, success):
        self.version = version
        self.description = description
        self.script = script
        self.checksum = checksum_value
        self.kind = kind
        self.success = success


def plan(migrations, history, repair=False):
    """Pending migrations and checksum repairs, or MigrationError on drift.

    ``history`` is the list of HistoryRow already recorded.
    """
    by_version = {migration.version: migration for migration in migrations}
    repairs = []
    for row in history:
        migration = by_version.get(row.version)
        if migration is None:
            raise MigrationError(
                "the database records version %d (%s) which is not among this collection's migrations; "
                "it was migrated by a newer collection version" % (row.version, row.script)
            )
        if row.checksum != migration.checksum:
            if not repair:
                raise MigrationError(
                    "checksum of applied migration %s changed (recorded %s, file %s); applied files must not be edited — "
                    "put the change in a new migration, or set repair=true to accept the file as applied"
                    % (migration.script, row.checksum[:12], migration.checksum[:12])
                )
            repairs.append(migration)
    applied = set(row.version for row in history)
    pending = [migration for migration in migrations if migration.version not in applied]
    if history and pending and pending[0].version < max(applied):
        raise MigrationError(
            "migration %s is older than the newest applied version %d; out-of-order migrations are refused" % (pending[0].script, max(applied))
        )
    return pending, repairs


class Migrator:
    """Runs against one open database connection (autocommit off)."""

    def __init__(self, conn, migrations):
        self.conn = conn
        self.migrations = migrations

    # -- reading -----------------------------------------------------------
    def history_exists(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", ("%s.%s" % (HISTORY_SCHEMA, HISTORY_TABLE),))
            return cur.fetchone()[0]

    def history(self):
        if not self.history_exists():
            return []
        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT version, description, script, checksum, type, success FROM {}.{} WHERE success ORDER BY version").format(
                    sql.Identifier(HISTORY_SCHEMA), sql.Identifier(HISTORY_TABLE)
                )
            )
            return [HistoryRow(*row) for row in cur.fetchall()]

    def existing_tables(self, names):
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)",
                (list(names),),
            )
            return sorted(row[0] for row in cur.fetchall())

    def adoption(self, baseline_mode):
        """For a database without history: 'fresh', 'adopt', or MigrationError."""
        baseline = self.migrations[0]
        expected = baseline.created_tables()
        present = self.existing_tables(expected)
        if not present:
            return "fresh"
        missing = [name for name in expected if name not in present]
        if baseline_mode == "never":
            raise MigrationError("database has %d of the baseline tables but no migration history, and baseline=never refuses to adopt it" % len(present))
        if missing and baseline_mode != "force":
            raise MigrationError(
                "database has no migration history and only %d of the %d tables of %s; missing: %s. "
                "Repair it by hand, or set baseline=force to record %s as applied anyway"
                % (len(present), len(expected), baseline.script, ", ".join(missing), baseline.script)
            )
        return "adopt"

    # -- writing -----------------------------------------------------------
    def _ensure_history_table(self, cur):
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(HISTORY_SCHEMA)))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                " installed_rank serial PRIMARY KEY,"
                " version integer NOT NULL UNIQUE,"
                " description text NOT NULL,"
                " type text NOT NULL CHECK (type IN ('SQL', 'BASELINE')),"
                " script text NOT NULL,"
                " checksum text NOT NULL,"
                " installed_by text NOT NULL,"
                " installed_on timestamptz NOT NULL DEFAULT now(),"
                " execution_time integer NOT NULL,"
                " success boolean NOT NULL)"
            ).format(sql.Identifier(HISTORY_SCHEMA), sql.Identifier(HISTORY_TABLE))
        )

    def _record(self, cur, migration, kind, execution_ms):
        cur.execute(
            sql.SQL(
                "INSERT INTO {}.{} (version, description, type, script, checksum, installed_by, execution_time, success)"
                " VALUES (%s, %s, %s, %s, %s, session_user, %s, true)"
            ).format(sql.Identifier(HISTORY_SCHEMA), sql.Identifier(HISTORY_TABLE)),
            (migration.version, migration.description, kind, migration.script, migration.checksum, execution_ms),
        )

    def baseline(self):
        """Record the baseline as applied without running it (adopted database)."""
        with self.conn.cursor() as cur:
            self._ensure_history_table(cur)
            self._record(cur, self.migrations[0], "BASELINE", 0)
        self.conn.commit()

    def repair(self, migrations):
        with self.conn.cursor() as cur:
            for migration in migrations:
                cur.execute(
                    sql.SQL("UPDATE {}.{} SET checksum = %s, description = %s WHERE version = %s").format(
                        sql.Identifier(HISTORY_SCHEMA), sql.Identifier(HISTORY_TABLE)
                    ),
                    (migration.checksum, migration.description, migration.version),
                )
        self.conn.commit()

    def apply(self, migration):
        """Run one migration and its history row in one transaction; roll back on error."""
        started = time.monotonic()
        try:
            with self.conn.cursor() as cur:
                self._ensure_history_table(cur)
                cur.execute(migration.sql)
                self._record(cur, migration, "SQL", int((time.monotonic() - started) * 1000))
            self.conn.commit()
        except psycopg2.Error as exc:
            self.conn.rollback()
            line = error_line(migration.sql, exc)
            raise MigrationError(
                "migration %s failed%s and was rolled back: %s" % (migration.script, " at line %d" % line if line else "", error_text(exc))
            ) from exc


class AdvisoryLock:
    """Session-level advisory lock held on its own autocommit connection.

    A dedicated connection keeps the lock independent of the migration
    transactions, and closing it (even when the module dies) releases it.
    """

    def __init__(self, conn, timeout):
        self.conn = conn
        self.timeout = timeout

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        with self.conn.cursor() as cur:
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
                if cur.fetchone()[0]:
                    return self
                if time.monotonic() >= deadline:
                    raise MigrationError("another migrator holds the lock on this database; gave up after %ds (lock_timeout)" % self.timeout)
                time.sleep(0.2)

    def __exit__(self, *exc_info):
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
