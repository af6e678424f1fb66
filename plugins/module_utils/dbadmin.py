# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Databases, owner roles, ownership and CONNECT privileges: read the state, then change it.

Every reader is side-effect free so check mode can call it; every writer
returns the statement it ran (with secrets masked) for the module's result,
and with ``dry_run`` only renders it, which is how check mode reports exactly
the statements a real run would execute.
"""

from __future__ import annotations

from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import password_verifier_matches, scram_verifier, sql

# Schemas whose objects belong to the database's owner role. System schemas and
# objects that are members of an extension (pgcrypto's functions) are left alone;
# so is openclaw_meta, which belongs to migrations.HISTORY_OWNER.
#
# The queries here run on administrators' connections whose search_path is
# pinned to the catalog (postgres.PINNED_SEARCH_PATH) and read the catalog only;
# ALTER ... OWNER runs no code of the object's owner.
OWNED_SCHEMAS = ("public",)


def database_info(cur, name):
    """None, or {owner, public_connect} of database ``name``."""
    cur.execute(
        "SELECT pg_catalog.pg_get_userbyid(d.datdba),"
        " d.datacl IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT')"
        " FROM pg_catalog.pg_database d WHERE d.datname = %s",
        (name,),
    )
    row = cur.fetchone()
    return None if row is None else {"owner": row[0], "public_connect": row[1]}


def role_info(cur, name):
    """None, or {login, password_verifier} of role ``name`` (needs superuser to see the verifier)."""
    cur.execute("SELECT rolcanlogin, rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", (name,))
    row = cur.fetchone()
    return None if row is None else {"login": row[0], "verifier": row[1]}


def role_changes(cur, name, password):
    """What CREATE/ALTER ROLE would do: [] when the role matches."""
    info = role_info(cur, name)
    if info is None:
        return ["create"]
    changes = []
    if not info["login"]:
        changes.append("login")
    if password is not None and not password_verifier_matches(info["verifier"], name, password):
        changes.append("password")
    return changes


def _run(cur, query, params=None, dry_run=False, shown=None):
    """Execute ``query`` unless ``dry_run``; return its text (``shown`` replaces it when it holds a secret)."""
    if not dry_run:
        cur.execute(query, params)
    return [shown or query.as_string(cur)]


def apply_role(cur, name, password, changes, dry_run=False):
    role = sql.Identifier(name)
    masked = " PASSWORD ********"
    if "create" in changes:
        if password is None:
            return _run(cur, sql.SQL("CREATE ROLE {} LOGIN").format(role), dry_run=dry_run)
        query = sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(role)
        return _run(cur, query, (scram_verifier(password),), dry_run, shown="CREATE ROLE %s LOGIN%s" % (role.as_string(cur), masked))
    statements = []
    if "login" in changes:
        statements += _run(cur, sql.SQL("ALTER ROLE {} LOGIN").format(role), dry_run=dry_run)
    if "password" in changes:
        query = sql.SQL("ALTER ROLE {} PASSWORD %s").format(role)
        statements += _run(cur, query, (scram_verifier(password),), dry_run, shown="ALTER ROLE %s%s" % (role.as_string(cur), masked))
    return statements


def create_database(cur, name, owner, dry_run=False):
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if owner:
        query = sql.SQL("{} OWNER {}").format(query, sql.Identifier(owner))
    return _run(cur, query, dry_run=dry_run)


def alter_database_owner(cur, name, owner, dry_run=False):
    return _run(cur, sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)), dry_run=dry_run)


def revoke_public_connect(cur, name, dry_run=False):
    return _run(cur, sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)), dry_run=dry_run)


def role_is_superuser(cur, name):
    """None when role ``name`` does not exist, else whether it is a superuser."""
    cur.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s", (name,))
    row = cur.fetchone()
    return None if row is None else row[0]


def nologin_role(cur, name, dry_run=False):
    """A role nobody logs in as (the history's owner): created when missing, LOGIN taken away if someone gave it."""
    cur.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s", (name,))
    row = cur.fetchone()
    if row is None:
        return _run(cur, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)), dry_run=dry_run)
    if row[0]:
        return _run(cur, sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)), dry_run=dry_run)
    return []


def drop_database(cur, name, dry_run=False):
    # FORCE ends the tenant's open sessions; the dump was taken before.
    return _run(cur, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)), dry_run=dry_run)


def drop_role(cur, name, dry_run=False):
    return _run(cur, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)), dry_run=dry_run)


def foreign_owned_objects(cur, owner):
    """Objects in OWNED_SCHEMAS (and the schemas themselves) not owned by ``owner``.

    Returns (kind, schema, name, args) tuples; kind is the ALTER keyword to use
    and args the identity arguments of functions (None otherwise).
    Indexes and sequences owned by a table follow the table's owner.
    """
    cur.execute(
        """
        SELECT kind, schema, name, args FROM (
          SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
                 n.nspname AS schema, c.relname AS name, NULL::pg_catalog.text AS args, c.relowner AS owner, c.oid AS objid,
                 'pg_catalog.pg_class'::pg_catalog.regclass AS classid
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
                             AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass)
          UNION ALL
          SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                 n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid), p.proowner, p.oid, 'pg_catalog.pg_proc'::pg_catalog.regclass
            FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = ANY(%(schemas)s)
          UNION ALL
          SELECT 'TYPE', n.nspname, t.typname, NULL, t.typowner, t.oid, 'pg_catalog.pg_type'::pg_catalog.regclass
            FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = ANY(%(schemas)s) AND t.typtype IN ('e', 'd', 'r')
          UNION ALL
          SELECT 'SCHEMA', NULL, n.nspname, NULL, n.nspowner, n.oid, 'pg_catalog.pg_namespace'::pg_catalog.regclass
            FROM pg_catalog.pg_namespace n
           WHERE n.nspname = ANY(%(schemas)s) AND n.nspowner <> COALESCE(pg_catalog.to_regrole('pg_database_owner'), 0)
        ) o
        WHERE pg_catalog.pg_get_userbyid(o.owner) <> %(owner)s
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = o.classid AND e.objid = o.objid AND e.deptype = 'e')
        ORDER BY kind, schema NULLS FIRST, name
        """,
        {"schemas": list(OWNED_SCHEMAS), "owner": owner},
    )
    return [tuple(row) for row in cur.fetchall()]


def transfer_ownership(cur, objects, owner, dry_run=False):
    statements = []
    new_owner = sql.Identifier(owner)
    for kind, schema, name, args in objects:
        if kind == "SCHEMA":
            target = sql.Identifier(name)
        elif args is not None:
            # Identity arguments come from pg_get_function_identity_arguments(),
            # PostgreSQL's own rendering of the signature.
            target = sql.SQL("{}.{}({})").format(sql.Identifier(schema), sql.Identifier(name), sql.SQL(args))
        else:
            target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
        statements += _run(cur, sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), target, new_owner), dry_run=dry_run)
    return statements
