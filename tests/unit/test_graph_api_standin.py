"""Self-test of the Graph API stand-in: Meta's documented rules and answer shapes, over real HTTPS on loopback."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.graph_api import GraphAPIStandin

DATASET = "1234567890"
TOKEN = "EAAB-test-token-for-the-standin"
OTHER_DATASET = "2222222222"
OTHER_TOKEN = "EAAB-other-token"
VERSION = "v25.0"
WABA = "104996122399160"
CTWA_CLID = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
PHONE_HASH = hashlib.sha256(b"16505551212").hexdigest()


@pytest.fixture(scope="module")
def server():
    with GraphAPIStandin() as standin:
        standin.add_dataset(DATASET, TOKEN)
        standin.add_dataset(OTHER_DATASET, OTHER_TOKEN)
        yield standin


@pytest.fixture
def graph(server):
    server.reset()
    yield server
    server.reset()


def ctwa_event(event_name="LeadSubmitted", **overrides):
    event = {
        "event_name": event_name,
        "event_time": int(time.time()) - 60,
        "action_source": "business_messaging",
        "messaging_channel": "whatsapp",
        "user_data": {"whatsapp_business_account_id": WABA, "ctwa_clid": CTWA_CLID},
    }
    event.update(overrides)
    return event


def post(graph, events, *, token=TOKEN, dataset=DATASET, version=VERSION, timeout=5, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(
        f"{graph.url}/{version}/{dataset}/events",
        json={"data": events},
        headers=headers,
        timeout=timeout,
        verify=str(graph.ca_file),
        **kwargs,
    )


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_success_has_graphs_shape(graph):
    response = post(graph, [ctwa_event(), ctwa_event("Purchase", custom_data={"value": 12.5, "currency": "USD"})])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"events_received", "messages", "fbtrace_id"}
    assert body["events_received"] == 2
    assert body["messages"] == []
    assert isinstance(body["fbtrace_id"], str) and body["fbtrace_id"]
    (record,) = graph.requests()
    assert record["status"] == 200 and record["response"] == body
    assert record["method"] == "POST" and record["path"] == f"/{VERSION}/{DATASET}/events"
    assert record["dataset_id"] == DATASET and record["version"] == VERSION
    assert [event["event_name"] for event in record["events"]] == ["LeadSubmitted", "Purchase"]
    assert len(graph.accepted_events(DATASET)) == 2


def test_token_in_header_body_and_query_is_recorded_by_source(graph):
    url = f"{graph.url}/{VERSION}/{DATASET}/events"
    verify = str(graph.ca_file)
    in_header = requests.post(url, json={"data": [ctwa_event()]}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5, verify=verify)
    in_json_body = requests.post(url, json={"data": [ctwa_event()], "access_token": TOKEN, "partner_agent": "openclaw"}, timeout=5, verify=verify)
    form = {"data": json.dumps([ctwa_event()]), "access_token": TOKEN, "test_event_code": "TEST123"}
    in_form_body = requests.post(url, data=form, timeout=5, verify=verify)
    in_query = requests.post(url, params={"access_token": TOKEN}, json={"data": [ctwa_event()]}, timeout=5, verify=verify)
    assert [response.status_code for response in (in_header, in_json_body, in_form_body, in_query)] == [200, 200, 200, 200]

    header, json_body, form_body, query = graph.requests()
    assert (header["token_source"], header["token_in_query"]) == ("header", False)
    assert (json_body["token_source"], json_body["token_in_query"]) == ("body", False)
    assert json_body["partner_agent"] == "openclaw"
    assert (form_body["token_source"], form_body["token_in_query"]) == ("body", False)
    assert form_body["content_type"] == "application/x-www-form-urlencoded"
    assert form_body["test_event_code"] == "TEST123"
    assert form_body["body"]["data"][0]["event_name"] == "LeadSubmitted"
    assert (query["token_source"], query["token_in_query"]) == ("query", True)
    assert all(record["token_valid"] for record in (header, json_body, form_body, query))
    assert TOKEN not in json.dumps(graph.requests())


def test_wrong_or_missing_token_is_oauth_190(graph):
    wrong = post(graph, [ctwa_event()], token="EAAB-not-a-real-token")
    missing = post(graph, [ctwa_event()], token=None)
    for response in (wrong, missing):
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == 190 and error["type"] == "OAuthException"
        assert error["is_transient"] is False
        assert "Invalid OAuth access token" in error["message"]
    assert [record["token_valid"] for record in graph.requests()] == [False, False]
    assert graph.accepted_events() == []


def test_unknown_dataset_or_foreign_token_is_100_33(graph):
    unknown = post(graph, [ctwa_event()], dataset="999999")
    foreign = post(graph, [ctwa_event()], dataset=OTHER_DATASET)
    for response, dataset in ((unknown, "999999"), (foreign, OTHER_DATASET)):
        assert response.status_code == 400
        error = error_of(response)
        assert (error["code"], error["error_subcode"]) == (100, 33)
        assert f"Object with ID '{dataset}' does not exist" in error["message"]


def test_deprecated_and_malformed_versions(graph):
    old = error_of(post(graph, [ctwa_event()], version="v19.0"))
    assert old["code"] == 2635 and "deprecated version" in old["message"]
    malformed = post(graph, [ctwa_event()], version="25.0")
    assert malformed.status_code == 400 and error_of(malformed)["code"] == 100


def test_one_bad_event_rejects_the_whole_batch(graph):
    events = [ctwa_event(event_id=f"evt-{index}") for index in range(1000)]
    events[500]["event_time"] = str(events[500]["event_time"])
    response = post(graph, events, timeout=20)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100
    assert error["error_data"]["blame_field_specs"] == [["data", 500, "event_time"]]
    assert "data[500]" in error["error_user_msg"]
    (record,) = graph.requests()
    assert record["events_received"] == 0 and len(record["events"]) == 1000
    assert graph.accepted_events() == []


def test_more_than_1000_events_are_refused(graph):
    response = post(graph, [ctwa_event() for _index in range(1001)], timeout=20)
    assert response.status_code == 400
    assert error_of(response)["code"] == 100
    assert post(graph, []).status_code == 400


def test_event_older_than_seven_days_is_2804003(graph):
    error = error_of(post(graph, [ctwa_event(event_time=int(time.time()) - 8 * 24 * 3600)]))
    assert (error["code"], error["error_subcode"]) == (100, 2804003)
    assert error["error_user_title"] == "Event Timestamp Too Old"
    future = error_of(post(graph, [ctwa_event(event_time=int(time.time()) + 3600)]))
    assert future["error_subcode"] == 2804004
    as_float = error_of(post(graph, [ctwa_event(event_time=time.time())]))
    assert as_float["error_data"]["blame_field_specs"] == [["data", 0, "event_time"]]


def test_complete_registration_is_not_a_business_messaging_event(graph):
    error = error_of(post(graph, [ctwa_event("CompleteRegistration")]))
    assert (error["code"], error["error_subcode"]) == (100, 2804066)
    assert error["error_user_title"] == "Messaging Event Invalid Event Type"
    chat = {"event_name": "CompleteRegistration", "event_time": int(time.time()), "action_source": "chat", "user_data": {"ph": PHONE_HASH}}
    assert post(graph, [chat]).status_code == 200


def test_business_messaging_needs_waba_and_unhashed_ctwa_clid(graph):
    no_waba = ctwa_event()
    del no_waba["user_data"]["whatsapp_business_account_id"]
    assert error_of(post(graph, [no_waba]))["error_data"]["blame_field_specs"] == [["data", 0, "user_data", "whatsapp_business_account_id"]]
    hashed = ctwa_event(user_data={"whatsapp_business_account_id": WABA, "ctwa_clid": hashlib.sha256(CTWA_CLID.encode()).hexdigest()})
    error = error_of(post(graph, [hashed]))
    assert "must not be hashed" in error["error_user_msg"]
    assert error_of(post(graph, [ctwa_event(messaging_channel=None)]))["code"] == 100
    assert error_of(post(graph, [ctwa_event(action_source="messaging")]))["code"] == 100


def test_purchase_without_value_is_2804009(graph):
    error = error_of(post(graph, [ctwa_event("Purchase", custom_data={"currency": "USD"})]))
    assert (error["code"], error["error_subcode"]) == (100, 2804009)
    assert error_of(post(graph, [ctwa_event("Purchase")]))["error_subcode"] == 2804009


def test_unhashed_phone_or_email_is_rejected(graph):
    for user_data in ({"ph": "16505551212"}, {"em": "John@Example.com"}, {"ph": [PHONE_HASH, PHONE_HASH.upper()]}):
        event = {"event_name": "Contact", "event_time": int(time.time()), "action_source": "chat", "user_data": user_data}
        error = error_of(post(graph, [event]))
        assert (error["code"], error["error_subcode"]) == (100, 2804019)
        assert "SHA-256" in error["error_user_msg"]
    empty = {"event_name": "Contact", "event_time": int(time.time()), "action_source": "chat", "user_data": {}}
    assert error_of(post(graph, [empty]))["code"] == 100


def test_injected_500_then_success(graph):
    graph.inject({"status": 500})
    first = post(graph, [ctwa_event()])
    assert first.status_code == 500
    error = error_of(first)
    assert error["code"] == 2 and error["is_transient"] is True
    second = post(graph, [ctwa_event()])
    assert second.status_code == 200 and second.json()["events_received"] == 1
    first_record, second_record = graph.requests()
    assert first_record["fault"] == {"status": 500} and second_record["fault"] is None
    assert graph.pending_faults() == 0


def test_injected_throttle_token_and_raw_faults(graph):
    graph.inject({"error_code": 17}, {"error_code": 613}, {"error_code": 80004}, {"error_code": 190}, {"status": 418, "body": {"teapot": True}})
    answers = [post(graph, [ctwa_event()]) for _index in range(5)]
    assert [response.status_code for response in answers] == [400, 400, 400, 400, 418]
    assert [error_of(response)["code"] for response in answers[:4]] == [17, 613, 80004, 190]
    assert [error_of(response)["is_transient"] for response in answers[:4]] == [True, True, True, False]
    assert answers[4].json() == {"teapot": True}
    with pytest.raises(ValueError):
        graph.inject({"delay": 31})


def test_injected_delay_makes_the_client_time_out(graph):
    graph.inject({"delay": 1.5})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        post(graph, [ctwa_event()], timeout=0.5)
    assert time.monotonic() - started < 1.4
    assert post(graph, [ctwa_event()]).status_code == 200


def test_twenty_concurrent_requests_are_all_recorded(graph):
    def send(index):
        return post(graph, [ctwa_event(event_id=f"concurrent-{index}")]).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(send, range(20)))
    assert statuses == [200] * 20
    records = graph.requests()
    assert len(records) == 20
    assert sorted(record["events"][0]["event_id"] for record in records) == sorted(f"concurrent-{index}" for index in range(20))


def test_other_paths_are_graph_404s(graph):
    response = requests.get(f"{graph.url}/{VERSION}/{DATASET}/events", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5, verify=str(graph.ca_file))
    assert response.status_code == 404 and error_of(response)["code"] in (100, 803)
    response = requests.post(f"{graph.url}/{VERSION}/{DATASET}/other", json={}, timeout=5, verify=str(graph.ca_file))
    assert response.status_code == 404 and error_of(response)["code"] in (100, 803)
    health = requests.get(f"{graph.url}/__standin/health", timeout=5, verify=str(graph.ca_file))
    assert health.status_code == 200
