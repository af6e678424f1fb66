"""The preflight rule tenant-secret-shared: one tenant secret on several tenants is what a group-level value looks like."""

from __future__ import annotations

from ansible_collections.openclaw.standalone.plugins.module_utils.validation import shared_secret_findings

KEY = "sk-ant-" + "x" * 20


def rules(findings):
    return sorted((problem.host, problem.variable, problem.rule) for problem in findings)


def test_one_key_on_two_tenants_is_refused_on_both_without_showing_it():
    hostvars = {"a": {"openclaw_anthropic_api_key": KEY}, "b": {"openclaw_anthropic_api_key": KEY}, "c": {"openclaw_anthropic_api_key": "other"}}
    problems, warnings = shared_secret_findings(hostvars, ["a", "b", "c"])
    assert rules(problems) == [("a", "openclaw_anthropic_api_key", "tenant-secret-shared"), ("b", "openclaw_anthropic_api_key", "tenant-secret-shared")]
    assert warnings == []
    assert all(KEY not in str(problem) for problem in problems)
    assert "b" in str(problems[0]) and "openclaw_tenant_share_group_secrets" in str(problems[0])


def test_own_keys_pass_and_opted_in_tenants_are_warned():
    own = {"a": {"openclaw_anthropic_api_key": "key-a"}, "b": {"openclaw_telegram_bot_token": "bot-b"}}
    assert shared_secret_findings(own, ["a", "b"]) == ([], [])
    shared = {name: {"openclaw_telegram_bot_token": KEY, "openclaw_tenant_share_group_secrets": True} for name in ("a", "b")}
    problems, warnings = shared_secret_findings(shared, ["a", "b"])
    assert problems == [] and rules(warnings) == [
        ("a", "openclaw_telegram_bot_token", "tenant-secret-shared"),
        ("b", "openclaw_telegram_bot_token", "tenant-secret-shared"),
    ]


def test_the_platform_key_is_warned_only_where_it_reaches_a_tenant():
    hostvars = {
        "opted": {"openclaw_platform_anthropic_api_key": KEY, "openclaw_tenant_share_group_secrets": True},
        "own": {"openclaw_platform_anthropic_api_key": KEY, "openclaw_tenant_share_group_secrets": True, "openclaw_anthropic_api_key": "key-own"},
        "plain": {"openclaw_platform_anthropic_api_key": KEY},
    }
    problems, warnings = shared_secret_findings(hostvars, list(hostvars))
    assert problems == []
    assert rules(warnings) == [("opted", "openclaw_platform_anthropic_api_key", "tenant-secret-shared")]
