"""Lead Ads and WhatsApp Cloud API edges for the Graph API stand-in.

    GET  /{version}/{leadgen_id}              a Lead Ads lead (fields=...)
    POST /{version}/{phone_number_id}/messages a WhatsApp text message

``install(standin)`` registers both and returns the state: leads and phone
numbers the test creates with the token that may read or use them, and what
was read and sent. Tokens are accepted where Graph accepts them (header, body,
query) but every request records its ``token_source``, so a test can prove the
header was used; a token in the query string is refused by these edges, as
the platform must never put one in a URL.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field

from harness.graph_api import GraphRequest, graph_error

_VERSION = r"v[0-9]+\.[0-9]+"
LEAD_FIELDS = ("id", "ad_id", "form_id", "created_time", "field_data", "adset_id", "campaign_id", "is_organic", "platform")


@dataclass
class MessagingState:
    leads: dict = field(default_factory=dict)
    lead_tokens: dict = field(default_factory=dict)
    phone_tokens: dict = field(default_factory=dict)
    lead_reads: list = field(default_factory=list)
    sent: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_lead(self, token: str, leadgen_id: str, field_data: list, ad_id: str | None = None, form_id: str | None = None) -> None:
        lead = {"id": leadgen_id, "created_time": "2026-12-05T10:00:00+0000", "field_data": field_data}
        if ad_id:
            lead["ad_id"] = ad_id
        if form_id:
            lead["form_id"] = form_id
        with self.lock:
            self.leads[leadgen_id] = lead
            self.lead_tokens[leadgen_id] = token

    def add_phone_number(self, phone_number_id: str, token: str) -> None:
        with self.lock:
            self.phone_tokens[phone_number_id] = token

    def reset(self) -> None:
        with self.lock:
            self.leads.clear()
            self.lead_tokens.clear()
            self.phone_tokens.clear()
            self.lead_reads.clear()
            self.sent.clear()


def _token_problem(request: GraphRequest, expected: str | None):
    if request.record.get("token_in_query"):
        return 400, graph_error(190, "An access token in the URL is refused by this stand-in: use the Authorization header.")
    if request.token is None:
        return 400, graph_error(2500, "An active access token must be used to query information about the current user.")
    if expected is None or not hmac.compare_digest(request.token.encode(), expected.encode()):
        return 400, graph_error(190, "Invalid OAuth access token - Cannot parse access token")
    request.record["token_authorized"] = True
    return None


def _answer(result) -> tuple:
    return result[0], result[1], {}


def _error(message: str, code: int = 100, subcode: int | None = None) -> tuple:
    return 400, graph_error(code, message, subcode=subcode), {}


def install(standin) -> MessagingState:
    """Register the edges once per stand-in; later calls return the same state, emptied."""
    state = getattr(standin, "_messaging_state", None)
    if state is not None:
        state.reset()
        return state
    state = MessagingState()
    standin._messaging_state = state

    def lead(request: GraphRequest):
        leadgen_id = request.match.group("id")
        with state.lock:
            found = state.leads.get(leadgen_id)
            token = state.lead_tokens.get(leadgen_id)
        if found is None:
            return _error(f"Unsupported get request. Object with ID '{leadgen_id}' does not exist", subcode=33)
        problem = _token_problem(request, token)
        if problem is not None:
            return _answer(problem)
        fields = [name.strip() for name in (request.query.get("fields") or "id").split(",") if name.strip()]
        unknown = [name for name in fields if name not in LEAD_FIELDS]
        if unknown:
            return _error(f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (LeadgenInfo)")
        with state.lock:
            state.lead_reads.append({"leadgen_id": leadgen_id, "token_source": request.record.get("token_source"), "fields": fields})
        return 200, {name: found[name] for name in fields if name in found}, {}

    def send(request: GraphRequest):  # noqa: PLR0911 - one answer per refusal, as Graph gives
        phone_id = request.match.group("id")
        with state.lock:
            token = state.phone_tokens.get(phone_id)
        if token is None:
            return _error(f"Unsupported post request. Object with ID '{phone_id}' does not exist", subcode=33)
        problem = _token_problem(request, token)
        if problem is not None:
            return _answer(problem)
        try:
            body = json.loads(request.raw or b"{}")
        except ValueError:
            return _error("Invalid JSON")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _error("(#100) The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not to.strip():
            return _error("(#100) The parameter to is required.")
        if body.get("type", "text") != "text":
            return _error("(#100) Only text messages are served by this stand-in.")
        text = body.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"].strip():
            return _error("(#100) The parameter text['body'] is required.")
        if len(text["body"]) > 4096:
            return _error("(#100) Param text['body'] must be at most 4096 characters long.")
        message_id = "wamid." + secrets.token_hex(16)
        with state.lock:
            state.sent.append(
                {"phone_number_id": phone_id, "to": to, "body": text["body"], "message_id": message_id, "token_source": request.record.get("token_source")}
            )
        wa_id = to.lstrip("+")
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": wa_id}], "messages": [{"id": message_id}]}, {}

    standin.route("GET", rf"/{_VERSION}/(?P<id>[0-9]{{1,32}})", lead)
    standin.route("POST", rf"/{_VERSION}/(?P<id>[0-9]{{1,32}})/messages", send)
    return state
