"""A database's public schema as comparable data, and its differences from a reference.

The reference catalogs in tests/fixtures/catalog/ describe the seed platform's
databases in this normalised form: per table its columns (type, NOT NULL,
default), constraint definitions by kind, and index definitions without their
names; plus the installed extensions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg2

CATALOGS = Path(__file__).resolve().parent.parent / "fixtures" / "catalog"
CONSTRAINT_KINDS = {"p": "primary_key", "u": "unique", "f": "foreign_keys", "c": "checks"}


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def reference(name: str) -> dict:
    return json.loads((CATALOGS / f"{name}-catalog.json").read_text(encoding="utf-8"))


def snapshot(dsn: str) -> dict:
    """The public schema of the database at ``dsn``."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
        )
        tables = {}
        for oid, table in cur.fetchall():
            cur.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
                "FROM pg_attribute a LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum) "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped",
                (oid,),
            )
            columns = {name: {"type": kind, "not_null": not_null, "default": _squash(default) or None} for name, kind, not_null, default in cur.fetchall()}
            entry = {"columns": columns, **{key: [] for key in CONSTRAINT_KINDS.values()}}
            cur.execute("SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s", (oid,))
            for kind, definition in cur.fetchall():
                if kind in CONSTRAINT_KINDS:
                    entry[CONSTRAINT_KINDS[kind]].append(_squash(definition))
            cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s", (table,))
            entry["indexes"] = [_squash(re.sub(r"INDEX \S+ ON", "INDEX ON", row[0])) for row in cur.fetchall()]
            for key in (*CONSTRAINT_KINDS.values(), "indexes"):
                entry[key].sort()
            tables[table] = entry
        cur.execute("SELECT extname FROM pg_extension ORDER BY extname")
        extensions = [row[0] for row in cur.fetchall()]
    return {"extensions": extensions, "tables": tables}


def differences(expected: dict, actual: dict) -> list[str]:
    """Everything ``actual`` lacks or has different from ``expected``, and every extra table or column."""
    found = [f"extension missing: {name}" for name in expected["extensions"] if name not in actual["extensions"]]
    for table, spec in expected["tables"].items():
        live = actual["tables"].get(table)
        if live is None:
            found.append(f"table missing: {table}")
            continue
        for column, column_spec in spec["columns"].items():
            if column not in live["columns"]:
                found.append(f"{table}.{column}: column missing")
            elif live["columns"][column] != column_spec:
                found.append(
                    f"{table}.{column}: expected {json.dumps(column_spec, sort_keys=True)}, found {json.dumps(live['columns'][column], sort_keys=True)}"
                )
        found += [f"{table}.{column}: extra column" for column in live["columns"] if column not in spec["columns"]]
        for key in (*CONSTRAINT_KINDS.values(), "indexes"):
            found += [f"{table}: {key} missing: {item}" for item in spec[key] if item not in live[key]]
            found += [f"{table}: {key} extra: {item}" for item in live[key] if item not in spec[key]]
    found += [f"extra table: {table}" for table in actual["tables"] if table not in expected["tables"]]
    return found
