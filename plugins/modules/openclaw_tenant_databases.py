#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_tenant_databases
short_description: Create, own and migrate every tenant database of one server in one run, in parallel
version_added: 0.4.0
description:
  - Does for each entry of O(databases) what M(openclaw.standalone.openclaw_db_schema) does for one tenant database
    with O(openclaw.standalone.openclaw_db_schema#module:state=present) - the owner role (its password given, or
    generated on the server), the database, ownership, C(PUBLIC) rights and the pending migrations, each applied
    logged in as the owner - in one module run, with up to O(parallel) databases at a time.
  - Each database is converged on its own connections, under its own advisory lock, and each pending migration in
    its own transaction; an existing database with pending migrations is dumped first when O(backup=true). One
    database failing does not stop the others; the module fails at the end, naming every database that failed,
    and reports every database's result in RV(databases).
  - The migration files are read on the controller by the module's action plugin and sent along with the module.
  - Removing a database stays with M(openclaw.standalone.openclaw_db_schema) (O(openclaw.standalone.openclaw_db_schema#module:state=absent)).
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
      - As M(openclaw.standalone.openclaw_db_schema) in check mode, for every database.
  diff_mode:
    support: full
    details:
      - Each database's diff is in its entry of RV(databases).
  idempotent:
    support: full
options:
  databases:
    description:
      - The tenant databases to converge; names must be unique.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Database name, V(openclaw_<slug>) with a valid slug.
        type: str
        required: true
      owner:
        description:
          - Role that owns the database and every object in it; created as a C(LOGIN) role when missing. The
            migrations run logged in as this role.
        type: str
      owner_password:
        description:
          - Password of O(databases[].owner). Mutually exclusive with O(databases[].owner_password_file).
        type: str
      owner_password_file:
        description:
          - File on the managed host with the password of O(databases[].owner); generated there (0600) when
            missing. Mutually exclusive with O(databases[].owner_password).
        type: path
      backup_keep:
        description:
          - How many pre-migration dumps of this database to keep in O(backup_dir).
        type: int
        default: 7
  parallel:
    description:
      - How many databases are converged at the same time.
    type: int
    default: 4
  backup:
    description:
      - Dump an existing database to O(backup_dir) before applying pending migrations to it.
    type: bool
    default: false
  backup_dir:
    description:
      - Directory on the managed host for the dumps.
    type: path
    default: /var/backups/openclaw
  migrations_path:
    description:
      - Directory on the controller with the C(V<NNN>__<description>.sql) files to use instead of the
        collection's own C(migrations/tenant/).
    type: path
seealso:
  - module: openclaw.standalone.openclaw_db_schema
  - module: openclaw.standalone.openclaw_batch_result
"""

EXAMPLES = r"""
- name: Migrate every tenant database of the server, four at a time
  openclaw.standalone.openclaw_tenant_databases:
    databases:
      - name: openclaw_aliya
        owner: openclaw_aliya
        owner_password_file: /etc/openclaw/secrets/db-aliya.password
      - name: openclaw_bekzat
        owner: openclaw_bekzat
        owner_password_file: /etc/openclaw/secrets/db-bekzat.password
    backup: true
    login_port: 5435
    login_password_file: /etc/openclaw/secrets/postgres_password
  register: migrated

- name: Versions after the run
  ansible.builtin.debug:
    msg: "{{ migrated.databases | dict2items | map(attribute='value.version') }}"
"""

RETURN = r"""
databases:
  description:
    - Each database's result, by name, with the fields M(openclaw.standalone.openclaw_db_schema) returns
      (C(changed), C(applied), C(pending), C(version), C(baselined), C(created), C(executed_statements),
      C(backup_file), C(generated_password_file), C(diff)); a database that failed has C(failed) and C(msg).
  returned: always
  type: dict
  sample: {openclaw_aliya: {changed: true, applied: [9], pending: [], version: 9, baselined: false,
           created: {database: false, role: false}, executed_statements: [],
           backup_file: /var/backups/openclaw/openclaw_aliya-20261123T120000000000Z-pre-v009.dump}}
failed_databases:
  description: Names of the databases that failed, in the order given.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.batch import converge_each, duplicate_problems
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
        databases=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                owner=dict(type="str"),
                owner_password=dict(type="str", no_log=True),
                owner_password_file=dict(type="path", no_log=False),
                backup_keep=dict(type="int", default=7),
            ),
        ),
        parallel=dict(type="int", default=4),
        backup=dict(type="bool", default=False),
        backup_dir=dict(type="path", default="/var/backups/openclaw"),
        migrations_path=dict(type="path"),
    )
    return spec


def database_params(module, entry):
    """One database's options for the shared convergence: the server-wide ones, then the entry's own."""
    params = {key: value for key, value in module.params.items() if key not in ("databases", "parallel", "_migrations")}
    params.update(entry, schema="tenant", state="present", purge=False)
    return params


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
    problems = [
        "%s: %s" % (entry["name"], problem) for entry in module.params["databases"] for problem in database_input_problems(dict(entry, schema="tenant"))
    ]
    names = [entry["name"] for entry in module.params["databases"]]
    problems += duplicate_problems(names, "database")
    if module.params["parallel"] < 1:
        problems.append("parallel must be at least 1")
    if problems:
        module.fail_json(msg="invalid input, nothing was done: " + "; ".join(problems))
    ensure_psycopg2(module)
    resolve_login_password(module)
    # After the login password is resolved: every database's options carry it.
    entries = [database_params(module, entry) for entry in module.params["databases"]]
    try:
        migrations = migration_files(module.params["_migrations"])
    except SchemaFailure as exc:
        module.fail_json(msg=exc.msg)

    def converge(params):
        return converge_database(params, migrations, module.check_mode, module.no_log_values.add, module.warn, diff=module._diff)

    converge_each(module, names, entries, converge, module.params["parallel"], "databases", "databases")


if __name__ == "__main__":
    main()
