"""The agent's skills and workspace templates: discoverable, truthful about the image, safe with typed text.

OpenClaw finds a skill by its SKILL.md front matter (strict YAML with `name` and
`description`; `metadata.openclaw.requires` hides a skill whose binaries or
environment are missing), so a front matter that does not parse is a skill the
agent never sees. Customer and client text must reach SQL and commands as data:
the recipes carry it in a quoted `<<'JSON'` heredoc and psql variables, never in
a command line; these tests hold every recipe to that.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import jinja2
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SKILLS = sorted(path.parent.name for path in (REPO_ROOT / "skills").glob("*/SKILL.md"))
TEMPLATES = REPO_ROOT / "templates"
DOCKERFILE = REPO_ROOT / "roles" / "server" / "files" / "runtime" / "Dockerfile"

# Debian package -> the command it provides, for the packages the skills use.
PACKAGE_BINS = {"postgresql-client": "psql", "curl": "curl", "jq": "jq", "python3": "python3", "git": "git", "socat": "socat"}
# Commands a recipe may run and that therefore belong in a skill's requires.bins.
TRACKED_BINS = ("psql", "curl", "jq", "python3", "openclaw-lead", "openclaw-capi", "openclaw")

FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.M | re.S)
VERSION_LITERAL = re.compile(r"\bv[0-9]+\.[0-9]+\b")


def load_capi():
    spec = importlib.util.spec_from_file_location("capi_for_skills", REPO_ROOT / "plugins" / "module_utils" / "capi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def front_matter(text: str) -> dict:
    lines = text.split("\n")
    assert lines[0] == "---", "SKILL.md must start with a front matter line ---"
    end = lines.index("---", 1)
    return yaml.safe_load("\n".join(lines[1:end]))


def skill_text(name: str) -> str:
    return (REPO_ROOT / "skills" / name / "SKILL.md").read_text(encoding="utf-8")


def render(template: str, **overrides) -> str:
    """As the tenant role does: Ansible's template lookup (trim_blocks) with the tenant's variables."""
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - Markdown, not HTML
    variables = {"openclaw_slug": "aliya", "openclaw_domain": "agents.example.com", **overrides}
    return env.from_string((TEMPLATES / template).read_text(encoding="utf-8")).render(**variables)


def full_render(template: str) -> str:
    """Every variable the templates read, set and long: the largest TOOLS.md a tenant can get."""
    slug = "a-very-long-tenant-slug-x" + "y" * 8
    domain = "agents." + "z" * 40 + ".example.com"
    return render(
        template,
        openclaw_slug=slug,
        openclaw_domain=domain,
        openclaw_public_url=f"https://{slug}.{domain}",
        openclaw_graph_api_version="v125.0",
        openclaw_upload_url=f"https://{domain}/openclaw/upload/{slug}/",
        openclaw_webhook_url=f"https://{domain}/openclaw/webhook/{slug}",
    )


def documents() -> dict[str, str]:
    """Every text the agent reads: the 11 skills and the rendered workspace files."""
    texts = {f"skills/{name}": skill_text(name) for name in SKILLS}
    texts["TOOLS.md"] = render("TOOLS.md.j2")
    texts["CLAUDE.md"] = render("CLAUDE.md.j2")
    return texts


def code_blocks(text: str, languages=("sh", "sql", "json", "")) -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(text) if match.group(1) in languages]


def runtime_bins() -> set[str]:
    """Commands the runtime image really has: its apt-get install line, node (the base image), openclaw, the contract's."""
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    install = re.search(r"apt-get install -y --no-install-recommends ([^;]+);", dockerfile)
    assert install, "the runtime Dockerfile no longer installs Debian packages the way this test reads them"
    packages = install.group(1).split()
    # The collection's own commands, copied onto PATH (the entry point is not one the agent runs).
    copied = re.search(r"^COPY ((?:openclaw-[a-z-]+ )+)/usr/local/bin/$", dockerfile, re.M)
    assert copied, "the runtime Dockerfile no longer copies its commands the way this test reads them"
    own = set(copied.group(1).split())
    return {PACKAGE_BINS[package] for package in packages if package in PACKAGE_BINS} | {"node", "openclaw", "bash"} | own


def test_there_are_eleven_skills():
    assert len(SKILLS) == 11, SKILLS


@pytest.mark.parametrize("name", SKILLS)
def test_front_matter_is_strict_yaml_with_name_description_and_requirements(name):
    meta = front_matter(skill_text(name))
    assert meta["name"] == name
    assert isinstance(meta["description"], str)
    assert len(meta["description"]) > 20
    requires = meta["metadata"]["openclaw"]["requires"]
    assert set(requires) <= {"bins", "anyBins", "env", "config"}
    assert all(isinstance(item, str) for item in requires.get("bins", []) + requires.get("env", []))


@pytest.mark.parametrize("name", SKILLS)
def test_required_binaries_are_the_ones_the_recipes_run_and_the_image_has(name):
    text = skill_text(name)
    requires = front_matter(text)["metadata"]["openclaw"]["requires"]
    code = "\n".join(body for _language, body in code_blocks(text)) + "\n" + " ".join(re.findall(r"`([^`\n]+)`", text))
    used = {binary for binary in TRACKED_BINS if re.search(r"(^|[\s|($])" + re.escape(binary) + r"(\s|$)", code, re.M)}
    assert used <= set(requires["bins"]), f"{name} runs {sorted(used - set(requires['bins']))} without requiring them"
    # A required binary the image lacks hides the skill from the agent.
    assert set(requires["bins"]) <= runtime_bins(), f"{name} requires {sorted(set(requires['bins']) - runtime_bins())}, not in the image"
    if "$OPENCLAW_DB_URL" in text:
        assert "OPENCLAW_DB_URL" in requires.get("env", [])


def test_tools_md_names_only_tools_the_image_has():
    line = next(line for line in render("TOOLS.md.j2").splitlines() if line.startswith("- Tools present:"))
    named = set(re.findall(r"`([^`]+)`", line))
    assert named, line
    assert named <= runtime_bins(), sorted(named - runtime_bins())
    assert {"psql", "curl", "jq", "openclaw-lead", "openclaw-capi", "openclaw-waba", "openclaw-upload-link"} <= named


def test_runtime_bins_reads_the_dockerfile():
    # Positive control for the two tests above: the parser sees psql, jq and the copied commands.
    assert {"psql", "jq", "curl", "openclaw-lead", "openclaw-waba"} <= runtime_bins()


# ---- customer text is data -------------------------------------------------------------

# -v NAME=VALUE on a psql command line: only flags, plain numbers/words the agent picks, or
# a file path from mktemp. A quoted literal or a shell variable holding typed text is refused.
ALLOWED_V = re.compile(r"""-v\s+(?:ON_ERROR_STOP=1|[a-z_]+=[A-Za-z0-9_]+|[a-z_]+="\$(?:D|DIR)/[A-Za-z0-9_.-]+")(?=[\s`]|$)""")
ANY_V = re.compile(r"""-v\s+\S+""")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_]+)\1")


def shell_blocks() -> list[tuple[str, str]]:
    found = []
    for where, text in documents().items():
        for _language, body in code_blocks(text, ("sh", "")):
            found.append((where, body))
    return found


def test_no_psql_variable_is_set_from_a_typed_value_on_the_command_line():
    offenders = []
    for where, text in documents().items():
        for candidate in ANY_V.finditer(text):
            if not ALLOWED_V.match(text, candidate.start()):
                offenders.append(f"{where}: {text[candidate.start() : candidate.start() + 60]!r}")
    assert offenders == []


def test_the_allowed_v_rule_refuses_the_old_recipes():
    # Positive control: the forms that pasted a WhatsApp name or a token into the command line.
    for bad in ("-v name='Aigerim'", '-v t="$T"', '-v phone="$PHONE"', "-v q='it''s'"):
        assert not ALLOWED_V.match(bad), bad
    for good in ("-v ON_ERROR_STOP=1", "-v days=7", '-v vf="$D/v.json"', '-v insf="$DIR/days-1.json"'):
        assert ALLOWED_V.match(good), good


def test_no_template_placeholder_or_quoted_customer_field_in_commands():
    for where, text in documents().items():
        assert "'{{" not in text, where
        assert "{{SLUG}}" not in text, where
        assert not re.search(r"""-v\s+name=""", text), where


def test_every_heredoc_is_quoted_and_uses_a_delimiter_its_content_cannot_end():
    """SQL heredocs hold only fixed SQL; typed text goes in JSON heredocs, and valid JSON never has a line JSON."""
    seen = set()
    for where, body in shell_blocks():
        lines = body.split("\n")
        for index, line in enumerate(lines):
            for match in HEREDOC.finditer(line):
                quote, delimiter = match.groups()
                assert quote == "'", f"{where}: unquoted heredoc <<{delimiter} lets the shell expand its content"
                assert delimiter in ("SQL", "JSON"), f"{where}: heredoc delimiter {delimiter}"
                end = lines.index(delimiter, index + 1)
                content = "\n".join(lines[index + 1 : end])
                if delimiter == "JSON":
                    json.loads(content)  # the example is valid JSON, so it cannot contain the line JSON
                else:
                    # SQL heredocs carry no example values of customer text: only variables.
                    assert not re.search(r"'[^']*[\u0400-\u04ff][^']*'", content), f"{where}: literal text in SQL"
                seen.add(delimiter)
    assert seen == {"SQL", "JSON"}


def test_psql_c_commands_use_no_variables():
    """psql does not substitute :'name' in -c, so a -c with a variable would tempt pasting the value."""
    for where, text in documents().items():
        for command in re.findall(r'psql [^\n]*? -c "([^"]*)"', text):
            assert ":'" not in command, (where, command)


def test_customer_messages_are_not_recorded_by_the_agent():
    """The hook records inbound messages; the agent only records its replies through openclaw-lead."""
    for where, text in documents().items():
        assert not re.search(r"INSERT INTO wa_dialogs|INSERT INTO wa_messages|INSERT INTO leads\b", text), where
        assert not re.search(r"incoming_count\s*=\s*\w*\.?incoming_count\s*\+", text), where
        assert "send-capi.sh" not in text and "send-waba.sh" not in text, where
    tools = render("TOOLS.md.j2")
    assert "openclaw-lead outbound <<'JSON'" in tools


def test_levels_two_and_three_are_sent_by_the_agent_and_level_three_needs_an_amount_for_purchase():
    tools = render("TOOLS.md.j2")
    assert "openclaw-capi send --level 2" in tools
    assert "openclaw-capi send --level 3" in tools
    assert "--value" in tools and "--currency" in tools
    everything = "\n".join(documents().values())
    assert "You do **not** send Conversions API events" not in everything
    assert "not by you" not in everything
    capi = load_capi()
    # The booking event the skills name is one Meta accepts for business messaging; Schedule is not.
    assert "OrderCreated" in capi.BUSINESS_MESSAGING_EVENTS
    assert "Schedule" not in capi.BUSINESS_MESSAGING_EVENTS
    assert "OrderCreated" in skill_text("wa-capi-setup")
    # Every example that sends level 3 with an amount names its currency too.
    for where, text in documents().items():
        for line in text.splitlines():
            if "openclaw-capi send --level 3" in line and "--value" in line:
                assert re.search(r"--currency [A-Z]{3}\b", line), (where, line)


# ---- one Graph API version --------------------------------------------------------------


def role_defaults(role: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"))


def test_one_graph_api_version_everywhere():
    version = load_capi().DEFAULT_API_VERSION
    assert role_defaults("server")["openclaw_graph_api_version"] == version
    assert role_defaults("tenant")["openclaw_graph_api_version"] == version
    # The former name follows the new one unless an inventory still sets it.
    assert role_defaults("server")["openclaw_meta_graph_api_version"] == "{{ openclaw_graph_api_version }}"
    for role in ("server", "tenant"):
        specs = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
        option = specs["argument_specs"]["main"]["options"]["openclaw_graph_api_version"]
        assert option["default"] == version, role
    for name, values in ((role, role_defaults(role)) for role in ("server", "tenant", "migrations", "nginx", "certificates")):
        for key, value in (values or {}).items():
            if "api_version" in key and isinstance(value, str) and VERSION_LITERAL.fullmatch(value):
                assert value == version, f"{name}: {key} = {value}"
    rendered = render("TOOLS.md.j2")
    assert f"https://graph.facebook.com/{version}" in rendered
    assert set(VERSION_LITERAL.findall(rendered)) == {version}
    assert "v125.0" in full_render("TOOLS.md.j2")  # the setting really drives the template


def test_skills_hold_no_graph_version_and_define_graph_before_use():
    for name in SKILLS:
        text = skill_text(name)
        assert not VERSION_LITERAL.search(text), f"{name} names a Graph API version; TOOLS.md holds the one setting"
        assert "graph.facebook.com/v" not in text, name
        for _language, body in code_blocks(text, ("sh",)):
            defines = re.search(r"^GRAPH=", body, re.M)
            if defines:
                assert "OPENCLAW_GRAPH_API_VERSION" in body.split("\n")[body[: defines.start()].count("\n")], name
    tools = render("TOOLS.md.j2")
    assert re.search(r"^GRAPH=\$\{OPENCLAW_GRAPH_URL:-https://graph.facebook.com\}/\$\{OPENCLAW_GRAPH_API_VERSION:-v[0-9.]+\}$", tools, re.M)


# ---- templates ----------------------------------------------------------------------------


def test_full_tenant_render_of_tools_md_stays_under_12000_characters():
    text = full_render("TOOLS.md.j2")
    assert len(text) < 12000, len(text)
    assert "{{" not in text.replace("{{campaign.name}}", "")
    assert "{%" not in text


def test_claude_md_renders_and_points_to_tools_md():
    text = full_render("CLAUDE.md.j2")
    assert "TOOLS.md" in text
    assert "openclaw-capi send" in text
    for name in SKILLS:
        assert f"skills/{name}/SKILL.md" in text
        assert f"skills/{name}/SKILL.md" in render("TOOLS.md.j2")


def test_template_readme_documents_the_graph_version_default():
    version = load_capi().DEFAULT_API_VERSION
    row = next(line for line in (TEMPLATES / "README.md").read_text(encoding="utf-8").splitlines() if "`openclaw_graph_api_version`" in line)
    assert f"`{version}`" in row
