"""The inventory rules: each bad input next to the good ones it differs from."""

from __future__ import annotations

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import validation as v


def rules(problems):
    return sorted({problem.rule for problem in problems})


GOOD_SLUGS = ["a", "aliya", "acme-corp", "client42", "a1-b2-c3", "x" * v.SLUG_MAX, "defaults", "included", "my-default"]

BAD_SLUGS = [
    (None, "slug-type"),
    (42, "slug-type"),
    (["aliya"], "slug-type"),
    ("", "slug-empty"),
    ("x" * (v.SLUG_MAX + 1), "slug-length"),
    ("Aliya", "slug-charset"),
    ("ALIYA", "slug-charset"),
    ("ali_ya", "slug-charset"),
    ("ali.ya", "slug-charset"),
    ("ali ya", "slug-charset"),
    ("ali;ya", "slug-charset"),
    ("ali'ya", "slug-charset"),
    ('ali"ya', "slug-charset"),
    ("ali{ya}", "slug-charset"),
    ("ali/ya", "slug-charset"),
    ("~aliya", "slug-charset"),
    ("aliyä", "slug-charset"),
    ("aliya\n", "slug-charset"),
    ("1aliya", "slug-start"),
    ("-aliya", "slug-start"),
    ("42", "slug-start"),
    ("aliya-", "slug-end"),
    ("ali--ya", "slug-double-hyphen"),
    ("xn--80ak6aa92e", "slug-double-hyphen"),
    ("default", "slug-reserved"),
    ("hostnames", "slug-reserved"),
    ("include", "slug-reserved"),
    ("volatile", "slug-reserved"),
    ("postgres", "slug-reserved"),
    ("net", "slug-reserved"),
    ("runtime", "slug-reserved"),
    ("webhook", "slug-reserved"),
    ("upload", "slug-reserved"),
]


@pytest.mark.parametrize("slug", GOOD_SLUGS)
def test_good_slugs_pass(slug):
    assert v.slug_problems(slug) == []


@pytest.mark.parametrize(("slug", "rule"), BAD_SLUGS)
def test_bad_slugs_name_the_rule(slug, rule):
    problems = v.slug_problems(slug, host="h1")
    assert rule in rules(problems)
    assert all(problem.host == "h1" and problem.variable == "openclaw_slug" for problem in problems)


def test_longest_slug_fits_every_derived_identifier():
    names = v.derived_names("x" * v.SLUG_MAX)
    assert max(len(name.encode()) for name in names.values()) == v.POSTGRES_IDENTIFIER_MAX
    assert names == {
        "slug": "x" * v.SLUG_MAX,
        "database": "openclaw_" + "x" * v.SLUG_MAX,
        "role": "openclaw_" + "x" * v.SLUG_MAX,
        "container": "openclaw-" + "x" * v.SLUG_MAX,
    }


def test_operator_reserved_slugs_are_refused():
    assert rules(v.slug_problems("www", reserved=v.RESERVED_SLUGS | {"www"})) == ["slug-reserved"]
    assert v.slug_problems("www") == []


@pytest.mark.parametrize("port", [1024, 18789, "18801", 65535])
def test_good_ports_pass(port):
    assert v.port_problems(port) == []


@pytest.mark.parametrize(
    ("port", "rule"),
    [
        (0, "port-range"),
        (80, "port-range"),
        (1023, "port-range"),
        (65536, "port-range"),
        (-1, "port-range"),
        ("-1", "port-type"),
        ("18 801", "port-type"),
        ("0x4000", "port-type"),
        ("18801\n", "port-type"),
        ("", "port-type"),
        (True, "port-type"),
        (18801.5, "port-type"),
        (None, "port-type"),
    ],
)
def test_bad_ports_name_the_rule(port, rule):
    assert rules(v.port_problems(port, host="h1")) == [rule]


@pytest.mark.parametrize("domain", ["example.com", "openclaw.localhost", "agents.example.co.uk", "a-b.example", "x1.test"])
def test_good_domains_pass(domain):
    assert v.domain_problems(domain) == []


@pytest.mark.parametrize(
    ("domain", "rule"),
    [
        (None, "domain-type"),
        ("", "domain-empty"),
        ("Example.com", "domain-case"),
        ("example.com.", "domain-trailing-dot"),
        ("localhost", "domain-labels"),
        ("example..com", "domain-label-empty"),
        (".example.com", "domain-label-empty"),
        ("-example.com", "domain-label-charset"),
        ("example-.com", "domain-label-charset"),
        ("exa_mple.com", "domain-label-charset"),
        ("example.com\n", "domain-label-charset"),
        ("exa mple.com", "domain-label-charset"),
        ("*.example.com", "domain-label-charset"),
        ("x" * 64 + ".com", "domain-label-length"),
        ("10.0.0.1", "domain-tld"),
        (".".join(["a" * 63] * 4), "domain-length"),
    ],
)
def test_bad_domains_name_the_rule(domain, rule):
    assert rule in rules(v.domain_problems(domain))


def test_domain_length_counts_the_longest_slug():
    domain = ".".join(["a" * 60] * 4)  # 243 characters
    assert v.domain_problems(domain) == []
    assert rules(v.domain_problems(domain, longest_slug=10)) == ["domain-length"]


@pytest.mark.parametrize("phone", ["+77011234567", "+14155550100", "+4930123456", "+1234567"])
def test_good_phones_pass(phone):
    assert v.phone_problems(phone) == []


@pytest.mark.parametrize(
    ("phone", "rule"),
    [
        ("77011234567", "phone-e164"),
        ("+7 701 123 45 67", "phone-e164"),
        ("+7-701-123-45-67", "phone-e164"),
        ("+07011234567", "phone-e164"),
        ("+123456", "phone-e164"),
        ("+1234567890123456", "phone-e164"),
        ("+", "phone-e164"),
        ("", "phone-e164"),
        ("+7701123456a", "phone-e164"),
        ("+77011234567\n", "phone-e164"),
        (77011234567, "phone-type"),
        (None, "phone-type"),
    ],
)
def test_bad_phones_name_the_rule(phone, rule):
    assert rules(v.phone_problems(phone)) == [rule]


@pytest.mark.parametrize("state", v.TENANT_STATES)
def test_known_states_pass(state):
    assert v.state_problems(state) == []


@pytest.mark.parametrize("state", ["running", "Present", "", None, "purged"])
def test_unknown_states_are_refused(state):
    assert rules(v.state_problems(state)) == ["state-choice"]


def inventory(tenants: dict, servers: dict | None = None):
    servers = {"srv1": {}} if servers is None else servers
    hostvars = dict(servers)
    for name, values in tenants.items():
        hostvars[name] = {"openclaw_server": "srv1", "openclaw_domain": "example.com", **values}
    groups = {"openclaw_servers": list(servers), "openclaw_tenants": list(tenants)}
    return hostvars, groups


def test_a_valid_inventory_has_no_problem():
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801}, "bob": {"openclaw_port": 18802}})
    assert v.inventory_problems(hostvars, groups) == []


def test_same_port_on_different_servers_is_fine():
    hostvars, groups = inventory(
        {"aliya": {"openclaw_port": 18801}, "bob": {"openclaw_port": 18801, "openclaw_server": "srv2"}},
        servers={"srv1": {}, "srv2": {}},
    )
    assert v.inventory_problems(hostvars, groups) == []


def test_every_problem_of_an_inventory_is_reported_at_once():
    hostvars, groups = inventory(
        {
            "aliya": {"openclaw_port": 18801},
            "bob": {"openclaw_port": 18801},
            "Carol": {"openclaw_port": 80},
            "dave": {"openclaw_server": "srv9", "openclaw_port": 18803},
            "erin": {"openclaw_port": 5435},
            "frank": {},
            "gina": {"openclaw_port": 18804, "openclaw_tenant_state": "gone", "openclaw_waba_phone_number": "8701"},
            "hank": {"openclaw_port": 18805, "openclaw_slug": "aliya"},
        }
    )
    found = {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)}
    assert found == {
        ("aliya", "openclaw_port", "port-unique"),
        ("bob", "openclaw_port", "port-unique"),
        ("Carol", "openclaw_slug", "slug-charset"),
        ("Carol", "openclaw_port", "port-range"),
        ("dave", "openclaw_server", "server-unknown"),
        ("erin", "openclaw_port", "port-unique"),
        ("srv1", "openclaw_postgres_port", "port-unique"),
        ("frank", "openclaw_port", "port-required"),
        ("gina", "openclaw_tenant_state", "state-choice"),
        ("gina", "openclaw_waba_phone_number", "phone-e164"),
        ("aliya", "openclaw_slug", "slug-unique"),
        ("hank", "openclaw_slug", "slug-unique"),
    }


def test_external_postgres_frees_the_default_port():
    hostvars, groups = inventory(
        {"erin": {"openclaw_port": 5435}},
        servers={"srv1": {"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db", "openclaw_postgres_password": "pw"}},
    )
    assert v.inventory_problems(hostvars, groups) == []


def test_missing_server_domain_and_group_membership():
    hostvars = {"srv1": {}, "aliya": {"openclaw_port": 18801}}
    groups = {"openclaw_servers": ["srv1"], "openclaw_tenants": ["aliya", "srv1"]}
    found = {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)}
    assert ("aliya", "openclaw_server", "server-required") in found
    assert ("aliya", "openclaw_domain", "domain-required") in found
    assert ("srv1", "groups", "host-role") in found


def test_an_inventory_without_servers_is_refused():
    assert rules(v.inventory_problems({}, {})) == ["servers-empty"]


def test_problem_text_names_host_variable_and_rule():
    (problem,) = v.port_problems(80, host="aliya")
    assert str(problem) == "aliya: openclaw_port: 80 is outside 1024-65535 (rule: port-range)"


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({}, set()),
        ({"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db.example.com", "openclaw_postgres_password": "pw"}, set()),
        ({"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db.example.com"}, {("openclaw_postgres_password", "postgres-external")}),
        ({"openclaw_runtime_gateway_bind": "public"}, {("openclaw_runtime_gateway_bind", "gateway-bind")}),
        ({"openclaw_upload_port": 9001}, {("openclaw_upload_image", "service-source")}),
        ({"openclaw_upload_port": 9001, "openclaw_upload_build_context": "services/upload"}, set()),
        (
            {"openclaw_webhook_port": 9000, "openclaw_webhook_image": "webhook:1", "openclaw_waba_verify_token": "t"},
            {("openclaw_fb_webhook_verify_token", "service-secret"), ("openclaw_waba_app_secret", "service-secret")},
        ),
        ({"openclaw_cert_provider": "cloudflare", "openclaw_cert_cloudflare_api_token": "t"}, set()),
        ({"openclaw_postgres_mode": "docker"}, {("openclaw_postgres_mode", "postgres-mode")}),
        ({"openclaw_postgres_mode": "external"}, {("openclaw_postgres_host", "postgres-external"), ("openclaw_postgres_password", "postgres-external")}),
        ({"openclaw_cert_provider": "letsencrypt"}, {("openclaw_cert_provider", "cert-provider")}),
        ({"openclaw_cert_provider": "cloudflare"}, {("openclaw_cert_cloudflare_api_token", "cert-provider-setting")}),
        ({"openclaw_cert_provider": "hook", "openclaw_cert_auth_hook": "/bin/true"}, {("openclaw_cert_cleanup_hook", "cert-provider-setting")}),
        (
            {"openclaw_cert_provider": "rfc2136", "openclaw_cert_rfc2136_server": "ns1"},
            {("openclaw_cert_rfc2136_name", "cert-provider-setting"), ("openclaw_cert_rfc2136_secret", "cert-provider-setting")},
        ),
    ],
)
def test_server_settings_that_would_fail_half_way(server, expected):
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801}}, servers={"srv1": server})
    assert {(p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)} == expected
