"""openclaw_tenant's input rules and database URL, without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils.tenant_run import container_params, input_problems, isolation_findings, with_password

REPO_ROOT = Path(__file__).resolve().parents[4]
BASE = {
    "slug": "aliya",
    "state": "present",
    "port": 18801,
    "image": "openclaw-runtime:1",
    "files": {},
    "secret_files": [],
    "db_url": None,
    "db_password": None,
    "db_password_file": None,
    "env": {},
    "purge": False,
    "services": {},
    "health_interval": 30,
}
WEBHOOK = {"registry_dir": "/srv/webhook", "group": 10001, "gateway_url": None, "app_secret": None, "default_country_code": None}
UPLOAD = {"registry_dir": "/srv/upload", "group": 10001, "public_url": "https://agents.example.com/openclaw/upload/aliya/"}
DB_URL = "postgresql://openclaw_aliya@db:5432/openclaw_aliya"


def problems(**overrides):
    return "; ".join(input_problems({**BASE, **overrides}))


def test_valid_input_has_no_problems():
    assert problems() == ""


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"slug": "Aliya"}, "slug"),
        ({"port": 80}, "port"),
        ({"port": None}, "port is required"),
        ({"image": None}, "image is required"),
        ({"files": {"workspace/SOUL.md": "x"}}, "belongs to the agent"),
        ({"secret_files": ["nope.json"]}, "not a key of files"),
        ({"db_password_file": "/x"}, "need db_url"),
        ({"db_url": "mysql://u@h/d"}, "db_url must be postgresql"),
        ({"db_url": "postgresql://u:p@h/d", "db_password": "p"}, "must not carry a password"),
        ({"env": {"OPENCLAW_GATEWAY_TOKEN": "x"}}, "set by this module"),
        ({"purge": True}, "purge is only valid with state absent"),
        ({"health_interval": 0}, "health_interval: 0 is not a whole number of seconds of at least 1"),
        ({"env": {"OPENCLAW_UPLOAD_SECRET": "x"}}, "set by this module"),
        ({"services": {"webhook": WEBHOOK, "upload": None}}, "services: webhook reach the tenant's data as its role and need db_url"),
        ({"services": {"upload": {**UPLOAD, "public_url": "javascript:alert(1)"}}, "db_url": DB_URL}, "services.upload.public_url"),
        ({"services": {"webhook": {**WEBHOOK, "default_country_code": "+7"}}, "db_url": DB_URL}, "default_country_code must be digits"),
    ],
)
def test_each_bad_input_is_named(overrides, fragment):
    assert fragment in problems(**overrides)


def test_absent_needs_neither_port_nor_image():
    assert problems(state="absent", port=None, image=None, purge=True) == ""


def test_services_with_the_tenants_database_are_valid():
    assert problems(services={"webhook": WEBHOOK, "upload": UPLOAD}, db_url=DB_URL) == ""
    # Removing a tenant removes its registry entries without needing its database.
    assert problems(state="absent", port=None, image=None, services={"webhook": WEBHOOK, "upload": UPLOAD}) == ""


ISOLATED = {"slug": "aliya", "uid": 1001, "gid": 1001, "docker_socket": False, "resources": {"memory": "2g", "cpus": 1.0, "pids": 512}, "allow_dangerous": []}


def test_hardened_settings_need_no_opt_in():
    assert isolation_findings(ISOLATED) == ([], [])


@pytest.mark.parametrize(
    ("overrides", "opt_in", "option"),
    [
        ({"uid": 0}, "root_uid", "uid"),
        ({"gid": 0}, "root_uid", "gid"),
        ({"docker_socket": True}, "docker_socket", "docker_socket"),
        ({"resources": {"memory": "0", "cpus": 1.0, "pids": 512}}, "unlimited_resources", "resources.memory"),
        ({"resources": {"memory": "2g", "cpus": 1.0, "pids": -1}}, "unlimited_resources", "resources.pids"),
        ({"resources": {"memory": "2g", "cpus": 1000.0, "pids": 512}}, "unlimited_resources", "resources.cpus"),
    ],
)
def test_a_playbook_without_the_preflight_cannot_remove_isolation_without_the_opt_in(overrides, opt_in, option):
    problems, warnings = isolation_findings({**ISOLATED, **overrides})
    assert warnings == [] and len(problems) == 1
    assert problems[0].startswith(option + " ") and "refused unless allow_dangerous lists " + opt_in in problems[0]
    # With the opt-in it is allowed, and said on every run.
    problems, warnings = isolation_findings({**ISOLATED, **overrides, "allow_dangerous": [opt_in]})
    assert problems == [] and len(warnings) == 1 and option in warnings[0] and "allowed by allow_dangerous" in warnings[0]


def test_an_opt_in_covers_only_the_risk_it_names():
    problems, _warnings = isolation_findings({**ISOLATED, "uid": 0, "docker_socket": True, "allow_dangerous": ["docker_socket"]})
    assert len(problems) == 1 and "root_uid" in problems[0]


@pytest.mark.parametrize("password", ["plain", "with/slash", "p@ss:w0rd%", "ünïcode"])
def test_password_is_url_encoded_into_the_url(password):
    url = with_password("postgresql://openclaw_aliya@openclaw-postgres:5432/openclaw_aliya", password)
    parts = urlsplit(url)
    assert unquote(parts.password) == password
    assert (parts.username, parts.hostname, parts.port, parts.path) == ("openclaw_aliya", "openclaw-postgres", 5432, "/openclaw_aliya")


def test_container_settings_are_hardened_by_default():
    options = container_params(
        {**BASE, "clients_dir": "/home/openclaw/clients", "network": "openclaw-net", "container_port": None, "resources": {}, "uid": 1001, "gid": 1001}
        | {"docker_socket": False, "log_max_size": "10m", "log_max_file": 3, "server": "srv1"},
        "loopback",
    )
    assert options["ports"] == [{"container_port": 18790, "host_port": 18801, "host_ip": "127.0.0.1", "protocol": "tcp"}]
    assert options["cap_drop"] == ["ALL"] and options["init"] is True and options["security_opts"] == ["no-new-privileges:true"]
    assert options["volumes"] == ["/home/openclaw/clients/aliya/.openclaw:/home/openclaw/.openclaw"]
    assert (options["memory"], options["cpus"], options["pids_limit"], options["user"]) == ("2g", 1.0, 512, "1001:1001")
    # The image's entrypoint starts the gateway; no secret is ever part of the container's command or plain env.
    assert options["command"] is None and options["env"] == {"OPENCLAW_GATEWAY_BIND": "loopback"}
    assert (options["healthcheck"]["interval"], options["healthcheck"]["start_period"]) == (30, 60)


def test_the_entrypoint_puts_no_secret_on_a_command_line():
    entrypoint = (REPO_ROOT / "roles" / "server" / "files" / "runtime" / "entrypoint.sh").read_text(encoding="utf-8")
    commands = [line for line in entrypoint.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    # Positive control: the gateway's start lines are there and the token check reads the variable.
    assert [line for line in commands if "openclaw gateway" in line and "--auth token" in line]
    expands = re.compile(r"\$\{?OPENCLAW_GATEWAY_TOKEN")
    assert [line for line in commands if expands.search(line)]
    assert not [line for line in commands if "--token" in line or (expands.search(line) and "[[ -z" not in line)]
