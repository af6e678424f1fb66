# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Versioned SQL migrations with a history table, a lock and one transaction per file.

The engine is small on purpose: files named V<NNN>__<description>.sql, applied
in version order, each in its own transaction, serialized by a session-level
advisory lock. Check mode reads and never writes.

Two connections take part when a tenant owns the database. The migration files
run on ``conn``, logged in as the database's owner: whatever the tenant planted
(triggers, functions, operators in ``public``) then runs with the tenant's own
rights, and a trigger cannot ``RESET ROLE`` its way to more, as it could in a
session an administrator opened. The history, the advisory lock and the
ownership changes live on ``meta``, an administrator's connection whose
search_path is pinned to the catalog and which touches only
``openclaw_meta.schema_history`` - owned by HISTORY_OWNER, a role nobody logs in
as, and checked to be a plain table without triggers, rules or policies before
every use - so nothing there runs code a tenant wrote.

The history row of a file is inserted on ``meta`` before the file's transaction
commits on ``conn``, and committed right after it. Should the administrator's
commit be lost in between (the connection drops), the file's changes exist
without their row; the next run then applies the file again, which fails on the
objects it already created and names the file, and the operator records it by
hand after checking it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time

from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import error_text, psycopg2, sql

HISTORY_SCHEMA = "openclaw_meta"
HISTORY_TABLE = "schema_history"
# Owns the history schema and table of every tenant database. NOLOGIN and
# granted to nobody, so a tenant can neither log in as it nor SET ROLE to it;
# the administrator writes the table as superuser. A fixed role rather than
# whichever administrator ran the first migration: the check of the owner then
# holds for every later run, whatever login it uses.
HISTORY_OWNER = "openclaw_history_owner"

# Any 64-bit constant works: advisory locks are scoped to the current database.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"openclaw.standalone migrations").digest()[:8], "big", signed=True)


def database_lock_key(name):
    """Advisory lock key for the cluster-level settings of database ``name``.

    Taken on a connection to the maintenance database, so every run converging
    the same tenant database waits for the others: two concurrent REVOKEs or
    ALTER DATABASEs on one pg_database row fail with "tuple concurrently updated".
    """
    return int.from_bytes(hashlib.sha256(b"openclaw.standalone database " + name.encode()).digest()[:8], "big", signed=True)


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


class HistoryUnsafe(MigrationError):
    """The history relation could run code or be changed by someone else; nothing was read from it."""


_RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table", "S": "sequence", "c": "composite type"}


def history_name():
    return sql.SQL("{}.{}").format(sql.Identifier(HISTORY_SCHEMA), sql.Identifier(HISTORY_TABLE))


def history_state(cur):
    """None, or {oid, relkind, owner, schema_owner} of the history relation (catalog reads only).

    ``owner``/``schema_owner`` are (name, is_superuser). A schema without the
    table gives oid None.
    """
    cur.execute(
        "SELECT n.oid, pg_catalog.pg_get_userbyid(n.nspowner), COALESCE(r.rolsuper, false)"
        " FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner WHERE n.nspname = %s",
        (HISTORY_SCHEMA,),
    )
    schema = cur.fetchone()
    if schema is None:
        return None
    cur.execute(
        "SELECT c.oid, c.relkind, pg_catalog.pg_get_userbyid(c.relowner), COALESCE(r.rolsuper, false)"
        " FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_roles r ON r.oid = c.relowner"
        " WHERE c.relnamespace = %s AND c.relname = %s",
        (schema[0], HISTORY_TABLE),
    )
    row = cur.fetchone()
    state = {"schema_owner": (schema[1], schema[2]), "oid": None, "relkind": None, "owner": None}
    if row is not None:
        state.update(oid=row[0], relkind=row[1], owner=(row[2], row[3]))
    return state


def owner_acceptable(owner, expected):
    """``expected`` names the one acceptable owner; None accepts HISTORY_OWNER or any superuser."""
    name, is_superuser = owner
    if expected is not None:
        return name == expected
    return name == HISTORY_OWNER or is_superuser


def history_problems(cur, state, expected_owner):
    """Why the history table must not be used by an administrator: [] when it is a plain, inert table.

    Reads the catalog only. A plain table owned by a role the tenant cannot
    act as, without rules, triggers, row security or inheritance, whose column
    types, defaults, constraints and indexes refer only to the system catalog,
    runs no code of anyone else's when it is read or written.
    """
    problems = []
    wanted = expected_owner or "%s or a superuser" % HISTORY_OWNER
    if not owner_acceptable(state["schema_owner"], expected_owner):
        problems.append("schema %s is owned by %s, not %s" % (HISTORY_SCHEMA, state["schema_owner"][0], wanted))
    if state["oid"] is None:
        return problems
    oid = state["oid"]
    if state["relkind"] != "r":
        problems.append("it is a %s, not a plain table" % _RELKINDS.get(state["relkind"], "relation of kind %r" % state["relkind"]))
    if not owner_acceptable(state["owner"], expected_owner):
        problems.append("it is owned by %s, not %s" % (state["owner"][0], wanted))
    checks = (
        ("rules", "SELECT rulename FROM pg_catalog.pg_rewrite WHERE ev_class = %(oid)s ORDER BY 1"),
        ("triggers", "SELECT tgname FROM pg_catalog.pg_trigger WHERE tgrelid = %(oid)s ORDER BY 1"),
        ("row security policies", "SELECT polname FROM pg_catalog.pg_policy WHERE polrelid = %(oid)s ORDER BY 1"),
        (
            "row level security",
            "SELECT 'enabled' FROM pg_catalog.pg_class WHERE oid = %(oid)s AND (relrowsecurity OR relforcerowsecurity)",
        ),
        (
            "inheritance",
            "SELECT pg_catalog.format('%%s of %%s', inhrelid::pg_catalog.regclass, inhparent::pg_catalog.regclass)"
            " FROM pg_catalog.pg_inherits WHERE inhrelid = %(oid)s OR inhparent = %(oid)s ORDER BY 1",
        ),
        (
            "column types outside pg_catalog",
            "SELECT pg_catalog.format('%%s %%s', a.attname, a.atttypid::pg_catalog.regtype) FROM pg_catalog.pg_attribute a"
            " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped AND t.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace ORDER BY 1",
        ),
        (
            # Defaults, constraints and indexes record what they call in pg_depend.
            "defaults, constraints or indexes using objects outside pg_catalog",
            "WITH parts AS ("
            "  SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass AS classid, oid AS objid FROM pg_catalog.pg_attrdef WHERE adrelid = %(oid)s"
            "  UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, oid FROM pg_catalog.pg_constraint WHERE conrelid = %(oid)s"
            "  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, indexrelid FROM pg_catalog.pg_index WHERE indrelid = %(oid)s)"
            " SELECT DISTINCT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)"
            " FROM parts JOIN pg_catalog.pg_depend d ON d.classid = parts.classid AND d.objid = parts.objid"
            " LEFT JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.refobjid"
            " LEFT JOIN pg_catalog.pg_operator o ON d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND o.oid = d.refobjid"
            " LEFT JOIN pg_catalog.pg_type t ON d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.refobjid"
            " LEFT JOIN pg_catalog.pg_class s ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND s.oid = d.refobjid"
            " WHERE NOT (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = %(oid)s)"
            "   AND NOT EXISTS (SELECT 1 FROM parts own WHERE own.classid = d.refclassid AND own.objid = d.refobjid)"
            "   AND (d.refclassid NOT IN ('pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass,"
            "                            'pg_catalog.pg_type'::pg_catalog.regclass, 'pg_catalog.pg_class'::pg_catalog.regclass,"
            "                            'pg_catalog.pg_collation'::pg_catalog.regclass, 'pg_catalog.pg_opclass'::pg_catalog.regclass)"
            "    OR p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace"
            "    OR o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace"
            "    OR t.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace"
            "    OR (s.oid IS NOT NULL AND (s.relkind <> 'S' OR s.relowner <> (SELECT relowner FROM pg_catalog.pg_class WHERE oid = %(oid)s))))"
            " ORDER BY 1",
        ),
    )
    for label, query in checks:
        cur.execute(query, {"oid": oid})
        found = [row[0] for row in cur.fetchall()]
        if found:
            problems.append("%s: %s" % (label, ", ".join(found)))
    return problems


class Migrator:
    """Applies migrations on ``conn`` and keeps the history on ``meta`` (the same connection when no tenant is involved).

    Both connections have autocommit off; ``meta`` must have its search_path
    pinned to the catalog (postgres.PINNED_SEARCH_PATH).
    """

    def __init__(self, conn, migrations, meta=None, expected_owner=None):
        self.conn = conn
        self.meta = meta if meta is not None else conn
        self.migrations = migrations
        # HISTORY_OWNER when a tenant owns the database, None when the administrator does.
        self.expected_owner = expected_owner

    # -- reading -----------------------------------------------------------
    def state(self):
        with self.meta.cursor() as cur:
            return history_state(cur)

    def history_exists(self):
        state = self.state()
        return state is not None and state["oid"] is not None

    def verify(self, state=None):
        """Refuse (HistoryUnsafe) a history relation that could run code; returns the state."""
        with self.meta.cursor() as cur:
            state = history_state(cur) if state is None else state
            if state is None:
                return None
            problems = history_problems(cur, state, self.expected_owner)
        if problems:
            raise HistoryUnsafe(
                "%s.%s is not safe to read or write as an administrator (%s); nothing was read from it or run. "
                "Inspect the database: the history must be a plain table owned by %s with nothing attached"
                % (HISTORY_SCHEMA, HISTORY_TABLE, "; ".join(problems), self.expected_owner or HISTORY_OWNER)
            )
        return state

    def history(self, conn=None):
        """Applied rows, read on ``meta`` after verify() (or on ``conn``, a tenant's own connection, when given)."""
        if conn is None:
            state = self.verify()
            if state is None or state["oid"] is None:
                return []
            conn = self.meta
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT version, description, script, checksum, type, success FROM ONLY {} WHERE success ORDER BY version").format(history_name())
            )
            return [HistoryRow(*row) for row in cur.fetchall()]

    def existing_tables(self, names):
        with self.meta.cursor() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
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

    # -- ownership and privileges of the history ---------------------------
    def history_ownership(self, state, dry_run=False):
        """ALTER ... OWNER TO HISTORY_OWNER for a schema/table someone else owns (an older collection gave them to the tenant).

        Changing an owner runs no code of the old owner's; the checks follow.
        """
        statements = []
        if state is None or self.expected_owner is None:
            return statements
        owner = sql.Identifier(self.expected_owner)
        with self.meta.cursor() as cur:
            if state["schema_owner"][0] != self.expected_owner:
                statements.append(_run(cur, sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(HISTORY_SCHEMA), owner), dry_run))
            if state["oid"] is not None and state["owner"][0] != self.expected_owner:
                # ALTER TABLE also takes the sequence of installed_rank along.
                statements.append(_run(cur, sql.SQL("ALTER TABLE {} OWNER TO {}").format(history_name(), owner), dry_run))
        return statements

    def privilege_statements(self, reader, dry_run=False):
        """Give ``reader`` (the tenant) USAGE on the schema and SELECT on the table and its sequence, and nobody else anything."""
        if reader is None:
            return []
        with self.meta.cursor() as cur:
            cur.execute(
                "SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type, kind FROM ("
                " SELECT 'schema' AS kind, n.nspacl AS acl, n.nspowner AS owner FROM pg_catalog.pg_namespace n WHERE n.nspname = %(schema)s"
                " UNION ALL SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, c.relacl, c.relowner"
                "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                "  WHERE n.nspname = %(schema)s AND (c.relname = %(table)s OR c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend d"
                "        WHERE d.refobjid = %(table_oid)s AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')"
                "        AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass))"
                ") o, pg_catalog.aclexplode(COALESCE(o.acl, pg_catalog.acldefault('n', o.owner))) a WHERE a.grantee <> o.owner",
                {"schema": HISTORY_SCHEMA, "table": HISTORY_TABLE, "table_oid": self.state()["oid"]},
            )
            granted = sorted(set(cur.fetchall()))
            wanted = sorted([(reader, "USAGE", "schema"), (reader, "SELECT", "table"), (reader, "SELECT", "sequence")])
            if granted == wanted:
                return []
            schema, table = sql.Identifier(HISTORY_SCHEMA), history_name()
            queries = []
            grantees = sorted(set(role for role, _privilege, _kind in granted))
            sequence = sql.Identifier(HISTORY_SCHEMA, HISTORY_TABLE + "_installed_rank_seq")
            if grantees:
                names = sql.SQL(", ").join(sql.SQL("PUBLIC") if role == "PUBLIC" else sql.Identifier(role) for role in grantees)
                queries += [
                    sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, names),
                    sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(table, names),
                    sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(sequence, names),
                ]
            queries += [
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, sql.Identifier(reader)),
                sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(table, sql.Identifier(reader)),
                sql.SQL("GRANT SELECT ON SEQUENCE {} TO {}").format(sequence, sql.Identifier(reader)),
            ]
            return [_run(cur, query, dry_run) for query in queries]

    # -- writing -----------------------------------------------------------
    def ensure_history_table(self):
        """Create the history schema and table on ``meta`` (owned by the expected owner) when missing; commits."""
        with self.meta.cursor() as cur:
            if self.expected_owner is None:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(HISTORY_SCHEMA)))
            else:
                cur.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(sql.Identifier(HISTORY_SCHEMA), sql.Identifier(self.expected_owner))
                )
            cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " installed_rank serial PRIMARY KEY,"
                    " version integer NOT NULL UNIQUE,"
                    " description text NOT NULL,"
                    " type text NOT NULL CHECK (type IN ('SQL', 'BASELINE')),"
                    " script text NOT NULL,"
                    " checksum text NOT NULL,"
                    " installed_by text NOT NULL,"
                    " installed_on timestamptz NOT NULL DEFAULT pg_catalog.now(),"
                    " execution_time integer NOT NULL,"
                    " success boolean NOT NULL)"
                ).format(history_name())
            )
            if self.expected_owner is not None:
                cur.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(history_name(), sql.Identifier(self.expected_owner)))
        self.meta.commit()

    def _record(self, cur, migration, kind, execution_ms, installed_by):
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (version, description, type, script, checksum, installed_by, execution_time, success) VALUES (%s, %s, %s, %s, %s, %s, %s, true)"
            ).format(history_name()),
            (migration.version, migration.description, kind, migration.script, migration.checksum, installed_by, execution_ms),
        )

    def _installed_by(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT session_user")
            return cur.fetchone()[0]

    def baseline(self):
        """Record the baseline as applied without running it (adopted database)."""
        self.verify()
        with self.meta.cursor() as cur:
            cur.execute("SELECT session_user")
            self._record(cur, self.migrations[0], "BASELINE", 0, cur.fetchone()[0])
        self.meta.commit()

    def repair(self, migrations):
        self.verify()
        with self.meta.cursor() as cur:
            for migration in migrations:
                cur.execute(
                    sql.SQL("UPDATE ONLY {} SET checksum = %s, description = %s WHERE version = %s").format(history_name()),
                    (migration.checksum, migration.description, migration.version),
                )
        self.meta.commit()

    def apply(self, migration):
        """Run one migration on ``conn`` and record it on ``meta``; roll both back on error.

        Order: the file runs, its row is inserted (uncommitted) on ``meta``, the
        file's transaction commits, then the row's. See the module docstring for
        the window between the two commits.
        """
        installed_by = self._installed_by()
        started = time.monotonic()
        try:
            with self.conn.cursor() as cur:
                if self.meta is self.conn:
                    # An administrator's own database (nobody else can create in
                    # public): the files name public's objects unqualified. For
                    # this transaction only; the pinned path returns after it.
                    cur.execute("SET LOCAL search_path = public")
                cur.execute(migration.sql)
        except psycopg2.Error as exc:
            self._rollback()
            line = error_line(migration.sql, exc)
            raise MigrationError(
                "migration %s failed%s and was rolled back: %s" % (migration.script, " at line %d" % line if line else "", error_text(exc))
            ) from exc
        elapsed = int((time.monotonic() - started) * 1000)
        try:
            with self.meta.cursor() as cur:
                self._record(cur, migration, "SQL", elapsed, installed_by)
            if self.meta is not self.conn:
                self.conn.commit()
        except psycopg2.Error as exc:
            self._rollback()
            raise MigrationError("migration %s was rolled back: %s" % (migration.script, error_text(exc))) from exc
        try:
            self.meta.commit()
        except psycopg2.Error as exc:
            raise MigrationError(
                "migration %s was committed but its history row was not (%s); the next run will try it again and fail on what it "
                "already created: check the database and record version %d in %s.%s by hand"
                % (migration.script, error_text(exc), migration.version, HISTORY_SCHEMA, HISTORY_TABLE)
            ) from exc

    def _rollback(self):
        for conn in (self.conn, self.meta):
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()


def _run(cur, query, dry_run):
    if not dry_run:
        cur.execute(query)
    return query.as_string(cur)


class AdvisoryLock:
    """Session-level advisory lock, held on an administrator's connection with a pinned search_path.

    The lock functions are called by their qualified names, so no function a
    tenant put in ``public`` is called instead. A session-level lock outlives
    the connection's transactions, and closing the connection (even when the
    module dies) releases it.
    """

    def __init__(self, conn, timeout, key=ADVISORY_LOCK_KEY):
        self.conn = conn
        self.timeout = timeout
        self.key = key

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        with self.conn.cursor() as cur:
            while True:
                cur.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", (self.key,))
                locked = cur.fetchone()[0]
                if not self.conn.autocommit:
                    self.conn.commit()
                if locked:
                    return self
                if time.monotonic() >= deadline:
                    raise MigrationError("another run holds the lock on this database; gave up after %ds (lock_timeout)" % self.timeout)
                time.sleep(0.2)

    def __exit__(self, *exc_info):
        try:
            if not self.conn.autocommit:
                self.conn.rollback()
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", (self.key,))
            if not self.conn.autocommit:
                self.conn.commit()
        except psycopg2.Error:
            pass  # closing the connection releases the lock
