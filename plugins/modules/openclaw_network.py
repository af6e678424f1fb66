#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_network
short_description: Ensure a Docker bridge network of the tenants or of the shared services
version_added: 0.1.0
description:
  - Creates a user-defined bridge network (where container names resolve through Docker's DNS) when it is
    missing, through the Docker SDK.
  - With O(icc=false) containers on the network cannot talk to each other (Docker drops traffic between
    them); the tenants' network is made that way so one tenant cannot reach another.
  - With O(pinned=true) the network is created with an explicit address plan (the subnet Docker chooses, or
    O(subnet)) whose dynamic range is the upper half of the subnet, so containers connected with a fixed
    address from the lower half (see O(connect)) keep it across restarts without ever colliding with a
    dynamically addressed container. Firewall rules can then name that address.
  - An existing network whose ICC setting or address plan differs is not changed silently (recreating a
    network detaches every container from it); the module fails and says so, unless O(recreate=true), in
    which case the attached containers are disconnected, the network is recreated and they are connected
    again (a few seconds without network for them).
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
  icc:
    description:
      - Whether containers on the network may talk to each other.
    type: bool
    default: true
  pinned:
    description:
      - Create the network with an explicit subnet whose lower half is kept for fixed addresses.
    type: bool
    default: false
  subnet:
    description:
      - IPv4 subnet of a pinned network (at most C(/24)). Empty lets Docker choose one from its pools.
    type: str
    default: ""
  recreate:
    description:
      - Recreate an existing network whose settings differ (its containers are disconnected and connected again).
    type: bool
    default: false
  connect:
    description:
      - Containers that must be connected to the network (others are left alone).
    type: list
    elements: dict
    default: []
    suboptions:
      container:
        description: Container name.
        type: str
        required: true
      ipv4_address:
        description:
          - Fixed address on a pinned network; a container connected with another address is reconnected.
        type: str
"""

EXAMPLES = r"""
- name: Network of the tenants (no traffic between them)
  openclaw.standalone.openclaw_network:
    name: openclaw-net
    icc: false
    pinned: true
  register: tenants_network

- name: PostgreSQL on the tenants' network with its fixed address
  openclaw.standalone.openclaw_network:
    name: openclaw-net
    icc: false
    pinned: true
    connect:
      - container: openclaw-postgres
        ipv4_address: "{{ tenants_network.network.reserved_address }}"
"""

RETURN = r"""
network:
  description:
    - Id, name, driver, bridge interface, ICC, subnet, gateway and (pinned networks) the first fixed address
      (C(reserved_address)) and the first eight (C(fixed_addresses)) of the network. Empty when absent or, in check mode, not created yet.
  returned: always
  type: dict
  sample:
    id: 5b1e...
    name: openclaw-net
    driver: bridge
    bridge: br-5b1e0c9d8a7f
    icc: false
    subnet: 172.18.0.0/16
    gateway: 172.18.0.1
    ip_range: 172.18.128.0/17
    reserved_address: 172.18.0.2
    fixed_addresses: [172.18.0.2, 172.18.0.3]
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_MANAGED,
    connect,
    docker,
    docker_common_argument_spec,
    ensure_docker_sdk,
)

ICC_OPTION = "com.docker.network.bridge.enable_icc"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def find_network(client, name):
    # networks.list(names=...) matches substrings; keep the exact name only.
    found = next((network for network in client.networks.list(names=[name]) if network.name == name), None)
    if found is not None:
        found.reload()
    return found


def plan(subnet):
    """Gateway, dynamic range (upper half) and first fixed address (lower half) of a subnet."""
    net = ipaddress.IPv4Network(subnet)
    upper = list(net.subnets(prefixlen_diff=1))[1]
    return dict(
        subnet=str(net),
        gateway=str(net.network_address + 1),
        ip_range=str(upper),
        reserved_address=str(net.network_address + 2),
        fixed_addresses=[str(net.network_address + offset) for offset in range(2, 10)],
    )


def ipam_config(network):
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    return next((config for config in configs if ":" not in (config.get("Subnet") or "")), {})


def icc_of(network):
    return (network.attrs.get("Options") or {}).get(ICC_OPTION, "true") != "false"


def describe(network):
    if network is None:
        return {}
    config = ipam_config(network)
    options = network.attrs.get("Options") or {}
    described = dict(
        id=network.id,
        name=network.name,
        driver=network.attrs.get("Driver"),
        bridge=options.get(BRIDGE_NAME_OPTION) or "br-" + network.id[:12],
        icc=icc_of(network),
        subnet=config.get("Subnet"),
        gateway=config.get("Gateway"),
        ip_range=config.get("IPRange"),
    )
    if config.get("IPRange") and config.get("Subnet"):
        addresses = plan(config["Subnet"])
        described.update(reserved_address=addresses["reserved_address"], fixed_addresses=addresses["fixed_addresses"])
    return described


def mismatches(network, params):
    """Settings of an existing network that differ from the wanted ones (changing them means recreating it)."""
    found = []
    if icc_of(network) != params["icc"]:
        found.append(
            "inter-container communication is %s, wanted %s" % ("enabled" if icc_of(network) else "disabled", "enabled" if params["icc"] else "disabled")
        )
    if params["pinned"]:
        config = ipam_config(network)
        if not config.get("Subnet") or not config.get("IPRange") or plan(config["Subnet"])["ip_range"] != config["IPRange"]:
            found.append("the address plan is not pinned (no dynamic range in the upper half of the subnet)")
        elif params["subnet"] and str(ipaddress.IPv4Network(params["subnet"])) != config["Subnet"]:
            found.append("the subnet is %s, wanted %s" % (config["Subnet"], params["subnet"]))
    return found


def create(client, params, subnet=None):
    kwargs = dict(driver="bridge", check_duplicate=True, labels={LABEL_MANAGED: "true"})
    if not params["icc"]:
        kwargs["options"] = {ICC_OPTION: "false"}
    if subnet:
        addresses = plan(subnet)
        pool = docker.types.IPAMPool(subnet=addresses["subnet"], gateway=addresses["gateway"], iprange=addresses["ip_range"])
        kwargs["ipam"] = docker.types.IPAMConfig(pool_configs=[pool])
    network = client.networks.create(params["name"], **kwargs)
    network.reload()
    return network


def create_pinned(client, params):
    if params["subnet"]:
        return create(client, params, params["subnet"])
    # Docker only accepts fixed addresses on a network whose subnet was given
    # at creation. Let it choose a free subnet from its pools first, then
    # create the network again with that subnet spelled out.
    probe = create(client, params)
    subnet = ipam_config(probe).get("Subnet")
    probe.remove()
    return create(client, params, subnet)


def attached(network):
    return {endpoint.get("Name"): endpoint for endpoint in (network.attrs.get("Containers") or {}).values()}


def converge_connections(module, client, network, wanted, result):
    members = attached(network)
    for entry in wanted:
        name, address = entry["container"], entry.get("ipv4_address")
        endpoint = members.get(name)
        current = (endpoint or {}).get("IPv4Address", "").split("/")[0]
        if endpoint is not None and (not address or current == address):
            continue
        result["changed"] = True
        result["actions"].append("connect %s%s" % (name, " as " + address if address else ""))
        try:
            container = client.containers.get(name)
        except docker.errors.NotFound:
            if module.check_mode:
                # Created earlier in the same check run: it would be connected.
                continue
            module.fail_json(msg="cannot connect %s to network %s: no such container" % (name, network.name), **result)
        if module.check_mode:
            continue
        if endpoint is not None:
            network.disconnect(container, force=True)
        network.connect(container, ipv4_address=address or None)


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        icc=dict(type="bool", default=True),
        pinned=dict(type="bool", default=False),
        subnet=dict(type="str", default=""),
        recreate=dict(type="bool", default=False),
        connect=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(container=dict(type="str", required=True), ipv4_address=dict(type="str")),
        ),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["subnet"]:
        try:
            subnet = ipaddress.IPv4Network(params["subnet"])
        except ValueError as exc:
            module.fail_json(msg="subnet must be an IPv4 network such as 172.30.0.0/16: %s" % exc)
        if subnet.prefixlen > 24:
            module.fail_json(msg="subnet must be at least a /24 (half of it is the dynamic range), got %s" % params["subnet"])
    ensure_docker_sdk(module)
    name, state = params["name"], params["state"]
    client = connect(module)
    result = dict(changed=False, network={}, actions=[])
    before = after = ""
    try:
        network = find_network(client, name)
        if state == "absent":
            if network is not None:
                result["changed"] = True
                result["actions"].append("remove network %s" % name)
                before = "network %s\n" % name
                if not module.check_mode:
                    network.remove()
        else:
            wanted = "network %s (bridge, icc %s%s)\n" % (name, "on" if params["icc"] else "off", ", pinned" if params["pinned"] else "")
            if network is None:
                result["changed"] = True
                result["actions"].append("create network %s" % name)
                after = wanted
                if not module.check_mode:
                    network = create_pinned(client, params) if params["pinned"] else create(client, params)
            else:
                problems = mismatches(network, params)
                if problems and not params["recreate"]:
                    module.fail_json(
                        msg="network %s exists but %s. Recreating it disconnects every container on it: set recreate "
                        "(openclaw_docker_network_recreate=true) to recreate it and connect its containers again, or "
                        "choose another network name." % (name, "; ".join(problems)),
                        network=describe(network),
                    )
                if problems:
                    result["changed"] = True
                    result["actions"].append("recreate network %s (%s)" % (name, "; ".join(problems)))
                    before, after = "network %s (%s)\n" % (name, "; ".join(problems)), wanted
                    if not module.check_mode:
                        members = list(attached(network))
                        for member in members:
                            network.disconnect(member, force=True)
                        network.remove()
                        network = create_pinned(client, params) if params["pinned"] else create(client, params)
                        for member in members:
                            network.connect(member)
                        network.reload()
            if network is not None and params["connect"]:
                if module.check_mode and result["changed"]:
                    result["actions"].extend("connect %s" % entry["container"] for entry in params["connect"])
                else:
                    converge_connections(module, client, network, params["connect"], result)
                    if result["changed"] and not module.check_mode:
                        network.reload()
            result["network"] = describe(network) if network is not None and not (module.check_mode and after and not before) else {}
    except docker.errors.APIError as exc:
        module.fail_json(msg="cannot converge network %s: %s" % (name, exc), **result)
    if result["changed"] and module._diff:
        connected = "".join("%s\n" % action for action in result["actions"] if action.startswith("connect"))
        result["diff"] = dict(before=before, after=after + connected)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
