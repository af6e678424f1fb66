# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Converging one database: its owner role, the database itself, and its migrations.

Shared by openclaw_db_schema (one database) and openclaw_tenant_databases (every
tenant database of a server, in parallel). Nothing here ends the module: a
failure raises SchemaFailure with what was done so far, and the caller reports it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import secrets
import subprocess
import tempfile

from ansible_collections.openclaw.standalone.plugins.module_utils import dbadmin
from ansible_collections.openclaw.standalone.plugins.module_utils.batch import ConvergeFailure
from ansible_collections.openclaw.standalone.plugins.module_utils.migrations import (
    HISTORY_OWNER,
    AdvisoryLock,
    HistoryRow,
    MigrationError,
    Migrator,
    database_lock_key,
    history_problems,
    load_migrations,
    plan,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import (
    PINNED_SEARCH_PATH,
    ConnectionFailure,
    connect,
    error_text,
    psycopg2,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.secret_files import SecretFileError, load_secret_file
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import database_name_problems, role_name_problems


class SchemaFailure(ConvergeFailure):
    """One database could not be converged; ``result`` holds what was done before the failure."""


def migration_run_argument_spec():
    """Options of a migration run; documented in the openclaw.standalone.migration_run doc fragment."""
    return dict(
        pg_dump_path=dict(type="str", default="pg_dump"),
        baseline=dict(type="str", default="auto", choices=["auto", "force", "never"]),
        repair=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=300),
        # Filled by the action plugin with the migration files read on the controller.
        _migrations=dict(type="list", elements="dict"),
    )


def database_input_problems(params):
    """What is wrong with one database's options, before anything is touched."""
    problems = [str(problem) for problem in database_name_problems(params["name"], params["schema"])]
    if params.get("owner") is not None:
        problems += [str(problem) for problem in role_name_problems(params["owner"])]
    if params.get("owner_password") is not None and params.get("owner_password_file") is not None:
        problems.append("owner_password and owner_password_file are mutually exclusive")
    if params.get("owner_password_file") is not None and params.get("owner") is None:
        problems.append("owner_password_file needs owner")
    return problems


def migration_files(files):
    """The migrations the action plugin read on the controller, parsed; SchemaFailure when there are none or they are invalid."""
    if files is None:
        raise SchemaFailure("no migration files reached the module; call it through its action plugin (its fully qualified name)", {})
    try:
        return load_migrations(files)
    except MigrationError as exc:
        raise SchemaFailure(str(exc), {}) from exc


def converge_database(params, migrations, check, hide, warn, diff=False):
    """Converge one database as ``params`` say; returns the result, raises SchemaFailure with the partial result.

    ``hide`` registers a secret (a password read or generated) so it is masked
    in every output; ``warn`` reports a warning.
    """
    run = SchemaRun(params, migrations, check, hide, warn)
    if params["owner_password_file"] and params["state"] == "present":
        params["owner_password"] = run.owner_password_from_file(params["owner_password_file"])
    elif params["owner_password_file"] and os.path.exists(params["owner_password_file"]):
        # A purge dumps the database as its owner first.
        params["owner_password"] = run.secret_file(params["owner_password_file"], "owner_password_file")
    try:
        admin = connect(params, autocommit=True, options=PINNED_SEARCH_PATH)
    except ConnectionFailure as exc:
        run.fail(str(exc))
    try:
        if params["state"] == "present":
            run.present(admin)
        else:
            run.absent(admin)
    except ConnectionFailure as exc:
        run.fail(str(exc))
    except MigrationError as exc:
        run.fail("%s: %s" % (params["name"], exc))
    except psycopg2.Error as exc:
        run.fail("database error on %s: %s" % (params["name"], error_text(exc)))
    finally:
        admin.close()
    if diff:
        run.result["diff"] = dict(before=run.before, after=run.after)
    return run.result


class SchemaRun:
    """One database's convergence; every failure raises SchemaFailure."""

    def __init__(self, params, migrations, check, hide, warn):
        self.params = params
        self.loaded = migrations
        self.check = check
        self.hide = hide
        self.warn = warn
        self.statements = []
        self.result = dict(
            changed=False, applied=[], pending=[], version=0, baselined=False, created=dict(database=False, role=False), executed_statements=self.statements
        )
        self.before = {}
        self.after = {}

    def owner_password_from_file(self, path):
        """The owner's password from ``path``, generated there first when the file is missing."""
        if os.path.exists(path):
            return self.secret_file(path, "owner_password_file")
        password = secrets.token_urlsafe(30)
        self.hide(password)
        self.result["changed"] = True
        self.result["generated_password_file"] = path
        if self.check:
            return password  # predicts "role created / password changed"; nothing is written
        directory = os.path.dirname(path) or "."
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            handle, partial = tempfile.mkstemp(prefix=".password-", dir=directory)
            with os.fdopen(handle, "w", encoding="utf-8") as output:
                output.write(password + "\n")
            os.chmod(partial, 0o600)
            os.rename(partial, path)
        except OSError as exc:
            self.fail("cannot write owner_password_file %s: %s" % (path, exc.strerror))
        return password

    def secret_file(self, path, option):
        try:
            secret = load_secret_file(path, option)
        except SecretFileError as exc:
            self.fail(str(exc))
        self.hide(secret)
        return secret

    def fail(self, msg):
        raise SchemaFailure(msg, dict(self.result))

    def record(self, statements):
        self.statements.extend(statements)
        self.result["changed"] = True

    # -- present -------------------------------------------------------------
    def present(self, admin):
        migrations = self.loaded
        # Concurrent runs for one tenant (two pipelines, a retry) would update
        # the same pg_database row; check mode writes nothing and takes no lock.
        lock = contextlib.nullcontext() if self.check else AdvisoryLock(admin, self.params["lock_timeout"], database_lock_key(self.params["name"]))
        with lock:
            converged = self.converge_cluster(admin, migrations)
        if converged:
            self.migrate(*converged, migrations)

    def converge_cluster(self, admin, migrations):
        """Role, database, owner and PUBLIC rights; returns (name, db_owner, tenant_owned) unless check mode stops at a database to create."""
        name, owner = self.params["name"], self.params["owner"]
        with admin.cursor() as cur:
            if owner:
                changes = dbadmin.role_changes(cur, owner, self.params["owner_password"])
                self.before["role"] = "absent" if "create" in changes else "present"
                self.after["role"] = "present"
                if changes:
                    self.result["created"]["role"] = "create" in changes
                    self.record(self.role_statements(cur, owner, changes))
            info = dbadmin.database_info(cur, name)
            self.before["database"] = "absent" if info is None else "present"
            self.after["database"] = "present"
            if info is None:
                self.result["created"]["database"] = True
                if self.check:
                    self.record(dbadmin.create_database(cur, name, owner, dry_run=True))
                    if owner and not dbadmin.role_is_superuser(cur, owner):
                        self.history_owner(cur)
                    self.result["pending"] = [migration.version for migration in migrations]
                    self.result["version"] = migrations[-1].version
                    self.after.update(version=self.result["version"], owner=owner or self.params["login_user"], public_connect=False)
                    self.before.update(version=0)
                    return None
                self.create_database(cur, name, owner)
                info = dbadmin.database_info(cur, name)
            self.before.update(owner=info["owner"], public_connect=info["public_connect"])
            self.after.update(owner=owner or info["owner"], public_connect=False)
            if owner and info["owner"] != owner:
                self.record(dbadmin.alter_database_owner(cur, name, owner, dry_run=self.check))
            if info["public_connect"]:
                self.record(dbadmin.revoke_public_connect(cur, name, dry_run=self.check))
            # Whoever owns the database runs its migrations. A role that does not
            # exist yet (check mode) is about to be created as a plain LOGIN role.
            db_owner = owner or info["owner"]
            tenant_owned = not dbadmin.role_is_superuser(cur, db_owner)
            if tenant_owned:
                self.history_owner(cur)
        return name, db_owner, tenant_owned

    def history_owner(self, cur):
        try:
            statements = dbadmin.nologin_role(cur, HISTORY_OWNER, dry_run=self.check)
        except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
            statements = []  # a parallel run of another tenant created it first
        if statements:
            self.record(statements)

    def role_statements(self, cur, owner, changes):
        try:
            return dbadmin.apply_role(cur, owner, self.params["owner_password"], changes, dry_run=self.check)
        except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
            # A parallel run created the role first; converge what is left.
            remaining = dbadmin.role_changes(cur, owner, self.params["owner_password"])
            self.result["created"]["role"] = False
            return dbadmin.apply_role(cur, owner, self.params["owner_password"], remaining) if remaining else []

    def create_database(self, cur, name, owner):
        try:
            self.record(dbadmin.create_database(cur, name, owner))
        except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
            # A parallel run was first (the catalog's unique index can fire
            # before the duplicate check does).
            self.result["created"]["database"] = False

    def migrate(self, name, db_owner, tenant_owned, migrations):
        # The administrator's connection to the database: history, lock and
        # ownership only, with the search_path pinned to the catalog.
        meta = connect(self.params, dbname=name, options=PINNED_SEARCH_PATH)
        migrator = Migrator(None, migrations, meta=meta, expected_owner=HISTORY_OWNER if tenant_owned else None)
        try:
            if self.check:
                # Check mode reads only: no lock, no history table, no writes.
                meta.set_session(readonly=True)
                lock = contextlib.nullcontext()
            else:
                lock = AdvisoryLock(meta, self.params["lock_timeout"])
            with lock:
                if not tenant_owned:
                    migrator.conn = meta  # nobody else's code to keep apart: one connection, one transaction per file
                elif self.params["owner"]:
                    # Before the migrations, so they find their tables owned by the role they run as.
                    self.transfer_ownership(meta, db_owner)
                self.migrate_locked(migrator, migrations, name, db_owner)
        finally:
            for conn in (migrator.conn, meta):
                if conn is not None and not conn.closed:
                    conn.close()

    def owner_connection(self, name, db_owner, why):
        """A connection logged in as the database's owner; migrations and dumps run there, never as an administrator."""
        password = self.params["owner_password"]
        if password is None or self.params["owner"] != db_owner:
            raise MigrationError(
                "database %s is owned by role %s, and %s runs as that role (an administrator's session would run whatever the "
                "role planted with the administrator's rights); give owner=%s with owner_password or owner_password_file" % (name, db_owner, why, db_owner)
            )
        # search_path public: the migration files name public's objects unqualified.
        return connect(self.params, dbname=name, user=db_owner, password=password, options="-c search_path=public")

    def transfer_ownership(self, conn, owner):
        with conn.cursor() as cur:
            foreign = dbadmin.foreign_owned_objects(cur, owner)
            if foreign:
                self.record(dbadmin.transfer_ownership(cur, foreign, owner, dry_run=self.check))
        conn.commit()

    def read_history(self, migrator, name, db_owner):
        """Verify the history relation (taking it over first when a tenant still owns it), then read it."""
        state = migrator.state()
        takeover = migrator.history_ownership(state, dry_run=True)
        if not takeover:
            history = migrator.history()
            if state is not None and migrator.expected_owner is not None:
                self.privileges(migrator, db_owner)
            return history
        if not self.check:
            migrator.history_ownership(state)
            migrator.verify()  # in the same transaction: refused, the owner change is rolled back too
            migrator.meta.commit()
            self.record(takeover)
            history = migrator.history()
            self.privileges(migrator, db_owner)
            return history
        # Check mode on a history a tenant still owns: its structure is checked as
        # it will be after the take-over, and it is read as its owner, never as an
        # administrator (the owner could swap it between the check and the read).
        with migrator.meta.cursor() as cur:
            owned = dict(state, schema_owner=(HISTORY_OWNER, False), owner=(HISTORY_OWNER, False) if state["oid"] else None)
            problems = history_problems(cur, owned, HISTORY_OWNER)
        if problems:
            migrator.verify(owned)  # raises, naming the problems
        self.record(takeover)
        if state["oid"] is None:
            return []
        tenant = self.owner_connection(name, db_owner, "reading a history it still owns")
        try:
            tenant.set_session(readonly=True)
            history = migrator.history(conn=tenant)
        finally:
            tenant.close()
        # The owner's own entries fold into the new owner's, so the tenant's read access is granted anew.
        self.privileges(migrator, db_owner)
        return history

    def privileges(self, migrator, db_owner):
        statements = migrator.privilege_statements(db_owner, dry_run=self.check)
        if statements:
            self.record(statements)
            if not self.check:
                migrator.meta.commit()

    def migrate_locked(self, migrator, migrations, name, db_owner):
        history = self.read_history(migrator, name, db_owner)
        self.before["version"] = max((row.version for row in history), default=0)
        exists = migrator.history_exists()
        if not history and not exists and migrator.adoption(self.params["baseline"]) == "adopt":
            self.result["baselined"] = True
            self.result["changed"] = True
            if self.check:
                history = [_baseline_row(migrations[0])]
            else:
                self.ensure_history(migrator, db_owner)
                exists = True
                migrator.baseline()
                history = migrator.history()
        pending, repairs = plan(migrations, history, repair=self.params["repair"])
        if repairs:
            self.result["changed"] = True
            self.result["repaired"] = [migration.script for migration in repairs]
            if not self.check:
                migrator.repair(repairs)
        self.result["pending"] = [migration.version for migration in pending]
        if self.check:
            self.result["changed"] = self.result["changed"] or bool(pending)
            self.result["version"] = max([row.version for row in history] + self.result["pending"] + [0])
            self.after["version"] = self.result["version"]
            return
        if pending:
            if migrator.conn is None:
                migrator.conn = self.owner_connection(name, db_owner, "applying its migrations")
            if not exists:
                self.ensure_history(migrator, db_owner)
        if pending and self.params["backup"] and not self.result["created"]["database"]:
            dumper = db_owner if migrator.expected_owner is not None else None
            self.result["backup_file"] = self.dump(self.params["name"], label="pre-v%03d" % pending[0].version, db_owner=dumper)
            self.prune_backups(self.params["name"])
        for migration in pending:
            migrator.apply(migration)
            self.result["applied"].append(migration.version)
            self.result["changed"] = True
        self.result["pending"] = []
        self.result["version"] = max([row.version for row in history] + self.result["applied"] + [0])
        self.after["version"] = self.result["version"]

    def ensure_history(self, migrator, db_owner):
        migrator.ensure_history_table()
        migrator.verify()
        if migrator.expected_owner is not None:
            self.privileges(migrator, db_owner)

    # -- absent --------------------------------------------------------------
    def absent(self, admin):
        name, owner = self.params["name"], self.params["owner"]
        with admin.cursor() as cur:
            info = dbadmin.database_info(cur, name)
            role = dbadmin.role_info(cur, owner) if owner else None
            self.before = {"database": "absent" if info is None else "present"}
            self.after = {"database": "absent"}
            if owner:
                self.before["role"] = "absent" if role is None else "present"
                self.after["role"] = "absent"
            if info is not None:
                if not self.check:
                    tenant_owned = not dbadmin.role_is_superuser(cur, info["owner"])
                    self.result["backup_file"] = self.dump(name, db_owner=info["owner"] if tenant_owned else None)
                self.record(dbadmin.drop_database(cur, name, dry_run=self.check))
            if role is not None:
                try:
                    self.record(dbadmin.drop_role(cur, owner, dry_run=self.check))
                except psycopg2.errors.DependentObjectsStillExist as exc:
                    self.warn("role %s was kept: it still owns or is granted objects elsewhere (%s)" % (owner, error_text(exc)))

    def dump(self, name, label=None, db_owner=None):
        """pg_dump -Fc of ``name`` into backup_dir, written under a temporary name and renamed when complete.

        A database a tenant owns (``db_owner``) is dumped as that role: pg_dump
        run by an administrator reads the tenant's objects with the
        administrator's rights, and a relation swapped for a view during the
        dump runs the tenant's functions as the administrator.
        """
        what = "nothing was dropped" if label is None else "no migration was applied"
        user, password = self.params["login_user"], self.params["login_password"]
        if db_owner is not None:
            if self.params["owner_password"] is None or self.params["owner"] != db_owner:
                self.fail(
                    "database %s is owned by role %s and is dumped as that role, not as an administrator; give owner=%s with "
                    "owner_password or owner_password_file; %s" % (name, db_owner, db_owner, what)
                )
            user, password = db_owner, self.params["owner_password"]
        backup_dir = self.params["backup_dir"]
        try:
            os.makedirs(backup_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            self.fail("cannot create backup_dir %s: %s" % (backup_dir, exc))
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        final = os.path.join(backup_dir, "%s-%s%s.dump" % (name, stamp, "-" + label if label else ""))
        try:
            handle, partial = tempfile.mkstemp(prefix=".%s-" % name, suffix=".dump.partial", dir=backup_dir)
        except OSError as exc:
            self.fail("cannot write a dump into backup_dir %s: %s" % (backup_dir, exc))
        env = dict(os.environ, PGCONNECT_TIMEOUT=str(self.params["connect_timeout"]), PGSSLMODE=self.params["ssl_mode"])
        if self.params["ssl_rootcert"]:
            env["PGSSLROOTCERT"] = self.params["ssl_rootcert"]  # the dump checks the server like the module's own connections
        if password:
            env["PGPASSWORD"] = password  # never on the command line
        command = [
            self.params["pg_dump_path"],
            "--format=custom",
            "--host", self.params["login_host"],
            "--port", str(self.params["login_port"]),
            "--username", user,
            "--dbname", name,
        ]  # fmt: skip
        try:
            with os.fdopen(handle, "wb") as output:
                completed = subprocess.run(command, env=env, stdout=output, stderr=subprocess.PIPE, check=False)
        except OSError as exc:
            os.unlink(partial)
            self.fail("cannot run %s to dump %s: %s; %s" % (self.params["pg_dump_path"], name, exc, what))
        if completed.returncode != 0:
            os.unlink(partial)
            self.fail("pg_dump of %s failed (%d), %s: %s" % (name, completed.returncode, what, completed.stderr.decode("utf-8", "replace").strip()))
        os.chmod(partial, 0o600)
        os.rename(partial, final)
        return final

    def prune_backups(self, name):
        """Keep the newest backup_keep pre-migration dumps of ``name``; purge dumps are never pruned."""
        backup_dir = self.params["backup_dir"]
        # Exactly this database's names: slugs may contain '-', so a looser match
        # would take openclaw_ali-2's dumps for openclaw_ali's.
        own = re.compile(re.escape(name) + r"-[0-9]{8}T[0-9]{12}Z-pre-v[0-9]+\.dump")
        try:
            dumps = sorted(entry for entry in os.listdir(backup_dir) if own.fullmatch(entry))
            keep = max(self.params["backup_keep"], 1)
            pruned = dumps[:-keep]
            for entry in pruned:
                os.unlink(os.path.join(backup_dir, entry))
        except OSError as exc:
            self.fail("cannot prune old dumps in %s: %s" % (backup_dir, exc))
        if pruned:
            self.result["pruned_backups"] = pruned


def _baseline_row(migration):
    return HistoryRow(migration.version, migration.description, migration.script, migration.checksum, "BASELINE", True)
