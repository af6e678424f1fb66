"""Self-test of the stand-in's Lead Ads and WhatsApp Cloud API edges, over real HTTPS on loopback."""

from __future__ import annotations

import pytest
import requests

from harness import graph_messaging
from harness.graph_api import GraphAPIStandin

TOKEN = "EAAPage-token-for-the-standin"
WABA_TOKEN = "EAAWaba-token-for-the-standin"
PHONE_ID = "106540352242922"
FIELDS = "id,ad_id,form_id,created_time,field_data"


@pytest.fixture(scope="module")
def server():
    with GraphAPIStandin(log_requests=False) as standin:
        yield standin


@pytest.fixture
def graph(server):
    state = graph_messaging.install(server)
    server.reset()
    state.add_lead(TOKEN, "111", [{"name": "full_name", "values": ["A"]}], ad_id="222", form_id="333")
    state.add_phone_number(PHONE_ID, WABA_TOKEN)
    return server, state


def get(server, path, token=TOKEN, params=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.url}{path}", params=params, headers=headers, timeout=5, verify=str(server.ca_file))


def send(server, body, token=WABA_TOKEN, phone_id=PHONE_ID):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{server.url}/v25.0/{phone_id}/messages", json=body, headers=headers, timeout=5, verify=str(server.ca_file))


def text(to="77011234567", body="hi"):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def test_install_twice_keeps_one_set_of_routes_and_one_state(graph):
    server, state = graph
    assert graph_messaging.install(server) is state and state.leads == {}


def test_lead_read_with_the_header_and_fields(graph):
    server, state = graph
    response = get(server, "/v25.0/111", params={"fields": FIELDS})
    assert response.status_code == 200
    lead = response.json()
    assert lead == {"id": "111", "ad_id": "222", "form_id": "333", "created_time": lead["created_time"], "field_data": [{"name": "full_name", "values": ["A"]}]}
    assert get(server, "/v25.0/111", params={"fields": "id"}).json() == {"id": "111"}
    assert state.lead_reads[0]["token_source"] == "header"


@pytest.mark.parametrize(
    ("token", "params", "code"),
    [
        (None, {"fields": FIELDS}, 2500),
        ("EAAwrong", {"fields": FIELDS}, 190),
        (None, {"fields": FIELDS, "access_token": TOKEN}, 190),
        (TOKEN, {"fields": "id,secret_field"}, 100),
    ],
)
def test_lead_refusals(graph, token, params, code):
    server, state = graph
    response = get(server, "/v25.0/111", token=token, params=params)
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert state.lead_reads == []


def test_unknown_lead_is_100_33(graph):
    server, _state = graph
    error = get(server, "/v25.0/999", params={"fields": FIELDS}).json()["error"]
    assert (error["code"], error["error_subcode"]) == (100, 33)


def test_whatsapp_send_answers_like_the_cloud_api(graph):
    server, state = graph
    response = send(server, text())
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp" and body["contacts"] == [{"input": "77011234567", "wa_id": "77011234567"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    assert state.sent == [{"phone_number_id": PHONE_ID, "to": "77011234567", "body": "hi", "message_id": body["messages"][0]["id"], "token_source": "header"}]


@pytest.mark.parametrize(
    ("body", "token", "phone_id", "code"),
    [
        ({**text(), "messaging_product": "sms"}, WABA_TOKEN, PHONE_ID, 100),
        ({**text(), "to": ""}, WABA_TOKEN, PHONE_ID, 100),
        ({**text(), "type": "image"}, WABA_TOKEN, PHONE_ID, 100),
        ({**text(), "text": {"body": ""}}, WABA_TOKEN, PHONE_ID, 100),
        (text(body="x" * 4097), WABA_TOKEN, PHONE_ID, 100),
        (text(), TOKEN, PHONE_ID, 190),
        (text(), None, PHONE_ID, 2500),
        (text(), WABA_TOKEN, "999", 100),
    ],
)
def test_whatsapp_send_refusals(graph, body, token, phone_id, code):
    server, state = graph
    response = send(server, body, token=token, phone_id=phone_id)
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert state.sent == []
