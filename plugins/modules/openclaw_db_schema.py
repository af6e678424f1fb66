#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_db_schema
short_description: Ensure an OpenClaw database exists, is owned by its role and is migrated
version_added: 0.1.0
description:
  - Ensures a PostgreSQL database for one tenant (O(schema=tenant), database V(openclaw_<slug>)) or for the
    shared services (O(schema=shared), database V(openclaw)) exists and is migrated to the newest version of
    the collection's SQL migrations.
  - Migrations are files named C(V<NNN>__<description>.sql). Each runs in its own transaction and gets a row
    in the history table C(openclaw_meta.schema_history) (version, description, checksum, installed_on,
    execution_time, success, installed_by). A failing migration rolls back completely.
  - B(Who runs what.) A database owned by a role that is not a superuser (a tenant's) is migrated on a
    connection logged in as that role (O(owner) with O(owner_password) or O(owner_password_file)), so
    triggers, functions or operators the role planted run with its own rights only. The administrator's
    login (O(login_user)) does only cluster-level work (roles, databases, C(CONNECT)), ownership changes,
    the advisory lock and the history, on connections whose C(search_path) is pinned to C(pg_catalog,
    pg_temp), with every name qualified.
  - B(History.) In a tenant's database the history schema and table belong to C(openclaw_history_owner), a
    C(NOLOGIN) role created once per cluster that nobody is granted; the owner role may only read them
    (C(USAGE), C(SELECT)). Before every use the module checks that the history is a plain table owned by
    that role (or, in a database an administrator owns, by a superuser), with no rules, triggers, row
    security, inheritance, and no types, defaults, constraints or indexes that use anything outside
    C(pg_catalog), and fails naming what it found otherwise. A history an older version of this module left
    to the tenant's role is taken over (C(ALTER ... OWNER)) and then checked the same way.
  - A migration's history row is inserted on the administrator's connection before the migration's own
    transaction commits and is committed right after it. Should that last commit be lost (the connection
    drops in between), the migration's objects exist without a history row; the next run applies the file
    again, fails on the objects it already created naming the file, and the row is then recorded by hand.
  - A session-level PostgreSQL advisory lock, taken on the administrator's connection, serializes
    concurrent runs against the same database, so each migration is applied exactly once.
  - An existing database without history that already has every table of the baseline migration (as the
    seed platform's C(create-client.sh) left it) is adopted - the baseline is recorded, not run, and no data
    is touched.
  - C(CONNECT) and C(TEMPORARY) on the database are revoked from C(PUBLIC) (for the shared database too), so
    one tenant's role cannot open another tenant's database; grant C(CONNECT) explicitly to any other role
    that needs it. With O(owner), a C(LOGIN) role owns the database and every object in it.
  - The migration files are read on the controller by the module's action plugin, from the collection
    (or O(migrations_path)), and sent along with the module; nothing needs to be copied to the server.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.postgres
  - openclaw.standalone.attributes
  - openclaw.standalone.attributes.actiongroup_openclaw
attributes:
  check_mode:
    support: full
    details:
      - Connects and reads the history (after the same checks as a real run); reports RV(pending) and what
        would change; writes nothing, not even the history table, and runs no migration. A history the
        tenant's role still owns is read on a connection logged in as that role.
      - RV(executed_statements) lists the statements a real run would execute, except the creation and grants
        of a history table that does not exist yet.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Database name. Tenant databases must be V(openclaw_<slug>) with a valid slug.
    type: str
    required: true
    aliases: [db]
  schema:
    description:
      - Which migrations apply - V(tenant) for a tenant database, V(shared) for the shared database.
    type: str
    choices: [tenant, shared]
    default: tenant
  owner:
    description:
      - Role that owns the database and all objects in its C(public) schema; created as a C(LOGIN) role when
        missing. The migrations run logged in as this role.
      - When omitted, ownership is left as it is; a database owned by a role that is not a superuser then
        cannot be migrated or dumped (its password is needed).
    type: str
  owner_password:
    description:
      - Password of O(owner). Set when the role is created and changed when it differs (compared against the
        stored SCRAM or md5 verifier, never read back).
      - Mutually exclusive with O(owner_password_file).
    type: str
  owner_password_file:
    description:
      - File on the managed host with the password of O(owner). When the file does not exist, a random
        password is generated on the managed host and written there first (mode 0600, directory 0700), so it
        never passes through the controller. An existing file is always reused. With O(state=absent) an
        existing file is read for the dump, which runs as O(owner).
      - Mutually exclusive with O(owner_password).
    type: path
  state:
    description:
      - V(present) creates and migrates the database. V(absent) dumps it to O(backup_dir) and drops it, and
        only with O(purge=true).
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - Confirms that O(state=absent) may drop the database and its data (after the dump).
    type: bool
    default: false
  backup_dir:
    description:
      - Directory on the managed host for the C(pg_dump -Fc) dump taken before a purge.
      - A database owned by a role that is not a superuser is dumped logged in as that role (O(owner),
        O(owner_password) or an existing O(owner_password_file)), for a purge as for O(backup).
    type: path
    default: /var/backups/openclaw
  pg_dump_path:
    description:
      - C(pg_dump) program on the managed host, or a wrapper that accepts the same arguments and writes the
        dump to standard output (for example one that runs C(pg_dump) inside the PostgreSQL container).
      - Its major version must be at least the server's.
    type: str
    default: pg_dump
  backup:
    description:
      - Dump an existing database (C(pg_dump -Fc)) to O(backup_dir) before applying pending migrations to it.
        Nothing is dumped when nothing is pending or the database was just created.
    type: bool
    default: false
  backup_keep:
    description:
      - How many pre-migration dumps of this database to keep in O(backup_dir); older ones are deleted.
    type: int
    default: 7
  baseline:
    description:
      - How to treat an existing database with tables but no migration history.
      - V(auto) adopts it when it has every table the baseline migration creates and fails, naming the missing
        tables, when it has only some of them.
      - V(force) records the baseline as applied even when tables are missing.
      - V(never) refuses to adopt.
    type: str
    choices: [auto, force, never]
    default: auto
  repair:
    description:
      - Accept applied migration files whose checksum changed and record their new checksum. Without it such
        drift fails the run, naming the file.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run converging the same database to finish.
    type: int
    default: 300
  migrations_path:
    description:
      - Directory on the controller with the C(V<NNN>__<description>.sql) files to use instead of the
        collection's own C(migrations/<schema>/).
    type: path
  _migrations:
    description:
      - Internal, set by the module's action plugin to the migration files it read on the controller
        (O(migrations_path) or the collection's own). Do not set it.
    type: list
    elements: dict
seealso:
  - name: PostgreSQL advisory locks
    description: How concurrent migrators are serialized.
    link: https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
"""

EXAMPLES = r"""
- name: Migrate the database of tenant aliya, owned by its own role
  openclaw.standalone.openclaw_db_schema:
    name: openclaw_aliya
    schema: tenant
    owner: openclaw_aliya
    owner_password: "{{ openclaw_db_password }}"
    login_host: 127.0.0.1
    login_port: 5435
    login_password: "{{ openclaw_postgres_password }}"

- name: Migrate the shared database
  openclaw.standalone.openclaw_db_schema:
    name: openclaw
    schema: shared
    login_port: 5435
    login_password: "{{ openclaw_postgres_password }}"

- name: Show what would be applied, changing nothing
  openclaw.standalone.openclaw_db_schema:
    name: openclaw_aliya
    login_port: 5435
    login_password: "{{ openclaw_postgres_password }}"
  check_mode: true
  register: plan

- name: Remove a tenant database for good (dumped to /var/backups/openclaw first)
  openclaw.standalone.openclaw_db_schema:
    name: openclaw_aliya
    state: absent
    purge: true
    owner: openclaw_aliya
    login_port: 5435
    login_password: "{{ openclaw_postgres_password }}"
"""

RETURN = r"""
applied:
  description: Versions applied in this run, in order.
  returned: always
  type: list
  elements: int
  sample: [1, 2]
pending:
  description: Versions not yet applied. After a real run this is empty; in check mode it is what would run.
  returned: always
  type: list
  elements: int
  sample: [2]
version:
  description: Newest applied version after the run (in check mode, after the predicted run). V(0) when none.
  returned: always
  type: int
  sample: 2
baselined:
  description: Whether an existing database without history was adopted by recording the baseline.
  returned: always
  type: bool
created:
  description: What this run created.
  returned: always
  type: dict
  contains:
    database:
      description: The database was created.
      type: bool
    role:
      description: The owner role was created.
      type: bool
  sample: {database: true, role: true}
executed_statements:
  description: Server-level, ownership and history privilege statements run (or, in check mode, that would run). Passwords are masked.
  returned: always
  type: list
  elements: str
  sample: ['CREATE ROLE "openclaw_aliya" LOGIN PASSWORD ********', 'CREATE DATABASE "openclaw_aliya" OWNER "openclaw_aliya"']
generated_password_file:
  description: O(owner_password_file) did not exist and a new password was generated into it (in check mode, would be).
  returned: when a password was generated
  type: str
  sample: /etc/openclaw/secrets/db-aliya.password
backup_file:
  description: Dump written before the database was dropped, or before pending migrations were applied.
  returned: when a dump was written
  type: str
  sample: /var/backups/openclaw/openclaw_aliya-20261123T120000Z.dump
"""

import contextlib
import datetime
import os
import re
import secrets
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils import dbadmin
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
    POSTGRES_MUTUALLY_EXCLUSIVE,
    ConnectionFailure,
    connect,
    ensure_psycopg2,
    error_text,
    postgres_common_argument_spec,
    psycopg2,
    read_secret_file,
    resolve_login_password,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import database_name_problems, role_name_problems


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        name=dict(type="str", required=True, aliases=["db"]),
        schema=dict(type="str", default="tenant", choices=["tenant", "shared"]),
        owner=dict(type="str"),
        owner_password=dict(type="str", no_log=True),
        owner_password_file=dict(type="path", no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        purge=dict(type="bool", default=False),
        backup_dir=dict(type="path", default="/var/backups/openclaw"),
        pg_dump_path=dict(type="str", default="pg_dump"),
        backup=dict(type="bool", default=False),
        backup_keep=dict(type="int", default=7),
        baseline=dict(type="str", default="auto", choices=["auto", "force", "never"]),
        repair=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=300),
        migrations_path=dict(type="path"),
        # Filled by the action plugin with the migration files read on the controller.
        _migrations=dict(type="list", elements="dict"),
    )
    return spec


class SchemaRun:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.statements = []
        self.result = dict(
            changed=False, applied=[], pending=[], version=0, baselined=False, created=dict(database=False, role=False), executed_statements=self.statements
        )
        self.before = {}
        self.after = {}

    def owner_password_from_file(self, path):
        """The owner's password from ``path``, generated there first when the file is missing."""
        if os.path.exists(path):
            return read_secret_file(self.module, path, "owner_password_file")
        password = secrets.token_urlsafe(30)
        self.module.no_log_values.add(password)
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

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **dict(self.result, **kwargs))

    def record(self, statements):
        self.statements.extend(statements)
        self.result["changed"] = True

    # -- present -------------------------------------------------------------
    def present(self, admin):
        migrations = self.migrations()
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

    def migrations(self):
        files = self.params["_migrations"]
        if files is None:
            self.fail("no migration files reached the module; call it as openclaw.standalone.openclaw_db_schema so its action plugin runs")
        try:
            return load_migrations(files)
        except MigrationError as exc:
            self.fail(str(exc))

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
                    self.module.warn("role %s was kept: it still owns or is granted objects elsewhere (%s)" % (owner, error_text(exc)))

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


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_by={"owner_password": "owner", "owner_password_file": "owner"},
        mutually_exclusive=[*POSTGRES_MUTUALLY_EXCLUSIVE, ("owner_password", "owner_password_file")],
    )
    params = module.params

    problems = database_name_problems(params["name"], params["schema"])
    if params["owner"] is not None:
        problems += role_name_problems(params["owner"])
    if problems:
        module.fail_json(msg="invalid input, nothing was done: " + "; ".join(str(problem) for problem in problems))
    if params["state"] == "absent" and not params["purge"]:
        module.fail_json(
            msg="state=absent drops database %s and all its data; set purge=true to confirm (it is dumped to %s first)" % (params["name"], params["backup_dir"])
        )
    ensure_psycopg2(module)
    resolve_login_password(module)

    run = SchemaRun(module)
    if params["owner_password_file"] and params["state"] == "present":
        params["owner_password"] = run.owner_password_from_file(params["owner_password_file"])
    elif params["owner_password_file"] and os.path.exists(params["owner_password_file"]):
        # A purge dumps the database as its owner first.
        params["owner_password"] = read_secret_file(module, params["owner_password_file"], "owner_password_file")
    try:
        admin = connect(params, autocommit=True, options=PINNED_SEARCH_PATH)
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc))
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

    if module._diff:
        run.result["diff"] = dict(before=run.before, after=run.after)
    module.exit_json(**run.result)


if __name__ == "__main__":
    main()
