"""CAPI payload rules, phone normalisation, retry policy and batch splitting, without a network."""

from __future__ import annotations

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import capi
from harness.graph_api import FakeResponse

NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("77011234567", None, "77011234567"),  # WhatsApp id: already international
        ("+77011234567", None, "77011234567"),
        ("+7 701 123 45 67", None, "77011234567"),
        ("+7 (701) 123-45-67", None, "77011234567"),
        ("+7-701-123-45-67", None, "77011234567"),
        ("8 701 123 45 67", "7", "77011234567"),  # Kazakhstan, national with trunk 8
        ("8 (701) 123-45-67", "7", "77011234567"),
        ("87011234567", "7", "77011234567"),
        ("7011234567", "7", "77011234567"),  # national without trunk
        ("77011234567", "7", "77011234567"),  # already with the country code
        ("8 (999) 123-45-67", "7", "79991234567"),  # Russia
        ("+7 999 123 45 67", "7", "79991234567"),
        ("007 999 123 45 67", None, "79991234567"),  # international 00 prefix
        ("(650)555-1212", "1", "16505551212"),  # Meta's own example
        ("+1 (650) 555-1212", None, "16505551212"),
        ("+49.30.1234567", None, "49301234567"),
        ("030 1234567", "49", "49301234567"),  # German trunk 0
        ("+44 7911 123456", None, "447911123456"),
        ("77011234567@s.whatsapp.net", None, "77011234567"),  # a WhatsApp JID
        (" +7\u00a0701\u00a0123\u00a045\u00a067 ", None, "77011234567"),
    ],
)
def test_phone_normalisation(raw, country, expected):
    assert capi.normalize_phone(raw, country) == expected


@pytest.mark.parametrize("raw", ["", "+", "abc", "+7 701 12x 45 67", "012345", "+0 701 123 45 67", "+1234567890123456", "12345"])
def test_impossible_phones_are_refused(raw):
    with pytest.raises(capi.CapiError, match="phone"):
        capi.normalize_phone(raw)


def test_meta_example_hash():
    # Meta's documentation: (650)555-1212 normalises to 16505551212 with this SHA-256.
    assert capi.sha256_hex(capi.normalize_phone("(650)555-1212", "1")) == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"


def test_event_id_is_stable_per_dialog_and_level():
    first = capi.dialog_event_id("aliya", "dialog-1", 2)
    assert first == capi.dialog_event_id("aliya", "dialog-1", 2)
    assert len({first, capi.dialog_event_id("aliya", "dialog-1", 3), capi.dialog_event_id("bob", "dialog-1", 2)}) == 3


def test_ctwa_dialog_becomes_a_business_messaging_event_with_unhashed_ids():
    event, skip = capi.build_event("QualifiedLead", NOW, event_id="e1", phone="77011234567", ctwa_clid="ARAkLk", waba_id="1098")
    assert skip is None
    assert event["action_source"] == "business_messaging"
    assert event["messaging_channel"] == "whatsapp"
    assert event["user_data"]["ctwa_clid"] == "ARAkLk"
    assert event["user_data"]["whatsapp_business_account_id"] == "1098"
    assert event["user_data"]["ph"] == [capi.sha256_hex("77011234567")]
    assert capi.event_problems(event, now=NOW) == []


def test_dialog_without_ad_click_is_chat_or_skipped():
    event, skip = capi.build_event("LeadSubmitted", NOW, phone="77011234567", waba_id="1098")
    assert skip is None
    assert event["action_source"] == "chat"
    assert "messaging_channel" not in event
    assert capi.build_event("LeadSubmitted", NOW, phone="77011234567", waba_id="1098", non_ctwa="skip") == (
        None,
        "the dialog has no ctwa_clid, so Meta cannot attribute it to an ad (non_ctwa=skip)",
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"event_name": "CompleteRegistration"}, "not allowed for WhatsApp business messaging; allowed: Purchase, LeadSubmitted"),
        ({"event_time": NOW - 8 * 86400}, "more than 7 days old"),
        ({"event_time": NOW + 3600}, "in the future"),
        ({"event_time": "1800000000"}, "integer of unix seconds"),
        ({"action_source": "messaging"}, "action_source 'messaging' is not one of"),
        ({"messaging_channel": "sms"}, "messaging_channel whatsapp"),
        ({"event_name": "Purchase"}, "Purchase needs custom_data.value"),
        ({"user_data": {"ph": ["77011234567"]}}, "must be SHA-256 hex"),
        ({"user_data": {}}, "at least one customer identifier"),
        ({"event_id": 42}, "event_id must be a string"),
    ],
)
def test_events_meta_would_reject_are_caught_locally(change, problem):
    event, _skip = capi.build_event("QualifiedLead", NOW, phone="77011234567", ctwa_clid="ARAkLk", waba_id="1098")
    event.update(change)
    assert any(problem in found for found in capi.event_problems(event, now=NOW))


def test_purchase_with_value_and_currency_passes():
    event, _skip = capi.build_event("Purchase", NOW, phone="77011234567", ctwa_clid="ARAkLk", waba_id="1098", value=45000.0, currency="kzt")
    assert event["custom_data"] == {"value": 45000.0, "currency": "KZT"}
    assert capi.event_problems(event, now=NOW) == []


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (capi.GraphError("no connection"), True),
        (capi.GraphError("no answer after sending", outcome_unknown=True), False),
        (capi.GraphError("x", http_status=502), True),
        (capi.GraphError("x", http_status=400, code=4), True),
        (capi.GraphError("x", http_status=400, code=17), True),
        (capi.GraphError("x", http_status=400, code=80004), True),
        (capi.GraphError("x", http_status=400, code=100, is_transient=True), True),
        (capi.GraphError("x", http_status=400, code=190), False),
        (capi.GraphError("x", http_status=400, code=100, subcode=2804066), False),
        (capi.GraphError("x", http_status=403, code=200), False),
        (capi.GraphError("x", http_status=400, code=10), False),
    ],
)
def test_retry_policy(error, transient):
    assert error.transient is transient


class FakeSession:
    """Answers like Meta: one event in ``bad`` poisons the whole request."""

    def __init__(self, bad=(), transient_first=0):
        self.bad = set(bad)
        self.transient_left = transient_first
        self.calls = []

    def post(self, url, json, headers, timeout, verify):
        self.calls.append({"url": url, "count": len(json["data"]), "headers": headers})
        if self.transient_left:
            self.transient_left -= 1
            return FakeResponse(500, {"error": {"message": "Service unavailable", "code": 2, "is_transient": True}})
        if any(event["event_id"] in self.bad for event in json["data"]):
            return FakeResponse(400, {"error": {"message": "Invalid parameter", "code": 100, "error_subcode": 2804009, "fbtrace_id": "T"}})
        return FakeResponse(200, {"events_received": len(json["data"]), "messages": [], "fbtrace_id": "T"})


def client(session, retries=3):
    return capi.CapiClient("https://graph.test", "v25.0", "123", "secret-token", retries=retries, session=session, sleep=lambda _seconds: None)


def test_token_goes_in_the_header_never_the_url():
    session = FakeSession()
    client(session).send([{"event_id": "a"}])
    assert session.calls[0]["url"] == "https://graph.test/v25.0/123/events"
    assert session.calls[0]["headers"] == {"Authorization": "Bearer secret-token"}


def test_transient_errors_are_retried_then_succeed():
    session = FakeSession(transient_first=2)
    response, attempts = client(session).send([{"event_id": "a"}])
    assert response["events_received"] == 1
    assert [attempt["ok"] for attempt in attempts] == [False, False, True]


def test_retries_are_bounded():
    session = FakeSession(transient_first=10)
    with pytest.raises(capi.GraphError) as raised:
        client(session, retries=2).send([{"event_id": "a"}])
    assert len(raised.value.attempts) == 3
    assert len(session.calls) == 3


def test_permanent_errors_are_not_retried():
    session = FakeSession(bad={"a"})
    with pytest.raises(capi.GraphError, match="Invalid parameter"):
        client(session).send([{"event_id": "a"}])
    assert len(session.calls) == 1


def test_batch_of_1000_with_3_bad_events_sends_the_other_997():
    events = [{"event_id": "e%d" % index} for index in range(1000)]
    session = FakeSession(bad={"e10", "e500", "e999"})
    sender = client(session)
    received, rejected = sender.send_batch(events)
    assert received == 997
    assert sorted(index for index, _error in rejected) == [10, 500, 999]
    # Halving isolates each bad event in about log2(1000) requests per bad event.
    assert sender.requests_made < 70


def test_batches_are_split_at_1000_events():
    session = FakeSession()
    received, rejected = client(session).send_batch([{"event_id": "e%d" % index} for index in range(2500)])
    assert (received, rejected) == (2500, [])
    assert [call["count"] for call in session.calls] == [1000, 1000, 500]


def test_api_version_format():
    assert capi.api_version_problem("v25.0") is None
    assert "must look like v25.0" in capi.api_version_problem("25.0")
    assert capi.api_version_problem("v25") is not None
