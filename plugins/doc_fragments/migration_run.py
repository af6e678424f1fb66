# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this doc fragment is **PRIVATE** to the collection. It can have
# breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # How a migration run treats history, dumps and concurrent runs; shared by
    # openclaw_db_schema and openclaw_tenant_databases (module_utils/schema_run.py).
    DOCUMENTATION = r"""
options:
  pg_dump_path:
    description:
      - C(pg_dump) program on the managed host, or a wrapper that accepts the same arguments and writes the
        dump to standard output (for example one that runs C(pg_dump) inside the PostgreSQL container).
      - Its major version must be at least the server's.
    type: str
    default: pg_dump
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
  _migrations:
    description:
      - Internal, set by the module's action plugin to the migration files it read on the controller
        (O(migrations_path) or the collection's own). Do not set it.
    type: list
    elements: dict
"""
