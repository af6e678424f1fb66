"""meta/execution-environment.yml declares exactly the controller's third-party imports."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# Plugins that run on the controller; modules and their module_utils run on the servers.
CONTROLLER_PLUGINS = ("action", "filter", "plugin_utils", "lookup", "callback", "inventory", "test")
# Distribution names on PyPI of the modules the controller plugins import.
DISTRIBUTIONS = {"jsonschema": "jsonschema", "yaml": "PyYAML", "jinja2": "Jinja2"}
# Part of every controller already: ansible-core depends on them.
WITH_ANSIBLE_CORE = {"ansible", "ansible_collections", "jinja2", "yaml"}


def controller_imports() -> set[str]:
    names = set()
    for kind in CONTROLLER_PLUGINS:
        for path in sorted((REPO_ROOT / "plugins" / kind).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name not in WITH_ANSIBLE_CORE and name != "__future__"}


def declared() -> set[str]:
    meta = yaml.safe_load((REPO_ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    requirements = (REPO_ROOT / meta["dependencies"]["python"]).read_text(encoding="utf-8")
    return {re.split(r"[<>=!~\s\[;]", line.strip(), maxsplit=1)[0] for line in requirements.splitlines() if line.strip() and not line.startswith("#")}


def test_every_controller_import_is_declared_and_nothing_else():
    needed = {DISTRIBUTIONS.get(name, name) for name in controller_imports()}
    assert needed == declared()


def test_the_controller_needs_jsonschema():
    # A positive control for the scan above: the gateway configuration check imports it.
    assert "jsonschema" in controller_imports()


def test_the_example_builds_on_a_supported_core():
    example = yaml.safe_load((REPO_ROOT / "examples" / "execution-environment" / "execution-environment.yml").read_text(encoding="utf-8"))
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    assert example["version"] == 3
    oldest = runtime["requires_ansible"].removeprefix(">=")
    assert f">={oldest.rsplit('.', 1)[0]}" in example["dependencies"]["ansible_core"]["package_pip"]
