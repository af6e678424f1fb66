"""The collection builds into a tarball that installs and whose plugins load."""

from __future__ import annotations

import tarfile

from harness.ansible import REPO_ROOT, ansible_env, run


def test_built_tarball_installs_and_its_plugins_load(tmp_path):
    built = run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path / "dist"), str(REPO_ROOT))
    assert built.returncode == 0, built.stderr
    (tarball,) = (tmp_path / "dist").glob("openclaw-standalone-*.tar.gz")

    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/module_utils/validation.py" in names
    assert "meta/runtime.yml" in names
    leaked = [name for name in names if name.split("/")[0] in {".venv", ".build", ".cache", ".git", ".ci", "requirements", "bench"}]
    assert not leaked

    # Use only the installed copy: an empty ansible.cfg, no link to the checkout.
    collections = tmp_path / "collections"
    (tmp_path / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    env = ansible_env(ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(collections))
    installed = run("ansible-galaxy", "collection", "install", "--force", "-p", str(collections), str(tarball), cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stderr
    assert (collections / "ansible_collections" / "openclaw" / "standalone" / "MANIFEST.json").is_file()
    listed = run("ansible-doc", "-t", "filter", "-l", "openclaw.standalone", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "openclaw.standalone.inventory_problems" in listed.stdout
    assert "openclaw.standalone.tenant_names" in listed.stdout

    used = run(
        "ansible",
        "localhost",
        "-m",
        "ansible.builtin.debug",
        "-a",
        "msg={{ ('acme-corp' | openclaw.standalone.tenant_names).container }}",
        cwd=tmp_path,
        env=env,
    )
    assert used.returncode == 0, used.stdout + used.stderr
    assert "openclaw-acme-corp" in used.stdout
