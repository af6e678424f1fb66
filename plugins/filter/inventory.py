# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory validation filters; the rules live in module_utils/validation.py."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.openclaw.standalone.plugins.module_utils.validation import (
    derived_names,
    slug_problems,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import (
    inventory_findings as _inventory_findings,
)

display = Display()


def inventory_problems(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants", secrets=True):
    """Every problem of the inventory as 'host: variable: detail (rule: name)' lines."""
    problems, _warnings = _inventory_findings(hostvars, groups, server_group=server_group, tenant_group=tenant_group, secrets=secrets)
    return [str(problem) for problem in problems]


def inventory_warnings(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants", secrets=True):
    """Dangerous settings tenants opted into, as lines; each is also shown as a warning of the run."""
    _problems, warnings = _inventory_findings(hostvars, groups, server_group=server_group, tenant_group=tenant_group, secrets=secrets)
    lines = ["DANGEROUS: %s" % warning for warning in warnings]
    for line in lines:
        display.warning(line)
    return lines


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


def tenants_group(server):
    """The name of the group the roles put a server's tenants in, for one module run per server."""
    return "openclaw_tenants_of_" + re.sub(r"[^A-Za-z0-9_]", "_", str(server))


class FilterModule:
    def filters(self):
        return {
            "inventory_problems": inventory_problems,
            "inventory_warnings": inventory_warnings,
            "tenant_names": tenant_names,
            "server_tenants": server_tenants,
            "tenants_group": tenants_group,
        }
