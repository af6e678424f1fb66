# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory validation filters; the rules live in module_utils/validation.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.openclaw.standalone.plugins.module_utils.validation import (
    derived_names,
    slug_problems,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import (
    inventory_problems as _inventory_problems,
)


def inventory_problems(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants"):
    """Every problem of the inventory as 'host: variable: detail (rule: name)' lines."""
    return [str(problem) for problem in _inventory_problems(hostvars, groups, server_group=server_group, tenant_group=tenant_group)]


def tenant_names(slug):
    """Database, role and container names derived from a tenant slug."""
    problems = slug_problems(slug)
    if problems:
        raise AnsibleFilterError("; ".join(str(problem) for problem in problems))
    return derived_names(slug)


def server_tenants(hostvars, groups, server, states=None, tenant_group="openclaw_tenants"):
    """Slugs of the tenants whose openclaw_server is ``server`` (optionally only those in ``states``), in inventory order."""
    slugs = []
    for tenant in groups.get(tenant_group) or []:
        tenant_vars = hostvars[tenant]
        if tenant_vars.get("openclaw_server") != server:
            continue
        if states is not None and tenant_vars.get("openclaw_tenant_state", "present") not in states:
            continue
        slugs.append(tenant_vars.get("openclaw_slug", tenant))
    return slugs


class FilterModule:
    def filters(self):
        return {
            "inventory_problems": inventory_problems,
            "tenant_names": tenant_names,
            "server_tenants": server_tenants,
        }
