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


def test_inventory_problems_without_the_vault_skips_secrets(filters):
    hostvars = {"srv1": {"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db", "openclaw_postgres_sslmode": "require"}}
    groups = {"openclaw_servers": ["srv1"], "openclaw_tenants": []}
    assert filters["inventory_problems"](hostvars, groups) == [
        "srv1: openclaw_postgres_password: is required with openclaw_postgres_mode external (set it from the vault) (rule: postgres-external)"
    ]
    assert filters["inventory_problems"](hostvars, groups, secrets=False) == []


def test_inventory_warnings_lists_and_shows_opted_in_dangers(filters, monkeypatch):
    shown = []
    monkeypatch.setattr("ansible_collections.openclaw.standalone.plugins.filter.inventory.display.warning", shown.append)
    tenant = {"openclaw_server": "srv1", "openclaw_domain": "example.com", "openclaw_port": 18801, "openclaw_tenant_uid": 0}
    groups = {"openclaw_servers": ["srv1"], "openclaw_tenants": ["aliya"]}
    assert filters["inventory_warnings"]({"srv1": {}, "aliya": tenant}, groups) == []
    tenant["openclaw_tenant_allow_dangerous"] = ["root_uid"]
    (line,) = filters["inventory_warnings"]({"srv1": {}, "aliya": tenant}, groups)
    assert line.startswith("DANGEROUS: aliya: openclaw_tenant_uid: is 0 (root)") and "allowed by openclaw_tenant_allow_dangerous" in line
    assert shown == [line]


def test_tenants_group_is_a_valid_group_name_per_server(filters):
    assert filters["tenants_group"]("srv1") == "openclaw_tenants_of_srv1"
    assert filters["tenants_group"]("edge-1.example.com") == "openclaw_tenants_of_edge_1_example_com"
