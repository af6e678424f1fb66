"""The tenant workspace: managed files, the manifest, skills, the token, check mode, purge."""

from __future__ import annotations

import os
import tarfile

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import workspace as w

UID, GID = os.getuid(), os.getgid()


@pytest.fixture
def clients(tmp_path):
    directory = tmp_path / "clients"
    directory.mkdir()
    return directory


def converge(clients, files=None, skills=None, check=False, rotate=False):
    space = w.Workspace(str(clients), "aliya", UID, GID, check)
    space.ensure_layout(str(clients))
    before = {"files": dict(space.manifest["files"]), "skills": dict(space.manifest["skills"])}
    token, created = space.ensure_token(rotate)
    space.sync_files(files or {}, set())
    if skills is not None:
        space.sync_skills(str(skills))
    space.save_manifest(before)
    return space, token, created


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


def test_first_converge_lays_out_and_the_second_changes_nothing(clients):
    _space, token, created = converge(clients, {"openclaw.json": "{}\n"})
    state = clients / "aliya" / ".openclaw"
    assert created and len(token) == 64
    assert (state / "gateway_token").read_text().strip() == token
    assert (state / "gateway_token").stat().st_mode & 0o777 == 0o600
    assert all((state / sub).is_dir() for sub in ("devices", "canvas", "cron", "workspace/skills"))
    assert state.stat().st_mode & 0o777 == 0o700
    again, same_token, created_again = converge(clients, {"openclaw.json": "{}\n"})
    assert again.changes == [] and same_token == token and not created_again


def test_an_existing_token_is_adopted_and_tightened(clients):
    state = clients / "aliya" / ".openclaw"
    state.mkdir(parents=True)
    (state / "gateway_token").write_text("0123456789abcdef0123456789abcdef\n")
    (state / "gateway_token").chmod(0o644)
    space, token, created = converge(clients)
    assert token == "0123456789abcdef0123456789abcdef" and not created
    assert "fix owner/mode of gateway_token" in space.changes
    assert (state / "gateway_token").stat().st_mode & 0o777 == 0o600
    _space, rotated, created = converge(clients, rotate=True)
    assert created and rotated != token


def test_check_mode_predicts_without_writing(clients):
    space, _token, created = converge(clients, {"openclaw.json": "{}\n"}, check=True)
    assert created and "create openclaw.json" in space.changes
    assert not (clients / "aliya").exists()


def test_changed_file_is_diffed_and_secret_files_are_hidden(clients):
    converge(clients, {"openclaw.json": "{}\n", "secret.env": "KEY=one\n"})
    space = w.Workspace(str(clients), "aliya", UID, GID, False)
    space.sync_files({"openclaw.json": '{"a": 1}\n', "secret.env": "KEY=two\n"}, {"secret.env"})
    diffs = {diff["after_header"].rsplit("/", 1)[-1]: diff for diff in space.diffs}
    assert diffs["openclaw.json"]["after"] == '{"a": 1}\n'
    assert "two" not in diffs["secret.env"]["after"] and "content hidden" in diffs["secret.env"]["after"]


def test_agents_md_is_ours_only_until_openclaw_rewrites_it(clients):
    converge(clients, {"workspace/AGENTS.md": "ours\n"})
    agents = clients / "aliya" / ".openclaw" / "workspace" / "AGENTS.md"
    assert agents.read_text() == "ours\n"
    converge(clients, {"workspace/AGENTS.md": "ours, updated\n"})
    assert agents.read_text() == "ours, updated\n"
    agents.write_text("written by OpenClaw\n")
    converge(clients, {"workspace/AGENTS.md": "ours again\n"})
    assert agents.read_text() == "written by OpenClaw\n"


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


def test_a_symlink_where_a_file_belongs_is_refused(clients, tmp_path):
    converge(clients)
    target = tmp_path / "elsewhere"
    target.write_text("x")
    (clients / "aliya" / ".openclaw" / "openclaw.json").symlink_to(target)
    with pytest.raises(w.WorkspaceError, match="not a regular file"):
        converge(clients, {"openclaw.json": "{}\n"})
    assert target.read_text() == "x"


def test_purge_archives_then_removes(clients, tmp_path):
    converge(clients, {"openclaw.json": "{}\n"})
    archive = w.archive_and_remove(str(clients / "aliya"), str(tmp_path / "backups"), "aliya")
    assert not (clients / "aliya").exists()
    with tarfile.open(archive) as opened:
        assert "aliya/.openclaw/openclaw.json" in opened.getnames()
    assert os.stat(archive).st_mode & 0o777 == 0o600
