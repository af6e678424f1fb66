"""openclaw_batch_result: each tenant reports its own entry of its server's run."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.playbook.task import Task

from ansible_collections.openclaw.standalone.plugins.action.openclaw_batch_result import ActionModule


def report(args):
    task = Task()
    task.args = args
    action = ActionModule(task, MagicMock(), MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    return action.run(task_vars={})


RUN = {
    "changed": False,  # the server run itself reports nothing; its tenants do
    "invocation": {"module_args": {"databases": "..."}},
    "databases": {
        "openclaw_aliya": {"changed": True, "applied": [9], "diff": {"before": {"version": 8}, "after": {"version": 9}}},
        "openclaw_bob": {"changed": False, "applied": []},
        "openclaw_carol": {"changed": False, "failed": True, "msg": "openclaw_carol: column note already exists"},
    },
}


def test_a_tenant_gets_its_own_outcome_and_diff():
    aliya = report({"run": RUN, "field": "databases", "key": "openclaw_aliya"})
    assert (aliya["changed"], aliya["applied"], aliya["diff"]["after"]) == (True, [9], {"version": 9})
    assert "invocation" not in aliya and "databases" not in aliya
    bob = report({"run": RUN, "field": "databases", "key": "openclaw_bob"})
    assert (bob["changed"], bob.get("failed", False)) == (False, False)


def test_a_failed_entry_fails_only_its_tenant():
    carol = report({"run": RUN, "field": "databases", "key": "openclaw_carol"})
    assert carol["failed"] is True and "already exists" in carol["msg"]


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ({"failed": True, "msg": "cannot reach the Docker engine at unix:///x"}, "did not complete: cannot reach the Docker engine"),
        ({"skipped": True, "skip_reason": "Conditional result was False"}, "did not complete: Conditional result was False"),
        ({"databases": {"openclaw_other": {"changed": False}}}, "did not cover openclaw_aliya"),
        ({}, "has not happened yet"),
    ],
)
def test_a_run_that_failed_skipped_or_missed_the_tenant_fails_it(run, expected):
    outcome = report({"run": run, "field": "databases", "key": "openclaw_aliya"})
    assert outcome["failed"] is True
    assert expected in outcome["msg"]


def test_missing_arguments_are_refused():
    with pytest.raises(AnsibleActionFail):
        report({"run": "not a result", "field": "databases", "key": "openclaw_aliya"})
