# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mirror a set of files, given with their content, into a root-owned directory of the server.

``ansible.builtin.copy`` of a directory runs one remote stat per file before
it knows nothing changed; here the whole tree is compared by content in one
module run. Files are written through the workspace's descriptor-based writer
(a new file renamed into place, never following a link).
"""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.openclaw.standalone.plugins.module_utils.workspace import (
    _DIR_FLAGS,
    _READ_FLAGS,
    WorkspaceError,
    _lstat,
    _write_atomic,
    relative_path_shape_problem,
)


def _current(dir_fd, name):
    """(content, mode) of the regular file ``name`` in ``dir_fd``; (None, None) for anything else or nothing."""
    info = _lstat(dir_fd, name)
    if info is None or not stat.S_ISREG(info.st_mode):
        return None, None
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return None, None
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)


def _directory(parent_fd, name, mode, check):
    """Descriptor of the directory ``name`` in ``parent_fd``, created when missing; None in check mode for a new one."""
    if parent_fd is None:
        return None, True
    info = _lstat(parent_fd, name)
    created = False
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise WorkspaceError("%s exists and is not a directory" % name)
    if info is None:
        if check:
            return None, True
        os.mkdir(name, mode, dir_fd=parent_fd)
        created = True
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    if stat.S_IMODE(os.fstat(fd).st_mode) != mode and not check:
        os.fchmod(fd, mode)
        created = True
    return fd, created


def mirror_tree(dest, files, directory_mode=0o755, prune=False, check=False):
    """Make ``dest`` hold ``files`` ({relative path: (bytes, mode)}); returns (written, removed) relative paths.

    With ``prune`` regular files and links under ``dest`` that are not in
    ``files`` are removed (directories are left). ``check`` predicts only.
    """
    for relative in files:
        problem = relative_path_shape_problem(relative, "the tree")
        if problem:
            raise WorkspaceError("file of the tree: " + problem)
    written, removed, opened = [], [], {}
    parent, leaf = os.path.split(os.path.normpath(dest))
    try:
        parent = parent or "/"
        if not os.path.isdir(parent):
            if check:
                # Nothing there yet (a fresh server in check mode): all of it would be written.
                return [".", *sorted(files)], []
            os.makedirs(parent, directory_mode)
        root_parent = os.open(parent, _DIR_FLAGS)
        try:
            opened[""], created = _directory(root_parent, leaf, directory_mode, check)
        finally:
            os.close(root_parent)
        if created:
            written.append(".")

        def directory_of(relative):
            head, _tail = os.path.split(relative)
            if head in opened:
                return opened[head]
            outer = directory_of(head)
            opened[head], _created = _directory(outer, os.path.basename(head), directory_mode, check)
            return opened[head]

        for relative in sorted(files):
            data, mode = files[relative]
            dir_fd = directory_of(relative)
            name = os.path.basename(relative)
            content, current_mode = _current(dir_fd, name)
            if content == data and current_mode == mode:
                continue
            written.append(relative)
            if not check:
                _write_atomic(dir_fd, name, data, mode, None, os.path.join(dest, relative))
        if prune and opened[""] is not None:
            for top, _dirs, names in os.walk(dest):
                for name in names:
                    relative = os.path.relpath(os.path.join(top, name), dest)
                    if relative not in files:
                        removed.append(relative)
                        if not check:
                            os.unlink(os.path.join(top, name))
    finally:
        for fd in opened.values():
            if fd is not None:
                os.close(fd)
    return written, sorted(removed)


__all__ = ["WorkspaceError", "mirror_tree"]
