"""Run the real ansible command line tools from the checkout's venv."""

from __future__ import annotations

import os
import subprocess
import sys
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
