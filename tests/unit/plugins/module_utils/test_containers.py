"""Container specs: validation, the hash that decides recreation, and what may be shown."""

from __future__ import annotations

import json

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import containers as c
from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import LABEL_CONFIG_HASH, config_hash, loopback_problem


def params(**overrides):
    base = {name: spec.get("default") for name, spec in c.container_argument_spec().items()}
    base.update(image="openclaw-runtime:1", ports=[{"container_port": 18790, "host_port": 18801, "host_ip": "127.0.0.1", "protocol": "tcp"}])
    base.update(overrides)
    return base


IDENTITY = {"name": "openclaw-aliya", "role": "tenant", "tenant": "aliya"}


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1"])
def test_loopback_addresses_are_accepted(address):
    assert loopback_problem("host_ip", address) is None


@pytest.mark.parametrize(("address", "fragment"), [("0.0.0.0", "bypasses nginx"), ("10.0.0.5", "bypasses nginx"), ("localhost", "IP address")])  # noqa: S104
def test_other_addresses_are_refused(address, fragment):
    assert fragment in loopback_problem("host_ip", address)


def test_spec_problems_name_the_field():
    problems = c.spec_problems(
        params(
            ports=[{"container_port": 0, "host_port": 18801, "host_ip": "0.0.0.0", "protocol": "tcp"}],  # noqa: S104
            volumes=["relative:path"],
            memory="lots",
            cpus=0,
            env={"A=B": "x"},
        )
    )
    text = "; ".join(problems)
    for fragment in ("ports[0].host_ip", "ports[0].container_port", "volumes[0]", "memory", "cpus", "'A=B'"):
        assert fragment in text


def test_the_hash_changes_with_any_setting_or_secret_and_nothing_else():
    base = c.desired_spec(params(), "sha256:1", {"TOKEN": "one"}, IDENTITY)
    same = c.desired_spec(params(), "sha256:1", {"TOKEN": "one"}, IDENTITY)
    assert config_hash(base) == config_hash(same)
    for other in (
        c.desired_spec(params(), "sha256:1", {"TOKEN": "two"}, IDENTITY),
        c.desired_spec(params(memory="1g"), "sha256:1", {"TOKEN": "one"}, IDENTITY),
        c.desired_spec(params(env={"MODE": "lan"}), "sha256:1", {"TOKEN": "one"}, IDENTITY),
        c.desired_spec(params(), "sha256:2", {"TOKEN": "one"}, IDENTITY),
    ):
        assert config_hash(other) != config_hash(base)


def test_labels_and_summary_never_carry_secret_values():
    spec = c.desired_spec(params(env={"MODE": "lan"}), "sha256:1", {"OPENCLAW_GATEWAY_TOKEN": "s3cr3t-token"}, IDENTITY)
    labels = c.labels_for(spec)
    assert "s3cr3t-token" not in json.dumps(labels)
    summary = json.loads(labels[c.LABEL_SUMMARY])
    assert summary["secret_env"] == ["OPENCLAW_GATEWAY_TOKEN"] and summary["env"] == {"MODE": "lan"}
    assert labels[LABEL_CONFIG_HASH] == config_hash(spec)
    assert labels["org.openclaw.standalone.tenant"] == "aliya"


def test_create_arguments_publish_on_loopback_with_limits():
    arguments = c.create_arguments(c.desired_spec(params(memory="2g", cpus=1.5, pids_limit=512, cap_drop=["ALL"]), "sha256:1", {}, IDENTITY))
    assert arguments["ports"] == {"18790/tcp": ("127.0.0.1", 18801)}
    assert arguments["nano_cpus"] == 1_500_000_000 and arguments["mem_limit"] == "2g" and arguments["pids_limit"] == 512
    assert arguments["cap_drop"] == ["ALL"] and arguments["restart_policy"] == {"Name": "unless-stopped"}
