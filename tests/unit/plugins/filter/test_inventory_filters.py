"""The filters wrap the module_utils rules for playbooks."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.openclaw.standalone.plugins.filter.inventory import FilterModule


@pytest.fixture
def filters():
    return FilterModule().filters()


def test_inventory_problems_returns_one_line_per_problem(filters):
    hostvars = {"srv1": {}, "aliya": {"openclaw_server": "srv1", "openclaw_domain": "example.com", "openclaw_port": 80}}
    groups = {"openclaw_servers": ["srv1"], "openclaw_tenants": ["aliya"]}
    assert filters["inventory_problems"](hostvars, groups) == ["aliya: openclaw_port: 80 is outside 1024-65535 (rule: port-range)"]


def test_tenant_names(filters):
    assert filters["tenant_names"]("acme-corp")["database"] == "openclaw_acme-corp"


def test_tenant_names_refuses_a_bad_slug(filters):
    with pytest.raises(AnsibleFilterError, match="slug-reserved"):
        filters["tenant_names"]("default")
