"""playbooks/preflight.yml on real inventories: passes on good ones, lists every problem on bad ones."""

from __future__ import annotations

import re

from harness.ansible import REPO_ROOT, run

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
    # Only the controller ran anything: no server or tenant was contacted.
    assert recap_hosts(result.stdout) == {"localhost"}


def test_example_and_local_inventories_pass_syntax_check():
    result = run("ansible-playbook", "-i", "inventories/local", "--syntax-check", "playbooks/site.yml")
    assert result.returncode == 0, result.stdout + result.stderr
