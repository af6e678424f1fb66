# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""A tenant's workspace on the server: layout, managed files, skills, token and the manifest tying them together.

Layout (the gateway's home is the bind-mounted state directory):

    <clients_dir>/<slug>/
        .openclaw-managed.json   manifest: what this collection wrote (root, 0600, not visible to the agent)
        .openclaw/               mounted at /home/openclaw/.openclaw
            openclaw.json
            gateway_token
            devices/ canvas/ cron/
            workspace/
                skills/<name>/...

The manifest records the sha256 of every file the collection placed. It is
what makes removals safe: only files listed there are ever deleted, so a file
the agent created (even inside skills/) survives every converge.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import shutil
import stat
import tarfile
import tempfile

STATE_DIR = ".openclaw"
MANIFEST = ".openclaw-managed.json"
TOKEN_FILE = "gateway_token"  # noqa: S105 - a file name, not a secret
SKILLS_DIR = "workspace/skills"
# Directories OpenClaw expects in its state directory.
STATE_SUBDIRS = ("devices", "canvas", "cron", "workspace", SKILLS_DIR)
# What the agent (or OpenClaw on its behalf) owns: never written or deleted here.
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
AGENT_GENERATED = ("workspace/AGENTS.md",)
# Token entropy: 32 random bytes, hex (the token travels in headers and URLs).
TOKEN_BYTES = 32

FILE_MODE = 0o600
EXEC_MODE = 0o700
DIR_MODE = 0o700


class WorkspaceError(Exception):
    """A workspace operation failed; the message names the path."""


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def relative_path_problem(relative):
    """Why ``relative`` may not be a managed file path inside the state directory, or None."""
    if not relative or relative.startswith("/") or "\\" in relative:
        return "%r must be a relative path inside .openclaw" % relative
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "%r must not contain empty, '.' or '..' components" % relative
    for owned in AGENT_OWNED:
        if relative == owned or relative.startswith(owned + "/"):
            return "%r belongs to the agent (%s) and is never written by a converge" % (relative, owned)
    if relative == SKILLS_DIR or relative.startswith(SKILLS_DIR + "/"):
        return "%r is inside workspace/skills, which skills_src manages" % relative
    return None


class Workspace:
    """One tenant's directories and files. ``check`` predicts without writing."""

    def __init__(self, clients_dir, slug, uid, gid, check):
        self.root = os.path.join(clients_dir, slug)
        self.state = os.path.join(self.root, STATE_DIR)
        self.manifest_path = os.path.join(self.root, MANIFEST)
        self.uid = uid
        self.gid = gid
        self.check = check
        self.changes = []
        self.diffs = []
        self._manifest = None

    # -- manifest ---------------------------------------------------------

    @property
    def manifest(self):
        if self._manifest is None:
            try:
                with open(self.manifest_path, encoding="utf-8") as handle:
                    loaded = json.load(handle)
                self._manifest = dict(files=dict(loaded.get("files", {})), skills=dict(loaded.get("skills", {})))
            except FileNotFoundError:
                self._manifest = dict(files={}, skills={})
            except (OSError, ValueError) as exc:
                raise WorkspaceError("cannot read the manifest %s: %s" % (self.manifest_path, exc)) from exc
        return self._manifest

    def save_manifest(self, before):
        if self.check or self.manifest == before:
            return
        data = json.dumps(self.manifest, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        self._write_atomic(self.manifest_path, data, FILE_MODE, owner=(0, 0) if os.geteuid() == 0 else None)

    # -- primitives ---------------------------------------------------------

    def _owner(self):
        return (self.uid, self.gid) if os.geteuid() == 0 else None

    def _write_atomic(self, path, data, mode, owner):
        directory = os.path.dirname(path)
        handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
        try:
            with os.fdopen(handle, "wb") as output:
                output.write(data)
                output.flush()
                os.fsync(output.fileno())
            os.chmod(temporary, mode)
            if owner:
                os.chown(temporary, *owner)
            os.rename(temporary, path)
        except OSError as exc:
            raise WorkspaceError("cannot write %s: %s" % (path, exc)) from exc
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def _ensure_dir(self, path, mode=DIR_MODE, owner="tenant"):
        wanted_owner = self._owner() if owner == "tenant" else ((0, 0) if os.geteuid() == 0 else None)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            self.changes.append("create directory %s" % path)
            if not self.check:
                try:
                    os.mkdir(path, mode)
                    os.chmod(path, mode)
                    if wanted_owner:
                        os.chown(path, *wanted_owner)
                except OSError as exc:
                    raise WorkspaceError("cannot create %s: %s" % (path, exc)) from exc
            return
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise WorkspaceError("%s exists and is not a directory; refusing to touch it" % path)
        if stat.S_IMODE(info.st_mode) != mode or (wanted_owner and (info.st_uid, info.st_gid) != wanted_owner):
            self.changes.append("fix owner/mode of %s" % path)
            if not self.check:
                try:
                    os.chmod(path, mode)
                    if wanted_owner:
                        os.chown(path, *wanted_owner)
                except OSError as exc:
                    raise WorkspaceError("cannot set owner/mode of %s: %s" % (path, exc)) from exc

    def _place_file(self, relative, data, mode, show_content=True):
        """Write ``data`` at .openclaw/<relative> when it differs (content, mode or owner). Returns True when changed."""
        path = os.path.join(self.state, relative)
        self._ensure_parents(relative)
        before = None
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None:
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
                raise WorkspaceError("%s exists and is not a regular file; refusing to replace it" % path)
            with open(path, "rb") as handle:
                before = handle.read()
        owner = self._owner()
        same_content = before == data
        same_meta = info is not None and stat.S_IMODE(info.st_mode) == mode and (not owner or (info.st_uid, info.st_gid) == owner)
        if same_content and same_meta:
            return False
        self.changes.append(("update %s" if before is not None else "create %s") % relative if not same_content else "fix owner/mode of %s" % relative)
        if not same_content:
            self.diffs.append(
                dict(
                    before_header=path if before is not None else "/dev/null",
                    after_header=path,
                    before=_shown(before, show_content),
                    after=_shown(data, show_content),
                )
            )
        if not self.check:
            if same_content:
                try:
                    os.chmod(path, mode)
                    if owner:
                        os.chown(path, *owner)
                except OSError as exc:
                    raise WorkspaceError("cannot set owner/mode of %s: %s" % (path, exc)) from exc
            else:
                self._write_atomic(path, data, mode, owner)
        return True

    def _ensure_parents(self, relative):
        parts = relative.split("/")[:-1]
        current = self.state
        for part in parts:
            current = os.path.join(current, part)
            self._ensure_dir(current)

    def _remove_file(self, relative):
        path = os.path.join(self.state, relative)
        if not os.path.lexists(path):
            return
        self.changes.append("remove %s" % relative)
        self.diffs.append(dict(before_header=path, after_header="/dev/null", before="(file)\n", after=""))
        if not self.check:
            try:
                os.unlink(path)
            except OSError as exc:
                raise WorkspaceError("cannot remove %s: %s" % (path, exc)) from exc
            _prune_empty_dirs(os.path.dirname(path), stop=os.path.join(self.state, SKILLS_DIR))

    # -- the tree ---------------------------------------------------------------

    def ensure_layout(self, clients_dir):
        if not os.path.isdir(clients_dir):
            if not self.check:
                raise WorkspaceError("clients_dir %s does not exist (the server role creates it)" % clients_dir)
            # Check mode on a new server: the server play would have created it.
            self.changes.append("create directory %s" % clients_dir)
        # The tenant directory holds the manifest, which the agent must not edit: root-owned, 0755.
        self._ensure_dir(self.root, mode=0o755, owner="root")
        self._ensure_dir(self.state)
        for subdir in STATE_SUBDIRS:
            self._ensure_dir(os.path.join(self.state, subdir))

    def ensure_token(self, rotate):
        """The gateway token: reused when present (also one written by other tools), created once, or rotated."""
        path = os.path.join(self.state, TOKEN_FILE)
        existing = None
        try:
            with open(path, encoding="utf-8") as handle:
                existing = handle.read().strip() or None
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WorkspaceError("cannot read %s: %s" % (path, exc)) from exc
        if existing and not rotate:
            # Tighten a token file left readable by other tools.
            info = os.stat(path)
            owner = self._owner()
            if stat.S_IMODE(info.st_mode) != FILE_MODE or (owner and (info.st_uid, info.st_gid) != owner):
                self.changes.append("fix owner/mode of %s" % TOKEN_FILE)
                if not self.check:
                    os.chmod(path, FILE_MODE)
                    if owner:
                        os.chown(path, *owner)
            return existing, False
        token = secrets.token_hex(TOKEN_BYTES)
        self.changes.append("rotate gateway token" if existing else "create gateway token")
        if not self.check:
            self._write_atomic(path, (token + "\n").encode("ascii"), FILE_MODE, self._owner())
        return token, True

    def sync_files(self, files, secret_paths):
        """Place every managed file; agent-generated files only when absent or still ours."""
        managed = self.manifest["files"]
        for relative in sorted(files):
            data = files[relative].encode("utf-8")
            path = os.path.join(self.state, relative)
            if relative in AGENT_GENERATED and os.path.lexists(path):
                recorded = managed.get(relative)
                if recorded is None or not os.path.isfile(path) or sha256_file(path) != recorded:
                    # OpenClaw (or the agent) wrote this one; it is theirs now.
                    managed.pop(relative, None)
                    continue
            self._place_file(relative, data, FILE_MODE, show_content=relative not in secret_paths)
            managed[relative] = sha256_bytes(data)
        # Files we placed before and that are no longer wanted.
        for relative in sorted(set(managed) - set(files)):
            path = os.path.join(self.state, relative)
            if os.path.isfile(path) and sha256_file(path) == managed[relative]:
                self._remove_file(relative)
            managed.pop(relative)

    def sync_skills(self, source):
        """Mirror the skills under ``source`` into workspace/skills as copies; remove only what we placed."""
        if not os.path.isdir(source):
            if self.check:
                # Check mode on a new server: the server play would have placed the skills.
                self.changes.append("copy skills from %s" % source)
                return
            raise WorkspaceError("skills_src %s is not a directory on the server" % source)
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
            path = os.path.join(self.state, SKILLS_DIR, relative)
            if os.path.isfile(path) and sha256_file(path) == recorded[relative]:
                self._remove_file(SKILLS_DIR + "/" + relative)
            recorded.pop(relative)


def _shown(data, show_content):
    if data is None:
        return ""
    if not show_content:
        return "(content hidden, sha256 %s)\n" % sha256_bytes(data)[:16]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "(binary, sha256 %s)\n" % sha256_bytes(data)[:16]


def _prune_empty_dirs(directory, stop):
    while directory.startswith(stop + "/"):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def archive_and_remove(root, backup_dir, slug):
    """tar.gz of the whole tenant directory into backup_dir, then remove it. Returns the archive path."""
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    final = os.path.join(backup_dir, "%s-workspace-%s.tar.gz" % (slug, stamp))
    handle, partial = tempfile.mkstemp(prefix=".%s-" % slug, suffix=".tar.gz.partial", dir=backup_dir)
    os.close(handle)
    try:
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(root, arcname=slug)
        os.chmod(partial, 0o600)
        os.rename(partial, final)
    except (OSError, tarfile.TarError) as exc:
        if os.path.exists(partial):
            os.unlink(partial)
        raise WorkspaceError("cannot archive %s into %s, nothing was removed: %s" % (root, backup_dir, exc)) from exc
    shutil.rmtree(root)
    return final
