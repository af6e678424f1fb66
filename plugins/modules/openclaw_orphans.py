#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_orphans
short_description: Report (and on request remove) tenant containers whose tenant left the inventory
version_added: 0.1.0
description:
  - Lists the tenant containers on the Docker host that this collection manages (label
    C(org.openclaw.standalone.role=tenant)) and whose C(org.openclaw.standalone.tenant) label names a tenant
    not in O(tenants).
  - Orphans are only reported unless O(prune=true). Pruning stops and removes the containers and nothing
    else - workspaces and databases stay until the operator removes them.
  - Containers not made by this collection (for example started by hand) are never reported or touched.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  tenants:
    description:
      - Slugs of the tenants this server should run (every state, V(absent) included).
    type: list
    elements: str
    required: true
  server:
    description:
      - Only tenant containers labelled with this inventory server (C(org.openclaw.standalone.server)) are
        considered, so several inventory servers can share one Docker engine. Omitted - every tenant container.
    type: str
  prune:
    description:
      - Remove the orphaned containers (data is kept).
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds a stop waits for the gateway to exit before it is killed.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Report tenant containers that are no longer in the inventory
  openclaw.standalone.openclaw_orphans:
    tenants: [aliya, marat]
    server: srv1
  register: orphans

- name: Remove them (workspaces and databases are kept)
  openclaw.standalone.openclaw_orphans:
    tenants: [aliya, marat]
    prune: true
"""

RETURN = r"""
orphans:
  description: The orphaned tenant containers found (before any removal).
  returned: always
  type: list
  elements: dict
  sample: [{name: openclaw-bob, tenant: bob, id: 8c2d..., status: running}]
removed:
  description: Names of the containers removed (or in check mode that would be).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_TENANT,
    DockerFailure,
    connect,
    docker_common_argument_spec,
    ensure_docker_sdk,
    managed_containers,
    remove_container,
)


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(
        tenants=dict(type="list", elements="str", required=True),
        server=dict(type="str"),
        prune=dict(type="bool", default=False),
        stop_timeout=dict(type="int", default=30),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_docker_sdk(module)
    wanted = set(module.params["tenants"])
    client = connect(module)
    result = dict(changed=False, orphans=[], removed=[])
    try:
        tenant_containers = managed_containers(client, role="tenant", server=module.params["server"])
        found = [container for container in tenant_containers if container.labels.get(LABEL_TENANT) not in wanted]
        found.sort(key=lambda container: container.name)
        result["orphans"] = [dict(name=c.name, tenant=c.labels.get(LABEL_TENANT), id=c.id, status=c.status) for c in found]
        if module.params["prune"]:
            for container in found:
                result["removed"].append(container.name)
                result["changed"] = True
                if not module.check_mode:
                    remove_container(container, module.params["stop_timeout"])
    except DockerFailure as exc:
        module.fail_json(msg=str(exc), **result)
    if result["orphans"] and not module.params["prune"]:
        module.warn(
            "tenant containers not in the inventory: %s; set openclaw_prune_orphans: true to remove them (their data is kept)"
            % ", ".join(orphan["name"] for orphan in result["orphans"])
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
