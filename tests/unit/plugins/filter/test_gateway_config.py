"""The gateway-schema filter names every key the pinned gateway would refuse, and nothing it accepts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.openclaw.standalone.plugins.filter.gateway_config import gateway_config_problems

SCHEMA = Path(__file__).resolve().parents[4] / "roles" / "tenant" / "files" / "openclaw-gateway.schema.json"
ENV = ["OPENCLAW_HOOKS_TOKEN", "TELEGRAM_BOT_TOKEN"]
VALID = {
    "gateway": {"port": 18789, "mode": "local", "auth": {"mode": "token"}, "trustedProxies": ["127.0.0.1"]},
    "hooks": {"enabled": True, "path": "/hooks", "token": "${OPENCLAW_HOOKS_TOKEN}", "internal": {"enabled": True}},
    "session": {"dmScope": "per-channel-peer"},
    "agents": {"list": [{"id": "main", "default": True}, {"id": "whatsapp", "model": "anthropic/claude-haiku-4-5"}]},
    "bindings": [{"agentId": "whatsapp", "match": {"channel": "whatsapp"}}],
    "channels": {
        "whatsapp": {"dmPolicy": "open", "allowFrom": ["*"]},
        "telegram": {"enabled": True, "botToken": "${TELEGRAM_BOT_TOKEN}", "dmPolicy": "pairing"},
    },
}


def with_change(path, value):
    config = copy.deepcopy(VALID)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return config


def test_the_schema_is_a_valid_draft7_schema():
    jsonschema.Draft7Validator.check_schema(json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_a_valid_configuration_has_no_problem():
    assert gateway_config_problems(VALID, str(SCHEMA), ENV) == []
    assert gateway_config_problems(json.dumps(VALID), str(SCHEMA), ENV) == []


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("gateway", "healthz"), True, "openclaw.json: gateway: Additional properties are not allowed ('healthz' was unexpected)"),
        (("channels", "modelByChannel"), {"whatsapp": {"*": "x"}}, "openclaw.json: channels: unknown channel id"),
        (("channels", "whatsapp", "allowFrom"), ["+77011234567"], 'channels.whatsapp.allowFrom: dmPolicy "open" requires allowFrom to include "*"'),
        (("session", "dmScope"), "per-customer", "openclaw.json: session.dmScope: 'per-customer' is not one of"),
        (("gateway", "port"), "18789", "openclaw.json: gateway.port: '18789' is not of type 'integer'"),
        (("hooks", "token"), "", "openclaw.json: hooks.token: hooks.enabled requires hooks.token"),
        (("hooks", "path"), "/", "openclaw.json: hooks.path"),
        (("hooks", "token"), "${hooks_token}", "${hooks_token} is not substituted"),
        (("hooks", "token"), "${OPENCLAW_WEBHOOK_TOKEN}", "${OPENCLAW_WEBHOOK_TOKEN} is not set in the container"),
        (("tools", "elevated"), {"enabled": True, "allowFrom": ["webchat"]}, "openclaw.json: tools.elevated.allowFrom: ['webchat'] is not of type 'object'"),
    ],
)
def test_each_rule_names_the_key(path, value, named):
    problems = gateway_config_problems(with_change(path, value), str(SCHEMA), ENV)
    assert any(named in problem for problem in problems), problems


def test_the_gateway_token_is_never_the_hooks_token():
    config = with_change(("gateway", "auth", "token"), "same-token-value")
    config["hooks"]["token"] = "same-token-value"
    assert "openclaw.json: hooks.token: must not be the gateway token (gateway.auth.token)" in gateway_config_problems(config, str(SCHEMA), ENV)


def test_text_that_is_not_json_is_one_problem():
    (problem,) = gateway_config_problems("{not json", str(SCHEMA), ENV)
    assert problem.startswith("openclaw.json: not valid JSON")
