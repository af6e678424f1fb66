# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One tenant's share of a module run made once for every tenant of its server.

A module that converges all the tenants of a server in one run is registered
on one of those tenants; each tenant then reports its own entry with this
plugin, so the recap, ``--diff`` and failures stay per tenant. It runs on the
controller only: no module is sent anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Keys of a run's own bookkeeping, not of the tenant's outcome.
RUN_KEYS = frozenset(("invocation", "skipped", "skip_reason", "false_condition", "_ansible_no_log"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("run", "field", "key"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        run, field, key = (self._task.args.get(name) for name in ("run", "field", "key"))
        if not isinstance(run, Mapping) or not isinstance(field, str) or not isinstance(key, str):
            raise AnsibleActionFail("run (the registered result of the server's run), field and key (strings) are required")
        entries = run.get(field)
        if not run:
            # Under a strategy other than linear a tenant can get here before its server's run.
            return dict(result, failed=True, msg="the run for this server has not happened yet; the collection's roles need the linear strategy")
        if run.get("skipped") or not isinstance(entries, Mapping):
            return dict(result, failed=True, msg="the run for this server did not complete: %s" % (run.get("msg") or run.get("skip_reason") or "no result"))
        if key not in entries:
            return dict(result, failed=True, msg="the run for this server did not cover %s" % key)
        outcome = {name: value for name, value in entries[key].items() if name not in RUN_KEYS}
        outcome.setdefault("changed", False)
        result.update(outcome)
        return result
