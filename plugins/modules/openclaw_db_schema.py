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
  - openclaw.standalone.migration_run
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
  migrations_path:
    description:
      - Directory on the controller with the C(V<NNN>__<description>.sql) files to use instead of the
        collection's own C(migrations/<schema>/).
    type: path
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import (
    POSTGRES_MUTUALLY_EXCLUSIVE,
    ensure_psycopg2,
    postgres_common_argument_spec,
    resolve_login_password,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.schema_run import (
    SchemaFailure,
    converge_database,
    database_input_problems,
    migration_files,
    migration_run_argument_spec,
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(migration_run_argument_spec())
    spec.update(
        name=dict(type="str", required=True, aliases=["db"]),
        schema=dict(type="str", default="tenant", choices=["tenant", "shared"]),
        owner=dict(type="str"),
        owner_password=dict(type="str", no_log=True),
        owner_password_file=dict(type="path", no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        purge=dict(type="bool", default=False),
        backup_dir=dict(type="path", default="/var/backups/openclaw"),
        backup=dict(type="bool", default=False),
        backup_keep=dict(type="int", default=7),
        migrations_path=dict(type="path"),
    )
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_by={"owner_password": "owner", "owner_password_file": "owner"},
        mutually_exclusive=[*POSTGRES_MUTUALLY_EXCLUSIVE, ("owner_password", "owner_password_file")],
    )
    params = module.params

    problems = database_input_problems(params)
    if problems:
        module.fail_json(msg="invalid input, nothing was done: " + "; ".join(problems))
    if params["state"] == "absent" and not params["purge"]:
        module.fail_json(
            msg="state=absent drops database %s and all its data; set purge=true to confirm (it is dumped to %s first)" % (params["name"], params["backup_dir"])
        )
    ensure_psycopg2(module)
    resolve_login_password(module)
    try:
        migrations = migration_files(params["_migrations"]) if params["state"] == "present" else []
        result = converge_database(params, migrations, module.check_mode, module.no_log_values.add, module.warn, diff=module._diff)
    except SchemaFailure as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
