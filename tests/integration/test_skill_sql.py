"""Every SQL statement the agent is told to run works on a freshly migrated tenant database, as the tenant.

The statements come from the skills and the rendered workspace templates: ```sql
blocks, psql heredocs and `psql -c "..."` in shell blocks, and SQL written inline
in the prose. Each runs through the real psql, with its psql variables set to
test values, inside a transaction that is rolled back.

The second half feeds hostile customer text (quotes, $(...), backticks, a line
equal to each heredoc delimiter) through every shell recipe that carries typed
text, with stand-ins for curl and openclaw-lead, and shows that nothing in the
text runs and that the text arrives unchanged; the positive controls paste the
same text the unsafe ways and watch it run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2
import psycopg2
import pytest

from harness.ansible import REPO_ROOT, run_module

SKILLS = sorted(path.parent.name for path in (REPO_ROOT / "skills").glob("*/SKILL.md"))
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.M | re.S)
INLINE_SQL = re.compile(r"`((?:SELECT|UPDATE|INSERT|WITH|DELETE)\b[^`]*)`")
HEREDOC_SQL = re.compile(r"<<'SQL'[^\n]*\n(.*?)^SQL$", re.M | re.S)
PSQL_C = re.compile(r'psql [^\n]*?-c "([^"]*)"')
VARIABLE = re.compile(r"(?<![:\w]):'?([A-Za-z_][A-Za-z0-9_]*)'?")

DIRECTION = "11111111-1111-4111-8111-111111111111"
CREATIVE = "22222222-2222-4222-8222-222222222222"
LEAD = "33333333-3333-4333-8333-333333333333"
PHONE = "77011234567"
STARTED = (datetime.now(timezone.utc) - timedelta(minutes=3)).isoformat()

# Test values of every psql variable the recipes use. A new variable fails the test until it has one.
VALUES = {
    "phone": PHONE, "q": "interested", "s": "wants a booking", "name": "Test direction", "objective": "whatsapp",
    "budget": "1500", "cpl": "300", "targeting": '{"geo_locations": {"countries": ["KZ"]}}', "age_min": "18", "age_max": "65",
    "site_url": "", "pixel": "", "form": "", "app": "", "store_url": "", "ig_url": "", "act": "act_1", "currency": "KZT",
    "tz": "Asia/Almaty", "page": "100", "page_token": "page-token", "ig": "", "min_cents": "150000", "max_cents": "5000000",
    "cpl_cents": "150000", "tg_token": "123:abc", "tg_chat": "42", "t": "EAAtoken", "adset": "2001", "adset_name": "Ad set 1",
    "direction": DIRECTION, "score": "12", "class": "good", "action": "budget_increase", "details": '{"from": 1000, "to": 1300}',
    "hs": "12", "cpl_pts": "10", "trend_pts": "0", "diag_pts": "-8", "today_pts": "0", "factor": "0.8", "ecpl": "",
    "ctr": "1.2", "cpm": "3.4", "freq": "1.1", "impr": "1000", "spend_cents": "1500", "started": STARTED,
    "status": "success", "error": "", "count": "1", "risky": "0", "days": "7", "limit": "10", "lead": LEAD, "stage": "contacted",
    "note": "called back", "creative": CREATIVE, "campaign": "3001", "ads": "1", "ad": "4001", "fb_creative": "5001",
    "rule": "6001", "clicks": "10", "link_clicks": "8", "leads": "1", "cpl_cents_test": "", "views": "100", "avg_watch": "",
    "verdict": "good", "why": "cheap leads", "dataset": "7001", "token": "EAAtoken", "waba": "8001", "e1": "LeadSubmitted",
    "e2": "QualifiedLead", "e3": "OrderCreated", "threshold": "3", "def2": "", "def3": "", "phone_id": "9001", "secret": "s3cret",
    "prompt": "Be brief.",
}  # fmt: skip
INSIGHTS = {
    "data": [
        {
            "date_start": "2026-01-01", "date_stop": "2026-01-01", "adset_id": "2001", "adset_name": "Ad set 1", "campaign_id": "3001",
            "impressions": "1000", "reach": "900", "clicks": "10", "inline_link_clicks": "8", "spend": "12.50", "ctr": "1.0",
            "cpm": "12.5", "frequency": "1.1", "actions": [{"action_type": "onsite_conversion.total_messaging_connection", "value": "3"}],
        }
    ]
}  # fmt: skip
FX = {"base": "USD", "rates": {"KZT": 505.25, "USD": 1}}


def render(template: str) -> str:
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - Markdown
    return env.from_string((REPO_ROOT / "templates" / template).read_text(encoding="utf-8")).render(openclaw_slug="aliya", openclaw_domain="agents.example.com")


def documents() -> dict[str, str]:
    texts = {f"skills/{name}": (REPO_ROOT / "skills" / name / "SKILL.md").read_text(encoding="utf-8") for name in SKILLS}
    texts["TOOLS.md"] = render("TOOLS.md.j2")
    texts["CLAUDE.md"] = render("CLAUDE.md.j2")
    return texts


def sql_units() -> list[tuple[str, str]]:
    """(where, sql) for every statement group the agent may run."""
    units = []
    for where, text in documents().items():
        for index, match in enumerate(FENCE.finditer(text)):
            language, body = match.groups()
            line = text[: match.start()].count("\n") + 1
            if language == "sql":
                units.append((f"{where}:{line}:sql", body))
            elif language in ("sh", ""):
                units.extend((f"{where}:{line}:heredoc{number}", sql) for number, sql in enumerate(HEREDOC_SQL.findall(body)))
                units.extend((f"{where}:{line}:c{number}", sql) for number, sql in enumerate(PSQL_C.findall(body)))
            del index
        prose = FENCE.sub("", text)
        for number, sql in enumerate(INLINE_SQL.findall(prose)):
            if "..." not in sql:  # an elided example such as UPDATE capi_settings SET ... WHERE is_active
                units.append((f"{where}:inline{number}", sql))
    return units


UNITS = sql_units()


def test_the_extraction_finds_the_recipes():
    """Positive control for the extraction: each source kind yields statements."""
    kinds = {where.rsplit(":", 1)[-1].rstrip("0123456789") for where, _sql in UNITS}
    assert {"sql", "heredoc", "c", "inline"} <= kinds, kinds
    assert len(UNITS) > 60
    with_skills = {where.split(":")[0] for where, _sql in UNITS}
    assert {f"skills/{name}" for name in SKILLS if name != "wa-onboarding"} <= with_skills | {"skills/wa-onboarding"}


@pytest.fixture(scope="module")
def tenant_db(pg_cluster, tmp_path_factory):
    """A tenant database migrated by openclaw_db_schema with every migration, owned by its own role, with a little data."""
    slug = "k" + secrets.token_hex(4)
    names = {"name": f"openclaw_{slug}", "owner": f"openclaw_{slug}", "owner_password": secrets.token_urlsafe(18)}
    created = run_module("openclaw.standalone.openclaw_db_schema", {**pg_cluster.connection_options(), **names})
    assert not created.failed, created.stdout[-3000:]
    dsn = pg_cluster.dsn_for(names["name"], user=names["owner"], password=names["owner_password"])
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO directions (id, name, objective, fb_campaign_id) VALUES (%s, 'Seed', 'whatsapp', '3001')", (DIRECTION,))
        cur.execute("INSERT INTO creatives (id, title, status, direction_id, fb_creative_id) VALUES (%s, 'Clip', 'ready', %s, '5001')", (CREATIVE, DIRECTION))
        cur.execute("INSERT INTO leads (id, name, phone, source_type) VALUES (%s, 'Lead', %s, 'whatsapp')", (LEAD, PHONE))
        cur.execute(
            "INSERT INTO wa_dialogs (phone, name, incoming_count, capi_msg_count, waba_window_expires_at)"
            " VALUES (%s, 'Aigerim', 3, 3, now() + interval '1 day')",
            (PHONE,),
        )
        cur.execute("INSERT INTO capi_settings (pixel_id, access_token) VALUES ('7001', 'capi-token')")
        cur.execute("UPDATE config SET waba_enabled = true, waba_phone_id = '9001', waba_access_token = 'waba-token' WHERE id = 1")
    work = tmp_path_factory.mktemp("skill-sql")
    work.chmod(0o755)
    files = {"vf": work / "v.json", "insf": work / "insights.json", "fxf": work / "fx.json"}
    files["vf"].write_text(json.dumps(VALUES, ensure_ascii=False), encoding="utf-8")
    files["insf"].write_text(json.dumps(INSIGHTS), encoding="utf-8")
    files["fxf"].write_text(json.dumps(FX), encoding="utf-8")
    url = f"postgresql://{names['owner']}:{names['owner_password']}@{pg_cluster.host}:{pg_cluster.port}/{names['name']}"
    yield {"dsn": dsn, "url": url, "files": {key: str(path) for key, path in files.items()}, "work": work, "bindir": pg_cluster.bindir}
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "{names["name"]}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{names["owner"]}"')


def run_psql(tenant_db, sql: str) -> subprocess.CompletedProcess:
    body = "\n".join(line for line in sql.split("\n") if line.strip().upper() not in ("BEGIN;", "COMMIT;")).strip()
    if not body.endswith(";") and not body.rsplit("\n", maxsplit=1)[-1].lstrip().startswith("\\") and not body.endswith("\\gset"):
        body += ";"  # one-line examples written without the semicolon
    script = "BEGIN;\n" + body + "\nROLLBACK;\n"
    names = set(VARIABLE.findall(body)) - {"v"} - set(re.findall(r"^\\set (\w+)", body, re.M))
    missing = sorted(name for name in names if name not in VALUES and name not in tenant_db["files"])
    assert not missing, f"no test value for psql variables {missing}"
    arguments = ["psql", tenant_db["url"], "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for name in sorted(names):
        value = tenant_db["files"].get(name, VALUES.get(name))
        arguments += ["-v", f"{name}={value}"]
    arguments += ["-v", "v=" + json.dumps(VALUES, ensure_ascii=False)]
    return subprocess.run(arguments, input=script, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("where", "sql"), UNITS, ids=[where for where, _sql in UNITS])
def test_statement_runs_as_the_tenant(tenant_db, where, sql):
    result = run_psql(tenant_db, sql)
    assert result.returncode == 0, f"{where}\n{sql}\n{result.stderr}"
    assert "ERROR" not in result.stderr, result.stderr


def test_a_broken_statement_fails(tenant_db):
    """Positive control: a column that does not exist, and a variable without a value, are caught."""
    assert run_psql(tenant_db, "SELECT no_such_column FROM config;").returncode != 0
    with pytest.raises(AssertionError, match="no test value"):
        run_psql(tenant_db, "SELECT :'no_such_variable';")


def test_statements_run_as_the_tenant_role_not_a_superuser(tenant_db):
    result = run_psql(tenant_db, "SELECT 'role=' || rolname || ' super=' || rolsuper FROM pg_roles WHERE rolname = current_user;")
    assert result.returncode == 0, result.stderr
    assert "super=false" in result.stdout
    assert "role=openclaw_k" in result.stdout


# ---- hostile customer text through the shell recipes ------------------------------------------------


def shell_recipes() -> dict[str, str]:
    """Every shell block that carries typed text in a JSON heredoc, keyed by where it is."""
    recipes = {}
    for where, text in documents().items():
        for match in FENCE.finditer(text):
            language, body = match.groups()
            if language in ("sh", "") and "<<'JSON'" in body:
                recipes[f"{where}:{text[: match.start()].count(chr(10)) + 1}"] = body
    return recipes


def graph_line() -> str:
    return next(line for line in render("TOOLS.md.j2").splitlines() if line.startswith("GRAPH="))


STUB_CURL = r"""#!/usr/bin/env python3
# Stand-in for curl: records its arguments and body, answers like the Graph API.
import json, os, sys
args = sys.argv[1:]
out = os.environ["STUB_OUT"]
record = {"args": args}
if "--data-binary" in args:
    value = args[args.index("--data-binary") + 1]
    record["body"] = open(value[1:], encoding="utf-8").read() if value.startswith("@") else value
with open(os.path.join(out, "curl.jsonl"), "a", encoding="utf-8") as handle:
    handle.write(json.dumps(record) + "\n")
url = next((a for a in args if a.startswith("http")), "")
answer = {"messages": [{"id": "wamid.TEST"}]} if url.endswith("/messages") else {"id": "10", "name": "Owner"}
text = json.dumps(answer)
if "-o" in args:
    open(args[args.index("-o") + 1], "w", encoding="utf-8").write(text)
else:
    sys.stdout.write(text)
"""
# Stand-in for openclaw-lead: keeps what arrived on stdin and, for outbound, records it with the
# collection's own recorder (module_utils.leads), as the real command does, in the tenant database.
STUB_LEAD = r"""#!{python}
import json, os, sys
sys.path.insert(0, {collections!r})
data = sys.stdin.read()
with open(os.path.join(os.environ["STUB_OUT"], "lead-" + sys.argv[1] + ".json"), "w", encoding="utf-8") as handle:
    handle.write(data)
if sys.argv[1] == "outbound":
    import psycopg2
    from ansible_collections.openclaw.standalone.plugins.module_utils import leads
    conn = psycopg2.connect(os.environ["OPENCLAW_DB_URL"])
    print(json.dumps(leads.record_outbound(conn, leads.parse_outbound(json.loads(data))), default=str))
"""


@pytest.fixture
def sandbox(tenant_db, tmp_path):
    tmp_path.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    lead = STUB_LEAD.replace("{python}", sys.executable).replace("{collections!r}", repr(str(REPO_ROOT / ".build" / "collections")))
    for name, text in (("curl", STUB_CURL), ("openclaw-lead", lead)):
        path = bindir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "pwned"
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "OPENCLAW_DB_URL": tenant_db["url"],
        "OPENCLAW_GRAPH_API_VERSION": "v25.0",
        "STUB_OUT": str(out),
        "LANG": "C.UTF-8",
    }
    return {"env": env, "out": out, "marker": marker, "cwd": tmp_path}


def hostile(marker: Path) -> str:
    """Customer text that runs `touch <marker>` if any of it reaches a shell, and ends every heredoc we use."""
    m = shlex.quote(str(marker))
    return "\n".join(
        [
            f"O'Brien \"double\" $(touch {m}) `touch {m}` ; touch {m} ' ; touch {m} ; '",
            "JSON",
            f"touch {m}",
            "SQL",
            f"touch {m}",
            "$HOME \\n \\\\ %s :'phone' :phone \u0000".replace("\u0000", ""),
            "Привет, запишите меня на пятницу",
        ]
    )


def with_values(recipe: str, replace) -> str:
    """The recipe with its JSON heredoc replaced by the JSON of replace(example values)."""
    match = re.search(r"<<'JSON'\n(.*?)\nJSON\n", recipe, re.S)
    values = replace(json.loads(match.group(1)))
    return recipe[: match.start(1)] + json.dumps(values, ensure_ascii=False) + recipe[match.end(1) :]


def run_shell(sandbox, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], env=sandbox["env"], cwd=sandbox["cwd"], capture_output=True, text=True, timeout=60, check=False)


def query(tenant_db, sql, params=()):
    with psycopg2.connect(tenant_db["dsn"]) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


RECIPES = shell_recipes()


def recipe(prefix: str, needle: str) -> str:
    found = [body for where, body in RECIPES.items() if where.startswith(prefix) and needle in body]
    assert len(found) == 1, (prefix, needle, list(RECIPES))
    return found[0]


def test_every_recipe_with_typed_text_is_attacked_here():
    """A new recipe that carries typed text must get its own attack below."""
    covered = {
        ("TOOLS.md", "UPDATE wa_dialogs SET qualification"),
        ("TOOLS.md", "openclaw-lead outbound <<'JSON'"),
        ("skills/fb-onboarding", "fb_access_token = :'t'"),
        ("skills/wa-waba-setup", "openclaw-lead outbound"),
    }
    assert len(RECIPES) == len(covered), sorted(RECIPES)
    for prefix, needle in covered:
        recipe(prefix, needle)


def test_qualification_recipe_stores_hostile_text_as_data(tenant_db, sandbox):
    text = hostile(sandbox["marker"])
    script = with_values(recipe("TOOLS.md", "UPDATE wa_dialogs SET qualification"), lambda v: {**v, "phone": PHONE, "q": text, "s": text})
    result = run_shell(sandbox, script)
    assert result.returncode == 0, result.stderr
    assert not sandbox["marker"].exists()
    assert query(tenant_db, "SELECT qualification, summary FROM wa_dialogs WHERE phone = %s", (PHONE,)) == [(text, text)]


def test_outbound_recipe_passes_hostile_text_as_json(tenant_db, sandbox):
    text = hostile(sandbox["marker"])
    script = with_values(recipe("TOOLS.md", "openclaw-lead outbound <<'JSON'"), lambda v: {**v, "text": text})
    result = run_shell(sandbox, script)
    assert result.returncode == 0, result.stderr
    assert not sandbox["marker"].exists()
    received = json.loads((sandbox["out"] / "lead-outbound.json").read_text(encoding="utf-8"))
    assert received["text"] == text
    assert received["to"] == PHONE
    stored = query(tenant_db, "SELECT message_text FROM wa_messages WHERE direction = 'outbound' AND channel = 'baileys' AND phone = %s", (PHONE,))
    assert stored[-1][0] == text


def test_onboarding_token_recipe_keeps_a_hostile_token_out_of_the_shell(tenant_db, sandbox):
    text = hostile(sandbox["marker"])
    script = graph_line() + "\n" + with_values(recipe("skills/fb-onboarding", "fb_access_token = :'t'"), lambda v: {**v, "t": text})
    result = run_shell(sandbox, script)
    assert result.returncode == 0, result.stderr
    assert not sandbox["marker"].exists()
    assert query(tenant_db, "SELECT fb_access_token FROM config WHERE id = 1") == [(text,)]
    call = json.loads((sandbox["out"] / "curl.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert f"Authorization: Bearer {text}" in call["args"]
    assert "https://graph.facebook.com/v25.0/me" in call["args"]


def test_waba_reply_recipe_sends_and_records_hostile_text_unchanged(tenant_db, sandbox):
    text = hostile(sandbox["marker"])
    script = with_values(recipe("skills/wa-waba-setup", "openclaw-lead outbound"), lambda v: {**v, "to": "+" + PHONE, "text": text})
    result = run_shell(sandbox, script)
    assert result.returncode == 0, result.stderr
    assert not sandbox["marker"].exists()
    call = json.loads((sandbox["out"] / "curl.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert call["args"][-1] == "https://graph.facebook.com/v25.0/9001/messages"
    assert json.loads(call["body"]) == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": PHONE, "type": "text", "text": {"body": text}}
    recorded = json.loads((sandbox["out"] / "lead-outbound.json").read_text(encoding="utf-8"))
    assert recorded == {"to": "+" + PHONE, "text": text, "channel": "waba", "message_id": "wamid.TEST"}
    stored = query(tenant_db, "SELECT message_text, message_id FROM wa_messages WHERE channel = 'waba' AND direction = 'outbound'")
    assert stored == [(text, "wamid.TEST")]


def test_waba_reply_recipe_sends_nothing_when_the_window_is_closed(tenant_db, sandbox):
    script = with_values(recipe("skills/wa-waba-setup", "openclaw-lead outbound"), lambda v: {**v, "to": "+70000000000"})
    result = run_shell(sandbox, script)
    assert result.returncode == 0, result.stderr
    assert "closed" in result.stdout
    assert not (sandbox["out"] / "curl.jsonl").exists()


# Positive controls: the same text, pasted the unsafe ways, does run.


def test_control_text_pasted_into_psql_v_runs(sandbox):
    text = hostile(sandbox["marker"])
    script = f"psql \"$OPENCLAW_DB_URL\" -X -v name='{text}' -c 'SELECT 1' >/dev/null 2>&1; true"
    run_shell(sandbox, script)
    assert sandbox["marker"].exists()


def test_control_raw_text_in_a_json_heredoc_ends_it_and_runs(sandbox):
    text = hostile(sandbox["marker"])
    body = recipe("TOOLS.md", "openclaw-lead outbound <<'JSON'")
    match = re.search(r"<<'JSON'\n(.*?)\nJSON\n", body, re.S)
    script = body[: match.start(1)] + text + body[match.end(1) :]
    run_shell(sandbox, script)
    assert sandbox["marker"].exists()


def missing_columns(texts: dict[str, str], columns: set[tuple[str, str]]) -> list[str]:
    tables = {table for table, _column in columns}
    missing = set()
    for where, text in texts.items():
        for table, column in re.findall(r"`([a-z_]+)\.([a-z_0-9]+)`", text):
            if table in tables and (table, column) not in columns:
                missing.add(f"{where}: {table}.{column}")
        for table, names in re.findall(r"`([a-z_]+)`: ((?:`[a-z_0-9]+`(?:, | and | or )?)+)", text):
            if table in tables:
                missing.update(f"{where}: {table}.{name}" for name in re.findall(r"`([a-z_0-9]+)`", names) if (table, name) not in columns)
    return sorted(missing)


def test_every_table_column_named_in_the_prose_exists(tenant_db):
    """`table.column` in the instructions (not only in SQL) names a real column, so the agent never reads a missing one."""
    columns = set(query(tenant_db, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"))
    assert missing_columns(documents(), columns) == []
    # Positive control: both spellings of a missing column are caught.
    probe = {"probe": "Read `config.fb_user_token`, and `creatives`: `title`, `total_views`."}
    assert missing_columns(probe, columns) == ["probe: config.fb_user_token", "probe: creatives.total_views"]


# Skills' SQL that stores typed text, run the way TOOLS.md loads values: (skill, statement marker, key, check).
LOADED = [
    ("fb-leads", "SET notes = concat_ws", "note", "SELECT notes FROM leads WHERE id = %s", (LEAD,)),
    ("wa-waba-setup", "SET waba_bot_system_prompt", "prompt", "SELECT waba_bot_system_prompt FROM config WHERE id = 1", ()),
    ("fb-onboarding", "INSERT INTO directions", "name", "SELECT name FROM directions WHERE name LIKE 'O''Brien%%'", ()),
]


@pytest.mark.parametrize(("skill", "marker", "key", "check", "params"), LOADED, ids=[item[0] for item in LOADED])
def test_skill_sql_stores_hostile_text_loaded_from_json(tenant_db, sandbox, skill, marker, key, check, params):
    text = hostile(sandbox["marker"])
    blocks = [sql for where, sql in UNITS if where.startswith(f"skills/{skill}:") and marker in sql]
    assert len(blocks) == 1, blocks
    sql = blocks[0]
    names = sorted(set(VARIABLE.findall(sql)))
    values = {name: VALUES[name] for name in names}
    values[key] = text
    loader = "SELECT " + ", ".join(f"v->>'{name}' AS {name}" for name in names) + " FROM (SELECT :'v'::jsonb AS v) AS i \\gset"
    script = (
        "D=$(mktemp -d)\ncat > \"$D/v.json\" <<'JSON'\n" + json.dumps(values, ensure_ascii=False) + "\nJSON\n"
        'psql "$OPENCLAW_DB_URL" -X -q -v ON_ERROR_STOP=1 -v vf="$D/v.json" <<\'SQL\'\n'
        "\\set v `cat :'vf'`\n" + loader + "\n" + sql + "\nSQL\n"
    )
    result = run_shell(sandbox, script)
    assert result.returncode == 0, result.stderr
    assert not sandbox["marker"].exists()
    assert query(tenant_db, check, params)[-1][0].endswith(text)
