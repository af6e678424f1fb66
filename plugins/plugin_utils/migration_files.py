# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this plugin util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""The action plugin of every module that runs SQL migrations: the files are read on the controller.

The files live in the collection (migrations/<schema>/), so an ad-hoc call
such as `ansible srv1 -m openclaw.standalone.openclaw_db_schema -a ...` works
without copying anything to the server.
"""

from __future__ import annotations

from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ("tenant", "shared")


def read_migrations(directory):
    directory = Path(directory)
    if not directory.is_dir():
        raise AnsibleActionFail("migrations_path %s is not a directory on the controller" % directory)
    return [{"script": path.name, "sql": path.read_text(encoding="utf-8")} for path in sorted(directory.glob("V*.sql"))]


class MigrationFilesAction(ActionBase):
    """Runs ``MODULE`` with ``_migrations`` set to the files of the schema (or of ``migrations_path``)."""

    MODULE = ""
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset()  # every argument is validated by the module itself

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if "_migrations" in args:
            raise AnsibleActionFail("_migrations is set by the action plugin and cannot be passed")
        schema = args.get("schema", "tenant")
        if args.get("migrations_path"):
            args["_migrations"] = read_migrations(self._loader.path_dwim(args["migrations_path"]))
        elif schema in SCHEMAS:
            args["_migrations"] = read_migrations(COLLECTION_ROOT / "migrations" / schema)
        # An unknown schema is left to the module's argument validation.
        result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
        return result
