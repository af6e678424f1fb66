#!/usr/bin/env python3
"""Map an inventory change in git to the hosts a converge must touch (for --limit).

    ansible-playbook -i inventories/prod playbooks/site.yml \\
        --limit "$(python3 inventory_limit.py --inventory inventories/prod --base origin/main)"

Rules, from the inventory model (tenants are hosts, each on its openclaw_server):
- host_vars/<host>[.yml|/...] changed          -> that host
- a host added or edited in a hosts file      -> that host (a removed one: its server)
- group_vars/openclaw_tenants changed          -> every tenant
- group_vars/openclaw_servers changed          -> every server
- group_vars/all, any other group, or anything not understood -> all
- every tenant in the result brings its server (before and after the change):
  routes are reloaded, orphans reported and shared work done once per server.
Prints "all", a comma-separated host list, or nothing when no host is affected.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import PurePosixPath

import yaml

HOSTS_FILES = ("hosts.yml", "hosts.yaml", "hosts")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def hosts_in(document, groups=(), out=None):
    """{host: (groups, inline vars)} from a YAML inventory document."""
    out = {} if out is None else out
    for group, body in (document or {}).items():
        if not isinstance(body, dict):
            continue
        for host, variables in (body.get("hosts") or {}).items():
            seen_groups, seen_vars = out.get(host, ((), {}))
            out[host] = (tuple(sorted({*seen_groups, group, *groups})), {**seen_vars, **(variables or {})})
        hosts_in(body.get("children") or {}, (*groups, group), out)
    return out


def load_hosts_file(revision: str | None, path: str):
    try:
        if revision:
            text = git("show", f"{revision}:{path}")
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {}
    return hosts_in(yaml.safe_load(text))


def current_inventory(inventory: str, vault_password_file: str | None) -> dict:
    command = ["ansible-inventory", "-i", inventory, "--list"]
    if vault_password_file:
        command += ["--vault-password-file", vault_password_file]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def affected(inventory: str, base: str, head: str | None, vault_password_file: str | None = None) -> str:
    diff_range = [base, head] if head else [base]
    changed = [line for line in git("diff", "--name-only", *diff_range, "--", inventory).splitlines() if line]
    if not changed:
        return ""
    root = PurePosixPath(inventory.rstrip("/"))
    hosts, whole_groups, previous_servers = set(), set(), set()
    for name in changed:
        relative = PurePosixPath(name).relative_to(root) if PurePosixPath(name).is_relative_to(root) else None
        if relative is None:
            return "all"
        parts = relative.parts
        if parts[0] == "host_vars" and len(parts) >= 2:
            hosts.add(parts[1].split(".")[0] if len(parts) == 2 else parts[1])
        elif parts[0] == "group_vars" and len(parts) >= 2:
            group = parts[1].split(".")[0] if len(parts) == 2 else parts[1]
            if group not in ("openclaw_tenants", "openclaw_servers"):
                return "all"
            whole_groups.add(group)
        elif len(parts) == 1 and parts[0] in HOSTS_FILES:
            before = load_hosts_file(base, name)
            after = load_hosts_file(head, name)
            for host in set(before) | set(after):
                if before.get(host) != after.get(host):
                    hosts.add(host)
                    server = (before.get(host) or ((), {}))[1].get("openclaw_server")
                    if server:
                        previous_servers.add(server)  # a moved or removed tenant leaves its old server
        else:
            return "all"

    listed = current_inventory(inventory, vault_password_file)
    groups = {name: set(body.get("hosts", [])) for name, body in listed.items() if isinstance(body, dict)}
    tenants, servers = groups.get("openclaw_tenants", set()), groups.get("openclaw_servers", set())
    hostvars = listed.get("_meta", {}).get("hostvars", {})
    if "openclaw_tenants" in whole_groups:
        hosts |= tenants
    if "openclaw_servers" in whole_groups:
        hosts |= servers
    for host in list(hosts):
        server = hostvars.get(host, {}).get("openclaw_server")
        if host in tenants and server:
            hosts.add(server)
    hosts |= previous_servers & servers
    # A removed host has nothing left to converge; its server (added above) reports the orphan.
    known = set(hostvars) | tenants | servers
    return ",".join(sorted(hosts & known))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", required=True, help="inventory directory, relative to the repository root")
    parser.add_argument("--base", required=True, help="revision before the change, e.g. origin/main")
    parser.add_argument("--head", help="revision after the change (default: the working tree)")
    parser.add_argument("--vault-password-file", default=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"))
    args = parser.parse_args()
    print(affected(args.inventory, args.base, args.head, args.vault_password_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
