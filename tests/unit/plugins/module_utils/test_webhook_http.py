"""The webhook service's HTTP decisions that need no database: routing, limits, signatures, a full queue."""

from __future__ import annotations

import json
import threading

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import meta_webhooks, webhook_service
from harness.common import loopback_request

SECRET = "tenant-app-secret"


@pytest.fixture
def service(tmp_path):
    slug = "acme"
    entry = {"slug": slug, "database": "openclaw_acme", "db_user": "openclaw_acme", "db_password": "pw", "leadgen_verify_token": "vt", "app_secret": SECRET}
    (tmp_path / "acme.json").write_text(json.dumps(entry))
    config = webhook_service.WebhookConfig({"OPENCLAW_TENANTS_DIR": str(tmp_path), "OPENCLAW_WEBHOOK_MAX_BODY": "4096", "PG_PORT": "1"})
    # No workers and room for one job: what is accepted stays queued, the next post finds the queue full.
    config.workers, config.queue_max = 0, 1
    app = webhook_service.WebhookApp(config)
    server = webhook_service.make_server(app)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server.server_address[1], app
    server.shutdown()
    server.server_close()


def lead_post(leadgen_id):
    return json.dumps({"object": "page", "entry": [{"id": "1", "changes": [{"field": "leadgen", "value": {"leadgen_id": leadgen_id}}]}]}).encode()


def signed(raw, secret=SECRET):
    return {"Content-Type": "application/json", meta_webhooks.SIGNATURE_HEADER: meta_webhooks.signature(secret, raw)}


def test_a_full_queue_answers_503_so_meta_delivers_again(service):
    port, app = service
    assert loopback_request(port, "POST", "/webhook/acme", lead_post("11"), signed(lead_post("11")))[0] == 200
    assert loopback_request(port, "POST", "/webhook/acme", lead_post("12"), signed(lead_post("12")))[0] == 503
    assert app.jobs.qsize() == 1


def test_a_bad_signature_queues_nothing(service):
    port, app = service
    assert loopback_request(port, "POST", "/webhook/acme", lead_post("11"), signed(lead_post("11"), "other"))[0] == 403
    assert loopback_request(port, "POST", "/webhook/acme", lead_post("11"), {"Content-Type": "application/json"})[0] == 403
    assert app.jobs.qsize() == 0


def test_limits_and_routes(service):
    port, app = service
    big = b"{" + b" " * 5000 + b"}"
    assert loopback_request(port, "POST", "/webhook/acme", big, signed(big))[0] == 413
    assert loopback_request(port, "POST", "/webhook/acme", b"not json", signed(b"not json"))[0] == 400
    assert loopback_request(port, "GET", "/health") == (200, "ok")
    assert loopback_request(port, "POST", "/health", b"")[0] == 405
    assert loopback_request(port, "GET", "/webhook/acme?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=42") == (200, "42")
    assert loopback_request(port, "GET", "/webhook/acme?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42")[0] == 403
    # WABA_VERIFY_TOKEN unset: no subscription can succeed, not even with an empty token.
    assert loopback_request(port, "GET", "/webhooks/waba?hub.mode=subscribe&hub.verify_token=&hub.challenge=42")[0] == 403
    assert loopback_request(port, "GET", "/webhook/other?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=42") == (404, "not found")
    assert loopback_request(port, "GET", "/webhook/acme/extra")[0] == 404
    assert app.jobs.qsize() == 0


def test_configuration_refuses_a_bad_country_code():
    with pytest.raises(SystemExit):
        webhook_service.WebhookConfig({"OPENCLAW_DEFAULT_COUNTRY_CODE": "7; rm"})


@pytest.mark.parametrize(
    ("name", "value"), [("OPENCLAW_WEBHOOK_ALLOW_UNSIGNED", "ture"), ("OPENCLAW_WEBHOOK_MAX_BODY", "1MiB"), ("OPENCLAW_WEBHOOK_MAX_BODY", "10")]
)
def test_configuration_refuses_typos(name, value):
    with pytest.raises(SystemExit, match=name):
        webhook_service.WebhookConfig({name: value})
    assert webhook_service.WebhookConfig({"OPENCLAW_WEBHOOK_ALLOW_UNSIGNED": "true"}).allow_unsigned is True
