"""The tenant workspace: managed files, the manifest, skills, the token, check mode, purge - and a hostile agent.

The agent can rewrite anything under .openclaw between two converges. The
attack tests plant, at every path a converge touches, a link to a root-only
file or directory outside the tenant's tree, a FIFO, a directory where a file
belongs, a 2 MiB file; the converge must neither read nor change what a link
points to, must not hang, and must put the right regular file or directory
back (or leave the plant alone where the path is the agent's). Each has a
positive control: a plain file at the same path is read, adopted or updated.
Run as root, the owner changes are real.
"""

from __future__ import annotations

import os
import signal
import stat
import tarfile

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import workspace as w

AS_ROOT = os.geteuid() == 0
UID, GID = (1001, 1001) if AS_ROOT else (os.getuid(), os.getgid())
# Shaped like a token, so an adoption that followed a link would accept it.
SECRET = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"
FILES = {
    "openclaw.json": '{"gateway": {}}\n',
    "workspace/TOOLS.md": "tools\n",
    "cron/jobs.json": "[]\n",
    "workspace/AGENTS.md": "ours\n",
    "hooks/openclaw-lead/handler.js": "export default () => {};\n",
}
SKILL = "workspace/skills/fb-report/SKILL.md"
SKILL_TEXT = "report\n"
BIG = 2 << 20


@pytest.fixture(autouse=True)
def no_hang():
    """A converge that opens a planted FIFO blocks forever: fail the test instead."""

    def expired(_signum, _frame):
        raise TimeoutError("the converge hung")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def clients(tmp_path):
    directory = tmp_path / "clients"
    directory.mkdir()
    return directory


@pytest.fixture
def skills(tmp_path):
    source = tmp_path / "skills"
    (source / "fb-report").mkdir(parents=True)
    (source / "fb-report" / "SKILL.md").write_text(SKILL_TEXT)
    return source


@pytest.fixture
def host(tmp_path):
    """Root-only things outside every tenant's tree: a secret file and a secrets directory."""
    directory = tmp_path / "host-secrets"
    directory.mkdir(mode=0o700)
    secret = directory / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    (directory / "SKILL.md").write_text(SKILL_TEXT)  # same content as our copy: a removal must still not touch it
    return directory


def converge(clients, files=None, skills=None, check=False, rotate=False):
    space = w.Workspace(str(clients), "aliya", UID, GID, check)
    space.ensure_layout()
    before = {"files": dict(space.manifest["files"]), "skills": dict(space.manifest["skills"])}
    token, created = space.ensure_token(rotate)
    space.sync_files(files or {}, set())
    if skills is not None:
        space.sync_skills(str(skills))
    space.save_manifest(before)
    return space, token, created


def snapshot(directory):
    """Owner, mode and content of everything in ``directory`` (not following links)."""
    seen = {}
    for path in sorted([directory, *directory.rglob("*")]):
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        seen[str(path)] = (info.st_uid, info.st_gid, info.st_mode, content)
    return seen


def tenant_bytes(clients):
    """Every regular file's content under the tenant directory, read without following links."""
    found = b""
    for directory, _subdirs, names in os.walk(clients / "aliya"):
        for name in names:
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, "rb") as handle:
                    found += handle.read()
    return found


def assert_untouched(host, before, clients, space, token):
    assert snapshot(host) == before, "a file outside the tenant's tree was changed"
    assert SECRET not in token
    assert SECRET not in repr(space.changes) + repr(space.diffs)
    assert SECRET.encode() not in tenant_bytes(clients)


def plant(path, kind, host):
    """Put ``kind`` at ``path`` the way the agent could (as the tenant's uid)."""
    if path.is_dir() and not path.is_symlink():
        for inner in sorted(path.rglob("*"), reverse=True):
            inner.rmdir() if inner.is_dir() and not inner.is_symlink() else inner.unlink()
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    if kind == "link":
        path.symlink_to(host / "secret")
    elif kind == "dirlink":
        path.symlink_to(host)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_text("the agent's")
    elif kind == "big":
        path.write_bytes(b"x" * BIG)
    elif kind == "regular":
        path.write_text("stale\n")
    if AS_ROOT:
        os.chown(path, UID, GID, follow_symlinks=False)
    info = path.lstat()
    kinds = {
        "link": stat.S_ISLNK,
        "dirlink": stat.S_ISLNK,
        "devzero": stat.S_ISLNK,
        "fifo": stat.S_ISFIFO,
        "directory": stat.S_ISDIR,
        "big": stat.S_ISREG,
        "regular": stat.S_ISREG,
    }
    assert kinds[kind](info.st_mode), "the plant did not happen"
    return info


# -- paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "fragment"),
    [
        ("/etc/passwd", "relative path"),
        ("../escape", "'..'"),
        ("workspace//x", "empty"),
        ("workspace/MEMORY.md", "belongs to the agent"),
        ("workspace/memory/today.md", "belongs to the agent"),
        ("devices/paired.json", "belongs to the agent"),
        ("gateway_token", "belongs to the agent"),
        ("workspace/skills/x/SKILL.md", "skills_src"),
    ],
)
def test_paths_a_converge_may_not_write(relative, fragment):
    assert fragment in w.relative_path_problem(relative)


@pytest.mark.parametrize("relative", ["openclaw.json", "workspace/TOOLS.md", "workspace/AGENTS.md", "cron/jobs.json"])
def test_paths_a_converge_may_write(relative):
    assert w.relative_path_problem(relative) is None


@pytest.mark.parametrize(
    ("text", "token"),
    [
        (b"0123456789abcdef0123456789abcdef\n", "0123456789abcdef0123456789abcdef"),
        (b"  4f1c2d3e-aaaa-bbbb-cccc-0123456789ab\n", "4f1c2d3e-aaaa-bbbb-cccc-0123456789ab"),
        (b"short", None),
        (b"two words here, not a token at all", None),
        (b"\xff\xfe" * 20, None),
        (b"", None),
    ],
)
def test_only_plausible_tokens_parse(text, token):
    assert w.parse_token(text) == token


# -- the normal life of a workspace --------------------------------------------


def test_first_converge_lays_out_and_the_second_changes_nothing(clients):
    _space, token, created = converge(clients, {"openclaw.json": "{}\n"})
    root = clients / "aliya"
    state = root / ".openclaw"
    assert created and len(token) == 64
    # The token lives outside the mounted directory, root-owned and private.
    assert (root / "gateway_token").read_text().strip() == token
    assert (root / "gateway_token").stat().st_mode & 0o777 == 0o600
    assert not (state / "gateway_token").exists()
    assert (root / ".openclaw-managed.json").stat().st_mode & 0o777 == 0o600
    assert root.stat().st_mode & 0o777 == 0o755
    if AS_ROOT:
        assert (root.stat().st_uid, (root / "gateway_token").stat().st_uid, (root / ".openclaw-managed.json").stat().st_uid) == (0, 0, 0)
        assert (state.stat().st_uid, (state / "openclaw.json").stat().st_uid) == (UID, UID)
    assert all((state / sub).is_dir() for sub in ("devices", "canvas", "cron", "workspace/skills"))
    assert state.stat().st_mode & 0o777 == 0o700
    again, same_token, created_again = converge(clients, {"openclaw.json": "{}\n"})
    assert again.changes == [] and same_token == token and not created_again


def test_the_old_token_in_the_workspace_is_adopted_once(clients):
    root = clients / "aliya"
    (root / ".openclaw").mkdir(parents=True)
    legacy = root / ".openclaw" / "gateway_token"
    legacy.write_text("0123456789abcdef0123456789abcdef\n")
    legacy.chmod(0o644)
    space, token, created = converge(clients)
    assert token == "0123456789abcdef0123456789abcdef" and not created
    assert "adopt the gateway token of .openclaw/gateway_token" in space.changes and space.token_adopted
    assert (root / "gateway_token").read_text().strip() == token
    assert (root / "gateway_token").stat().st_mode & 0o777 == 0o600
    # Never read again: what the agent writes there afterwards changes nothing.
    legacy.write_text("fedcba9876543210fedcba9876543210\n")
    again, same, created = converge(clients)
    assert same == token and not created and again.changes == []
    _space, rotated, created = converge(clients, rotate=True)
    assert created and rotated != token and (root / "gateway_token").read_text().strip() == rotated


def test_a_loose_root_token_file_is_tightened(clients):
    converge(clients)
    token_file = clients / "aliya" / "gateway_token"
    token_file.chmod(0o644)
    space, _token, created = converge(clients)
    assert not created and "fix owner/mode of %s" % token_file in space.changes
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_a_root_token_file_that_is_not_a_token_is_refused(clients):
    converge(clients)
    (clients / "aliya" / "gateway_token").write_text("not a token\n")
    with pytest.raises(w.WorkspaceError, match="does not hold a gateway token"):
        converge(clients)


def test_check_mode_predicts_without_writing(clients):
    space, _token, created = converge(clients, {"openclaw.json": "{}\n"}, check=True)
    assert created and "create openclaw.json" in space.changes
    assert not (clients / "aliya").exists()


def test_check_mode_predicts_an_adoption(clients):
    (clients / "aliya" / ".openclaw").mkdir(parents=True)
    (clients / "aliya" / ".openclaw" / "gateway_token").write_text("0123456789abcdef0123456789abcdef\n")
    space, token, created = converge(clients, check=True)
    assert token == "0123456789abcdef0123456789abcdef" and not created
    assert "adopt the gateway token of .openclaw/gateway_token" in space.changes
    assert not (clients / "aliya" / "gateway_token").exists()


def test_changed_file_is_diffed_and_secret_files_are_hidden(clients):
    converge(clients, {"openclaw.json": "{}\n", "secret.env": "KEY=one\n"})
    space = w.Workspace(str(clients), "aliya", UID, GID, False)
    space.sync_files({"openclaw.json": '{"a": 1}\n', "secret.env": "KEY=two\n"}, {"secret.env"})
    diffs = {diff["after_header"].rsplit("/", 1)[-1]: diff for diff in space.diffs}
    assert diffs["openclaw.json"]["after"] == '{"a": 1}\n'
    assert "two" not in diffs["secret.env"]["after"] and "content hidden" in diffs["secret.env"]["after"]


@pytest.mark.parametrize("relative", ["workspace/AGENTS.md", "cron/jobs.json"])
def test_a_gateway_written_file_is_ours_only_until_openclaw_rewrites_it(clients, relative):
    converge(clients, {relative: "ours\n"})
    written = clients / "aliya" / ".openclaw" / relative
    assert written.read_text() == "ours\n"
    converge(clients, {relative: "ours, updated\n"})
    assert written.read_text() == "ours, updated\n"
    written.write_text("written by OpenClaw\n")
    converge(clients, {relative: "ours again\n"})
    assert written.read_text() == "written by OpenClaw\n"


def test_skills_are_mirrored_and_only_our_copies_removed(clients, tmp_path):
    source = tmp_path / "skills"
    (source / "fb-report").mkdir(parents=True)
    (source / "fb-report" / "SKILL.md").write_text("report\n")
    (source / "fb-leads").mkdir()
    (source / "fb-leads" / "SKILL.md").write_text("leads\n")
    (source / "fb-leads" / "run.sh").write_text("#!/bin/sh\n")
    (source / "fb-leads" / "run.sh").chmod(0o755)
    converge(clients, skills=source)
    skills = clients / "aliya" / ".openclaw" / "workspace" / "skills"
    assert (skills / "fb-report" / "SKILL.md").read_text() == "report\n"
    assert (skills / "fb-leads" / "run.sh").stat().st_mode & 0o777 == 0o700
    assert not any(path.is_symlink() for path in skills.rglob("*"))
    (skills / "my-own").mkdir()
    (skills / "my-own" / "SKILL.md").write_text("the agent's\n")
    (source / "fb-report" / "SKILL.md").unlink()
    (source / "fb-report").rmdir()
    space, _token, _created = converge(clients, skills=source)
    assert "remove workspace/skills/fb-report/SKILL.md" in space.changes
    assert not (skills / "fb-report").exists()
    assert (skills / "my-own" / "SKILL.md").read_text() == "the agent's\n"


def test_files_no_longer_managed_are_removed_unless_changed_since(clients):
    converge(clients, {"workspace/CLAUDE.md": "ours\n", "workspace/NOTES.md": "ours\n"})
    notes = clients / "aliya" / ".openclaw" / "workspace" / "NOTES.md"
    notes.write_text("edited by the agent\n")
    converge(clients, {})
    assert not (clients / "aliya" / ".openclaw" / "workspace" / "CLAUDE.md").exists()
    assert notes.read_text() == "edited by the agent\n"


def test_purge_archives_then_removes(clients, tmp_path, host):
    converge(clients, {"openclaw.json": "{}\n"})
    state = clients / "aliya" / ".openclaw"
    (state / "workspace" / "MEMORY.md").write_text("remember")
    (state / "workspace" / "secret-link").symlink_to(host / "secret")
    (state / "workspace" / "dir-link").symlink_to(host)
    os.mkfifo(state / "workspace" / "pipe")
    before = snapshot(host)
    archive = w.archive_and_remove(str(clients / "aliya"), str(tmp_path / "backups"), "aliya")
    assert not (clients / "aliya").exists()
    assert snapshot(host) == before
    with tarfile.open(archive) as opened:
        names = opened.getnames()
        assert "aliya/.openclaw/openclaw.json" in names and "aliya/.openclaw/workspace/MEMORY.md" in names
        # Links are archived as links, the FIFO as a FIFO: nothing they point to was read.
        assert opened.getmember("aliya/.openclaw/workspace/secret-link").issym()
        assert opened.getmember("aliya/.openclaw/workspace/pipe").isfifo()
        assert not any(name.startswith("aliya/.openclaw/workspace/dir-link/") for name in names)
    with open(archive, "rb") as handle, tarfile.open(fileobj=handle, mode="r:gz") as opened:
        assert all(SECRET.encode() not in opened.extractfile(m).read() for m in opened.getmembers() if m.isfile())
        # Positive control: regular files and directories are archived with content, mode and owner.
        assert opened.extractfile("aliya/.openclaw/workspace/MEMORY.md").read() == b"remember"
        state_member = opened.getmember("aliya/.openclaw")
        assert state_member.isdir() and state_member.mode == 0o700 and state_member.uid == UID
        assert opened.getmember("aliya").isdir() and opened.getmember("aliya/gateway_token").mode == 0o600
        assert opened.getmember("aliya/.openclaw/workspace/secret-link").linkname == str(host / "secret")
    assert os.stat(archive).st_mode & 0o777 == 0o600


# -- the tenant directory and .openclaw are root's ------------------------------


def test_a_tenant_directory_with_loose_owner_or_mode_is_repaired(clients):
    root = clients / "aliya"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    if AS_ROOT:
        os.chown(root, UID, GID)
    space, _token, _created = converge(clients)
    assert "fix owner/mode of %s" % root in space.changes
    assert root.stat().st_mode & 0o777 == 0o755
    if AS_ROOT:
        assert root.stat().st_uid == 0


@pytest.mark.parametrize("where", ["aliya", "aliya/.openclaw"])
def test_a_link_as_tenant_or_state_directory_is_refused(clients, host, where):
    (clients / where).parent.mkdir(parents=True, exist_ok=True)
    (clients / where).symlink_to(host)
    before = snapshot(host)
    with pytest.raises(w.WorkspaceError, match="not a directory; refusing"):
        converge(clients, FILES)
    assert snapshot(host) == before


# -- a hostile agent: every path a converge touches ------------------------------

FILE_PATHS = ["openclaw.json", "workspace/TOOLS.md", "hooks/openclaw-lead/handler.js", SKILL]
FILE_PLANTS = ["link", "devzero", "fifo", "directory", "big", "regular"]


@pytest.mark.parametrize("kind", FILE_PLANTS)
@pytest.mark.parametrize("relative", FILE_PATHS)
def test_a_plant_where_a_managed_file_belongs_is_replaced(clients, skills, host, relative, kind):
    converge(clients, FILES, skills)
    path = clients / "aliya" / ".openclaw" / relative
    planted = plant(path, kind, host)
    before = snapshot(host)
    expected = SKILL_TEXT if relative == SKILL else FILES[relative]

    check, check_token, _created = converge(clients, FILES, skills, check=True)
    assert_untouched(host, before, clients, check, check_token)
    assert any(change.endswith(relative) or relative in change for change in check.changes)
    assert path.lstat().st_ino == planted.st_ino, "check mode changed the plant"

    space, token, _created = converge(clients, FILES, skills)
    assert_untouched(host, before, clients, space, token)
    info = path.lstat()
    assert stat.S_ISREG(info.st_mode) and path.read_text() == expected
    assert info.st_mode & 0o777 == 0o600 and (info.st_uid, info.st_gid) == (UID, GID)
    if kind == "regular":
        # Positive control: a plain stale file is read and diffed like any other.
        assert "update %s" % relative in space.changes
        assert any(diff["before"] == "stale\n" for diff in space.diffs)
    else:
        assert any(change.startswith("replace %s (" % relative) for change in space.changes)
    assert converge(clients, FILES, skills)[0].changes == []


DIR_PATHS = ["canvas", "cron", "workspace", "workspace/skills", "workspace/skills/fb-report"]
DIR_PLANTS = ["dirlink", "link", "fifo", "big", "regular"]


@pytest.mark.parametrize("kind", DIR_PLANTS)
@pytest.mark.parametrize("relative", DIR_PATHS)
def test_a_plant_where_a_state_directory_belongs_is_replaced(clients, skills, host, relative, kind):
    converge(clients, FILES, skills)
    path = clients / "aliya" / ".openclaw" / relative
    if kind == "regular":
        # Positive control: the real directory with something of the agent's in it.
        (path / "the-agents.txt").write_text("kept\n")
    else:
        plant(path, kind, host)
    before = snapshot(host)

    check, check_token, _created = converge(clients, FILES, skills, check=True)
    assert_untouched(host, before, clients, check, check_token)

    space, token, _created = converge(clients, FILES, skills)
    assert_untouched(host, before, clients, space, token)
    info = path.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_mode & 0o777 == 0o700 and (info.st_uid, info.st_gid) == (UID, GID)
    if kind == "regular":
        assert (path / "the-agents.txt").read_text() == "kept\n" and space.changes == []
    else:
        assert any(change.startswith("replace %s (" % path) for change in space.changes)
    state = clients / "aliya" / ".openclaw"
    for managed, text in FILES.items():
        assert (state / managed).read_text() == text and not (state / managed).is_symlink()
    assert (state / SKILL).read_text() == SKILL_TEXT and not (state / SKILL).is_symlink()
    assert converge(clients, FILES, skills)[0].changes == []


@pytest.mark.parametrize("kind", ["link", "dirlink", "fifo", "big", "directory", "regular"])
@pytest.mark.parametrize("relative", ["devices", "workspace/AGENTS.md"])
def test_a_plant_on_an_agent_owned_path_is_left_alone(clients, skills, host, relative, kind):
    converge(clients, FILES, skills)
    path = clients / "aliya" / ".openclaw" / relative
    if relative == "devices" and kind in ("directory", "regular"):
        (path / "paired.json").write_text("{}")
        planted = path.lstat()
    else:
        planted = plant(path, kind, host)
    before = snapshot(host)
    files = {**FILES, "workspace/AGENTS.md": "ours, updated\n"}
    space, token, _created = converge(clients, files, skills)
    assert_untouched(host, before, clients, space, token)
    after = path.lstat()
    if relative == "devices":
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(planted.st_mode) and after.st_ino == planted.st_ino
        if stat.S_ISDIR(after.st_mode):
            assert (path / "paired.json").read_text() == "{}"
    elif kind == "regular":
        # Positive control: OpenClaw's own AGENTS.md is read, found not ours, and kept.
        assert path.read_text() == "stale\n"
    else:
        assert after.st_ino == planted.st_ino and stat.S_IFMT(after.st_mode) == stat.S_IFMT(planted.st_mode)
    recorded = w.Workspace(str(clients), "aliya", UID, GID, True).manifest["files"]
    if relative == "devices":
        assert "workspace/AGENTS.md" in recorded and (path.parent / "workspace" / "AGENTS.md").read_text() == "ours, updated\n"
    else:
        assert "workspace/AGENTS.md" not in recorded


def test_our_agents_md_is_updated_when_it_is_still_ours(clients, skills):
    converge(clients, FILES, skills)
    files = {**FILES, "workspace/AGENTS.md": "ours, updated\n"}
    space, _token, _created = converge(clients, files, skills)
    assert "update workspace/AGENTS.md" in space.changes
    assert (clients / "aliya" / ".openclaw" / "workspace" / "AGENTS.md").read_text() == "ours, updated\n"


@pytest.mark.parametrize("kind", ["link", "devzero", "fifo", "big", "directory", "garbage", "regular"])
def test_the_old_token_file_is_adopted_only_when_it_is_a_plain_token(clients, host, kind):
    legacy = clients / "aliya" / ".openclaw" / "gateway_token"
    legacy.parent.mkdir(parents=True)
    if kind == "garbage":
        legacy.write_text("$(cat /etc/shadow)\n")
        planted = legacy.lstat()
    elif kind == "regular":
        legacy.write_text("0123456789abcdef0123456789abcdef\n")
        planted = legacy.lstat()
    else:
        planted = plant(legacy, kind, host)
    before = snapshot(host)
    check, check_token, _created = converge(clients, check=True)
    assert_untouched(host, before, clients, check, check_token)
    space, token, created = converge(clients)
    assert_untouched(host, before, clients, space, token)
    assert (clients / "aliya" / "gateway_token").read_text().strip() == token == check_token or kind != "regular"
    if kind == "regular":
        assert token == "0123456789abcdef0123456789abcdef" and not created
    else:
        assert created and len(token) == 64 and "create gateway token" in space.changes
    # The old file is the agent's: left as it was.
    after = legacy.lstat()
    assert after.st_ino == planted.st_ino and stat.S_IFMT(after.st_mode) == stat.S_IFMT(planted.st_mode)
    assert converge(clients)[1] == token


def test_a_removed_file_planted_as_a_link_is_not_followed(clients, skills, host):
    converge(clients, FILES, skills)
    state = clients / "aliya" / ".openclaw"
    # The skill's directory becomes a link to a host directory holding a file with our copy's content.
    plant(state / "workspace" / "skills" / "fb-report", "dirlink", host)
    plant(state / "workspace" / "TOOLS.md", "link", host)
    before = snapshot(host)
    (skills / "fb-report" / "SKILL.md").unlink()
    (skills / "fb-report").rmdir()
    files = {name: text for name, text in FILES.items() if name != "workspace/TOOLS.md"}
    space, token, _created = converge(clients, files, skills)
    assert_untouched(host, before, clients, space, token)
    assert (host / "SKILL.md").read_text() == SKILL_TEXT
    assert not any(change.startswith("remove") for change in space.changes)
    # Positive control: our own plain copy is removed.
    converge(clients, FILES, skills)
    space, _token, _created = converge(clients, files, skills)
    assert "remove workspace/TOOLS.md" in space.changes and not (state / "workspace" / "TOOLS.md").exists()


# -- the shared services' registry -----------------------------------------------------------

REGISTRY_ENTRY = {"slug": "aliya", "database": "openclaw_aliya", "db_user": "openclaw_aliya", "db_password": "pw-" + "s3cret", "hooks_token": "h" * 64}


def test_a_registry_entry_is_written_once_readable_by_the_group_with_secrets_hidden_in_the_diff(tmp_path):
    registry = tmp_path / "registry"
    registry.mkdir()
    group = os.getgid()
    planned, diff = w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, group, check=True)
    assert planned == "create %s" % (registry / "aliya.json") and not (registry / "aliya.json").exists()
    assert "openclaw_aliya" in diff["after"] and "s3cret" not in diff["after"] and "h" * 64 not in diff["after"]
    assert w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, group, check=False)[0].startswith("create ")
    written = registry / "aliya.json"
    assert stat.S_IMODE(written.stat().st_mode) == 0o640
    assert w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, group, check=False) == (None, None)
    rotated = {**REGISTRY_ENTRY, "hooks_token": "k" * 64}
    change, diff = w.sync_registry_entry(str(registry), "aliya", rotated, group, check=False)
    assert change.startswith("update ") and diff["before"] != diff["after"] and "k" * 64 not in diff["after"]
    assert '"hooks_token": "' + "k" * 64 in written.read_text()


def test_a_link_planted_as_the_registry_entry_is_replaced_not_followed(tmp_path):
    registry, target = tmp_path / "registry", tmp_path / "elsewhere"
    registry.mkdir()
    target.write_text("keep")
    (registry / "aliya.json").symlink_to(target)
    change, _diff = w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, os.getgid(), check=False)
    assert change.startswith("update ")
    assert target.read_text() == "keep"
    assert not (registry / "aliya.json").is_symlink()


def test_a_registry_entry_is_removed_once_and_a_missing_registry_is_only_accepted_in_check_mode(tmp_path):
    registry = tmp_path / "registry"
    assert w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, os.getgid(), check=True)[0].startswith("create ")
    with pytest.raises(w.WorkspaceError, match="does not exist"):
        w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, os.getgid(), check=False)
    registry.mkdir()
    w.sync_registry_entry(str(registry), "aliya", REGISTRY_ENTRY, os.getgid(), check=False)
    assert w.remove_registry_entry(str(registry), "aliya", check=True).startswith("remove ")
    assert (registry / "aliya.json").exists()
    assert w.remove_registry_entry(str(registry), "aliya", check=False).startswith("remove ")
    assert w.remove_registry_entry(str(registry), "aliya", check=False) is None


def test_service_secrets_are_made_once_root_only(clients):
    space = w.Workspace(str(clients), "aliya", os.getuid(), os.getgid(), False)
    space.ensure_layout()
    secret, created = space.ensure_secret(w.UPLOAD_SECRET_FILE, "upload secret")
    assert created and len(secret) == 64
    assert space.ensure_secret(w.UPLOAD_SECRET_FILE, "upload secret") == (secret, False)
    assert stat.S_IMODE((clients / "aliya" / w.UPLOAD_SECRET_FILE).stat().st_mode) == 0o600
