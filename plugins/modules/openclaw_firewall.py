#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_firewall
short_description: Ensure iptables chains of ordered rules, jumped to from the Docker engine's chains
version_added: 0.1.0
description:
  - Keeps each listed chain of the C(filter) table holding exactly the given rules, in order, and one jump to it
    at the top of its parent chain (for example C(DOCKER-USER), which the Docker engine consults before its own
    forwarding rules and never flushes, or C(INPUT)).
  - A chain is rewritten as a whole with C(iptables-restore --noflush), so rules are replaced atomically and a
    changed rule never ends up behind an old one. Its first rule is a comment carrying a digest of the wanted
    rules; a chain whose digest or rule count differs, or that lacks one of the rules, is rewritten.
  - The iptables backend (nf_tables or legacy) is the one the Docker engine wrote its chains into; the module
    looks for O(engine_chain) in C(iptables), then C(iptables-legacy) and C(iptables-nft), as the engine itself
    uses whichever C(iptables) it finds.
  - Rules live in the kernel only. The Docker engine keeps them when it restarts; after a reboot they are back
    with the next converge.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  chains:
    description:
      - Chains to converge.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Chain name (at most 28 characters).
        type: str
        required: true
      parent:
        description: Built-in or engine chain that jumps to this one, at its top.
        type: str
        required: true
      match:
        description: Match of the jump, for example C(-i br-5b1e0c9d8a7f).
        type: str
        default: ""
      rules:
        description: Rules in iptables syntax without C(-A <chain>), in order.
        type: list
        elements: str
        default: []
  state:
    description:
      - Whether the chains and their jumps should exist.
    type: str
    choices: [present, absent]
    default: present
  iptables:
    description:
      - The iptables command, or C(auto) for the backend holding O(engine_chain).
    type: str
    default: auto
  engine_chain:
    description:
      - Chain of the Docker engine that must exist in the chosen backend (C(auto) looks for it).
    type: str
    default: DOCKER-USER
"""

EXAMPLES = r"""
- name: Tenants reach PostgreSQL and the internet only
  openclaw.standalone.openclaw_firewall:
    chains:
      - name: OPENCLAW-F-br-5b1e0c9d8a7f
        parent: DOCKER-USER
        match: -i br-5b1e0c9d8a7f
        rules:
          - -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
          - -o br-5b1e0c9d8a7f -d 172.18.0.2/32 -p tcp --dport 5432 -j ACCEPT
          - -d 169.254.0.0/16 -j REJECT
"""

RETURN = r"""
iptables:
  description: The iptables command used.
  returned: always
  type: str
  sample: /usr/sbin/iptables
actions:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
"""

import hashlib
import json
import shlex

from ansible.module_utils.basic import AnsibleModule

# ansible.builtin.iptables manages one rule at a time: it can neither replace a
# chain's rules atomically and in order nor pick the backend the Docker engine
# wrote into, which is what a firewall that must never be half-applied needs.
CANDIDATES = ("iptables", "iptables-legacy", "iptables-nft")
MARK = "openclaw-rules"


def digest(chain):
    return hashlib.sha256(json.dumps([chain["match"], chain["rules"]]).encode()).hexdigest()[:16]


class Iptables:
    def __init__(self, module):
        self.module = module
        wanted = module.params["iptables"]
        names = CANDIDATES if wanted == "auto" else (wanted,)
        tried = []
        for name in names:
            path = module.get_bin_path(name)
            if not path:
                continue
            tried.append(path)
            if self.run_with(path, ["-S", module.params["engine_chain"]], check=False)[0] == 0:
                self.path = path
                self.restore = module.get_bin_path(name + "-restore", required=True)
                return
        module.fail_json(
            msg="chain %s of the Docker engine not found with %s: is dockerd running with its iptables rules enabled?"
            % (module.params["engine_chain"], ", ".join(tried) or "no iptables command")
        )

    def run_with(self, path, args, check=True, data=None):
        rc, out, err = self.module.run_command([path, "-w", *args], data=data, binary_data=data is not None)
        if check and rc != 0:
            self.module.fail_json(msg="%s %s failed: %s" % (path, " ".join(args), (err or out).strip()))
        return rc, out, err

    def run(self, args, check=True):
        return self.run_with(self.path, args, check=check)

    def rules(self, chain):
        """The chain's rules as `-A` lines, or None when the chain does not exist."""
        rc, out, _err = self.run(["-t", "filter", "-S", chain], check=False)
        if rc != 0:
            return None
        return [line for line in out.splitlines() if line.startswith("-A ")]

    def holds(self, chain):
        """Whether every wanted rule is in the chain (catches a rule edited by hand, which keeps the count)."""
        return all(self.run(["-t", "filter", "-C", chain["name"], *shlex.split(rule)], check=False)[0] == 0 for rule in chain["rules"])

    def has_jump(self, chain):
        return self.run(["-t", "filter", "-C", chain["parent"], *shlex.split(chain["match"]), "-j", chain["name"]], check=False)[0] == 0

    def write(self, chain):
        lines = ["*filter", ":%s - [0:0]" % chain["name"], '-A %s -m comment --comment "%s %s"' % (chain["name"], MARK, digest(chain))]
        lines += ["-A %s %s" % (chain["name"], rule) for rule in chain["rules"]]
        lines.append("COMMIT")
        rc, out, err = self.module.run_command([self.restore, "-w", "--noflush"], data="\n".join(lines) + "\n")
        if rc != 0:
            self.module.fail_json(msg="%s could not write chain %s: %s" % (self.restore, chain["name"], (err or out).strip()))


def up_to_date(current, chain):
    return current is not None and len(current) == len(chain["rules"]) + 1 and "%s %s" % (MARK, digest(chain)) in current[0]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            chains=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    parent=dict(type="str", required=True),
                    match=dict(type="str", default=""),
                    rules=dict(type="list", elements="str", default=[]),
                ),
            ),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            iptables=dict(type="str", default="auto"),
            engine_chain=dict(type="str", default="DOCKER-USER"),
        ),
        supports_check_mode=True,
    )
    for chain in module.params["chains"]:
        if not 0 < len(chain["name"]) <= 28 or any(c.isspace() for c in chain["name"]):
            module.fail_json(msg="chain names have 1 to 28 characters and no spaces, got %r" % chain["name"])
        for rule in chain["rules"]:
            if "\n" in rule or rule.split()[:1] in (["-A"], ["-I"], ["-D"], ["-F"], ["-X"], ["-N"]):
                module.fail_json(msg="rules of %s are single lines without a command such as -A, got %r" % (chain["name"], rule))
    tables = Iptables(module)
    result = dict(changed=False, iptables=tables.path, actions=[])
    before, after = [], []
    for chain in module.params["chains"]:
        current = tables.rules(chain["name"])
        jumped = current is not None and tables.has_jump(chain)
        if module.params["state"] == "present":
            if not (up_to_date(current, chain) and tables.holds(chain)):
                result["actions"].append("write chain %s (%d rules)" % (chain["name"], len(chain["rules"])))
                before += current or []
                after += ["-A %s %s" % (chain["name"], rule) for rule in chain["rules"]]
                if not module.check_mode:
                    tables.write(chain)
            if not jumped:
                result["actions"].append("jump from %s %s to %s" % (chain["parent"], chain["match"], chain["name"]))
                after.append("-I %s 1 %s -j %s" % (chain["parent"], chain["match"], chain["name"]))
                if not module.check_mode:
                    tables.run(["-t", "filter", "-I", chain["parent"], "1", *shlex.split(chain["match"]), "-j", chain["name"]])
        elif current is not None:
            result["actions"].append("remove chain %s" % chain["name"])
            before += current
            if not module.check_mode:
                while tables.has_jump(chain):
                    tables.run(["-t", "filter", "-D", chain["parent"], *shlex.split(chain["match"]), "-j", chain["name"]])
                tables.run(["-t", "filter", "-F", chain["name"]])
                tables.run(["-t", "filter", "-X", chain["name"]])
    result["changed"] = bool(result["actions"])
    if result["changed"] and module._diff:
        result["diff"] = dict(before="".join(line + "\n" for line in before), after="".join(line + "\n" for line in after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
