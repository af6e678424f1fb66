"""The address plan of a pinned network and the firewall module's change detection, without Docker or iptables."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.openclaw.standalone.plugins.modules.openclaw_firewall import MARK, digest, up_to_date
from ansible_collections.openclaw.standalone.plugins.modules.openclaw_network import plan


@pytest.mark.parametrize("subnet", ["172.18.0.0/16", "192.168.176.0/20", "10.9.8.0/24"])
def test_fixed_addresses_never_fall_into_the_dynamic_range(subnet):
    addresses = plan(subnet)
    dynamic = ipaddress.IPv4Network(addresses["ip_range"])
    network = ipaddress.IPv4Network(subnet)
    assert dynamic.subnet_of(network) and dynamic.prefixlen == network.prefixlen + 1
    assert addresses["gateway"] == str(network.network_address + 1)
    assert addresses["reserved_address"] == addresses["fixed_addresses"][0]
    for fixed in addresses["fixed_addresses"]:
        assert ipaddress.IPv4Address(fixed) in network
        assert ipaddress.IPv4Address(fixed) not in dynamic
        assert fixed != addresses["gateway"]


def test_a_twenty_bit_subnet_leaves_room_for_a_thousand_tenants():
    assert ipaddress.IPv4Network(plan("192.168.176.0/20")["ip_range"]).num_addresses >= 2000


CHAIN = {"name": "OPENCLAW-F-br-0123456789ab", "parent": "DOCKER-USER", "match": "-i br-0123456789ab", "rules": ["-d 169.254.0.0/16 -j REJECT"]}


def written(chain):
    """What `iptables -S` prints for a chain the module wrote."""
    return ['-A %s -m comment --comment "%s %s"' % (chain["name"], MARK, digest(chain))] + [
        "-A %s %s --reject-with icmp-port-unreachable" % (chain["name"], rule) for rule in chain["rules"]
    ]


def test_a_chain_as_written_is_up_to_date():
    assert up_to_date(written(CHAIN), CHAIN)


@pytest.mark.parametrize(
    "current",
    [
        None,  # missing chain
        [],  # flushed
        written(CHAIN)[:1],  # a rule deleted by hand
        [*written(CHAIN), "-A OPENCLAW-F-br-0123456789ab -j ACCEPT"],  # a rule added by hand
        written({**CHAIN, "rules": ["-d 10.0.0.0/8 -j REJECT"]}),  # other rules
    ],
)
def test_a_chain_that_differs_is_rewritten(current):
    assert not up_to_date(current, CHAIN)


def test_the_digest_covers_the_rules_their_order_and_the_jump():
    rules = ["-d 10.0.0.0/8 -j REJECT", "-d 169.254.0.0/16 -j REJECT"]
    assert digest({**CHAIN, "rules": rules}) != digest({**CHAIN, "rules": rules[::-1]})
    assert digest(CHAIN) != digest({**CHAIN, "match": "-i br-ffffffffffff"})
