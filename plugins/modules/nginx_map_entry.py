#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_map_entry
short_description: Ensure C(key value;) entries of an nginx map file
version_added: 0.1.0
description:
  - Adds, updates or removes one entry (O(key)), or many at once (O(entries)), of a file included in an nginx
    C(map) block (for example C(map $openclaw_slug $openclaw_upstream { include /etc/nginx/openclaw/tenants.map; })).
  - With O(entries) the file is read, changed and written once for all of them, so the routes of every tenant of
    a server cost one module run and at most one write.
  - Comments, blank lines and other entries are kept as they are. A key that appears more than once is reduced
    to its first entry (nginx refuses duplicate keys).
  - The new file is written to a temporary file in the same directory, optionally validated, then renamed over
    the old one, so readers only ever see a complete file.
  - An exclusive lock on C(<path>.lock) serializes concurrent runs (for example every tenant of one server
    converging in parallel), so no run loses another's entry.
  - Keys and values nginx would read differently (whitespace, C(;), quotes, braces, C(#), C(\\), C($), the map
    keywords C(default), C(hostnames), C(include), C(volatile), a key starting with C(~)) are refused before the
    file is touched.
  - Reloading nginx is not this module's job; the collection's nginx role validates the whole configuration,
    reloads once per server and rolls back on failure.
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
  path:
    description:
      - The map file. Created (with its directory) when missing and O(state=present).
    type: path
    required: true
  key:
    description:
      - The map key (source value), for example a tenant slug.
      - Exactly one of O(key) and O(entries) is required.
    type: str
  value:
    description:
      - The value for O(key), for example V(127.0.0.1:18801). Required with O(state=present).
    type: str
  state:
    description:
      - Whether the entry O(key) should exist.
    type: str
    choices: [present, absent]
    default: present
  entries:
    description:
      - Many entries, applied in order in one write. A key given twice is refused.
    type: list
    elements: dict
    suboptions:
      key:
        description: The map key.
        type: str
        required: true
      value:
        description: The value for O(entries[].key). Required with O(entries[].state=present).
        type: str
      state:
        description: Whether the entry should exist.
        type: str
        choices: [present, absent]
        default: present
  backup:
    description:
      - Keep a copy of the previous file next to it (timestamped) when the file changes.
    type: bool
    default: false
  validate:
    description:
      - Command run against the new file before it replaces the old one; V(%s) stands for the new file's path.
        A non-zero exit leaves the old file in place and fails.
    type: str
  mode:
    description:
      - Mode of a newly created file. An existing file keeps its mode and owner.
    type: raw
    default: "0644"
  lock_timeout:
    description:
      - Seconds to wait for the lock held by another run.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Route tenant aliya to its gateway
  openclaw.standalone.nginx_map_entry:
    path: /etc/nginx/openclaw/tenants.map
    key: aliya
    value: 127.0.0.1:18801

- name: Route every tenant of the server in one write
  openclaw.standalone.nginx_map_entry:
    path: /etc/nginx/openclaw/tenants.map
    entries:
      - key: aliya
        value: 127.0.0.1:18801
      - key: bob
        state: absent

- name: Remove the route of a removed tenant, keeping a backup of the file
  openclaw.standalone.nginx_map_entry:
    path: /etc/nginx/openclaw/tenants.map
    key: bob
    state: absent
    backup: true
"""

RETURN = r"""
key:
  description: The key.
  returned: with O(key)
  type: str
value:
  description: The key's value after the run (V(null) when absent).
  returned: with O(key)
  type: str
previous_value:
  description: The key's value before the run (V(null) when it had none).
  returned: with O(key)
  type: str
entries:
  description:
    - With O(entries), each key's outcome - C(changed), C(key), C(value), C(previous_value), and with C(--diff)
      its own C(diff) (the key's line before and after).
  returned: with O(entries)
  type: dict
  sample: {aliya: {changed: true, key: aliya, value: 127.0.0.1:18801, previous_value: null}}
backup_file:
  description: Copy of the previous file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/nginx/openclaw/tenants.map.12345.2026-11-23@12:00:00~
"""

import fcntl
import os
import shlex
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.nginx_map import apply, entries, token_problem


class MapLock:
    """Exclusive flock on <path>.lock, waiting at most ``timeout`` seconds."""

    def __init__(self, path, timeout):
        self.path = path + ".lock"
        self.timeout = timeout
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, "a")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.handle.close()
                    raise TimeoutError("another run holds %s; gave up after %ds" % (self.path, self.timeout)) from None
                time.sleep(0.05)

    def __exit__(self, *exc_info):
        # Closing the descriptor releases the lock, also when exit_json raised SystemExit.
        self.handle.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            key=dict(type="str", no_log=False),
            value=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            entries=dict(
                type="list",
                elements="dict",
                options=dict(
                    key=dict(type="str", required=True, no_log=False),
                    value=dict(type="str"),
                    state=dict(type="str", default="present", choices=["present", "absent"]),
                ),
            ),
            backup=dict(type="bool", default=False),
            validate=dict(type="str"),
            mode=dict(type="raw", default="0644"),
            lock_timeout=dict(type="int", default=60),
        ),
        required_one_of=[("key", "entries")],
        mutually_exclusive=[("key", "entries"), ("value", "entries")],
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    batch = params["entries"] is not None
    wanted = params["entries"] if batch else [dict(key=params["key"], value=params["value"], state=params["state"])]
    problems = entry_problems(wanted)
    if problems:
        module.fail_json(msg="invalid input, %s was not touched: %s" % (path, "; ".join(problems)))
    if params["validate"] and "%s" not in params["validate"]:
        module.fail_json(msg="validate must contain %%s for the new file's path: %s" % params["validate"])

    outcomes = {entry["key"]: dict(changed=False, key=entry["key"], value=None, previous_value=None) for entry in wanted}
    result = dict(changed=False, entries=outcomes) if batch else dict(outcomes[params["key"]])
    directory = os.path.dirname(path) or "."
    try:
        if not os.path.isdir(directory):
            if all(entry["state"] == "absent" for entry in wanted):
                module.exit_json(**result)
            if module.check_mode:
                # Nothing to lock or read: the file would be created with these entries.
                converge(module, result, wanted, path, before=None)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        with MapLock(path, params["lock_timeout"]):
            try:
                with open(path, encoding="utf-8") as handle:
                    before = handle.read()
            except FileNotFoundError:
                before = None
            converge(module, result, wanted, path, before)
    except TimeoutError as exc:
        module.fail_json(msg=str(exc), **result)
    except UnicodeDecodeError:
        module.fail_json(msg="%s is not UTF-8 text; it was not changed" % path, **result)
    except OSError as exc:
        module.fail_json(msg="cannot update %s: %s" % (path, exc), **result)


def entry_problems(wanted):
    """Why any of the wanted entries cannot be written, before the file is touched."""
    problems, seen = [], set()
    for entry in wanted:
        problems.append(token_problem("key", entry["key"]))
        if entry["state"] == "present":
            if entry["value"] is None:
                problems.append("state is present but all of the following are missing: value (key %s)" % entry["key"])
            else:
                problems.append(token_problem("value", entry["value"]))
        if entry["key"] in seen:
            problems.append("key %s is given more than once" % entry["key"])
        seen.add(entry["key"])
    return [problem for problem in problems if problem]


def line_of(key, value):
    return "" if value is None else "%s %s;\n" % (key, value)


def converge(module, result, wanted, path, before):
    """Compute the new file from ``before`` (None: no file) and write it; exits the module."""
    params = module.params
    old = entries(before or "")
    after = before or ""
    for entry in wanted:
        after = apply(after, entry["key"], entry["value"], entry["state"])
    new = entries(after)
    if before is None and after == "":
        module.exit_json(**result)  # only removals, and no file to remove them from
    batch = params["entries"] is not None
    for entry in wanted:
        key = entry["key"]
        outcome = result["entries"][key] if batch else result
        outcome.update(previous_value=old.get(key), value=new.get(key), changed=old.get(key) != new.get(key))
        if batch and module._diff and outcome["changed"]:
            header = "%s (%s)" % (path, key)
            outcome["diff"] = dict(before=line_of(key, old.get(key)), after=line_of(key, new.get(key)), before_header=header, after_header=header)
    if after == before:
        result["changed"] = False
        module.exit_json(**result)
    result["changed"] = True
    if module._diff and not batch:
        result["diff"] = dict(before=before or "", after=after, before_header=path if before is not None else "/dev/null", after_header=path)
    if module.check_mode:
        module.exit_json(**result)
    write(module, result, path, before, after)
    module.exit_json(**result)


def write(module, result, path, before, after):
    """Validate ``after`` in a new file next to ``path`` and rename it over ``path``."""
    params = module.params
    handle, candidate = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            output.write(after)
            output.flush()
            os.fsync(output.fileno())
        if before is not None:
            status = os.stat(path)
            os.chmod(candidate, status.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.chown(candidate, status.st_uid, status.st_gid)
        else:
            module.set_mode_if_different(candidate, params["mode"], False)
        if params["validate"]:
            command = params["validate"].replace("%s", shlex.quote(candidate))
            rc, out, err = module.run_command(command, use_unsafe_shell=True)
            if rc != 0:
                module.fail_json(msg="validate failed (rc %d), %s was not changed: %s" % (rc, path, (err or out).strip()), **result)
        if params["backup"] and before is not None:
            result["backup_file"] = module.backup_local(path)
        # rename(2) in the same directory: readers see the old or the new file, never a mix.
        os.rename(candidate, path)
    finally:
        if os.path.exists(candidate):
            os.unlink(candidate)


if __name__ == "__main__":
    main()
