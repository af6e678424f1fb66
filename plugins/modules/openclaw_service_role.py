#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_service_role
short_description: Ensure a shared service's own PostgreSQL role with exactly the privileges it needs
version_added: 0.1.0
description:
  - Ensures a C(LOGIN) role for one shared service (webhook, upload) - never a superuser, no C(CREATEDB),
    C(CREATEROLE), C(REPLICATION) or C(BYPASSRLS) - so the service does not log in as the PostgreSQL superuser.
  - Its C(CONNECT) privilege is exactly O(database) (none when omitted); a C(CONNECT) granted to it on any other
    database is revoked.
  - Its table and column privileges in O(database) are exactly O(grants); anything else granted to it there is
    revoked.
  - The password comes from O(password) (vault) or O(password_file), generated on the managed host when missing
    (mode 0600, directory 0700), so it never passes through the controller.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.postgres
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  name:
    description:
      - The service's role. Names a tenant's role could have (C(openclaw_) and a slug) and the login user are refused.
    type: str
    required: true
  password:
    description:
      - Its password. Mutually exclusive with O(password_file).
    type: str
  password_file:
    description:
      - File on the managed host with its password; generated there when missing, an existing file is reused.
    type: path
  database:
    description:
      - The only database the role may connect to, and where O(grants) apply.
    type: str
  grants:
    description:
      - Privileges in O(database). Each names a O(grants[].table) (C(schema.table), schema C(public) by default),
        its O(grants[].privileges) and optionally the O(grants[].columns) they are limited to.
    type: list
    elements: dict
    default: []
    suboptions:
      table:
        description: The table.
        type: str
        required: true
      privileges:
        description: C(SELECT), C(INSERT), C(UPDATE) or C(DELETE).
        type: list
        elements: str
        required: true
      columns:
        description: Limit the privileges to these columns (not for C(DELETE)).
        type: list
        elements: str
"""

EXAMPLES = r"""
- name: The webhook service reads the WABA routing table, nothing else
  openclaw.standalone.openclaw_service_role:
    name: openclaw_service_webhook
    password_file: /etc/openclaw/secrets/service-webhook.password
    database: openclaw
    grants:
      - table: waba_phone_mapping
        privileges: [SELECT]
        columns: [waba_phone_id, slug, waba_app_secret, waba_access_token, gateway_token, is_active]
    login_port: 5435
    login_password_file: /etc/openclaw/secrets/postgres_password
"""

RETURN = r"""
executed_statements:
  description: Statements run (or, in check mode, that would run); passwords masked.
  returned: always
  type: list
  elements: str
generated_password_file:
  description: The password file written by this run.
  returned: when a password file was generated
  type: str
"""

import os
import re
import secrets
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils import dbadmin
from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import (
    POSTGRES_MUTUALLY_EXCLUSIVE,
    ConnectionFailure,
    connect,
    ensure_psycopg2,
    error_text,
    postgres_common_argument_spec,
    psycopg2,
    read_secret_file,
    resolve_login_password,
    sql,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import role_name_problems

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Tenant roles are openclaw_<slug> and slugs have no underscore.
TENANT_ROLE = re.compile(r"openclaw_[a-z0-9-]+")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


def password_from_file(module, path, result):
    if os.path.exists(path):
        return read_secret_file(module, path, "password_file")
    password = secrets.token_urlsafe(30)
    module.no_log_values.add(password)
    result.update(changed=True, generated_password_file=path)
    if module.check_mode:
        return password
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=".password-", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            output.write(password + "\n")
        os.chmod(partial, 0o600)
        os.rename(partial, path)
    except OSError as exc:
        module.fail_json(msg="cannot write password_file %s: %s" % (path, exc.strerror), **result)
    return password


def wanted_privileges(grants):
    """{(schema, table, column or None, privilege)} from the grants option."""
    wanted = set()
    for grant in grants:
        schema, _dot, table = grant["table"].rpartition(".")
        for privilege in grant["privileges"]:
            for column in grant.get("columns") or [None]:
                wanted.add((schema or "public", table, column, privilege.upper()))
    return wanted


def held_privileges(cur, role):
    """The same set as wanted_privileges, read from the catalog of the connected database."""
    cur.execute(
        "SELECT n.nspname, c.relname, NULL, a.privilege_type"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a"
        " WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s) AND n.nspname <> ALL(%s)"
        " UNION ALL"
        " SELECT n.nspname, c.relname, att.attname, a.privilege_type"
        " FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace,"
        " aclexplode(att.attacl) a"
        " WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s) AND n.nspname <> ALL(%s)",
        (role, list(SYSTEM_SCHEMAS), role, list(SYSTEM_SCHEMAS)),
    )
    return set(cur.fetchall())


def privilege_statement(verb, item, role):
    schema, table, column, privilege = item
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    what = sql.SQL(privilege) if column is None else sql.SQL("{} ({})").format(sql.SQL(privilege), sql.Identifier(column))
    pattern = "GRANT {} ON {} TO {}" if verb == "grant" else "REVOKE {} ON {} FROM {}"
    return sql.SQL(pattern).format(what, target, sql.Identifier(role))


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        password_file=dict(type="path", no_log=False),
        database=dict(type="str"),
        grants=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                table=dict(type="str", required=True),
                privileges=dict(type="list", elements="str", required=True),
                columns=dict(type="list", elements="str"),
            ),
        ),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[*POSTGRES_MUTUALLY_EXCLUSIVE, ("password", "password_file")],
        supports_check_mode=True,
    )
    params = module.params
    problems = [str(problem) for problem in role_name_problems(params["name"], variable="name")]
    if TENANT_ROLE.fullmatch(params["name"] or ""):
        problems.append("name %s could be a tenant's role (openclaw_<slug>); put an underscore after openclaw_, e.g. openclaw_service_webhook" % params["name"])
    if params["name"] == params["login_user"]:
        problems.append("name must not be the superuser %s" % params["login_user"])
    for grant in params["grants"]:
        for privilege in grant["privileges"]:
            if privilege.upper() not in PRIVILEGES:
                problems.append("privilege %s on %s is not one of %s" % (privilege, grant["table"], ", ".join(PRIVILEGES)))
            elif privilege.upper() == "DELETE" and grant.get("columns"):
                problems.append("DELETE on %s cannot be limited to columns" % grant["table"])
    if params["grants"] and not params["database"]:
        problems.append("grants need a database")
    if problems:
        module.fail_json(msg="invalid service role, nothing was changed: " + "; ".join(problems))
    ensure_psycopg2(module)
    resolve_login_password(module)
    result = dict(changed=False, executed_statements=[])
    password = params["password"]
    if params["password_file"]:
        password = password_from_file(module, params["password_file"], result)
    role = params["name"]
    check = module.check_mode

    def run(cur, statement, values=None, shown=None):
        if not check:
            cur.execute(statement, values)
        result["executed_statements"].append(shown or statement.as_string(cur))
        result["changed"] = True

    try:
        admin = connect(params, autocommit=True)
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc), **result)
    try:
        with admin.cursor() as cur:
            changes = dbadmin.role_changes(cur, role, password)
            if changes:
                result["executed_statements"].extend(dbadmin.apply_role(cur, role, password, changes, dry_run=check))
                result["changed"] = True
            if "create" not in changes:
                cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,))
                if any(cur.fetchone()):
                    run(cur, sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(sql.Identifier(role)))
            cur.execute(
                "SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a"
                " WHERE a.privilege_type = 'CONNECT' AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                (role,),
            )
            connectable = {row[0] for row in cur.fetchall()}
            for database in sorted(connectable - {params["database"]}):
                run(cur, sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(database), sql.Identifier(role)))
            if params["database"] and params["database"] not in connectable:
                run(cur, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(params["database"]), sql.Identifier(role)))
    except psycopg2.Error as exc:
        module.fail_json(msg="cannot manage role %s: %s" % (role, error_text(exc)), **result)
    finally:
        admin.close()

    if params["database"]:
        try:
            conn = connect(params, dbname=params["database"])
        except ConnectionFailure as exc:
            module.fail_json(msg=str(exc), **result)
        try:
            with conn, conn.cursor() as cur:
                wanted = wanted_privileges(params["grants"])
                # A role that does not exist yet (check mode) holds nothing.
                held = held_privileges(cur, role)
                for item in sorted(held - wanted, key=str):
                    run(cur, privilege_statement("revoke", item, role))
                for item in sorted(wanted - held, key=str):
                    run(cur, privilege_statement("grant", item, role))
                if check:
                    conn.rollback()
        except psycopg2.Error as exc:
            module.fail_json(msg="cannot grant %s its privileges in %s: %s" % (role, params["database"], error_text(exc)), **result)
        finally:
            conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
