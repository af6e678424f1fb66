#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_tenants
short_description: Converge the gateways of every tenant of one server in one module run
version_added: 0.4.0
description:
  - Does for each entry of O(tenants) what M(openclaw.standalone.openclaw_tenant) does for one tenant - workspace,
    tokens, managed files, skills, the hardened container and the shared services' registrations - with the same
    options and the same result per tenant, in one module run with up to O(parallel) tenants at a time. A no-op
    converge of a server's tenants then costs one module start and one Docker connection per worker instead of one
    per tenant.
  - One tenant failing (invalid options, an image missing, a container that does not come up) does not stop the
    others; the module fails at the end, naming every tenant that failed, and reports every tenant's result in
    RV(tenants). The collection's tenant role reports each entry on its own tenant with
    M(openclaw.standalone.openclaw_batch_result).
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.docker
attributes:
  check_mode:
    support: full
    details: As M(openclaw.standalone.openclaw_tenant) in check mode, for every tenant.
  diff_mode:
    support: full
    details: Each tenant's diff is in its entry of RV(tenants).
  idempotent:
    support: full
options:
  tenants:
    description:
      - One entry per tenant, with the options of M(openclaw.standalone.openclaw_tenant) (O(openclaw.standalone.openclaw_tenant#module:slug),
        O(openclaw.standalone.openclaw_tenant#module:state), O(openclaw.standalone.openclaw_tenant#module:port), ...),
        validated the same way. Slugs must be unique.
    type: list
    elements: dict
    required: true
  parallel:
    description:
      - How many tenants are converged at the same time, each worker with its own Docker connection.
    type: int
    default: 4
seealso:
  - module: openclaw.standalone.openclaw_tenant
  - module: openclaw.standalone.openclaw_batch_result
"""

EXAMPLES = r"""
- name: Converge two tenants of the server in one run
  openclaw.standalone.openclaw_tenants:
    tenants:
      - slug: aliya
        port: 18801
        image: openclaw-runtime:2026.2.17
      - slug: bekzat
        port: 18802
        image: openclaw-runtime:2026.2.17
  register: converged
"""

RETURN = r"""
tenants:
  description:
    - Each tenant's result, by slug, with the fields M(openclaw.standalone.openclaw_tenant) returns; a tenant that
      failed has C(failed) and C(msg). Tokens and passwords are never part of it.
  returned: always
  type: dict
  sample: {aliya: {changed: false, state: present, port: 18801, recreated: false, changes: []}}
failed_tenants:
  description: Slugs of the tenants that failed, in the order given.
  returned: always
  type: list
  elements: str
  sample: []
"""

import threading

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.openclaw.standalone.plugins.module_utils.batch import converge_each, duplicate_problems
from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    DockerFailure,
    docker_common_argument_spec,
    ensure_docker_sdk,
    open_client,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.tenant_run import (
    TenantFailure,
    converge_tenant,
    tenant_argument_spec,
    tenant_problems,
)

TENANT_MUTUALLY_EXCLUSIVE = [("db_password", "db_password_file")]


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(
        # Validated entry by entry below, with openclaw_tenant's own specification,
        # so one invalid tenant fails alone.
        tenants=dict(type="list", elements="dict", required=True),
        parallel=dict(type="int", default=4),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    validator = ArgumentSpecValidator(tenant_argument_spec(), mutually_exclusive=TENANT_MUTUALLY_EXCLUSIVE)
    tenants = []
    for entry in module.params["tenants"]:
        validated = validator.validate(entry)
        # Every secret of every tenant is masked in every output, the invocation included.
        module.no_log_values.update(validated._no_log_values)  # pylint: disable=protected-access  # the validator's only way to tell them
        tenants.append((validated.validated_parameters, [str(error) for error in validated.errors]))
    slugs = [str(params.get("slug")) for params, _errors in tenants]
    problems = duplicate_problems(slugs, "slug")
    if module.params["parallel"] < 1:
        problems.append("parallel must be at least 1")
    if problems:
        module.fail_json(msg="invalid input, nothing was done: " + "; ".join(problems))
    ensure_docker_sdk(module)
    local = threading.local()

    def converge(entry):
        params, errors = entry
        problems, warnings = tenant_problems(params) if not errors else (errors, [])
        if problems:
            raise TenantFailure("invalid tenant %s, nothing was changed: %s" % (params.get("slug"), "; ".join(problems)), dict(changed=False))
        for warning in warnings:
            module.warn(warning)
        try:
            if getattr(local, "client", None) is None:
                # One Docker connection per worker thread.
                local.client = open_client(module.params["docker_host"], module.params["docker_timeout"])
        except DockerFailure as exc:
            raise TenantFailure(str(exc), dict(changed=False)) from exc
        return converge_tenant(params, local.client, module.check_mode, module.no_log_values.add, diff=module._diff)

    converge_each(module, slugs, tenants, converge, module.params["parallel"], "tenants", "tenants")


if __name__ == "__main__":
    main()
