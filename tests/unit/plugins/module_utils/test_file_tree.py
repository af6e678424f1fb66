"""Mirroring a tree onto the server in one module run: content and mode compared, links never followed."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils.file_tree import WorkspaceError, mirror_tree

FILES = {"a/SKILL.md": (b"skill a\n", 0o644), "b/run.sh": (b"#!/bin/sh\n", 0o755), "top.txt": (b"top\n", 0o600)}


def test_first_run_writes_everything_and_the_second_nothing(tmp_path):
    dest = tmp_path / "skills"
    written, removed = mirror_tree(str(dest), FILES)
    assert written == [".", "a/SKILL.md", "b/run.sh", "top.txt"] and removed == []
    for relative, (data, mode) in FILES.items():
        assert (dest / relative).read_bytes() == data
        assert stat.S_IMODE((dest / relative).stat().st_mode) == mode
    assert mirror_tree(str(dest), FILES) == ([], [])


def test_a_changed_content_or_mode_is_written_again(tmp_path):
    dest = tmp_path / "tree"
    mirror_tree(str(dest), FILES)
    (dest / "a" / "SKILL.md").write_bytes(b"edited\n")
    (dest / "b" / "run.sh").chmod(0o777)
    assert mirror_tree(str(dest), FILES) == (["a/SKILL.md", "b/run.sh"], [])
    assert (dest / "a" / "SKILL.md").read_bytes() == b"skill a\n"
    assert stat.S_IMODE((dest / "b" / "run.sh").stat().st_mode) == 0o755


def test_check_mode_predicts_and_changes_nothing(tmp_path):
    dest = tmp_path / "tree"
    assert mirror_tree(str(dest), FILES, check=True)[0] == [".", "a/SKILL.md", "b/run.sh", "top.txt"]
    assert not dest.exists()
    mirror_tree(str(dest), FILES)
    (dest / "top.txt").write_bytes(b"other\n")
    (dest / "stale.md").write_bytes(b"old\n")
    assert mirror_tree(str(dest), FILES, prune=True, check=True) == (["top.txt"], ["stale.md"])
    assert (dest / "top.txt").read_bytes() == b"other\n" and (dest / "stale.md").exists()


def test_missing_parents_are_predicted_in_check_mode_and_created_otherwise(tmp_path):
    dest = tmp_path / "lib" / "openclaw" / "skills"
    assert mirror_tree(str(dest), FILES, check=True) == ([".", "a/SKILL.md", "b/run.sh", "top.txt"], [])
    assert not (tmp_path / "lib").exists()
    assert mirror_tree(str(dest), FILES)[0] == [".", "a/SKILL.md", "b/run.sh", "top.txt"]
    assert (dest / "b" / "run.sh").read_bytes() == b"#!/bin/sh\n"


def test_prune_removes_only_what_is_not_shipped(tmp_path):
    dest = tmp_path / "tree"
    mirror_tree(str(dest), FILES)
    (dest / "a" / "old.md").write_bytes(b"old\n")
    assert mirror_tree(str(dest), FILES) == ([], [])  # without prune the extra file stays
    assert mirror_tree(str(dest), FILES, prune=True) == ([], ["a/old.md"])
    assert not (dest / "a" / "old.md").exists() and (dest / "a" / "SKILL.md").exists()


def test_a_link_where_a_file_belongs_is_replaced_and_its_target_untouched(tmp_path):
    dest = tmp_path / "tree"
    mirror_tree(str(dest), FILES)
    target = tmp_path / "outside"
    target.write_bytes(b"precious\n")
    (dest / "top.txt").unlink()
    (dest / "top.txt").symlink_to(target)
    assert mirror_tree(str(dest), FILES)[0] == ["top.txt"]
    assert not (dest / "top.txt").is_symlink() and (dest / "top.txt").read_bytes() == b"top\n"
    assert target.read_bytes() == b"precious\n"  # positive control: the plant pointed at a real file


def test_a_link_where_a_directory_belongs_is_refused(tmp_path):
    dest = tmp_path / "tree"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    os.symlink(elsewhere, dest / "a")
    with pytest.raises(WorkspaceError, match="not a directory"):
        mirror_tree(str(dest), FILES)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("relative", ["../escape", "/abs", "a/./b", ""])
def test_paths_outside_the_tree_are_refused(tmp_path, relative):
    with pytest.raises(WorkspaceError, match="file of the tree"):
        mirror_tree(str(tmp_path / "tree"), {relative: (b"x", 0o644)})
