"""nginx_map_entry on real files, through Ansible, including 50 parallel writers and a real nginx."""

from __future__ import annotations

import stat
import sys
import urllib.request
from pathlib import Path

import yaml

from harness.ansible import recap, run, run_module

MODULE = "openclaw.standalone.nginx_map_entry"


def test_add_update_remove_with_check_mode_and_diff(tmp_path):
    path = tmp_path / "maps" / "tenants.map"
    checked = run_module(MODULE, {"path": str(path), "key": "aliya", "value": "127.0.0.1:18801"}, "--check", "--diff")
    assert checked.result["changed"] is True
    assert not path.parent.exists()

    added = run_module(MODULE, {"path": str(path), "key": "aliya", "value": "127.0.0.1:18801"}, "--diff")
    assert added.result["changed"] is True
    assert added.result["diff"]["after"] == "aliya 127.0.0.1:18801;\n"
    assert path.read_text() == "aliya 127.0.0.1:18801;\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert run_module(MODULE, {"path": str(path), "key": "aliya", "value": "127.0.0.1:18801"}).result["changed"] is False

    path.write_text("# hand-written note\n" + path.read_text() + "bob 127.0.0.1:18802; # keep me\n")
    path.chmod(0o640)
    predicted = run_module(MODULE, {"path": str(path), "key": "aliya", "value": "127.0.0.1:19000"}, "--check")
    assert (predicted.result["changed"], predicted.result["previous_value"], predicted.result["value"]) == (True, "127.0.0.1:18801", "127.0.0.1:19000")
    assert "127.0.0.1:18801" in path.read_text()

    updated = run_module(MODULE, {"path": str(path), "key": "aliya", "value": "127.0.0.1:19000", "backup": True})
    assert path.read_text() == "# hand-written note\naliya 127.0.0.1:19000;\nbob 127.0.0.1:18802; # keep me\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    backup = updated.result["backup_file"]
    assert "127.0.0.1:18801" in Path(backup).read_text(encoding="utf-8")

    removed = run_module(MODULE, {"path": str(path), "key": "aliya", "state": "absent"})
    assert removed.result["changed"] is True
    assert path.read_text() == "# hand-written note\nbob 127.0.0.1:18802; # keep me\n"
    assert run_module(MODULE, {"path": str(path), "key": "aliya", "state": "absent"}).result["changed"] is False
    assert not [entry for entry in path.parent.iterdir() if entry.name.startswith(".tenants.map.")]


def test_many_entries_in_one_write_with_an_outcome_and_diff_per_key(tmp_path):
    path = tmp_path / "tenants.map"
    path.write_text("# hand-written note\naliya 127.0.0.1:18801;\nbob 127.0.0.1:18802; # keep me\ncarol 127.0.0.1:18803;\n")
    entries = [
        {"key": "aliya", "value": "127.0.0.1:18801"},  # as it is
        {"key": "bob", "value": "127.0.0.1:19002"},  # moved
        {"key": "carol", "state": "absent"},  # removed
        {"key": "dana", "value": "127.0.0.1:18804"},  # new
    ]
    before = path.read_text()
    planned = run_module(MODULE, {"path": str(path), "entries": entries}, "--check", "--diff")
    assert path.read_text() == before
    outcomes = planned.result["entries"]
    assert {key: outcome["changed"] for key, outcome in outcomes.items()} == {"aliya": False, "bob": True, "carol": True, "dana": True}
    assert outcomes["bob"]["diff"]["before"] == "bob 127.0.0.1:18802;\n" and outcomes["bob"]["diff"]["after"] == "bob 127.0.0.1:19002;\n"
    assert "diff" not in outcomes["aliya"]

    applied = run_module(MODULE, {"path": str(path), "entries": entries, "backup": True})
    assert applied.result["changed"] is True
    assert path.read_text() == "# hand-written note\naliya 127.0.0.1:18801;\nbob 127.0.0.1:19002; # keep me\ndana 127.0.0.1:18804;\n"
    assert Path(applied.result["backup_file"]).read_text(encoding="utf-8") == before  # one write: one backup of the old file
    again = run_module(MODULE, {"path": str(path), "entries": entries})
    assert again.result["changed"] is False and not any(outcome["changed"] for outcome in again.result["entries"].values())

    written = path.read_text()
    for refused_entries in ([{"key": "erin", "value": "x"}, {"key": "erin", "value": "y"}], [{"key": "erin"}], [{"key": "default", "value": "x"}]):
        refused = run_module(MODULE, {"path": str(path), "entries": refused_entries})
        assert refused.returncode != 0 and "was not touched" in refused.result["msg"], refused.result
    assert path.read_text() == written


def test_invalid_keys_and_values_are_refused_without_touching_the_file(tmp_path):
    path = tmp_path / "tenants.map"
    path.write_text("aliya 127.0.0.1:18801;\n")
    before = path.stat().st_mtime_ns
    for args in ({"key": "default", "value": "x"}, {"key": "a b", "value": "x"}, {"key": "aliya", "value": "1;evil"}, {"key": "aliya", "value": "{x}"}):
        refused = run_module(MODULE, {"path": str(path), **args})
        assert refused.returncode != 0
        assert "was not touched" in refused.result["msg"]
    assert path.read_text() == "aliya 127.0.0.1:18801;\n"
    assert path.stat().st_mtime_ns == before


def test_failed_validation_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "tenants.map"
    path.write_text("aliya 127.0.0.1:18801;\n")
    refused = run_module(MODULE, {"path": str(path), "key": "bob", "value": "127.0.0.1:18802", "validate": "grep -q carol %s"})
    assert refused.returncode != 0
    assert "validate failed" in refused.result["msg"]
    assert path.read_text() == "aliya 127.0.0.1:18801;\n"
    accepted = run_module(MODULE, {"path": str(path), "key": "bob", "value": "127.0.0.1:18802", "validate": "grep -q bob %s"})
    assert accepted.returncode == 0
    assert path.read_text() == "aliya 127.0.0.1:18801;\nbob 127.0.0.1:18802;\n"


def test_fifty_tenants_writing_at_once_lose_no_entry(tmp_path):
    path = tmp_path / "tenants.map"
    path.write_text("# one server, fifty tenants\n")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {f"t{index:02d}": {"map_port": 20000 + index} for index in range(50)}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"vars": local, "hosts": hosts}}), encoding="utf-8")
    playbook = [
        {
            "name": "Every tenant adds its route at the same moment",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [{"name": "Route", MODULE: {"path": str(path), "key": "{{ inventory_hostname }}", "value": "127.0.0.1:{{ map_port }}"}}],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook), encoding="utf-8")
    result = run("ansible-playbook", "-i", str(tmp_path / "hosts.yml"), "--forks", "50", str(tmp_path / "play.yml"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert all(counters["changed"] == 1 for counters in recap(result.stdout).values())
    lines = path.read_text().splitlines()
    assert lines[0] == "# one server, fifty tenants"
    assert sorted(lines[1:]) == sorted(f"t{index:02d} 127.0.0.1:{20000 + index};" for index in range(50))


def test_nginx_routes_by_the_map_file(nginx_server, tmp_path):
    """The file this module writes is a valid map include for a real nginx."""
    maps = nginx_server.prefix / "maps"
    for slug, port in (("aliya", nginx_server.http_port), ("bob", nginx_server.https_port)):
        assert run_module(MODULE, {"path": str(maps / "tenants.map"), "key": slug, "value": str(port)}).returncode == 0
    (nginx_server.conf_d / "route.conf").write_text(
        "map $arg_slug $tenant_port { default none; include %s; }\n"
        'server { listen 127.0.0.1:%d; location / { return 200 "$tenant_port\\n"; } }\n' % (maps / "tenants.map", nginx_server.https_port),
        encoding="utf-8",
    )
    nginx_server.reload()
    for slug, expected in (("aliya", nginx_server.http_port), ("bob", nginx_server.https_port), ("nobody", "none")):
        with urllib.request.urlopen(f"http://127.0.0.1:{nginx_server.https_port}/?slug={slug}", timeout=5) as response:
            assert response.read().decode().strip() == str(expected)


def test_unwritable_or_unreadable_files_fail_with_a_message(tmp_path):
    binary = tmp_path / "binary.map"
    binary.write_bytes(b"aliya \xff\xfe;\n")
    refused = run_module(MODULE, {"path": str(binary), "key": "bob", "value": "127.0.0.1:1"})
    assert refused.returncode != 0
    assert "is not UTF-8 text" in refused.result["msg"]
    assert binary.read_bytes() == b"aliya \xff\xfe;\n"
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    refused = run_module(MODULE, {"path": str(blocked / "tenants.map"), "key": "bob", "value": "127.0.0.1:1"})
    assert refused.returncode != 0
    assert refused.result["msg"].startswith("cannot update")
    assert "Traceback" not in refused.stdout + refused.stderr
