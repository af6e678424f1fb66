#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_network
short_description: Ensure the Docker bridge network tenants and shared services share
version_added: 0.1.0
description:
  - Creates a user-defined bridge network (where container names resolve through Docker's DNS) when it is
    missing, through the Docker SDK.
  - An existing network of that name is kept as it is, whatever its settings; removing a network with
    containers attached is refused by the engine and reported.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Network name.
    type: str
    required: true
  state:
    description:
      - Whether the network should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Network of the tenants, PostgreSQL and the shared services
  openclaw.standalone.openclaw_network:
    name: openclaw-net
"""

RETURN = r"""
network:
  description: Id and name of the network (empty when absent or, in check mode, not created yet).
  returned: always
  type: dict
  sample: {id: 5b1e..., name: openclaw-net, driver: bridge}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_MANAGED,
    connect,
    docker,
    docker_common_argument_spec,
    ensure_docker_sdk,
)


def find_network(client, name):
    # networks.list(names=...) matches substrings; keep the exact name only.
    return next((network for network in client.networks.list(names=[name]) if network.name == name), None)


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_docker_sdk(module)
    name, state = module.params["name"], module.params["state"]
    client = connect(module)
    result = dict(changed=False, network={})
    try:
        network = find_network(client, name)
        if (network is not None) == (state == "present"):
            if network is not None:
                result["network"] = dict(id=network.id, name=network.name, driver=network.attrs.get("Driver"))
            module.exit_json(**result)
        result["changed"] = True
        if module._diff:
            result["diff"] = dict(
                before="network %s\n" % name if network is not None else "",
                after="network %s (bridge)\n" % name if state == "present" else "",
            )
        if module.check_mode:
            module.exit_json(**result)
        if state == "present":
            network = client.networks.create(name, driver="bridge", check_duplicate=True, labels={LABEL_MANAGED: "true"})
            network.reload()
            result["network"] = dict(id=network.id, name=network.name, driver=network.attrs.get("Driver"))
        else:
            network.remove()
    except docker.errors.APIError as exc:
        module.fail_json(msg="cannot %s network %s: %s" % ("create" if state == "present" else "remove", name, exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
