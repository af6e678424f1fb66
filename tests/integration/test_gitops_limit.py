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


PIPELINE = REPO_ROOT / "examples" / "gitops" / "pipeline.yml"


def test_pipeline_releases_credentials_only_to_reviewed_jobs():
    pipeline = yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))
    jobs = pipeline["jobs"]
    assert pipeline["permissions"] == {"contents": "read"}
    # The job that runs every pull request's inventory holds nothing.
    check = jobs["check"]
    assert "secrets." not in yaml.safe_dump(check) and "environment" not in check
    assert check["if"] == "github.event_name == 'pull_request'"
    assert any(step.get("with", {}).get("persist-credentials") is False for step in check["steps"])
    # The plan's credentials come from an environment a reviewer releases; never for forks.
    assert jobs["plan"]["environment"] == "openclaw-plan"
    assert "head.repo.full_name == github.repository" in jobs["plan"]["if"]
    # The converge runs only for the protected branch, with the production environment.
    assert jobs["converge"]["environment"] == "openclaw-production"
    assert jobs["converge"]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    # Secrets reach a step through its environment, never spliced into a script.
    for job in jobs.values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step


def check_job_scripts():
    steps = yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))["jobs"]["check"]["steps"]
    return [step["run"] for step in steps if "run" in step and step.get("name") != "Install"]


def test_the_check_job_runs_without_the_vault(repo):
    path, _limit = repo
    root = path.parents[1]
    shutil.copy(HELPER, root / "inventory_limit.py")
    env = {**ansible_env(), "INVENTORY": INVENTORY, "GITHUB_BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(root / "summary.md")}
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)

    def git(*args):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    (path / "demo-vault-password.txt").unlink()
    # Secrets the preflight compares across tenants; without the vault they are not read.
    append(path / "host_vars" / "marat" / "main.yml", 'openclaw_anthropic_api_key: "{{ vault_openclaw_anthropic_api_key }}"\n')
    git("commit", "-qam", "no vault password in this repository")
    git("update-ref", "refs/remotes/origin/main", "HEAD")

    def run_check():
        results = []
        for script in check_job_scripts():
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=root, env=env, capture_output=True, text=True, check=False)
            results.append(done)
            if done.returncode:
                break
        return results

    edit_hosts(path, lambda doc: doc["openclaw_tenants"]["hosts"].update(newbie={"openclaw_server": "srv2", "openclaw_port": 18802}))
    git("commit", "-qam", "newbie")
    results = run_check()
    assert [done.returncode for done in results] == [0] * len(check_job_scripts()), [done.stdout[-2000:] + done.stderr[-2000:] for done in results]
    assert not list(path.rglob("vault.yml"))
    assert "Inventory valid: 2 server(s), 4 tenant(s)." in results[1].stdout
    assert (root / "summary.md").read_text(encoding="utf-8") == "limit: newbie,srv2\n"

    # The same job refuses a change that is only wrong next to the rest of the inventory.
    git("checkout", "-q", "--", ".")
    edit_hosts(path, lambda doc: doc["openclaw_tenants"]["hosts"]["newbie"].update(openclaw_slug="sweepstake", openclaw_port=18801))
    git("commit", "-qam", "newbie takes over sweepstake")
    results = run_check()
    output = " ".join(results[-1].stdout.split())
    assert results[-1].returncode == 2 and len(results) == 2
    assert "newbie: openclaw_slug: 'sweepstake' is also the slug of sweepstake (rule: slug-unique)" in output
    assert "sweepstake: openclaw_port: 18801 on server srv2 is also used by newbie (openclaw_port) (rule: port-unique)" in output
