"""Render the README's inventory reference from the roles' meta/argument_specs.yml.

    python3 tools/inventory_reference.py          # print the table
    python3 tools/inventory_reference.py --write  # replace it in README.md

The argument specs are what Ansible validates role input against, so the
reference generated from them cannot drift; a test compares the README with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
START = "<!-- inventory-reference:start -->"
END = "<!-- inventory-reference:end -->"


def _one_line(text) -> str:
    if isinstance(text, list):
        text = " ".join(text)
    return " ".join(str(text or "").split()).replace("|", "\\|")


def collect() -> dict[str, dict]:
    variables: dict[str, dict] = {}
    for spec_file in sorted(REPO_ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        for entry in (yaml.safe_load(spec_file.read_text(encoding="utf-8")).get("argument_specs") or {}).values():
            for name, option in (entry.get("options") or {}).items():
                known = variables.setdefault(name, {"roles": set(), "option": option})
                known["roles"].add(role)
    return variables


def render() -> str:
    lines = ["| variable | roles | type | default | description |", "|---|---|---|---|---|"]
    for name, known in sorted(collect().items()):
        option = known["option"]
        default = "required" if option.get("required") else ("`%s`" % _one_line(option["default"]) if "default" in option else "")
        if default == "``":
            default = '`""`'
        lines.append(
            "| `%s` | %s | %s | %s | %s |" % (name, ", ".join(sorted(known["roles"])), option.get("type", "str"), default, _one_line(option.get("description")))
        )
    return "\n".join(lines)


def readme_block(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args()
    table = render()
    if not args.write:
        print(table)
        return 0
    readme = REPO_ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(f"{before}{START}\n{table}\n{END}{after}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
