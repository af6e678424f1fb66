"""examples/gitops/inventory_limit.py on a real git history of the example inventory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from harness.ansible import REPO_ROOT, ansible_env

HELPER = REPO_ROOT / "examples" / "gitops" / "inventory_limit.py"
INVENTORY = "inventories/prod"


@pytest.fixture
def repo(tmp_path):
    shutil.copytree(REPO_ROOT / "inventories" / "example", tmp_path / INVENTORY)
    env = {**ansible_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.test"}

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True, env=env).stdout

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "inventory")

    def limit():
        completed = subprocess.run(
            [sys.executable, str(HELPER), "--inventory", INVENTORY, "--base", "HEAD", "--vault-password-file", f"{INVENTORY}/demo-vault-password.txt"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return completed.stdout.strip()

    return tmp_path / INVENTORY, limit


def append(path, text):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def edit_hosts(path, change):
    document = yaml.safe_load((path / "hosts.yml").read_text())
    change(document)
    (path / "hosts.yml").write_text(yaml.safe_dump(document), encoding="utf-8")


def test_nothing_changed(repo):
    _path, limit = repo
    assert limit() == ""


def test_a_tenants_host_vars_give_that_tenant_and_its_server(repo):
    path, limit = repo
    append(path / "host_vars" / "marat" / "main.yml", "openclaw_tenant_state: stopped\n")
    assert limit() == "marat,srv1"


def test_a_new_tenant(repo):
    path, limit = repo
    edit_hosts(path, lambda doc: doc["openclaw_tenants"]["hosts"].update(newbie={"openclaw_server": "srv2", "openclaw_port": 18802}))
    assert limit() == "newbie,srv2"


def test_a_moved_tenant_touches_both_servers(repo):
    path, limit = repo
    edit_hosts(path, lambda doc: doc["openclaw_tenants"]["hosts"]["sweepstake"].update(openclaw_server="srv1", openclaw_port=18803))
    assert limit() == "srv1,srv2,sweepstake"


def test_a_removed_tenant_leaves_its_server(repo):
    path, limit = repo
    edit_hosts(path, lambda doc: doc["openclaw_tenants"]["hosts"].pop("marat"))
    shutil.rmtree(path / "host_vars" / "marat")
    assert limit() == "srv1"


def test_server_group_vars_give_every_server(repo):
    path, limit = repo
    append(path / "group_vars" / "openclaw_servers" / "main.yml", "openclaw_db_backup_keep: 14\n")
    assert limit() == "srv1,srv2"


def test_tenant_group_vars_give_every_tenant_and_their_servers(repo):
    path, limit = repo
    append(path / "group_vars" / "openclaw_tenants" / "main.yml", "openclaw_version: 2026.9.1\n")
    assert limit() == "aliya,marat,srv1,srv2,sweepstake"


def test_global_vars_mean_everything(repo):
    path, limit = repo
    append(path / "group_vars" / "all" / "main.yml", "openclaw_capi_non_ctwa: skip\n")
    assert limit() == "all"


def test_example_inventory_passes_preflight_and_syntax_check():
    env = ansible_env()
    vault = ["--vault-password-file", "inventories/example/demo-vault-password.txt"]
    for playbook in sorted(os.listdir(REPO_ROOT / "playbooks")):
        args = ["ansible-playbook", "-i", "inventories/example", *vault, f"playbooks/{playbook}"]
        checked = subprocess.run([*args, "--syntax-check"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, (playbook, checked.stdout + checked.stderr)
    preflight = subprocess.run(
        ["ansible-playbook", "-i", "inventories/example", *vault, "playbooks/preflight.yml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert preflight.returncode == 0, preflight.stdout
    assert "Inventory valid: 2 server(s), 3 tenant(s)." in preflight.stdout
