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
        servers={
            "srv1": {
                "openclaw_postgres_mode": "external",
                "openclaw_postgres_host": "db",
                "openclaw_postgres_password": "pw",
                "openclaw_postgres_sslmode": "require",
            }
        },
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
        (
            {
                "openclaw_postgres_mode": "external",
                "openclaw_postgres_host": "db.example.com",
                "openclaw_postgres_password": "pw",
                "openclaw_postgres_ssl_rootcert": "/ca.pem",
            },
            set(),
        ),
        (
            {"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db.example.com", "openclaw_postgres_ssl_rootcert": "/ca.pem"},
            {("openclaw_postgres_password", "postgres-external")},
        ),
        # External mode verifies the server's certificate by default, which needs the CA file.
        (
            {"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db.example.com", "openclaw_postgres_password": "pw"},
            {("openclaw_postgres_ssl_rootcert", "postgres-ssl-rootcert")},
        ),
        ({"openclaw_postgres_sslmode": "verify-ca"}, {("openclaw_postgres_ssl_rootcert", "postgres-ssl-rootcert")}),
        ({"openclaw_postgres_sslmode": "verify_full"}, {("openclaw_postgres_sslmode", "postgres-sslmode")}),
        (
            {"openclaw_postgres_mode": "external", "openclaw_postgres_host": "db", "openclaw_postgres_password": "pw", "openclaw_postgres_sslmode": "require"},
            set(),
        ),
        ({"openclaw_runtime_gateway_bind": "public"}, {("openclaw_runtime_gateway_bind", "gateway-bind")}),
        # The services run the collection's own image unless another is set.
        ({"openclaw_upload_port": 9001}, set()),
        (
            {"openclaw_webhook_port": 9000, "openclaw_waba_verify_token": "t"},
            {("openclaw_waba_app_secret", "service-secret")},
        ),
        ({"openclaw_cert_provider": "cloudflare", "openclaw_cert_cloudflare_api_token": "t"}, set()),
        ({"openclaw_postgres_mode": "docker"}, {("openclaw_postgres_mode", "postgres-mode")}),
        (
            {"openclaw_postgres_mode": "external"},
            {
                ("openclaw_postgres_host", "postgres-external"),
                ("openclaw_postgres_password", "postgres-external"),
                ("openclaw_postgres_ssl_rootcert", "postgres-ssl-rootcert"),
            },
        ),
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


# --- Reserved names follow the components as they are configured.


@pytest.mark.parametrize(
    ("setting", "value", "slug"),
    [
        ("openclaw_postgres_container", "openclaw-db", "db"),
        ("openclaw_docker_network", "openclaw-tenants", "tenants"),
        ("openclaw_postgres_volume", "openclaw-pgvolume", "pgvolume"),
        ("openclaw_webhook_container", "openclaw-hooks", "hooks"),
        ("openclaw_upload_container", "openclaw-files", "files"),
        ("openclaw_runtime_image", "registry.example.com/team/openclaw-gw", "gw"),
        ("openclaw_shared_database", "openclaw_main", "main"),
        ("openclaw_postgres_superuser", "openclaw_admin", "admin"),
        ("openclaw_webhook_db_role", "openclaw_hooks", "hooks"),
    ],
)
def test_a_renamed_component_reserves_the_slug_that_would_take_it_over(setting, value, slug):
    hostvars, groups = inventory({"mallory": {"openclaw_port": 18801, "openclaw_slug": slug}}, servers={"srv1": {setting: value}})
    (problem,) = v.inventory_problems(hostvars, groups)
    assert (problem.host, problem.variable, problem.rule) == ("mallory", "openclaw_slug", "slug-reserved")
    assert setting in problem.detail and value.rsplit("/", 1)[-1] in problem.detail
    # Positive control: the same slug is a valid tenant on a server with the default names.
    hostvars, groups = inventory({"mallory": {"openclaw_port": 18801, "openclaw_slug": slug}})
    assert v.inventory_problems(hostvars, groups) == []


def test_a_component_name_set_on_the_tenant_side_is_reserved_too():
    # group_vars/openclaw_tenants renames the PostgreSQL container the tenants connect to.
    hostvars, groups = inventory({"mallory": {"openclaw_port": 18801, "openclaw_slug": "pg", "openclaw_postgres_container": "openclaw-pg"}})
    assert {(p.host, p.rule) for p in v.inventory_problems(hostvars, groups)} == {("mallory", "slug-reserved")}


def test_a_workspace_cannot_be_a_server_directory():
    server = {"openclaw_clients_dir": "/srv/openclaw", "openclaw_secrets_dir": "/srv/openclaw/secrets"}
    hostvars, groups = inventory({"mallory": {"openclaw_port": 18801, "openclaw_slug": "secrets"}}, servers={"srv1": server})
    found = {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)}
    assert found == {("mallory", "openclaw_slug", "slug-reserved"), ("srv1", "openclaw_secrets_dir", "directory-overlap")}


def test_component_reservations_of_the_defaults():
    assert set(v.component_reservations(v.SERVER_DEFAULTS)) == {"postgres", "pgdata", "net", "webhook", "upload", "runtime"}
    assert v.component_reservations({}) == {}


def test_server_defaults_match_the_roles_defaults():
    import yaml

    root = v.__file__.rsplit("/plugins/", 1)[0]
    defaults = {}
    for role in ("server", "nginx", "certificates"):
        with open("%s/roles/%s/defaults/main.yml" % (root, role), encoding="utf-8") as handle:
            defaults.update(yaml.safe_load(handle))
    assert {name: defaults[name] for name in v.SERVER_DEFAULTS if name in defaults} == v.SERVER_DEFAULTS
    assert {name: defaults[name] for name in v.NGINX_PORT_DEFAULTS} == v.NGINX_PORT_DEFAULTS
    for name in v.SETTING_RULES:
        if name in defaults and "{{" not in str(defaults[name]):
            assert v.setting_problems(name, defaults[name]) == [], name


# --- Server-level values that reach shell scripts, config files and Docker.

GOOD_SETTINGS = [
    ("openclaw_domain", "agents.example.com"),
    ("openclaw_postgres_container", "acme_pg.1"),
    ("openclaw_docker_network", "Openclaw-Net"),
    ("openclaw_clients_dir", "/srv/open-claw/clients_2"),
    ("openclaw_runtime_image", "localhost:5000/openclaw/runtime"),
    ("openclaw_runtime_tag", "2026.2.17-rc.1"),
    ("openclaw_version", "2026.2.17"),
    ("openclaw_version", "2026.2.17-beta.2"),
    ("openclaw_postgres_image", "postgres:16"),
    ("openclaw_postgres_image", "docker.io/library/postgres:16.4@sha256:" + "a" * 64),
    ("openclaw_webhook_image", ""),
    ("openclaw_webhook_image", "registry.example.com/openclaw-webhook:1.4.0"),
    ("openclaw_shared_database", "openclaw_shared"),
    ("openclaw_postgres_superuser", "postgres"),
    ("openclaw_postgres_host", "db.internal.example.com"),
    ("openclaw_postgres_host", "10.0.0.5"),
    ("openclaw_postgres_host", "::1"),
    ("openclaw_postgres_tenant_host", ""),
    ("openclaw_nginx_http_port", 80),
    ("openclaw_nginx_listen_address", ""),
    ("openclaw_nginx_listen_address", "127.0.0.1"),
    ("openclaw_nginx_listen_address", "[::1]"),
    ("openclaw_docker_host", "unix:///var/run/docker.sock"),
    ("openclaw_docker_host", "tcp://10.0.0.2:2376"),
    ("openclaw_docker_host", "ssh://deploy@docker.example.com"),
    ("openclaw_postgres_shm_size", "1g"),
    ("openclaw_nginx_upload_max_body", "500M"),
    ("openclaw_nginx_proxy_read_timeout", 3600),
    ("openclaw_meta_graph_api_version", "v21.0"),
    ("openclaw_unknown_setting", "; rm -rf /"),
]

BAD_SETTINGS = [
    ("openclaw_domain", "example.com; include /etc/shadow", "domain-label-charset"),
    ("openclaw_domain", "Example.com", "domain-case"),
    ("openclaw_postgres_container", "pg; reboot", "docker-name"),
    ("openclaw_postgres_container", "-pg", "docker-name"),
    ("openclaw_postgres_container", "", "docker-name"),
    ("openclaw_docker_network", "net$(id)", "docker-name"),
    ("openclaw_webhook_container", "hook\n", "docker-name"),
    ("openclaw_postgres_volume", 42, "docker-name"),
    ("openclaw_clients_dir", "clients", "path-absolute"),
    ("openclaw_clients_dir", "//srv/clients", "path-absolute"),
    ("openclaw_clients_dir", "/", "path-normalised"),
    ("openclaw_clients_dir", "/srv/clients/", "path-normalised"),
    ("openclaw_backup_dir", "/srv/../etc", "path-normalised"),
    ("openclaw_secrets_dir", "/srv/./secrets", "path-normalised"),
    ("openclaw_server_lib_dir", "/opt/open claw", "path-charset"),
    ("openclaw_server_lib_dir", "/opt/$HOME", "path-charset"),
    ("openclaw_nginx_openclaw_dir", "/etc/nginx/x;y", "path-charset"),
    ("openclaw_nginx_certificate", "/etc/certs/a'b.pem", "path-charset"),
    ("openclaw_cert_dir", None, "path"),
    ("openclaw_runtime_image", "openclaw-runtime:1.0", "image-repository"),
    ("openclaw_runtime_image", "OpenClaw", "image-repository"),
    ("openclaw_runtime_tag", "1.0 && reboot", "image-tag"),
    ("openclaw_runtime_tag", ".hidden", "image-tag"),
    ("openclaw_version", "latest", "version"),
    ("openclaw_version", "2026.2.17; curl evil", "version"),
    ("openclaw_version", 2026.2, "version"),
    ("openclaw_postgres_image", "postgres:16 --privileged", "image-reference"),
    ("openclaw_runtime_base_image", "", "image-reference"),
    ("openclaw_upload_image", "Upload:1", "image-reference"),
    ("openclaw_shared_database", "open-claw", "database-name"),
    ("openclaw_shared_database", 'x"; DROP', "database-name"),
    ("openclaw_postgres_superuser", "pg_admin", "role-name"),
    ("openclaw_postgres_superuser", "Admin", "role-name"),
    ("openclaw_postgres_host", "", "postgres-host"),
    ("openclaw_postgres_host", "db host", "postgres-host"),
    ("openclaw_postgres_tenant_host", "db;x", "postgres-host"),
    ("openclaw_postgres_tenant_port", 0, "port-range"),
    ("openclaw_nginx_https_port", "443s", "port-type"),
    ("openclaw_nginx_status_port", 70000, "port-range"),
    ("openclaw_nginx_listen_address", "localhost", "listen-address"),
    ("openclaw_nginx_listen_address", "::1", "listen-address"),
    ("openclaw_docker_host", "/var/run/docker.sock", "docker-host"),
    ("openclaw_docker_host", "unix:///var/run/docker sock", "docker-host"),
    ("openclaw_postgres_shm_size", "256 m", "size"),
    ("openclaw_postgres_shm_size", "0", "size"),
    ("openclaw_nginx_upload_max_body", "500M; }", "size"),
    ("openclaw_nginx_proxy_read_timeout", "60s", "positive-integer"),
    ("openclaw_nginx_map_hash_bucket_size", 0, "positive-integer"),
    ("openclaw_meta_graph_api_version", "21.0", "api-version"),
]


@pytest.mark.parametrize(("name", "value"), GOOD_SETTINGS)
def test_good_server_settings_pass(name, value):
    assert v.setting_problems(name, value, host="srv1") == []


@pytest.mark.parametrize(("name", "value", "rule"), BAD_SETTINGS)
def test_bad_server_settings_name_host_variable_and_rule(name, value, rule):
    problems = v.setting_problems(name, value, host="srv1")
    assert rule in rules(problems)
    assert all(problem.host == "srv1" and problem.variable == name for problem in problems)
    # ... and the inventory reports them on the server that sets them.
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801}}, servers={"srv1": {name: value}})
    assert ("srv1", name, rule) in {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)}


def test_a_setting_shared_with_the_server_is_reported_once_on_the_server():
    hostvars, groups = inventory(
        {"aliya": {"openclaw_port": 18801, "openclaw_clients_dir": "/srv/x y"}}, servers={"srv1": {"openclaw_clients_dir": "/srv/x y"}}
    )
    assert {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)} == {("srv1", "openclaw_clients_dir", "path-charset")}
    # A tenant that sets its own value is reported on the tenant.
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801, "openclaw_docker_network": "n;t"}})
    assert {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)} == {("aliya", "openclaw_docker_network", "docker-name")}


def test_a_tenant_port_cannot_take_an_nginx_port():
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18999}})
    found = {(p.host, p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)}
    assert found == {("aliya", "openclaw_port", "port-unique"), ("srv1", "openclaw_nginx_status_port", "port-unique")}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("openclaw_clients_dir", "openclaw_backup_dir"),
        ("openclaw_secrets_dir", "openclaw_clients_dir"),
        ("openclaw_server_lib_dir", "openclaw_secrets_dir"),
    ],
)
def test_separate_directories_may_not_overlap(first, second):
    server = {first: "/srv/openclaw", second: "/srv/openclaw/inner"}
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801}}, servers={"srv1": server})
    assert "directory-overlap" in rules(v.inventory_problems(hostvars, groups))
    server = {first: "/srv/openclaw", second: "/srv/openclaw-other"}
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801}}, servers={"srv1": server})
    assert v.inventory_problems(hostvars, groups) == []


def test_without_the_vault_secrets_are_not_required():
    server = {"openclaw_webhook_port": 9000, "openclaw_webhook_image": "webhook:1", "openclaw_cert_provider": "cloudflare"}
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801}}, servers={"srv1": server})
    assert rules(v.inventory_problems(hostvars, groups)) == ["cert-provider-setting", "service-secret"]
    assert v.inventory_problems(hostvars, groups, secrets=False) == []
    tenants = {name: {"openclaw_port": port, "openclaw_anthropic_api_key": "k"} for name, port in (("aliya", 18801), ("bob", 18802))}
    hostvars, groups = inventory(tenants)
    assert rules(v.inventory_problems(hostvars, groups)) == ["tenant-secret-shared"]
    assert v.inventory_problems(hostvars, groups, secrets=False) == []


# --- Dangerous tenant settings: refused unless opted into by name, then warned about.

DANGEROUS = [
    ({"openclaw_tenant_uid": 0}, "openclaw_tenant_uid", "root_uid"),
    ({"openclaw_tenant_gid": "0"}, "openclaw_tenant_gid", "root_uid"),
    ({"openclaw_tenant_docker_socket": True}, "openclaw_tenant_docker_socket", "docker_socket"),
    ({"openclaw_tenant_docker_socket": "yes"}, "openclaw_tenant_docker_socket", "docker_socket"),
    ({"openclaw_tenant_memory": 0}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_memory": "0"}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_memory": -1}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_memory": "-1"}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_memory": ""}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_memory": None}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_memory": "1024g"}, "openclaw_tenant_memory", "unlimited_resources"),
    ({"openclaw_tenant_pids": 0}, "openclaw_tenant_pids", "unlimited_resources"),
    ({"openclaw_tenant_pids": -1}, "openclaw_tenant_pids", "unlimited_resources"),
    ({"openclaw_tenant_pids": 10000000}, "openclaw_tenant_pids", "unlimited_resources"),
    ({"openclaw_tenant_cpus": 0}, "openclaw_tenant_cpus", "unlimited_resources"),
    ({"openclaw_tenant_cpus": ""}, "openclaw_tenant_cpus", "unlimited_resources"),
    ({"openclaw_tenant_cpus": 1000}, "openclaw_tenant_cpus", "unlimited_resources"),
]


@pytest.mark.parametrize(("settings", "variable", "opt_in"), DANGEROUS)
def test_dangerous_settings_are_refused_without_the_opt_in(settings, variable, opt_in):
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801, **settings}})
    problems, warnings = v.inventory_findings(hostvars, groups)
    assert [(p.host, p.variable, p.rule) for p in problems] == [("aliya", variable, "dangerous-" + opt_in.replace("_", "-"))]
    assert opt_in in problems[0].detail and v.DANGEROUS_OPT_IN in problems[0].detail
    assert warnings == []
    # Opted in by name: no problem, but a warning naming the setting.
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801, **settings, v.DANGEROUS_OPT_IN: [opt_in]}})
    problems, warnings = v.inventory_findings(hostvars, groups)
    assert problems == []
    assert [(w.host, w.variable) for w in warnings] == [("aliya", variable)]
    # Another opt-in does not cover it.
    other = next(name for name in v.DANGEROUS_SETTINGS if name != opt_in)
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801, **settings, v.DANGEROUS_OPT_IN: [other]}})
    assert rules(v.inventory_problems(hostvars, groups)) == ["dangerous-" + opt_in.replace("_", "-")]


@pytest.mark.parametrize(
    "settings",
    [
        {"openclaw_tenant_uid": 1001, "openclaw_tenant_gid": 1001},
        {"openclaw_tenant_docker_socket": False},
        {"openclaw_tenant_docker_socket": "false"},
        {"openclaw_tenant_memory": "6m"},
        {"openclaw_tenant_memory": "3g"},
        {"openclaw_tenant_memory": "512MB"},
        {"openclaw_tenant_memory": "256g"},
        {"openclaw_tenant_cpus": 0.5},
        {"openclaw_tenant_cpus": "2"},
        {"openclaw_tenant_pids": 512},
        {"openclaw_tenant_pids": "4096"},
        {v.DANGEROUS_OPT_IN: []},
    ],
)
def test_ordinary_limits_pass_silently(settings):
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801, **settings}})
    assert v.inventory_findings(hostvars, groups) == ([], [])


@pytest.mark.parametrize(
    ("settings", "variable", "rule"),
    [
        ({"openclaw_tenant_uid": -5}, "openclaw_tenant_uid", "id-range"),
        ({"openclaw_tenant_uid": "root"}, "openclaw_tenant_uid", "id-range"),
        ({"openclaw_tenant_docker_socket": "maybe"}, "openclaw_tenant_docker_socket", "boolean"),
        ({"openclaw_tenant_memory": "lots"}, "openclaw_tenant_memory", "memory-format"),
        ({"openclaw_tenant_memory": "1k"}, "openclaw_tenant_memory", "memory-range"),
        ({"openclaw_tenant_cpus": "all"}, "openclaw_tenant_cpus", "cpus-format"),
        ({"openclaw_tenant_pids": 1.5}, "openclaw_tenant_pids", "pids-format"),
        ({v.DANGEROUS_OPT_IN: ["root"]}, v.DANGEROUS_OPT_IN, "dangerous-opt-in"),
        ({v.DANGEROUS_OPT_IN: "root_uid"}, v.DANGEROUS_OPT_IN, "dangerous-opt-in"),
    ],
)
def test_malformed_isolation_settings_are_refused(settings, variable, rule):
    hostvars, groups = inventory({"aliya": {"openclaw_port": 18801, **settings}})
    assert [(p.variable, p.rule) for p in v.inventory_problems(hostvars, groups)] == [(variable, rule)]
