"""The README's inventory reference is the one generated from the roles' argument specs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location("inventory_reference", REPO_ROOT / "tools" / "inventory_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_argument_specs():
    tool = load_tool()
    assert tool.readme_block((REPO_ROOT / "README.md").read_text(encoding="utf-8")) == tool.render(), "run: python3 tools/inventory_reference.py --write"


def test_every_role_has_argument_specs_and_documents_its_defaults():
    tool = load_tool()
    variables = tool.collect()
    for role in sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if path.is_dir()):
        assert (REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").is_file(), role
        defaults = REPO_ROOT / "roles" / role / "defaults" / "main.yml"
        if defaults.is_file():
            for name in yaml.safe_load(defaults.read_text(encoding="utf-8")) or {}:
                assert name in variables, f"{role}: default {name} is not in any argument spec"
