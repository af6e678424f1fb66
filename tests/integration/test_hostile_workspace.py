"""A hostile agent against the converge, on the real Docker engine with the runtime image the server role builds.

The agent runs shell commands in its container as uid 1001 and owns the
mounted .openclaw. It plants links to a root-only secret of the host, FIFOs,
links to a host directory and oversized files where the converge works, then
the converge (plain and --check --diff) and show_access.yml run as root: none
may read, move, chown or chmod what a link points to, none may hang, and the
managed files come back as regular files while the token stays the one kept
in the root-owned tenant directory. The gateway token never appears on a
command line on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from urllib.parse import quote

import psycopg2
import pytest
from test_tenant_role import Site, ok

from harness.ansible import recap, run
from harness.common import free_ports

# A run that blocks on a planted FIFO must fail the test, not the CI job.
RUN_TIMEOUT = 300
HOME = "/home/openclaw/.openclaw"


def play(site, playbook, tenants, *options):
    site.write_inventory(tenants)
    completed = run("ansible-playbook", "-i", str(site.inventory_path), playbook, *options, timeout=RUN_TIMEOUT)
    completed.recap = recap(completed.stdout)
    return completed


def environment(container):
    container.reload()
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def as_tenant(container, script):
    """A shell command inside the tenant's container as the tenant's uid, the way a prompt-injected agent runs one."""
    exit_code, output = container.exec_run(["sh", "-c", script], user="1001")
    assert exit_code == 0, output.decode(errors="replace")
    return output.decode()


def regular_bytes(directory):
    """Content of every regular file below ``directory``, read without following links."""
    found = b""
    for parent, _subdirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, "rb") as handle:
                    found += handle.read()
    return found


def tree_state(directory):
    """Owner, mode and content digest of ``directory`` and everything in it."""
    seen = {}
    for path in sorted([directory, *directory.rglob("*")]):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else None
        seen[str(path)] = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), stat.S_IFMT(info.st_mode), digest)
    return seen


@pytest.fixture(scope="module")
def site(docker_client, test_images, tmp_path_factory):
    built = Site(docker_client, test_images, tmp_path_factory.mktemp("hostile"))
    try:
        completed = built.play("playbooks/server.yml", {})
        assert completed.returncode == 0, completed.stdout[-5000:]
        yield built
    finally:
        built.cleanup()


@pytest.fixture(scope="module")
def tenants(site):
    # With a WhatsApp Business number, so every converge also writes the WABA mapping from the token.
    waba = {
        "openclaw_waba_phone_id": str(secrets.randbelow(10**14) + 10**14),
        "openclaw_waba_phone_number": "+77011234567",
        "openclaw_waba_access_token": "wabaaccess-" + secrets.token_hex(16),
        "openclaw_waba_app_secret": "wabaapp-" + secrets.token_hex(16),
    }
    converged = {"h": site.tenant("h", openclaw_port=free_ports(1)[0], **waba)}
    ok(site.converge(converged), "h")
    return converged


def mapped_token_fingerprint(site, tenants):
    """The gateway token's fingerprint the WABA mapping keeps in the shared database."""
    with psycopg2.connect(site.superuser_dsn("openclaw")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT gateway_token_sha256 FROM waba_phone_mapping WHERE waba_phone_id = %s", (tenants["h"]["openclaw_waba_phone_id"],))
        (fingerprint,) = cursor.fetchone()
    connection.close()
    return fingerprint


def fingerprint(value):
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def test_the_gateway_token_is_on_no_command_line(site, tenants):
    container = site.container("h")
    token = site.token("h")
    # Positive control: the gateway has its token - in its environment.
    assert environment(container)["OPENCLAW_GATEWAY_TOKEN"] == token
    top = container.top(ps_args="-eo pid,args")
    pid_column = top["Titles"].index("PID")
    pids = [int(process[pid_column]) for process in top["Processes"]]
    command_lines = {}
    environments = {}
    for pid in pids:
        # What any user on the host sees: /proc/<pid>/cmdline is world-readable.
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command_lines[pid] = handle.read().replace(b"\0", b" ").decode()
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environments[pid] = handle.read()
    gateways = [pid for pid, line in command_lines.items() if "gateway" in line and "--auth token" in line]
    assert gateways, command_lines
    # The probe reads the right processes: the gateway's own environment holds the token.
    assert all(f"OPENCLAW_GATEWAY_TOKEN={token}".encode() in environments[pid] for pid in gateways)
    assert not [line for line in command_lines.values() if token in line], command_lines
    # Nor is any other secret of the container: the database password of its own role.
    db_password = (site.root / "secrets" / f"db-{site.slug('h')}.password").read_text(encoding="utf-8").strip()
    assert quote(db_password, safe="") in environment(container)["OPENCLAW_DB_URL"]
    assert not [line for line in command_lines.values() if db_password in line or quote(db_password, safe="") in line]
    assert not [process for process in top["Processes"] if token in " ".join(process)]


def test_plants_in_the_workspace_are_neither_followed_nor_kept(site, tenants):
    container = site.container("h")
    state = site.state_dir("h")
    slug = site.slug("h")
    token = site.token("h")
    skills = site.root / "lib" / "skills"
    # What show_access.yml slurps and the token file are root's, in a directory the container never sees.
    root_dir, token_file = state.parent.stat(), (state.parent / "gateway_token").lstat()
    assert (root_dir.st_uid, stat.S_IMODE(root_dir.st_mode)) == (0, 0o755)
    assert stat.S_ISREG(token_file.st_mode) and (token_file.st_uid, stat.S_IMODE(token_file.st_mode)) == (0, 0o600)
    assert not [mount for mount in container.attrs["Mounts"] if mount["Source"] in (str(state.parent), str(state.parent / "gateway_token"))]
    # A root-only secret of the host, shaped like a token so an adoption that followed a link would take it.
    secrets_dir = site.root / "secrets"
    secret = secrets_dir / "hostile-probe.secret"
    secret_text = secrets.token_hex(32)
    secret.write_text(secret_text + "\n", encoding="utf-8")
    secret.chmod(0o600)
    host_before = tree_state(secrets_dir)

    as_tenant(
        container,
        f"""set -e
        cd {HOME}
        ln -sfn {secret} gateway_token
        rm -f openclaw.json && ln -s {secret} openclaw.json
        rm -f workspace/TOOLS.md && ln -s {secret} workspace/TOOLS.md
        rm -f workspace/CLAUDE.md && mkfifo workspace/CLAUDE.md
        rm -f workspace/skills/fb-report/SKILL.md && ln -s {secret} workspace/skills/fb-report/SKILL.md
        rm -rf workspace/skills/fb-leads && ln -s {secrets_dir} workspace/skills/fb-leads
        rm -rf cron && ln -s {secrets_dir} cron
        head -c 2097152 /dev/zero > workspace/skills/fb-scoring/SKILL.md
        printf 'the agent remembers\\n' > workspace/MEMORY.md
        """,
    )
    # Positive control: the agent really wrote all of this into the host's directory.
    assert os.readlink(state / "gateway_token") == str(secret)
    assert os.readlink(state / "openclaw.json") == str(secret)
    assert os.readlink(state / "cron") == str(secrets_dir)
    assert stat.S_ISFIFO((state / "workspace" / "CLAUDE.md").lstat().st_mode)
    assert (state / "workspace" / "skills" / "fb-scoring" / "SKILL.md").stat().st_size == 2 << 20

    def assert_nothing_leaked(completed):
        assert secret_text not in completed.stdout + completed.stderr
        assert tree_state(secrets_dir) == host_before, "a host file behind a planted link was changed"
        assert secret_text not in json.dumps(environment(site.container("h")))
        assert secret_text.encode() not in regular_bytes(state.parent)
        # The WABA mapping fingerprints the root-owned token, never what the planted link points to.
        assert mapped_token_fingerprint(site, tenants) == fingerprint(site.token("h"))

    # The plan: names the replacements, changes nothing, does not block on the FIFO.
    check = play(site, "tests/playbooks/tenants_only.yml", tenants, "--check", "--diff")
    assert_nothing_leaked(check)
    assert ok(check, "h")["changed"] >= 1
    assert "(a symbolic link)" in check.stdout and "(a FIFO)" in check.stdout
    assert os.readlink(state / "openclaw.json") == str(secret) and stat.S_ISFIFO((state / "workspace" / "CLAUDE.md").lstat().st_mode)

    applied = play(site, "tests/playbooks/tenants_only.yml", tenants)
    assert_nothing_leaked(applied)
    assert ok(applied, "h")["changed"] >= 1
    for relative in ("openclaw.json", "workspace/TOOLS.md", "workspace/CLAUDE.md"):
        info = (state / relative).lstat()
        assert stat.S_ISREG(info.st_mode) and (info.st_uid, stat.S_IMODE(info.st_mode)) == (1001, 0o600), relative
    assert json.loads((state / "openclaw.json").read_text(encoding="utf-8"))["gateway"]["port"] == 18789
    assert slug in (state / "workspace" / "TOOLS.md").read_text(encoding="utf-8")
    for skill in ("fb-report", "fb-leads", "fb-scoring"):
        placed = state / "workspace" / "skills" / skill
        assert stat.S_ISDIR(placed.lstat().st_mode) and not (placed / "SKILL.md").is_symlink(), skill
        assert (placed / "SKILL.md").read_bytes() == (skills / skill / "SKILL.md").read_bytes(), skill
    assert stat.S_ISDIR((state / "cron").lstat().st_mode) and (state / "cron").stat().st_uid == 1001
    # The token is the root-owned one, unchanged; the agent's own files and its old token path are left alone.
    assert site.token("h") == token and environment(site.container("h"))["OPENCLAW_GATEWAY_TOKEN"] == token
    assert (state / "workspace" / "MEMORY.md").read_text(encoding="utf-8") == "the agent remembers\n"
    assert os.readlink(state / "gateway_token") == str(secret)

    shown = play(site, "playbooks/show_access.yml", tenants, "-e", "tenant=h")
    assert shown.returncode == 0, shown.stdout[-4000:]
    assert f"Token: {token}" in shown.stdout
    assert_nothing_leaked(shown)

    # A workspace from before the token moved out of it: no token in the tenant directory, the old
    # path a link to the host's secret. The link is not adopted; a new token is made.
    (state.parent / "gateway_token").unlink()
    upgraded = play(site, "tests/playbooks/tenants_only.yml", tenants)
    ok(upgraded, "h")
    assert_nothing_leaked(upgraded)
    renewed = site.token("h")
    assert renewed not in (token, secret_text) and len(renewed) == 64
    assert environment(site.container("h"))["OPENCLAW_GATEWAY_TOKEN"] == renewed
    assert os.readlink(state / "gateway_token") == str(secret)
