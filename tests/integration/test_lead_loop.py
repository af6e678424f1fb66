"""The lead loop end to end, through the real runtime image, PostgreSQL, nginx and the gateway stand-in.

One server and one tenant are converged with site.yml. Then, as in production:
a click-to-WhatsApp message (WhatsApp Business webhook shape, with its
referral) and a message known only by its business-scoped user id are handed
to `openclaw-lead record` in the tenant's container; the gateway's
message:received hook (the collection's handler.js, run by the stand-in the
way later gateways call it) records a QR-channel message with a hostile
display name; the level-1 sweep (the capi_event module, the same code as
`openclaw-capi sweep`) sends exactly one event per qualifying dialog to the
Graph API stand-in and nothing the second time; a [WABA] message posted
through nginx reaches /hooks/agent only with the hooks token; and a signed
WhatsApp Business webhook posted to the platform's URL travels through nginx
and the collection's webhook service into the tenant's database and gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import ssl
import subprocess
import time
import uuid

import psycopg2
import pytest
import yaml

from harness.ansible import run, run_module
from harness.common import free_ports, loopback_request
from harness.docker import remove_everything_named
from harness.nginx import NginxServer, nginx_binary
from harness.servers import isolated_server, shared_services

SERVER = "srvl"
DOMAIN = "leads.test"
TENANT_UID = "1001"
DATASET = "998877665544"
WABA = "102030405060708"
CTWA_CLID = "ARAkLkA8rmlFeiCktEJQ-loop" + secrets.token_hex(4)
PHONE_NUMBER_ID = "106540352240001"
WABA_APP_SECRET = "wabaapp-" + secrets.token_hex(16)
AD_ID = "120210000000000001"


class LeadSite:
    def __init__(self, client, images, nginx, root):
        self.client = client
        self.ident = "ocl" + uuid.uuid4().hex[:6]
        self.root = root
        http_port, https_port, status_port, self.postgres_port, self.port, webhook_port, upload_port = free_ports(7)
        self.https_port = https_port
        certs = root / "certs"
        self.slug = f"{self.ident}t"
        self.server = {
            **isolated_server(self.ident, root, images, self.postgres_port),
            "openclaw_cert_install_packages": False,
            "openclaw_cert_dir": str(certs),
            **nginx.role_variables(http_port, https_port, status_port, certs / "fullchain.pem", certs / "privkey.pem"),
            **shared_services(self.ident, images, webhook_port, upload_port),
        }
        self.tenant = {
            "openclaw_server": SERVER,
            "openclaw_slug": self.slug,
            "openclaw_port": self.port,
            "openclaw_capi_sweep_interval": 0,
            # Its WhatsApp Business number, routed by the shared webhook service.
            "openclaw_waba_phone_id": PHONE_NUMBER_ID,
            "openclaw_waba_access_token": "EAAG-number-" + secrets.token_hex(8),
            "openclaw_waba_app_secret": WABA_APP_SECRET,
        }

    def converge(self):
        inventory = {
            "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "openclaw_domain": DOMAIN}},
            "openclaw_servers": {"hosts": {SERVER: self.server}},
            "openclaw_tenants": {"hosts": {"t": self.tenant}},
        }
        path = self.root / "hosts.yml"
        path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        completed = run("ansible-playbook", "-i", str(path), "playbooks/site.yml", timeout=1200)
        assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]

    @property
    def container(self):
        return f"openclaw-{self.slug}"

    def token(self, name):
        return (self.root / "clients" / self.slug / name).read_text(encoding="utf-8").strip()

    @property
    def db_password(self):
        return (self.root / "secrets" / f"db-{self.slug}.password").read_text(encoding="utf-8").strip()

    def dsn(self):
        return f"host=127.0.0.1 port={self.postgres_port} dbname=openclaw_{self.slug} user=openclaw_{self.slug} password={self.db_password} connect_timeout=5"

    def sql(self, statement, params=()):
        with psycopg2.connect(self.dsn()) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def lead(self, message):
        """`openclaw-lead record` in the tenant's container, as its user, the message on stdin."""
        completed = subprocess.run(
            ["docker", "exec", "-i", "-u", TENANT_UID, self.container, "openclaw-lead", "record"],
            input=json.dumps(message),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def in_container(self, *command):
        return subprocess.run(["docker", "exec", "-u", TENANT_UID, self.container, *command], capture_output=True, text=True, timeout=60, check=False)

    def gateway(self, method, path, body=None, headers=None):
        return loopback_request(self.port, method, path, body, headers)

    def through_nginx(self, path, body, headers, host=None):
        """POST to nginx, by default on the tenant's host name; ``body`` is JSON-encoded unless already bytes."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=context, timeout=15)
        raw = body if isinstance(body, bytes) else json.dumps(body)
        try:
            connection.request("POST", path, body=raw, headers={"Host": host or f"{self.slug}.{DOMAIN}", "Content-Type": "application/json", **headers})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def cleanup(self):
        remove_everything_named(self.client, self.ident)


@pytest.fixture(scope="module")
def site(docker_client, test_images, tmp_path_factory, graph_api_server):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed; `make host` installs it")
    root = tmp_path_factory.mktemp("leadloop")
    nginx = NginxServer(binary=binary).start()
    built = LeadSite(docker_client, test_images, nginx, root)
    try:
        built.converge()
        token = "EAAG-loop-" + secrets.token_hex(8)
        graph_api_server.add_dataset(DATASET, token)
        # The client's Conversions API settings, as the wa-capi-setup skill stores them.
        built.sql(
            "INSERT INTO capi_settings (pixel_id, access_token, whatsapp_business_account_id, l1_threshold) VALUES (%s, %s, %s, 3)",
            (DATASET, token, WABA),
        )
        yield built
    finally:
        built.cleanup()
        nginx.stop()


def waba_message(message_id, text, phone=None, bsuid=None, referral=None, name="Aigerim"):
    """One message of a WhatsApp Business webhook, with its contact, as the webhook service hands it on."""
    contact = {"profile": {"name": name}}
    message = {"id": message_id, "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    if phone:
        contact["wa_id"] = phone
        message["from"] = phone
    if bsuid:
        contact["user_id"] = bsuid
        message["from_user_id"] = bsuid
    if referral:
        message["referral"] = referral
    return {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1111"}, "contacts": [contact], "messages": [message]}


def sweep(site, graph_api):
    return run_module(
        "openclaw.standalone.capi_event",
        {
            "login_host": "127.0.0.1",
            "login_port": site.postgres_port,
            "login_user": f"openclaw_{site.slug}",
            "login_password": site.db_password,
            "tenant": site.slug,
            "sweep": True,
            "graph_url": graph_api.url,
            "ca_path": str(graph_api.ca_file),
            "timeout": 5,
        },
    )


PHONE = "7701" + str(secrets.randbelow(10**7)).zfill(7)
QR_PHONE = "7702" + str(secrets.randbelow(10**7)).zfill(7)
BSUID = "KZ." + str(secrets.randbelow(10**18)).zfill(18)
REFERRAL = {"source_url": "https://fb.me/ad", "source_id": AD_ID, "source_type": "ad", "headline": "Kurs", "ctwa_clid": CTWA_CLID}


def test_a_click_to_whatsapp_dialog_is_recorded_with_its_attribution_once_per_message(site):
    for number in (1, 2, 3):
        site.lead(waba_message(f"wamid.loop{number}", f"Сообщение {number}", phone=PHONE, referral=REFERRAL if number == 1 else None))
    # The webhook delivers a message again after a timeout: nothing changes.
    site.lead(waba_message("wamid.loop1", "Сообщение 1", phone=PHONE, referral=REFERRAL))
    dialog = site.sql("SELECT incoming_count, capi_msg_count, ctwa_clid, source_id, name FROM wa_dialogs WHERE phone IN (%s, %s)", (PHONE, "+" + PHONE))
    assert dialog == [(3, 3, CTWA_CLID, AD_ID, "Aigerim")]
    assert site.sql("SELECT count(*) FROM wa_messages WHERE phone IN (%s, %s) AND direction = 'inbound'", (PHONE, "+" + PHONE)) == [(3,)]
    lead = site.sql("SELECT source_type, ctwa_clid, ad_id FROM leads WHERE phone IN (%s, %s)", (PHONE, "+" + PHONE))
    assert lead == [("whatsapp", CTWA_CLID, AD_ID)]


def test_a_customer_known_only_by_business_scoped_id_is_recorded(site):
    site.lead(waba_message("wamid.bsuid1", "Здравствуйте", bsuid=BSUID, name="Username user"))
    assert site.sql("SELECT phone, incoming_count FROM wa_dialogs WHERE bsuid = %s", (BSUID,)) == [(None, 1)]


def test_the_gateway_hook_records_a_qr_message_and_a_hostile_name_runs_nothing(site):
    probe = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    hostile = f'Ali\'"; touch {probe}; echo "$(touch {probe})`touch {probe}`\nJSON\nSQL\nEOF'
    event = {
        "type": "message",
        "action": "received",
        "sessionKey": f"agent:whatsapp:whatsapp:dm:+{QR_PHONE}",
        "context": {
            "from": f"{QR_PHONE}@s.whatsapp.net",
            "content": "Сколько стоит? $(id)",
            "channelId": "whatsapp",
            "messageId": "3EB0" + uuid.uuid4().hex[:12].upper(),
            "metadata": {"senderE164": "+" + QR_PHONE, "senderName": hostile, "provider": "whatsapp"},
        },
    }
    status, body = site.gateway("POST", "/__standin/emit", event, {"Authorization": f"Bearer {site.token('gateway_token')}"})
    assert status == 202 and json.loads(body)["hooks"] == ["openclaw-lead"], body
    deadline = time.monotonic() + 60
    rows = []
    while time.monotonic() < deadline and not rows:
        rows = site.sql("SELECT name, incoming_count FROM wa_dialogs WHERE phone IN (%s, %s)", (QR_PHONE, "+" + QR_PHONE))
        time.sleep(0.5)
    _status, runs = site.gateway("GET", "/__standin/hooks", headers={"Authorization": f"Bearer {site.token('gateway_token')}"})
    logs = subprocess.run(["docker", "logs", "--tail", "30", site.container], capture_output=True, text=True, check=False)
    assert rows == [(hostile, 1)], runs + logs.stdout + logs.stderr
    assert site.sql("SELECT message_text FROM wa_messages WHERE phone IN (%s, %s)", (QR_PHONE, "+" + QR_PHONE)) == [("Сколько стоит? $(id)",)]
    assert site.in_container("test", "-e", probe).returncode == 1
    # Positive control: the probe is a file the tenant's user can create with a command that does run.
    assert site.in_container("touch", probe).returncode == 0
    assert site.in_container("test", "-e", probe).returncode == 0


def test_the_sweep_sends_one_level_one_event_per_qualifying_dialog_and_nothing_twice(site, graph_api):
    first = sweep(site, graph_api)
    assert first.returncode == 0, first.stdout + first.stderr
    (request,) = graph_api.requests()
    (event,) = request["events"]
    assert event["event_name"] == "LeadSubmitted" and event["action_source"] == "business_messaging"
    assert event["user_data"]["ctwa_clid"] == CTWA_CLID
    assert event["user_data"]["whatsapp_business_account_id"] == WABA
    assert site.sql("SELECT l1_sent FROM wa_dialogs WHERE phone IN (%s, %s)", (PHONE, "+" + PHONE)) == [(True,)]
    assert site.sql("SELECT count(*) FROM capi_events_log WHERE status = 'success' AND event_level = 1") == [(1,)]
    second = sweep(site, graph_api)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(graph_api.requests()) == 1


def test_a_waba_message_reaches_the_agent_through_nginx_only_with_the_hooks_token(site):
    message = {"message": "[WABA] +" + PHONE + ": Хочу записаться", "name": "WABA", "sessionKey": f"hook:waba:{PHONE}"}
    assert site.through_nginx("/hooks/agent", message, {"Authorization": f"Bearer {site.token('gateway_token')}"})[0] == 401
    assert site.through_nginx("/hooks/agent", message, {})[0] == 401
    status, body = site.through_nginx("/hooks/agent", message, {"Authorization": f"Bearer {site.token('hooks_token')}"})
    assert status == 202 and json.loads(body)["ok"] is True
    _status, seen = site.gateway("GET", "/__standin/hooks", headers={"Authorization": f"Bearer {site.token('gateway_token')}"})
    (call,) = json.loads(seen)["webhooks"]
    assert call["payload"] == message
    # The tokens are different, and neither is in a file the agent can read.
    assert site.token("hooks_token") != site.token("gateway_token")
    listing = site.in_container("grep", "-rl", site.token("hooks_token"), "/home/openclaw/.openclaw")
    assert listing.returncode == 1 and listing.stdout == ""


def test_show_access_prints_the_webhook_ingress_token_only_when_asked(site):
    inventory = str(site.root / "hosts.yml")
    hooks = run("ansible-playbook", "-i", inventory, "playbooks/show_access.yml", "-e", "tenant=t", "-e", "show=hooks")
    assert hooks.returncode == 0, hooks.stdout[-3000:]
    assert f"Token: {site.token('hooks_token')}" in hooks.stdout
    assert "/hooks/agent" in hooks.stdout and site.token("gateway_token") not in hooks.stdout
    default = run("ansible-playbook", "-i", inventory, "playbooks/show_access.yml", "-e", "tenant=t")
    assert default.returncode == 0, default.stdout[-3000:]
    assert f"Token: {site.token('gateway_token')}" in default.stdout and site.token("hooks_token") not in default.stdout


def test_a_signed_whatsapp_business_webhook_travels_through_nginx_and_the_webhook_service_to_the_agent(site):
    """Meta -> https://<domain>/openclaw/webhooks/waba -> webhook service -> tenant database and /hooks/agent."""
    sender = "7701" + str(uuid.uuid4().int)[:7]
    message_id = "wamid." + uuid.uuid4().hex
    text = "Сколько стоит? '; DROP TABLE leads; -- $(id)"
    message = {"from": sender, "id": message_id, "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "77010000001", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"wa_id": sender, "profile": {"name": "Dana"}}],
        "messages": [message],
    }
    raw = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]}).encode()
    signature = "sha256=" + hmac.new(WABA_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    token = site.token("gateway_token")
    before = len(json.loads(site.gateway("GET", "/__standin/hooks", headers={"Authorization": f"Bearer {token}"})[1])["webhooks"])
    # Attack: the same post without its signature is refused and records nothing.
    assert site.through_nginx("/openclaw/webhooks/waba", raw, {}, host=DOMAIN)[0] in (401, 403)
    status, body = site.through_nginx("/openclaw/webhooks/waba", raw, {"X-Hub-Signature-256": signature}, host=DOMAIN)
    assert status == 200, body
    deadline = time.monotonic() + 60
    while not site.sql("SELECT 1 FROM wa_messages WHERE message_id = %s", (message_id,)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert site.sql("SELECT direction, channel, message_text FROM wa_messages WHERE message_id = %s", (message_id,)) == [("inbound", "waba", text)]
    assert site.sql("SELECT name FROM wa_dialogs WHERE phone = %s", (sender,)) == [("Dana",)]
    while time.monotonic() < deadline:
        calls = json.loads(site.gateway("GET", "/__standin/hooks", headers={"Authorization": f"Bearer {token}"})[1])["webhooks"][before:]
        if calls:
            break
        time.sleep(0.5)
    assert len(calls) == 1, calls
    assert calls[0]["action"] == "agent" and calls[0]["payload"]["sessionKey"] == f"hook:waba:{sender}"
    assert text in json.dumps(calls[0]["payload"], ensure_ascii=False)
