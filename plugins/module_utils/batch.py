# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""One module run that converges many tenants of a server, each on its own.

A failure of one tenant is that tenant's result, never the run's: the others
go on, and the module fails at the end naming every tenant that failed. The
collection's roles report each tenant's entry on that tenant
(openclaw_batch_result), so the recap and --diff stay per tenant.
"""

from __future__ import annotations

import concurrent.futures


class ConvergeFailure(Exception):
    """One item could not be converged; ``result`` holds what was done before the failure."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.msg = msg
        self.result = dict(result or {})


def duplicate_problems(keys, label):
    return ["%s %s is given more than once" % (label, key) for key in sorted(set(keys)) if keys.count(key) > 1]


def converge_each(module, keys, items, converge, parallel, field, noun):
    """``converge(item)`` for every item, ``parallel`` at a time; exits (or fails) the module with each result under ``field``.

    Threads, not processes: the items wait on PostgreSQL, the Docker engine or
    a gateway coming up, and the interpreter is free while they wait.
    """

    def outcome(item):
        try:
            return converge(item)
        except ConvergeFailure as exc:
            return dict(exc.result, failed=True, msg=exc.msg)

    workers = max(1, min(parallel, len(items)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip(keys, pool.map(outcome, items)))
    failed = [key for key in keys if results[key].get("failed")]
    summary = {"changed": any(result.get("changed") for result in results.values()), field: results, "failed_" + field: failed}
    if failed:
        module.fail_json(msg="%d of %d %s failed: %s" % (len(failed), len(keys), noun, "; ".join(results[key]["msg"] for key in failed)), **summary)
    module.exit_json(**summary)
