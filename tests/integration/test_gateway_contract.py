"""The configuration the collection writes is one the pinned OpenClaw gateway accepts, and nothing else is.

Each tenant's openclaw.json is rendered by the tenant role itself, checked by
the role's own schema check, and then given to the gateway stand-in, which
refuses to start on anything the real 2026.2.17 gateway refuses (facts and
sources: templates/README.md). A deliberately wrong key must fail both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from harness.ansible import run
from harness.common import free_port, loopback_request, stop_process, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN = REPO_ROOT / "tests" / "images" / "gateway" / "gateway_standin.py"
SCHEMA = REPO_ROOT / "roles" / "tenant" / "files" / "openclaw-gateway.schema.json"
HOOK_DIR = REPO_ROOT / "roles" / "tenant" / "files" / "hooks" / "openclaw-lead"
PLAYBOOK = REPO_ROOT / "tests" / "playbooks" / "render_gateway_config.yml"
GATEWAY_TOKEN = "g" * 64
HOOKS_TOKEN = "h" * 64

TENANTS = {
    "minimal": {},
    "full": {
        "openclaw_telegram_bot_token": "123456:telegram-test-token",
        "openclaw_model": "anthropic/claude-sonnet-4-5",
        "openclaw_whatsapp_model": "anthropic/claude-haiku-4-5",
        "openclaw_whatsapp_dm_policy": "allowlist",
        "openclaw_whatsapp_allow_from": ["+77011234567"],
        "openclaw_tools_elevated": True,
        "openclaw_tools_elevated_allow_from": ["operator"],
        "openclaw_extra_config": {"agents": {"defaults": {"skipBootstrap": True}}},
        "openclaw_report_telegram_chat": "-1001234567890",
        "openclaw_timezone": "Europe/Berlin",
    },
}


def inventory(path: Path, tenants: dict) -> Path:
    data = {
        "all": {
            "vars": {"openclaw_domain": "agents.example.com", "ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "children": {
                "openclaw_servers": {"hosts": {"srv": {"openclaw_docker_network_subnet": "172.30.0.0/24"}}},
                "openclaw_tenants": {"hosts": {name: {"openclaw_server": "srv", **values} for name, values in tenants.items()}},
            },
        }
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def render(tmp_path: Path, tenants: dict) -> subprocess.CompletedProcess:
    out = tmp_path / "rendered"
    out.mkdir(exist_ok=True)
    return run("ansible-playbook", "-i", str(inventory(tmp_path / "inventory.yml", tenants)), str(PLAYBOOK), "-e", f"render_dir={out}")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    tmp_path = tmp_path_factory.mktemp("gateway-config")
    result = render(tmp_path, TENANTS)
    assert result.returncode == 0, result.stdout + result.stderr
    return {name: json.loads((tmp_path / "rendered" / f"{name}.json").read_text()) for name in TENANTS} | {
        f"{name}.cron": json.loads((tmp_path / "rendered" / f"{name}.cron.json").read_text()) for name in TENANTS
    }


class Gateway:
    """The stand-in started on a state directory holding one openclaw.json."""

    def __init__(self, home: Path, config: dict | None, env: dict | None = None, extra_path: Path | None = None):
        self.home = home
        state = home / ".openclaw"
        state.mkdir(parents=True, exist_ok=True)
        if config is not None:
            (state / "openclaw.json").write_text(json.dumps(config), encoding="utf-8")
        self.port = free_port()
        self.env = {
            "HOME": str(home),
            "PATH": (f"{extra_path}{os.pathsep}" if extra_path else "") + os.environ["PATH"],
            "OPENCLAW_GATEWAY_TOKEN": GATEWAY_TOKEN,
            "OPENCLAW_HOOKS_TOKEN": HOOKS_TOKEN,
            "TELEGRAM_BOT_TOKEN": "123456:telegram-test-token",
            **(env or {}),
        }
        self.env = {key: value for key, value in self.env.items() if value is not None}
        self.process: subprocess.Popen | None = None

    def start(self) -> Gateway:
        self.process = subprocess.Popen(
            [sys.executable, str(STANDIN), "gateway", "--bind", "loopback", "--port", str(self.port), "--auth", "token"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_port(self.port, 20, "gateway stand-in", process=self.process)
        return self

    def refusal(self) -> str:
        """Starts it expecting the refusal to start; returns what it said."""
        completed = subprocess.run(
            [sys.executable, str(STANDIN), "gateway", "--bind", "loopback", "--port", str(self.port), "--auth", "token"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert completed.returncode == 1, f"the stand-in started on a configuration the gateway refuses: {completed.stdout}"
        return completed.stdout + completed.stderr

    def stop(self) -> str:
        if self.process is None:
            return ""
        stop_process(self.process)
        return self.process.stdout.read() if self.process.stdout else ""

    def request(self, method: str, path: str, body: dict | bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
        return loopback_request(self.port, method, path, body, headers)


@pytest.fixture
def gateway(tmp_path):
    started = []

    def make(config, **kwargs):
        instance = Gateway(tmp_path / f"home{len(started)}", config, **kwargs)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()


def test_scheduled_jobs_report_only_to_the_clients_own_chat(rendered):
    minimal, full = rendered["minimal.cron"], rendered["full.cron"]
    assert minimal["version"] == 1 and [job["id"] for job in minimal["jobs"]] == ["fb-scoring"]
    assert minimal["jobs"][0]["payload"]["deliver"] is False
    assert [job["id"] for job in full["jobs"]] == ["fb-scoring", "fb-report-morning", "fb-report-weekly"]
    for job in full["jobs"]:
        assert job["schedule"]["tz"] == "Europe/Berlin" and job["sessionTarget"] == "isolated"
        assert job["payload"]["message"].startswith(f"[cron: {job['id']}] ")
        if job["payload"]["deliver"]:
            # Never "last": the last route can be a customer's WhatsApp chat.
            assert (job["payload"]["channel"], job["payload"]["to"]) == ("telegram", "-1001234567890")


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_rendered_configuration_starts_the_gateway(rendered, gateway, tenant):
    config = rendered[tenant]
    instance = gateway(config).start()
    assert instance.process.poll() is None
    # 2026.2.17 has no health endpoint: /healthz is an ordinary (authenticated) path.
    assert instance.request("GET", "/healthz")[0] == 401
    assert instance.request("GET", "/", headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"})[0] == 200


def test_lead_bot_defaults_open_whatsapp_to_customers_one_session_each(rendered):
    minimal = rendered["minimal"]
    assert minimal["channels"]["whatsapp"] == {"dmPolicy": "open", "allowFrom": ["*"], "groupPolicy": "disabled"}
    assert minimal["session"] == {"dmScope": "per-channel-peer"}
    assert "telegram" not in minimal["channels"]
    assert {"agentId": "whatsapp", "match": {"channel": "whatsapp"}} in minimal["bindings"]
    whatsapp_agent = next(agent for agent in minimal["agents"]["list"] if agent["id"] == "whatsapp")
    assert whatsapp_agent["model"] == "anthropic/claude-haiku-4-5"
    assert whatsapp_agent["workspace"] == "/home/openclaw/.openclaw/workspace"
    # No secret in the file: the hooks token is a reference the gateway resolves from its environment.
    assert minimal["hooks"]["token"] == "${OPENCLAW_HOOKS_TOKEN}"
    assert "token" not in minimal["gateway"]["auth"]
    full = rendered["full"]
    assert full["channels"]["telegram"] == {"enabled": True, "botToken": "${TELEGRAM_BOT_TOKEN}", "dmPolicy": "pairing"}
    assert "123456:telegram-test-token" not in json.dumps(full)
    assert full["tools"]["elevated"] == {"enabled": True, "allowFrom": {"webchat": ["operator"]}}
    assert full["agents"]["defaults"] == {"model": {"primary": "anthropic/claude-sonnet-4-5"}, "skipBootstrap": True}


WRONG = {
    # channels.modelByChannel arrived in 2026.2.21; 2026.2.17 calls it an unknown channel id.
    "per-channel model key of later releases": ({"channels": {"modelByChannel": {"whatsapp": {"*": "anthropic/claude-haiku-4-5"}}}}, "channels"),
    "unknown gateway key": ({"gateway": {"healthCheck": True}}, "gateway"),
    "wrong type": ({"session": {"dmScope": "per-customer"}}, "session.dmScope"),
    "open without the wildcard": ({"channels": {"whatsapp": {"allowFrom": ["+77011234567"]}}}, "allowFrom"),
    "seed's hook registration": ({"hooks": {"message:received": {"command": "node /home/openclaw/scripts/wa-message-hook.js"}}}, "hooks"),
}


def merge(base: dict, extra: dict) -> dict:
    merged = json.loads(json.dumps(base))
    for key, value in extra.items():
        merged[key] = merge(merged.get(key) or {}, value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_wrong_key_fails_the_role_check_and_the_gateway(rendered, gateway, tmp_path, case):
    extra, named = WRONG[case]
    # The role's check, through the inventory setting an operator would use.
    result = render(tmp_path, {"wrong": {"openclaw_extra_config": extra}})
    assert result.returncode != 0
    assert "The gateway would refuse the openclaw.json of wrong; nothing was changed" in result.stdout
    assert named in result.stdout
    # The stand-in refuses to start on the same file; the untouched file starts (positive control).
    said = gateway(merge(rendered["minimal"], extra)).refusal()
    assert "Invalid config" in said and named.split(".")[0] in said
    assert gateway(rendered["minimal"]).start().process.poll() is None


def test_the_gateway_refuses_an_unset_hooks_token_or_the_gateway_token_as_hooks_token(rendered, gateway):
    assert (
        'Missing env var "OPENCLAW_HOOKS_TOKEN" referenced at config path: hooks.token'
        in gateway(rendered["minimal"], env={"OPENCLAW_HOOKS_TOKEN": ""}).refusal()
    )
    assert "hooks.token must not match gateway auth token" in gateway(rendered["minimal"], env={"OPENCLAW_HOOKS_TOKEN": GATEWAY_TOKEN}).refusal()
    assert "Missing config" in gateway(None).refusal()


def test_webhook_ingress_takes_only_the_hooks_token(rendered, gateway):
    instance = gateway(rendered["minimal"]).start()
    message = {"message": "[WABA] Hello", "name": "WABA", "sessionKey": "hook:waba:77011234567"}
    bearer = {"Authorization": f"Bearer {HOOKS_TOKEN}", "Content-Type": "application/json"}
    assert instance.request("POST", "/hooks/agent", message, {"Authorization": f"Bearer {GATEWAY_TOKEN}"})[0] == 401
    assert instance.request("POST", "/hooks/agent", message)[0] == 401
    assert instance.request("POST", f"/hooks/agent?token={HOOKS_TOKEN}", message)[0] == 400
    assert instance.request("POST", "/hooks/agent", {**message, "sessionKey": "agent:main:main"}, bearer)[0] == 400
    assert instance.request("POST", "/hooks/agent", {"name": "no message"}, bearer)[0] == 400
    assert instance.request("POST", "/hooks/agent", b"x" * (256 * 1024 + 1), bearer)[0] == 413
    status, body = instance.request("POST", "/hooks/agent", message, bearer)
    assert status == 202 and json.loads(body)["ok"] is True
    status, body = instance.request("POST", "/hooks/agent", message, {"X-OpenClaw-Token": HOOKS_TOKEN})
    assert status == 202
    _status, seen = instance.request("GET", "/__standin/hooks", headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"})
    assert [call["payload"]["sessionKey"] for call in json.loads(seen)["webhooks"]] == ["hook:waba:77011234567"] * 2


def install_hook(home: Path) -> None:
    target = home / ".openclaw" / "hooks" / "openclaw-lead"
    target.mkdir(parents=True)
    for name in ("HOOK.md", "handler.js"):
        shutil.copy(HOOK_DIR / name, target / name)


def fake_command(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "openclaw-lead"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body), encoding="utf-8")
    script.chmod(0o755)
    return directory


def hook_runs(instance: Gateway, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _status, body = instance.request("GET", "/__standin/hooks", headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"})
        runs = json.loads(body)["hook_runs"]
        if len(runs) >= count:
            return runs
        time.sleep(0.2)
    pytest.fail(f"fewer than {count} hook runs")


def received(content: str, name: str) -> dict:
    return {
        "type": "message",
        "action": "received",
        "sessionKey": "agent:whatsapp:whatsapp:dm:+77011234567",
        "context": {
            "from": "77011234567@s.whatsapp.net",
            "content": content,
            "channelId": "whatsapp",
            "messageId": "3EB0C767D82B8A1F",
            "metadata": {"senderE164": "+77011234567", "senderName": name, "provider": "whatsapp"},
        },
    }


def test_the_lead_hook_hands_each_whatsapp_message_to_openclaw_lead_as_data(rendered, gateway, tmp_path):
    probe = tmp_path / "pwned"
    hostile = f'Aigerim\'"; touch {probe}; echo "$(touch {probe})`touch {probe}`\nTEXT\nEOF'
    captured = tmp_path / "captured"
    captured.mkdir()
    bin_dir = fake_command(tmp_path / "bin", f'cat > "{captured}/$(date +%s%N).json"\n')
    instance = gateway(rendered["minimal"], extra_path=bin_dir)
    install_hook(instance.home)
    instance.start()
    status, body = instance.request("POST", "/__standin/emit", received("Здравствуйте $(id)", hostile), {"Authorization": f"Bearer {GATEWAY_TOKEN}"})
    assert status == 202 and json.loads(body)["hooks"] == ["openclaw-lead"]
    # Another channel is not the lead channel: the hook ignores it.
    telegram = received("hi", "x")
    telegram["context"]["channelId"] = "telegram"
    instance.request("POST", "/__standin/emit", telegram, {"Authorization": f"Bearer {GATEWAY_TOKEN}"})
    runs = hook_runs(instance, 2)
    assert [run_["status"] for run_ in runs] == [0, 0], runs
    deadline = time.monotonic() + 10
    while not list(captured.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    handed = [json.loads(path.read_text()) for path in captured.iterdir()]
    assert len(handed) == 1
    assert handed[0]["context"]["metadata"]["senderName"] == hostile
    assert handed[0]["context"]["content"] == "Здравствуйте $(id)"
    assert not probe.exists()
    # Positive control: the probe is a file this test can create with a command that does run.
    subprocess.run(["sh", "-c", f"touch {probe}"], check=True)
    assert probe.exists()


def test_a_failing_or_missing_openclaw_lead_never_holds_up_the_gateway(rendered, gateway, tmp_path):
    bin_dir = fake_command(tmp_path / "bin", "sleep 5; exit 3\n")
    instance = gateway(rendered["minimal"], extra_path=bin_dir)
    install_hook(instance.home)
    instance.start()
    status, _body = instance.request("POST", "/__standin/emit", received("hi", "A"), {"Authorization": f"Bearer {GATEWAY_TOKEN}"})
    assert status == 202
    # The gateway goes on serving while the command still runs.
    assert instance.request("GET", "/", headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"})[0] == 200
    run_ = hook_runs(instance, 1)[0]
    # The handler returned without waiting for the 5-second command that then failed, and did not throw.
    assert run_["status"] == 0 and run_["handler_ms"] is not None and run_["handler_ms"] < 2000, run_
    # Without the command the hook's requires.bins leaves it unloaded: messages still flow.
    missing = gateway(rendered["minimal"], env={"PATH": "/usr/bin:/bin"})
    install_hook(missing.home)
    missing.start()
    status, body = missing.request("POST", "/__standin/emit", received("hi", "A"), {"Authorization": f"Bearer {GATEWAY_TOKEN}"})
    assert status == 202 and json.loads(body)["hooks"] == []
    assert "hook openclaw-lead skipped: missing openclaw-lead" in missing.stop()
