"""A batch Meta rejects because of one event: the event is isolated, the others are sent, every attempt is reported."""

from __future__ import annotations

from ansible_collections.openclaw.standalone.plugins.module_utils import capi
from harness.graph_api import FakeResponse


class BlamingSession:
    """Like Graph: the first bad event of a request is named in blame_field_specs (or not, with blame=False)."""

    def __init__(self, bad=(), blame=True, fatal_on_call=None):
        self.bad = set(bad)
        self.blame = blame
        self.fatal_on_call = fatal_on_call
        self.calls = []

    def post(self, url, json, headers, timeout, verify):
        self.calls.append([event["event_id"] for event in json["data"]])
        if self.fatal_on_call == len(self.calls):
            return FakeResponse(400, {"error": {"message": "Invalid OAuth access token", "code": 190}})
        for index, event in enumerate(json["data"]):
            if event["event_id"] in self.bad:
                error = {"message": "Invalid parameter", "code": 100, "error_subcode": 2804019}
                if self.blame:
                    error["error_data"] = {"blame_field_specs": [["data", index, "user_data", "ctwa_clid"]]}
                return FakeResponse(400, {"error": error})
        return FakeResponse(200, {"events_received": len(json["data"]), "messages": [], "fbtrace_id": "T%d" % len(self.calls)})


def client(session):
    return capi.CapiClient("https://graph.test", "v25.0", "123", "token", retries=1, session=session, sleep=lambda _seconds: None)


def events(count):
    return [{"event_id": "e%d" % index} for index in range(count)]


def test_blamed_event_is_set_aside_and_the_rest_resent_in_one_request():
    session = BlamingSession(bad={"e2"})
    outcome = client(session).send_isolating(events(5))
    assert outcome["received"] == 4
    assert outcome["fatal"] is None
    assert session.calls == [["e0", "e1", "e2", "e3", "e4"], ["e0", "e1", "e3", "e4"]]
    assert [result["ok"] for result in outcome["results"]] == [True, True, False, True, True]
    assert outcome["results"][2]["error"].subcode == 2804019
    # Good events were part of the rejected request too: both attempts are reported.
    assert [(attempt["attempt"], attempt["ok"]) for attempt in outcome["results"][0]["attempts"]] == [(1, False), (2, True)]
    assert [(attempt["attempt"], attempt["ok"]) for attempt in outcome["results"][2]["attempts"]] == [(1, False)]


def test_without_blame_the_request_is_halved():
    session = BlamingSession(bad={"e5"}, blame=False)
    outcome = client(session).send_isolating(events(8))
    assert outcome["received"] == 7
    assert [index for index, result in enumerate(outcome["results"]) if not result["ok"]] == [5]


def test_an_error_not_about_the_events_stops_and_is_not_split():
    session = BlamingSession(fatal_on_call=1)
    outcome = client(session).send_isolating(events(4))
    assert outcome["received"] == 0
    assert outcome["fatal"].code == 190
    assert len(session.calls) == 1
    assert all(result["error"] is outcome["fatal"] for result in outcome["results"])


def test_a_request_without_answer_is_never_split_or_resent():
    error = capi.GraphError("no answer", outcome_unknown=True)
    assert not error.about_events
    assert capi.GraphError("x", http_status=400, code=100).about_events
    assert not capi.GraphError("x", http_status=400, code=190).about_events


def test_blamed_index_is_read_from_graph_errors():
    assert capi.blamed_index({"error_data": {"blame_field_specs": [["data", 3, "event_time"]]}}) == 3
    assert capi.blamed_index({"error_data": {"blame_field_specs": [["user_data"]]}}) is None
    assert capi.blamed_index({}) is None
