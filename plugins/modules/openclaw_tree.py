#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_tree
short_description: Mirror a directory of the controller onto the server in one module run
version_added: 0.4.0
description:
  - Places the files of a controller directory (O(src)) and single controller files (O(files)) under O(dest)
    on the server, comparing content and mode of every file in one module run, so a tree that is already in
    place costs one module start instead of one remote check per file.
  - Files are written to a new file renamed into place; a link planted where a file or directory should be is
    never followed.
  - The action plugin reads the files on the controller; the module receives their content.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff lists the paths that would be written or removed, not their content.
  idempotent:
    support: full
options:
  src:
    description:
      - Directory on the controller whose files (recursively) are placed under O(dest), each with its own mode.
      - A relative path is looked up like the O(ansible.builtin.copy#module:src) of a role, in its C(files/).
    type: path
  files:
    description:
      - Single files on the controller, placed with mode C(0644) under O(files_dir) by their base name.
    type: list
    elements: path
    default: []
  files_dir:
    description:
      - Directory relative to O(dest) where O(files) go.
    type: str
    default: ""
  dest:
    description:
      - Directory on the server; created (with O(directory_mode)) when missing.
    type: path
    required: true
  directory_mode:
    description:
      - Mode of O(dest) and of the directories created below it.
    type: raw
    default: "0755"
  prune:
    description:
      - Remove files and links under O(dest) that are not among the files placed.
    type: bool
    default: false
  _content:
    description:
      - Internal, set by the module's action plugin to the files it read on the controller (path, content in
        base64, mode). Do not set it.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Place the agent skills on the server, removing the ones no longer shipped
  openclaw.standalone.openclaw_tree:
    src: "{{ playbook_dir }}/skills/"
    dest: /var/lib/openclaw/skills
    prune: true

- name: Build context of an image, with one shared helper beside it
  openclaw.standalone.openclaw_tree:
    src: runtime/
    files:
      - "{{ playbook_dir }}/helpers/leads.py"
    files_dir: openclaw-tools
    dest: /var/lib/openclaw/runtime
"""

RETURN = r"""
written:
  description: Paths relative to O(dest) written (or in check mode that would be); C(.) when O(dest) itself was created.
  returned: always
  type: list
  elements: str
  sample: [whatsapp-lead/SKILL.md]
removed:
  description: Paths relative to O(dest) removed by O(prune).
  returned: always
  type: list
  elements: str
"""

import base64

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.file_tree import WorkspaceError, mirror_tree


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            files=dict(type="list", elements="path", default=[]),
            files_dir=dict(type="str", default=""),
            dest=dict(type="path", required=True),
            directory_mode=dict(type="raw", default="0755"),
            prune=dict(type="bool", default=False),
            # Set by the action plugin: [{path, content (base64), mode}].
            _content=dict(type="list", elements="dict", required=True),
        ),
        supports_check_mode=True,
    )
    try:
        directory_mode = int(str(module.params["directory_mode"]), 8)
    except ValueError:
        module.fail_json(msg="directory_mode must be an octal mode such as 0755, got %r" % module.params["directory_mode"])
    files = {entry["path"]: (base64.b64decode(entry["content"]), int(entry["mode"])) for entry in module.params["_content"]}
    dest = module.params["dest"]
    try:
        written, removed = mirror_tree(dest, files, directory_mode=directory_mode, prune=module.params["prune"], check=module.check_mode)
    except (WorkspaceError, OSError) as exc:
        module.fail_json(msg="cannot mirror the tree into %s: %s" % (dest, exc))
    result = dict(changed=bool(written or removed), written=written, removed=removed)
    if module._diff and result["changed"]:
        result["diff"] = dict(
            before_header=dest,
            after_header=dest,
            before="".join("%s\n" % path for path in removed),
            after="".join("%s\n" % path for path in written),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
