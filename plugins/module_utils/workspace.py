# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""A tenant's workspace on the server: layout, managed files, skills, token and the manifest tying them together.

Layout (the gateway's home is the bind-mounted state directory):

    <clients_dir>/<slug>/            root, 0755, not mounted into the container
        .openclaw-managed.json       manifest: what this collection wrote (root, 0600)
        gateway_token                the gateway token (root, 0600), handed to the gateway as OPENCLAW_GATEWAY_TOKEN
        hooks_token                  the webhook-ingress token (root, 0600), handed to the gateway as OPENCLAW_HOOKS_TOKEN
        .openclaw/                   mounted at /home/openclaw/.openclaw, writable by the tenant's agent
            openclaw.json
            gateway_token            where earlier versions and the old scripts kept the token: adopted once, then never read
            devices/ canvas/ cron/
            workspace/
                skills/<name>/...

The manifest records the sha256 of every file the collection placed. It is
what makes removals safe: only files listed there are ever deleted, so a file
the agent created (even inside skills/) survives every converge.

Everything under .openclaw can be rewritten at any moment by the agent, which
may be hostile: a symbolic link to a host file, a FIFO, a huge file or a
directory where a file belongs. This code runs as root, so it never resolves a
path there. It walks from the tenant directory one component at a time with
directory file descriptors opened O_NOFOLLOW, looks at each entry with
lstat/fstat, reads only regular files it opened O_NOFOLLOW|O_NONBLOCK (a FIFO
cannot block it) up to a size bound, changes owner and mode only through the
descriptor it opened, and replaces whatever is not what it expects by renaming
a fresh file over it within the same directory. Python has no walker that does
this for single paths (os.fwalk walks whole trees), hence the primitives below.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile

STATE_DIR = ".openclaw"
MANIFEST = ".openclaw-managed.json"
TOKEN_FILE = "gateway_token"  # noqa: S105 - a file name, not a secret
# The gateway refuses a hooks token equal to its gateway token, and the two
# grant different things (webhook ingress vs. the whole gateway), so each has
# its own file.
HOOKS_TOKEN_FILE = "hooks_token"  # noqa: S105 - a file name, not a secret
# Secrets the shared services hold for this tenant (see sync_registry_entry):
# the key its upload links are signed with, and its Lead Ads subscribe token.
UPLOAD_SECRET_FILE = "upload_secret"  # noqa: S105 - a file name, not a secret
LEADGEN_VERIFY_TOKEN_FILE = "leadgen_verify_token"  # noqa: S105 - a file name, not a secret
SKILLS_DIR = "workspace/skills"
# Directories OpenClaw expects in its state directory.
STATE_SUBDIRS = ("devices", "canvas", "cron", "workspace", SKILLS_DIR)
# What the agent (or OpenClaw on its behalf) owns: never written or deleted here.
# gateway_token in .openclaw is the old place of the token, read once for adoption only.
AGENT_OWNED = (
    "workspace/MEMORY.md",
    "workspace/memory",
    "workspace/SOUL.md",
    "workspace/USER.md",
    "devices",
    TOKEN_FILE,
)
# OpenClaw writes AGENTS.md itself on first start; ours is placed only when
# there is none or when the one there is still the one we wrote.
# The gateway records its scheduled jobs' state in cron/jobs.json: the jobs we
# seed are placed the same way and become the gateway's once it rewrote them.
AGENT_GENERATED = ("workspace/AGENTS.md", "cron/jobs.json")
# Token entropy: 32 random bytes, hex (the token travels in headers and URLs).
TOKEN_BYTES = 32
# What an adopted token may look like: hex, uuid or base64/url-safe text, nothing else.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")

FILE_MODE = 0o600
EXEC_MODE = 0o700
DIR_MODE = 0o700
ROOT_DIR_MODE = 0o755

# Read bounds: a file larger than this where we expect our own is replaced unread.
MAX_FILE_BYTES = 1 << 20
MAX_TOKEN_BYTES = 4096
MAX_MANIFEST_BYTES = 16 << 20

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class WorkspaceError(Exception):
    """A workspace operation failed; the message names the path."""


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def relative_path_shape_problem(relative, where):
    """Why ``relative`` cannot name a file below a directory (``where``, for the message), or None."""
    if not relative or relative.startswith("/") or "\\" in relative:
        return "%r must be a relative path inside %s" % (relative, where)
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return "%r must not contain empty, '.' or '..' components" % relative
    return None


def relative_path_problem(relative):
    """Why ``relative`` may not be a managed file path inside the state directory, or None."""
    problem = relative_path_shape_problem(relative, ".openclaw")
    if problem:
        return problem
    for owned in AGENT_OWNED:
        if relative == owned or relative.startswith(owned + "/"):
            return "%r belongs to the agent (%s) and is never written by a converge" % (relative, owned)
    if relative == SKILLS_DIR or relative.startswith(SKILLS_DIR + "/"):
        return "%r is inside workspace/skills, which skills_src manages" % relative
    return None


def parse_token(data):
    """The token in ``data`` (bytes of a token file), or None when it is not a plausible token."""
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return text if TOKEN_PATTERN.fullmatch(text) else None


# -- descriptor primitives --------------------------------------------------------


def _kind(mode):
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _lstat(dir_fd, name):
    """lstat of ``name`` in the directory ``dir_fd``; None when absent (or when the directory is only planned)."""
    if dir_fd is None:
        return None
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(dir_fd, name):
    """Descriptor of the directory ``name`` in ``dir_fd``, or None when it is absent or not a directory (a link is never followed)."""
    if dir_fd is None:
        return None
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


class _Found:
    """What one directory entry is, looked at without following it.

    ``info`` is None when nothing is there. ``data`` holds the content of a
    regular file read within the bound; otherwise ``problem`` says what the
    entry is instead. ``fd`` (a regular file's descriptor) stays open until
    close(), so owner and mode can be fixed on the very file that was read.
    """

    def __init__(self, info=None, data=None, problem=None, fd=None):
        self.info = info
        self.data = data
        self.problem = problem
        self.fd = fd

    @property
    def absent(self):
        return self.info is None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_entry(dir_fd, name, limit):
    info = _lstat(dir_fd, name)
    if info is None:
        return _Found()
    if not stat.S_ISREG(info.st_mode):
        # Not even opened: a device or FIFO is never touched.
        return _Found(info, problem=_kind(info.st_mode))
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return _Found()
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EAGAIN, errno.ENOTDIR, errno.EISDIR):
            return _Found(info, problem="swapped while being read")
        raise
    found = _Found(os.fstat(fd), fd=fd)
    try:
        if not stat.S_ISREG(found.info.st_mode):
            found.problem = _kind(found.info.st_mode)
        elif found.info.st_nlink != 1:
            # Another name for the same file: changing it would change that one too.
            found.problem = "a file with %d hard links" % found.info.st_nlink
        elif found.info.st_size > limit:
            found.problem = "a file larger than %d bytes" % limit
        else:
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 16, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                found.problem = "a file larger than %d bytes" % limit
            else:
                found.data = b"".join(chunks)
    except OSError:
        found.close()
        raise
    if found.problem:
        found.close()
    return found


@contextlib.contextmanager
def _entry(dir_fd, name, limit):
    """_read_entry as a context: the file's descriptor is closed on exit."""
    found = _read_entry(dir_fd, name, limit)
    try:
        yield found
    finally:
        found.close()


def _fix_meta(fd, info, mode, owner):
    """fchmod/fchown on an open descriptor, so nothing a path points to can be changed instead."""
    if stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(fd, mode)
    if owner and (info.st_uid, info.st_gid) != owner:
        os.fchown(fd, *owner)


def _meta_differs(info, mode, owner):
    return stat.S_IMODE(info.st_mode) != mode or bool(owner and (info.st_uid, info.st_gid) != owner)


def _write_atomic(dir_fd, name, data, mode, owner, label):
    """A new file with ``data`` renamed over ``name`` in ``dir_fd`` (replacing a link, FIFO or file there; a directory is removed first)."""
    if dir_fd is None:
        raise WorkspaceError("cannot write %s: its directory does not exist" % label)
    # mkstemp has no dir_fd; O_EXCL|O_NOFOLLOW make a planted name fail instead of being opened.
    temporary = ".%s.%s.tmp" % (name[:200], secrets.token_hex(6))
    try:
        fd = os.open(temporary, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            if owner:
                os.fchown(fd, *owner)
            os.fsync(fd)
        finally:
            os.close(fd)
        existing = _lstat(dir_fd, name)
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            # rmtree with dir_fd works on descriptors and never follows a link inside the tree.
            shutil.rmtree(name, dir_fd=dir_fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise WorkspaceError("cannot write %s: %s" % (label, exc.strerror or exc)) from exc


class Workspace:
    """One tenant's directories and files. ``check`` predicts without writing."""

    def __init__(self, clients_dir, slug, uid, gid, check):
        self.clients_dir = clients_dir
        self.slug = slug
        self.root = os.path.join(clients_dir, slug)
        self.state = os.path.join(self.root, STATE_DIR)
        self.manifest_path = os.path.join(self.root, MANIFEST)
        self.token_path = os.path.join(self.root, TOKEN_FILE)
        self.hooks_token_path = os.path.join(self.root, HOOKS_TOKEN_FILE)
        self.uid = uid
        self.gid = gid
        self.check = check
        self.changes = []
        self.diffs = []
        self.token_adopted = False
        self._manifest = None

    # -- descriptors ----------------------------------------------------------

    def _open_clients(self, stack):
        # clients_dir is the administrator's path (root-owned, outside every mount): opened as configured.
        try:
            fd = os.open(self.clients_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WorkspaceError("cannot open clients_dir %s: %s" % (self.clients_dir, exc.strerror)) from exc
        stack.callback(os.close, fd)
        return fd

    def _keep(self, stack, fd):
        if fd is not None:
            stack.callback(os.close, fd)
        return fd

    def _open_root(self, stack):
        """The tenant directory, or None when it does not exist (yet); anything else there is refused."""
        clients = self._open_clients(stack)
        if _lstat(clients, self.slug) is None:
            return None
        fd = _open_dir(clients, self.slug)
        if fd is None:
            raise WorkspaceError("%s is not a directory; refusing to touch it" % self.root)
        return self._keep(stack, fd)

    def _open_state(self, stack):
        return self._keep(stack, _open_dir(self._open_root(stack), STATE_DIR))

    def _open_parent(self, stack, relative, create):
        """(descriptor, name) of .openclaw/<relative>'s directory and last component.

        With ``create`` every directory on the way is made or replaced when it
        is not one (None in check mode for what does not exist yet); without,
        the descriptor is None as soon as a component is missing or not a directory.
        """
        parts = relative.split("/")
        fd = self._open_state(stack)
        for depth, part in enumerate(parts[:-1]):
            if create:
                label = os.path.join(self.state, *parts[: depth + 1])
                fd = self._keep(stack, self._ensure_dir(fd, part, label, DIR_MODE, self._owner(), "replace"))
            else:
                fd = self._keep(stack, _open_dir(fd, part))
            if fd is None and not create:
                break
        return fd, parts[-1]

    # -- manifest ---------------------------------------------------------

    @property
    def manifest(self):
        if self._manifest is None:
            with contextlib.ExitStack() as stack, _entry(self._open_root(stack), MANIFEST, MAX_MANIFEST_BYTES) as found:
                if found.absent:
                    self._manifest = dict(files={}, skills={})
                    return self._manifest
                if found.problem:
                    raise WorkspaceError("the manifest %s is %s; refusing to use it" % (self.manifest_path, found.problem))
                try:
                    loaded = json.loads(found.data.decode("utf-8"))
                    self._manifest = dict(files=dict(loaded.get("files", {})), skills=dict(loaded.get("skills", {})))
                except (ValueError, AttributeError, TypeError) as exc:
                    raise WorkspaceError("cannot read the manifest %s: %s" % (self.manifest_path, exc)) from exc
        return self._manifest

    def save_manifest(self, before):
        if self.check or self.manifest == before:
            return
        data = json.dumps(self.manifest, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        with contextlib.ExitStack() as stack:
            root = self._open_root(stack)
            if root is None:
                raise WorkspaceError("%s does not exist" % self.root)
            _write_atomic(root, MANIFEST, data, FILE_MODE, self._root_owner(), self.manifest_path)

    # -- primitives ---------------------------------------------------------

    def _owner(self):
        return (self.uid, self.gid) if os.geteuid() == 0 else None

    @staticmethod
    def _root_owner():
        return (0, 0) if os.geteuid() == 0 else None

    def _ensure_dir(self, parent_fd, name, label, mode, owner, otherwise):
        """Descriptor of the directory ``name`` in ``parent_fd``, made when absent, owner/mode fixed through it.

        ``otherwise`` says what happens when something else is there:
        V(replace) removes it (a link is unlinked, never followed) and makes
        the directory, V(refuse) fails, V(leave) keeps it and returns None.
        In check mode a directory still to be made returns None.
        """
        info = _lstat(parent_fd, name)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            if otherwise == "leave":
                return None
            if otherwise == "refuse":
                raise WorkspaceError("%s is %s, not a directory; refusing to touch it" % (label, _kind(info.st_mode)))
            self.changes.append("replace %s (%s) with a directory" % (label, _kind(info.st_mode)))
            if self.check:
                return None
            try:
                os.unlink(name, dir_fd=parent_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise WorkspaceError("cannot remove %s: %s" % (label, exc.strerror)) from exc
            info = None
        if info is None:
            self.changes.append("create directory %s" % label)
            if self.check:
                return None
            if parent_fd is None:
                raise WorkspaceError("cannot create %s: its parent does not exist" % label)
            try:
                os.mkdir(name, mode, dir_fd=parent_fd)
            except OSError as exc:
                raise WorkspaceError("cannot create %s: %s" % (label, exc.strerror)) from exc
        fd = _open_dir(parent_fd, name)
        if fd is None:
            raise WorkspaceError("%s was replaced while being converged; refusing to touch it" % label)
        try:
            current = os.fstat(fd)
            if info is None:
                _fix_meta(fd, current, mode, owner)
            elif _meta_differs(current, mode, owner):
                self.changes.append("fix owner/mode of %s" % label)
                if not self.check:
                    _fix_meta(fd, current, mode, owner)
        except OSError as exc:
            os.close(fd)
            raise WorkspaceError("cannot set owner/mode of %s: %s" % (label, exc.strerror)) from exc
        return fd

    def _place_file(self, relative, data, mode, show_content=True):
        """Write ``data`` at .openclaw/<relative> when it differs (content, mode or owner). Returns True when changed."""
        path = os.path.join(self.state, relative)
        owner = self._owner()
        with contextlib.ExitStack() as stack:
            parent, name = self._open_parent(stack, relative, create=True)
            found = stack.enter_context(_entry(parent, name, max(MAX_FILE_BYTES, len(data))))
            if found.data is not None and found.data == data:
                if not _meta_differs(found.info, mode, owner):
                    return False
                self.changes.append("fix owner/mode of %s" % relative)
                if not self.check:
                    try:
                        _fix_meta(found.fd, found.info, mode, owner)
                    except OSError as exc:
                        raise WorkspaceError("cannot set owner/mode of %s: %s" % (path, exc.strerror)) from exc
                return True
            if found.absent:
                self.changes.append("create %s" % relative)
                before = ""
            elif found.problem:
                self.changes.append("replace %s (%s)" % (relative, found.problem))
                before = "(%s)\n" % found.problem
            else:
                self.changes.append("update %s" % relative)
                before = _shown(found.data, show_content)
            self.diffs.append(dict(before_header="/dev/null" if found.absent else path, after_header=path, before=before, after=_shown(data, show_content)))
            if not self.check:
                found.close()
                _write_atomic(parent, name, data, mode, owner, path)
        return True

    def _inspect(self, relative, limit=MAX_FILE_BYTES):
        """(absent, data or None) of .openclaw/<relative>, nothing created; data is None for anything but a regular file within the bound."""
        with contextlib.ExitStack() as stack:
            parent, name = self._open_parent(stack, relative, create=False)
            with _entry(parent, name, limit) as found:
                return found.absent, found.data

    def _remove_ours(self, relative, recorded, prune_to=None):
        """Remove .openclaw/<relative> when it is still the regular file with sha256 ``recorded``; then empty parents below ``prune_to``."""
        path = os.path.join(self.state, relative)
        parts = relative.split("/")
        with contextlib.ExitStack() as stack:
            chain = [self._open_state(stack)]
            for part in parts[:-1]:
                chain.append(self._keep(stack, _open_dir(chain[-1], part)))
            parent = chain[-1]
            # Bounded by the largest file we would ever have compared (skills may be larger than managed files).
            with _entry(parent, parts[-1], MAX_MANIFEST_BYTES) as found:
                if found.data is None or sha256_bytes(found.data) != recorded:
                    return
            self.changes.append("remove %s" % relative)
            self.diffs.append(dict(before_header=path, after_header="/dev/null", before="(file)\n", after=""))
            if self.check:
                return
            try:
                os.unlink(parts[-1], dir_fd=parent)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise WorkspaceError("cannot remove %s: %s" % (path, exc.strerror)) from exc
            if prune_to is None:
                return
            # Empty directories left behind, up to (not including) prune_to; rmdir never follows a link.
            keep = len(prune_to.split("/"))
            for depth in range(len(parts) - 1, keep, -1):
                try:
                    os.rmdir(parts[depth - 1], dir_fd=chain[depth - 1])
                except OSError:
                    return

    # -- the tree ---------------------------------------------------------------

    def ensure_layout(self):
        with contextlib.ExitStack() as stack:
            clients = self._open_clients(stack)
            if clients is None:
                if not self.check:
                    raise WorkspaceError("clients_dir %s does not exist (the server role creates it)" % self.clients_dir)
                # Check mode on a new server: the server play would have created it.
                self.changes.append("create directory %s" % self.clients_dir)
            # The tenant directory holds the token and the manifest, which the agent must not edit:
            # root-owned, 0755, never mounted. It and .openclaw sit in root-owned directories, so
            # the agent cannot have replaced them; something else there is refused, not removed.
            root = self._keep(stack, self._ensure_dir(clients, self.slug, self.root, ROOT_DIR_MODE, self._root_owner(), "refuse"))
            state = self._keep(stack, self._ensure_dir(root, STATE_DIR, self.state, DIR_MODE, self._owner(), "refuse"))
            opened = {"": state}
            for subdir in STATE_SUBDIRS:
                parent, _sep, name = subdir.rpartition("/")
                # devices/ is the agent's: whatever it made of it stays.
                otherwise = "leave" if subdir in AGENT_OWNED else "replace"
                label = os.path.join(self.state, subdir)
                opened[subdir] = self._keep(stack, self._ensure_dir(opened[parent], name, label, DIR_MODE, self._owner(), otherwise))

    def ensure_token(self, rotate):
        """The gateway token: reused when present, adopted once from .openclaw, created once, or rotated."""
        return self._ensure_secret(TOKEN_FILE, "gateway token", rotate, adopt=True)

    def ensure_hooks_token(self, rotate):
        """The webhook-ingress token: reused when present, created once, or rotated with the gateway token."""
        return self._ensure_secret(HOOKS_TOKEN_FILE, "hooks token", rotate, adopt=False)

    def ensure_secret(self, name, label):
        """A secret of the tenant's services (an upload key, a verify token): reused when present, else created once."""
        return self._ensure_secret(name, label, False, adopt=False)

    def _ensure_secret(self, name, label, rotate, adopt):
        path = os.path.join(self.root, name)
        with contextlib.ExitStack() as stack:
            root = self._open_root(stack)
            found = stack.enter_context(_entry(root, name, MAX_TOKEN_BYTES))
            if found.problem:
                raise WorkspaceError("%s is %s; refusing to use it" % (path, found.problem))
            existing = parse_token(found.data) if found.data is not None else None
            if found.data is not None and existing is None:
                raise WorkspaceError("%s does not hold a %s; remove it to have a new one made" % (path, label))
            if existing and not rotate:
                if _meta_differs(found.info, FILE_MODE, self._root_owner()):
                    self.changes.append("fix owner/mode of %s" % path)
                    if not self.check:
                        _fix_meta(found.fd, found.info, FILE_MODE, self._root_owner())
                return existing, False
            if adopt and existing is None and not rotate:
                adopted = self._legacy_token(stack, root)
                if adopted:
                    self.token_adopted = True
                    self.changes.append("adopt the %s of %s/%s" % (label, STATE_DIR, name))
                    if not self.check:
                        _write_atomic(root, name, (adopted + "\n").encode("ascii"), FILE_MODE, self._root_owner(), path)
                    return adopted, False
            token = secrets.token_hex(TOKEN_BYTES)
            self.changes.append("%s %s" % ("rotate" if existing else "create", label))
            if not self.check:
                found.close()
                _write_atomic(root, name, (token + "\n").encode("ascii"), FILE_MODE, self._root_owner(), path)
            return token, True

    def _legacy_token(self, stack, root):
        """The token earlier versions kept in .openclaw/gateway_token, when that is a plain file holding one; else None.

        A link, FIFO, device, large file or anything not shaped like a token is
        ignored (never followed or read beyond the bound): a new token is made.
        """
        with _entry(self._keep(stack, _open_dir(root, STATE_DIR)), TOKEN_FILE, MAX_TOKEN_BYTES) as found:
            return parse_token(found.data) if found.data is not None else None

    def sync_files(self, files, secret_paths):
        """Place every managed file; agent-generated files only when absent or still ours."""
        managed = self.manifest["files"]
        for relative in sorted(files):
            data = files[relative].encode("utf-8")
            if relative in AGENT_GENERATED:
                absent, current = self._inspect(relative)
                recorded = managed.get(relative)
                if not absent and (recorded is None or current is None or sha256_bytes(current) != recorded):
                    # OpenClaw (or the agent) wrote this one - or put something else there; it is theirs now.
                    managed.pop(relative, None)
                    continue
            self._place_file(relative, data, FILE_MODE, show_content=relative not in secret_paths)
            managed[relative] = sha256_bytes(data)
        # Files we placed before and that are no longer wanted.
        for relative in sorted(set(managed) - set(files)):
            self._remove_ours(relative, managed.pop(relative))

    def sync_skills(self, source):
        """Mirror the skills under ``source`` into workspace/skills as copies; remove only what we placed."""
        if not os.path.isdir(source):
            if self.check:
                # Check mode on a new server: the server play would have placed the skills.
                self.changes.append("copy skills from %s" % source)
                return
            raise WorkspaceError("skills_src %s is not a directory on the server" % source)
        # The source is the server's own copy (root-owned, never mounted): a plain walk is safe there.
        wanted = {}
        for directory, subdirectories, filenames in os.walk(source):
            subdirectories.sort()
            for filename in filenames:
                path = os.path.join(directory, filename)
                if os.path.islink(path):
                    continue  # copies only: a link could point outside the workspace
                wanted[os.path.relpath(path, source)] = path
        recorded = self.manifest["skills"]
        for relative in sorted(wanted):
            with open(wanted[relative], "rb") as handle:
                data = handle.read()
            mode = EXEC_MODE if os.stat(wanted[relative]).st_mode & stat.S_IXUSR else FILE_MODE
            self._place_file(SKILLS_DIR + "/" + relative, data, mode)
            recorded[relative] = sha256_bytes(data)
        for relative in sorted(set(recorded) - set(wanted)):
            # Removed from the source: delete our copy (a file the agent changed since is theirs, kept).
            self._remove_ours(SKILLS_DIR + "/" + relative, recorded.pop(relative), prune_to=SKILLS_DIR)


def _shown(data, show_content):
    if data is None:
        return ""
    if not show_content:
        return "(content hidden, sha256 %s)\n" % sha256_bytes(data)[:16]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "(binary, sha256 %s)\n" % sha256_bytes(data)[:16]


# -- the shared services' tenant registry ----------------------------------------------

REGISTRY_MODE = 0o640
MAX_REGISTRY_BYTES = 64 << 10
# Registry keys shown in a diff; every other value is a secret and shown as a fingerprint.
REGISTRY_SHOWN_KEYS = ("slug", "database", "db_user", "gateway_url", "default_country_code")


def _registry_text(entry):
    shown = {}
    for key, value in entry.items():
        shown[key] = value if key in REGISTRY_SHOWN_KEYS else "(secret, sha256 %s)" % sha256_bytes(str(value).encode("utf-8"))[:16]
    return json.dumps(shown, indent=1, sort_keys=True) + "\n"


def _open_registry(stack, directory, check):
    """The registry directory (the server role's, root-owned): None when absent, which only check mode accepts."""
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except FileNotFoundError:
        if check:
            return None
        raise WorkspaceError("the service registry %s does not exist (the server role creates it)" % directory) from None
    except OSError as exc:
        raise WorkspaceError("cannot open the service registry %s: %s" % (directory, exc.strerror)) from exc
    stack.callback(os.close, fd)
    return fd


def sync_registry_entry(directory, slug, entry, group, check):
    """Place ``<directory>/<slug>.json``, readable by the services' ``group`` only; (change or None, diff or None).

    A service reads the tenant's database credentials and tokens there. Written
    atomically, so a service never reads half a file; in a diff secrets show as
    fingerprints.
    """
    path = os.path.join(directory, slug + ".json")
    data = (json.dumps(entry, indent=1, sort_keys=True) + "\n").encode("utf-8")
    owner = (0, group) if os.geteuid() == 0 else None
    with contextlib.ExitStack() as stack:
        parent = _open_registry(stack, directory, check)
        found = stack.enter_context(_entry(parent, slug + ".json", MAX_REGISTRY_BYTES))
        if found.data == data:
            if not _meta_differs(found.info, REGISTRY_MODE, owner):
                return None, None
            if not check:
                _fix_meta(found.fd, found.info, REGISTRY_MODE, owner)
            return "fix owner/mode of %s" % path, None
        before = ""
        if found.problem:
            before = "(%s)\n" % found.problem
        elif found.data is not None:
            try:
                before = _registry_text(json.loads(found.data.decode("utf-8")))
            except (ValueError, AttributeError):
                before = "(unreadable)\n"
        diff = dict(before_header="/dev/null" if found.absent else path, after_header=path, before=before, after=_registry_text(entry))
        if not check:
            found.close()
            _write_atomic(parent, slug + ".json", data, REGISTRY_MODE, owner, path)
        return ("create %s" if found.absent else "update %s") % path, diff


def remove_registry_entry(directory, slug, check):
    """Remove ``<directory>/<slug>.json`` (whatever is there under that name); the change or None."""
    path = os.path.join(directory, slug + ".json")
    with contextlib.ExitStack() as stack:
        try:
            parent = os.open(directory, _DIR_FLAGS)
        except FileNotFoundError:
            return None
        stack.callback(os.close, parent)
        if _lstat(parent, slug + ".json") is None:
            return None
        if not check:
            try:
                os.unlink(slug + ".json", dir_fd=parent)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise WorkspaceError("cannot remove %s: %s" % (path, exc.strerror)) from exc
        return "remove %s" % path


_ARCHIVE_TYPES = {stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFIFO: tarfile.FIFOTYPE, stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE}


def _member(name, info, kind):
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode = stat.S_IMODE(info.st_mode)
    member.uid, member.gid, member.mtime = info.st_uid, info.st_gid, int(info.st_mtime)
    return member


def _archive_tree(archive, dir_fd, arcname):
    """Add everything below the directory open as ``dir_fd``.

    tarfile.add works on paths and opens regular files by name; this walks
    descriptors instead (os.fwalk would still hand back names to open), so a
    link is recorded as a link and only regular files and directories opened
    O_NOFOLLOW are ever read.
    """
    for name in sorted(os.listdir(dir_fd)):
        path = "%s/%s" % (arcname, name)
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            with os.fdopen(os.open(name, _READ_FLAGS, dir_fd=dir_fd), "rb") as handle:
                member = archive.gettarinfo(arcname=path, fileobj=handle)
                archive.addfile(member, handle if member.isreg() else None)
        elif stat.S_ISDIR(info.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                archive.addfile(_member(path, os.fstat(fd), tarfile.DIRTYPE))
                _archive_tree(archive, fd, path)
            finally:
                os.close(fd)
        elif stat.S_IFMT(info.st_mode) in _ARCHIVE_TYPES:
            member = _member(path, info, _ARCHIVE_TYPES[stat.S_IFMT(info.st_mode)])
            if member.issym():
                member.linkname = os.readlink(name, dir_fd=dir_fd)
            if member.ischr() or member.isblk():
                member.devmajor, member.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            archive.addfile(member)
        # A socket is left out, as tarfile itself does.


def archive_and_remove(root, backup_dir, slug):
    """tar.gz of the whole tenant directory into backup_dir, then remove it. Returns the archive path.

    Links, FIFOs and devices the agent left are recorded as what they are, never
    followed or opened; rmtree works on descriptors and never follows a link either.
    """
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    final = os.path.join(backup_dir, "%s-workspace-%s.tar.gz" % (slug, stamp))
    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise WorkspaceError("%s is not a directory (%s); nothing was archived or removed" % (root, exc.strerror)) from exc
    handle, partial = tempfile.mkstemp(prefix=".%s-" % slug, suffix=".tar.gz.partial", dir=backup_dir)
    os.close(handle)
    try:
        with tarfile.open(partial, "w:gz") as archive:
            archive.addfile(_member(slug, os.fstat(root_fd), tarfile.DIRTYPE))
            _archive_tree(archive, root_fd, slug)
        os.chmod(partial, 0o600)
        os.rename(partial, final)
    except (OSError, tarfile.TarError, RecursionError) as exc:
        if os.path.exists(partial):
            os.unlink(partial)
        raise WorkspaceError("cannot archive %s into %s, nothing was removed: %s" % (root, backup_dir, exc)) from exc
    finally:
        os.close(root_fd)
    shutil.rmtree(root)
    return final
