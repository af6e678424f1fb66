"""playbooks/preflight.yml on real inventories: passes on good ones, lists every problem on bad ones."""

from __future__ import annotations

import re

import pytest
import yaml

from harness.ansible import REPO_ROOT, recap, run

BROKEN = REPO_ROOT / "tests" / "fixtures" / "inventories" / "broken"


def recap_hosts(output: str) -> set[str]:
    recap = output.split("PLAY RECAP", 1)[1]
    return set(re.findall(r"^(\S+)\s+:\s+ok=", recap, flags=re.MULTILINE))


def test_local_inventory_passes_preflight():
    result = run("ansible-playbook", "-i", "inventories/local", "playbooks/preflight.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Inventory valid: 1 server(s), 2 tenant(s)." in result.stdout
    assert "WARNING" not in result.stderr, result.stderr


def test_broken_inventory_fails_once_naming_every_problem():
    result = run("ansible-playbook", "-i", str(BROKEN), "playbooks/preflight.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    output = " ".join(result.stdout.split())  # the callback wraps long lines
    expected = [
        "Aliya: openclaw_slug: 'Aliya' may contain only lowercase letters",
        "default: openclaw_slug: 'default' is reserved: an nginx map keyword (rule: slug-reserved)",
        "bob: openclaw_server: 'srv9' is not a host in group openclaw_servers (rule: server-unknown)",
        "bob: openclaw_port: 80 is outside 1024-65535 (rule: port-range)",
        "carol: openclaw_domain: 'Example..com' must be lower case (rule: domain-case)",
        "carol: openclaw_domain: 'example..com' has an empty label (rule: domain-label-empty)",
        "carol: openclaw_waba_phone_number: '8 701 123 45 67' is not E.164",
        "dave: openclaw_tenant_state: 'running' is not one of present, started, stopped, absent (rule: state-choice)",
        "dave: openclaw_port: is not set; every tenant needs a gateway host port (rule: port-required)",
        "srv1: openclaw_postgres_port: 5435 on server srv1 is also used by carol (openclaw_port) (rule: port-unique)",
        "carol: openclaw_port: 5435 on server srv1 is also used by srv1 (openclaw_postgres_port) (rule: port-unique)",
        "Aliya: openclaw_port: 18801 on server srv1 is also used by default (openclaw_port) (rule: port-unique)",
    ]
    missing = [line for line in expected if line not in output]
    assert not missing, result.stdout
    assert "The inventory breaks 13 rule(s); nothing was changed" in output


def test_site_stops_at_preflight_before_touching_any_host():
    result = run("ansible-playbook", "-i", str(BROKEN), "playbooks/site.yml")
    assert result.returncode == 2
    # The check ran once, on the controller, and stopped the run: no later play started.
    assert "fatal: [srv1 -> localhost]: FAILED!" in result.stdout
    assert "PLAY [Servers" not in result.stdout and "PLAY [Tenants" not in result.stdout
    assert recap_hosts(result.stdout) == {"srv1"}


def test_example_and_local_inventories_pass_syntax_check():
    result = run("ansible-playbook", "-i", "inventories/local", "--syntax-check", "playbooks/site.yml")
    assert result.returncode == 0, result.stdout + result.stderr


# Every playbook that reads or changes a host, with what it needs besides the inventory.
ENTRY_POINTS = {
    "site.yml": [],
    "server.yml": [],
    "tenants.yml": [],
    "migrate.yml": [],
    "certificates.yml": [],
    "rolling_upgrade.yml": [],
    "capi_event.yml": ["-e", "phone=+77011234567", "-e", "level=1"],
    "show_access.yml": ["-e", "tenant=bob"],
}


def write_inventory(path, tenants, server=None):
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory = {
        "openclaw_servers": {"hosts": {"srv1": {**local, **(server or {})}}},
        "openclaw_tenants": {"vars": {**local, "openclaw_domain": "example.com"}, "hosts": tenants},
    }
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return str(path)


def test_every_playbook_checks_the_whole_inventory_whatever_the_limit(tmp_path):
    # Two changes that are each valid: bob takes aliya's slug, carol takes aliya's port.
    # The limit names only the newcomers; the preflight still sees aliya and refuses.
    inventory = write_inventory(
        tmp_path / "hosts.yml",
        {
            "aliya": {"openclaw_server": "srv1", "openclaw_port": 18801},
            "bob": {"openclaw_server": "srv1", "openclaw_port": 18802, "openclaw_slug": "aliya"},
            "carol": {"openclaw_server": "srv1", "openclaw_port": 18801},
        },
    )
    runs = [(playbook, [*extra, "--limit", "bob,carol"]) for playbook, extra in ENTRY_POINTS.items()]
    runs.append(("site.yml", ["--limit", "bob", "--tags", "nginx"]))  # a tag selection does not skip it either
    for playbook, options in runs:
        result = run("ansible-playbook", "-i", inventory, f"playbooks/{playbook}", *options)
        output = " ".join(result.stdout.split())
        assert result.returncode == 2, (playbook, result.stdout[-3000:])
        assert "aliya: openclaw_slug: 'aliya' is also the slug of bob (rule: slug-unique)" in output, playbook
        assert "bob: openclaw_slug: 'aliya' is also the slug of aliya (rule: slug-unique)" in output, playbook
        assert "carol: openclaw_port: 18801 on server srv1 is also used by aliya (openclaw_port) (rule: port-unique)" in output, playbook
        # Stopped at the check: only the preflight play ran, for one host, on the controller.
        assert result.stdout.count("PLAY [") == 1, (playbook, result.stdout)
        assert set(recap(result.stdout)) == {"bob"}, playbook

    # Positive control: the same limited runs pass the preflight once the inventory is valid.
    inventory = write_inventory(
        tmp_path / "hosts.yml",
        {
            "aliya": {"openclaw_server": "srv1", "openclaw_port": 18801},
            "bob": {"openclaw_server": "srv1", "openclaw_port": 18802, "openclaw_slug": "bobby"},
            "carol": {"openclaw_server": "srv1", "openclaw_port": 18803},
        },
    )
    for limit in ("bob", "bob,carol", "srv1"):
        result = run("ansible-playbook", "-i", inventory, "playbooks/preflight.yml", "--limit", limit)
        assert result.returncode == 0, result.stdout
        assert "Inventory valid: 1 server(s), 3 tenant(s)." in result.stdout
    result = run("ansible-playbook", "-i", inventory, "playbooks/show_access.yml", "-e", "tenant=bob", "--check")
    assert "Inventory valid: 1 server(s), 3 tenant(s)." in result.stdout
    assert "PLAY [Access | one tenant's URL and token]" in result.stdout


def test_a_renamed_component_cannot_be_taken_over_by_a_slug(tmp_path):
    tenants = {
        "aliya": {"openclaw_server": "srv1", "openclaw_port": 18801},
        "mallory": {"openclaw_server": "srv1", "openclaw_port": 18802, "openclaw_slug": "db"},
    }
    renamed = write_inventory(tmp_path / "renamed.yml", tenants, server={"openclaw_postgres_container": "openclaw-db"})
    result = run("ansible-playbook", "-i", renamed, "playbooks/tenants.yml", "--limit", "mallory")
    assert result.returncode == 2
    assert "mallory: openclaw_slug: 'db' is reserved: openclaw-db is the server's openclaw_postgres_container (rule: slug-reserved)" in " ".join(
        result.stdout.split()
    )
    # Positive control: with the default container name the slug is free.
    default = write_inventory(tmp_path / "default.yml", tenants)
    result = run("ansible-playbook", "-i", default, "playbooks/preflight.yml", "--limit", "mallory")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("setting", "opt_in"),
    [
        ({"openclaw_tenant_uid": 0}, "root_uid"),
        ({"openclaw_tenant_docker_socket": True}, "docker_socket"),
        ({"openclaw_tenant_pids": -1}, "unlimited_resources"),
    ],
)
def test_dangerous_settings_need_the_named_opt_in_and_still_warn(tmp_path, setting, opt_in):
    tenants = {"aliya": {"openclaw_server": "srv1", "openclaw_port": 18801, **setting}}
    result = run("ansible-playbook", "-i", write_inventory(tmp_path / "hosts.yml", tenants), "playbooks/preflight.yml", "--limit", "aliya")
    assert result.returncode == 2
    assert f"refused unless openclaw_tenant_allow_dangerous lists {opt_in}" in " ".join(result.stdout.split())

    tenants["aliya"]["openclaw_tenant_allow_dangerous"] = [opt_in]
    result = run("ansible-playbook", "-i", write_inventory(tmp_path / "hosts.yml", tenants), "playbooks/preflight.yml", "--limit", "aliya")
    assert result.returncode == 0, result.stdout
    assert "[WARNING]: DANGEROUS: aliya: " in result.stderr + result.stdout
    assert "allowed by openclaw_tenant_allow_dangerous" in " ".join(result.stdout.split())
