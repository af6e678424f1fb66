"""Run the real ansible command line tools from the checkout's venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run(tool: str, *args: str, cwd: Path = REPO_ROOT, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ansible-playbook, ansible-doc, ansible-galaxy ... and capture its output."""
    return subprocess.run(
        [str(VENV_BIN / tool), *args],
        cwd=cwd,
        env=env or ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ModuleRun:
    """What one ad-hoc module call printed and returned."""

    def __init__(self, completed: subprocess.CompletedProcess, records: list[dict]):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.records = records

    @property
    def result(self) -> dict:
        if len(self.records) != 1:
            raise AssertionError(f"expected one task result, got {len(self.records)}:\n{self.stdout}\n{self.stderr}")
        return self.records[0]["result"]

    @property
    def failed(self) -> bool:
        return self.records[0]["status"] == "failed" if self.records else True


def run_module(module: str, args: dict, *options: str, env: dict | None = None, timeout: float = 600) -> ModuleRun:
    """`ansible localhost -m <module> -a <json>` with the result read back as data."""
    with tempfile.NamedTemporaryFile(prefix="openclaw-results-", suffix=".jsonl", delete=False) as handle:
        log = handle.name
    try:
        run_env = ansible_env(
            OPENCLAW_RESULT_LOG=log,
            ANSIBLE_CALLBACK_PLUGINS=str(REPO_ROOT / "tests" / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="result_log",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            **(env or {}),
        )
        completed = run("ansible", "localhost", "-m", module, "-a", json.dumps(args), *options, env=run_env, timeout=timeout)
        with open(log, encoding="utf-8") as results:
            records = [json.loads(line) for line in results if line.strip()]
        return ModuleRun(completed, records)
    finally:
        os.unlink(log)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host: {'aliya': {'ok': 3, 'changed': 1, ...}}."""
    counters = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        host, _sep, rest = line.partition(" : ")
        if not rest:
            continue
        counters[host.strip()] = {key: int(value) for key, value in (item.split("=") for item in rest.split())}
    return counters
