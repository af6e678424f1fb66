# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads a directory and single files on the controller and hands their content to the module in one run."""

from __future__ import annotations

import base64
import os
import stat

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Module arguments travel in one payload; this bounds it far above what the
# collection ships (skills and build contexts are a few hundred kilobytes).
MAX_TREE_BYTES = 32 * 1024 * 1024


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset()  # every argument is validated by the module itself

    def _controller_file(self, path, relative):
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise AnsibleActionFail("%s is not a regular file on the controller (links are not followed)" % path)
        with open(path, "rb") as handle:
            return dict(path=relative, content=base64.b64encode(handle.read()).decode("ascii"), mode=stat.S_IMODE(info.st_mode))

    def _content(self, args):
        content = []
        if args.get("src"):
            root = self._find_needle("files", args["src"])
            if not os.path.isdir(root):
                raise AnsibleActionFail("src %s is not a directory on the controller" % root)
            for top, dirs, names in os.walk(root):
                dirs.sort()
                for name in sorted(names):
                    path = os.path.join(top, name)
                    content.append(self._controller_file(path, os.path.relpath(path, root).replace(os.sep, "/")))
        files_dir = (args.get("files_dir") or "").strip("/")
        for path in args.get("files") or []:
            placed = "/".join(part for part in (files_dir, os.path.basename(path)) if part)
            single = self._controller_file(self._loader.path_dwim(path), placed)
            single["mode"] = 0o644
            content.append(single)
        if sum(len(item["content"]) for item in content) > MAX_TREE_BYTES:
            raise AnsibleActionFail("the tree is larger than %d bytes; openclaw_tree is for small trees" % MAX_TREE_BYTES)
        return content

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if "_content" in args:
            raise AnsibleActionFail("_content is set by the action plugin and cannot be passed")
        args["_content"] = self._content(args)
        result.update(self._execute_module(module_name="openclaw.standalone.openclaw_tree", module_args=args, task_vars=task_vars))
        return result
