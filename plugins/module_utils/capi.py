# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Meta Conversions API events for WhatsApp dialogs: payloads, local validation, sending.

The official SDK has no field for the WhatsApp Business Account id that
business-messaging events require, does not add country codes to phone
numbers, and sends batches without retries; so the payload is built here and
posted with `requests`.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import traceback

try:
    import requests
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    requests = None
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

DEFAULT_API_VERSION = "v25.0"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
MAX_BATCH = 1000
MAX_EVENT_AGE = 7 * 24 * 3600
# Meta refuses events from the future; allow for clock skew between hosts.
MAX_FUTURE_SKEW = 60

ACTION_SOURCES = ("email", "website", "app", "phone_call", "chat", "physical_store", "system_generated", "business_messaging", "other")
BUSINESS_MESSAGING_EVENTS = (
    "Purchase",
    "LeadSubmitted",
    "QualifiedLead",
    "InitiateCheckout",
    "AddToCart",
    "ViewContent",
    "OrderCreated",
    "OrderShipped",
    "OrderDelivered",
    "OrderCanceled",
    "OrderReturned",
    "CartAbandoned",
    "RatingProvided",
    "ReviewProvided",
)
# Levels map to these names unless capi_settings says otherwise.
DEFAULT_LEVEL_EVENTS = {1: "LeadSubmitted", 2: "QualifiedLead", 3: "Purchase"}

TRANSIENT_CODES = frozenset((1, 2, 4, 17, 341, 613)) | frozenset(range(80000, 80015))

_API_VERSION = re.compile(r"v[0-9]+\.[0-9]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_PHONE_NOISE = re.compile(r"[\s\-().\u00a0]")
_JID_SUFFIX = re.compile(r"@(s\.whatsapp\.net|c\.us)$")


class CapiError(Exception):
    """Input or payload problem found before anything was sent."""


class GraphError(Exception):
    """An error answer from the Graph API (or no answer at all)."""

    def __init__(self, message, http_status=None, code=None, subcode=None, fbtrace_id=None, is_transient=False, outcome_unknown=False, blamed_index=None):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown
        # Position in the request's data[] that Graph blamed (error_data.blame_field_specs), if it said.
        self.blamed_index = blamed_index
        self.message = message
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient

    @property
    def transient(self):
        """Whether retrying can help: 5xx, no connection, throttling codes, or Meta says so."""
        if self.outcome_unknown:
            return False
        if self.is_transient or self.code in TRANSIENT_CODES:
            return True
        if self.code is None:
            return self.http_status is None or self.http_status >= 500
        return False

    @property
    def about_events(self):
        """Whether Meta refused the request because of what an event holds (code 100), not who sent it or when."""
        return self.code == 100 and not self.transient and not self.outcome_unknown

    def describe(self):
        parts = [self.message]
        if self.code is not None:
            parts.append("code %s" % self.code)
        if self.subcode is not None:
            parts.append("subcode %s" % self.subcode)
        if self.http_status is not None:
            parts.append("HTTP %s" % self.http_status)
        if self.fbtrace_id:
            parts.append("fbtrace_id %s" % self.fbtrace_id)
        return ", ".join(parts)


def api_version_problem(version):
    if not isinstance(version, str) or not _API_VERSION.fullmatch(version):
        return "api_version %r must look like v25.0" % (version,)
    return None


def normalize_phone(raw, default_country_code=None):
    """Digits with the country code, as Meta hashes them: '+7 (701) 123-45-67' -> '77011234567'.

    Numbers written with '+' or '00' are international. Without either, a
    number is taken as already international (WhatsApp ids are) unless
    ``default_country_code`` is given: then a national trunk prefix ('0', or
    '8' for country code 7) is replaced by the country code.
    """
    if not isinstance(raw, str):
        raw = str(raw)
    text = _JID_SUFFIX.sub("", raw.strip())
    text = _PHONE_NOISE.sub("", text)
    if text.startswith("+"):
        digits = text[1:]
        national = False
    elif text.startswith("00"):
        digits = text[2:]
        national = False
    else:
        digits = text
        national = default_country_code is not None
    if not digits.isdigit():
        raise CapiError("phone %r: only digits, spaces, '+', '-', '.', '(' and ')' are allowed" % raw)
    if national:
        code = str(default_country_code)
        trunk = "8" if code == "7" else "0"
        if digits.startswith(trunk) and len(code) + len(digits) - 1 >= 8:
            digits = code + digits[1:]
        elif not (digits.startswith(code) and len(digits) >= 11):
            digits = code + digits
    if digits.startswith("0") or not 7 <= len(digits) <= 15:
        raise CapiError("phone %r is not a full international number (7-15 digits with the country code, got %s)" % (raw, digits))
    return digits


def sha256_hex(value):
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def dialog_event_id(tenant, dialog_key, level):
    """The same dialog and level always get the same event_id, so a retry is recognisable."""
    return "oc-" + sha256_hex("openclaw.standalone/capi/%s/%s/L%d" % (tenant, dialog_key, level))[:40]


def build_event(event_name, event_time, event_id=None, phone=None, email=None, ctwa_clid=None, waba_id=None, value=None, currency=None, non_ctwa="chat"):
    """One CAPI event. Returns (event, None) or (None, reason) when the dialog is skipped.

    Dialogs that came from a click-to-WhatsApp ad (ctwa_clid and the WhatsApp
    Business Account id known) are business-messaging events Meta attributes
    to the ad; others can only be sent as chat events with a hashed phone.
    """
    event = {"event_name": event_name, "event_time": event_time}
    if event_id:
        event["event_id"] = event_id
    if ctwa_clid and waba_id:
        event["action_source"] = "business_messaging"
        event["messaging_channel"] = "whatsapp"
        # Both are ids, sent as they are: Meta rejects them hashed.
        user_data = {"whatsapp_business_account_id": str(waba_id), "ctwa_clid": ctwa_clid}
    elif non_ctwa == "skip":
        missing = "ctwa_clid" if not ctwa_clid else "whatsapp_business_account_id"
        return None, "the dialog has no %s, so Meta cannot attribute it to an ad (non_ctwa=skip)" % missing
    else:
        event["action_source"] = "chat"
        user_data = {}
    if phone:
        user_data["ph"] = [sha256_hex(phone)]
    if email:
        user_data["em"] = [sha256_hex(email.strip().lower())]
    event["user_data"] = user_data
    if value is not None or currency:
        custom = {}
        if value is not None:
            custom["value"] = value
        if currency:
            custom["currency"] = currency.upper()
        event["custom_data"] = custom
    return event, None


def event_problems(event, now=None):
    """What Meta would reject in one event (it then rejects the whole batch)."""
    now = int(time.time()) if now is None else now
    problems = []
    name = event.get("event_name")
    if not isinstance(name, str) or not name:
        problems.append("event_name is required")
    event_time = event.get("event_time")
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        problems.append("event_time must be an integer of unix seconds")
    elif event_time < now - MAX_EVENT_AGE:
        problems.append("event_time %d is more than 7 days old; Meta rejects such events" % event_time)
    elif event_time > now + MAX_FUTURE_SKEW:
        problems.append("event_time %d is in the future" % event_time)
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        problems.append("action_source %r is not one of %s" % (source, ", ".join(ACTION_SOURCES)))
    user_data = event.get("user_data")
    if not isinstance(user_data, dict) or not user_data:
        problems.append("user_data needs at least one customer identifier")
        user_data = {}
    if source == "business_messaging":
        if event.get("messaging_channel") != "whatsapp":
            problems.append("business_messaging events need messaging_channel whatsapp")
        for field in ("whatsapp_business_account_id", "ctwa_clid"):
            if not user_data.get(field):
                problems.append("business_messaging events need user_data.%s" % field)
        if isinstance(user_data.get("ctwa_clid"), str) and _SHA256.fullmatch(user_data["ctwa_clid"]):
            problems.append("user_data.ctwa_clid must be sent as received, not hashed")
        if name not in BUSINESS_MESSAGING_EVENTS:
            problems.append("event_name %r is not allowed for WhatsApp business messaging; allowed: %s" % (name, ", ".join(BUSINESS_MESSAGING_EVENTS)))
    for field in ("ph", "em"):
        values = user_data.get(field)
        if values is None:
            continue
        for item in values if isinstance(values, list) else [values]:
            if not isinstance(item, str) or not _SHA256.fullmatch(item):
                problems.append("user_data.%s must be SHA-256 hex of the normalised value" % field)
                break
    if name == "Purchase":
        custom = event.get("custom_data") or {}
        value = custom.get("value")
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not isinstance(custom.get("currency"), str)
            or not _CURRENCY.fullmatch(custom["currency"])
        ):
            problems.append("Purchase needs custom_data.value (a number) and custom_data.currency (ISO 4217, e.g. USD)")
    if "event_id" in event and not isinstance(event["event_id"], str):
        problems.append("event_id must be a string")
    return problems


def blamed_index(error):
    """The data[] index Graph's error_data.blame_field_specs points at, e.g. [["data", 3, "event_time"]]."""
    data = error.get("error_data")
    specs = data.get("blame_field_specs") if isinstance(data, dict) else None
    if not isinstance(specs, list):
        return None
    for spec in specs:
        if isinstance(spec, list) and len(spec) >= 2 and spec[0] == "data" and isinstance(spec[1], int) and not isinstance(spec[1], bool):
            return spec[1]
    return None


class CapiClient:
    """POSTs events to <graph_url>/<version>/<dataset>/events, token in the Authorization header."""

    def __init__(self, graph_url, api_version, dataset_id, access_token, timeout=10, retries=3, verify=True, backoff=0.5, session=None, sleep=time.sleep):
        self.url = "%s/%s/%s/events" % (graph_url.rstrip("/"), api_version, dataset_id)
        self.access_token = access_token
        self.timeout = timeout
        self.retries = retries
        self.verify = verify
        self.backoff = backoff
        self.session = session or requests.Session()
        self.sleep = sleep
        self.requests_made = 0

    def _post(self, body):
        self.requests_made += 1
        try:
            response = self.session.post(
                self.url,
                json=body,
                headers={"Authorization": "Bearer %s" % self.access_token},
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.exceptions.ConnectTimeout:
            raise GraphError("could not connect within %ss" % self.timeout) from None
        except requests.exceptions.ReadTimeout:
            # The request was sent: Meta may have counted the event, and it does
            # not deduplicate business-messaging events, so a retry could count
            # it twice. Fail instead; the operator checks Events Manager.
            raise GraphError(
                "no answer within %ss after the request was sent; the event may have been received, so it was not retried" % self.timeout,
                outcome_unknown=True,
            ) from None
        except requests.exceptions.RequestException as exc:
            # The exception text can hold the request; keep only its class.
            raise GraphError("request failed: %s" % type(exc).__name__) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 200 and isinstance(payload, dict) and "events_received" in payload:
            return payload
        error = (payload or {}).get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            raise GraphError(
                error.get("error_user_msg") or error.get("message") or "error without message",
                http_status=response.status_code,
                code=error.get("code"),
                subcode=error.get("error_subcode"),
                fbtrace_id=error.get("fbtrace_id"),
                is_transient=bool(error.get("is_transient")),
                blamed_index=blamed_index(error),
            )
        raise GraphError("unexpected answer", http_status=response.status_code)

    def send(self, events, extra=None):
        """Send one request, retrying transient failures. Returns (response, attempts)."""
        body = {"data": events}
        body.update(extra or {})
        attempts = []
        for attempt in range(self.retries + 1):
            try:
                response = self._post(body)
            except GraphError as error:
                attempts.append({"attempt": attempt + 1, "ok": False, "error": error.describe(), "transient": error.transient})
                if not error.transient or attempt == self.retries:
                    error.attempts = attempts
                    raise
                # Exponential backoff with full jitter spreads out retries of parallel senders.
                self.sleep(random.uniform(0, self.backoff * (2**attempt)))  # noqa: S311 - jitter, not a secret
                continue
            attempts.append({"attempt": attempt + 1, "ok": True, "events_received": response.get("events_received"), "fbtrace_id": response.get("fbtrace_id")})
            return response, attempts
        raise AssertionError("unreachable")  # pragma: no cover

    def send_batch(self, events, extra=None):
        """Send up to 1,000 events per request; isolate events Meta rejects.

        Returns (events_received, rejected) where rejected is [(index, error)].
        Errors that are not about the events (token, permissions, throttling
        after the retries, no answer) are raised.
        """
        outcome = self.send_isolating(events, extra)
        if outcome["fatal"] is not None:
            raise outcome["fatal"]
        rejected = [(index, result["error"]) for index, result in enumerate(outcome["results"]) if result["error"] is not None]
        return outcome["received"], rejected

    def send_isolating(self, events, extra=None):
        """Send ``events`` in requests of up to 1,000 and report what became of each one.

        One invalid event makes Meta reject its whole request (code 100). When
        Graph names the event (blame_field_specs), that event is set aside and
        the rest are sent again at once; otherwise the request is halved until
        the bad events stand alone. Any other error stops the run: it is not
        about the events, so no split can help, and after a request without an
        answer nothing more is sent (Meta may have counted it).

        Returns {"received": n, "fatal": GraphError or None, "results": [...]}
        where results[i] is {"ok": bool, "error": GraphError or None,
        "response": the accepting answer or None, "attempts": [...]} for
        events[i], and attempts lists every request the event was part of
        (numbered per event), so each can be logged.
        """
        results = [{"ok": False, "error": None, "response": None, "attempts": []} for _event in events]
        received = 0
        fatal = None
        pending = [list(range(start, min(start + MAX_BATCH, len(events)))) for start in range(0, len(events), MAX_BATCH)]
        while pending:
            indexes = pending.pop(0)
            try:
                response, attempts = self.send([events[index] for index in indexes], extra)
            except GraphError as error:
                self._record(results, indexes, error.attempts)
                if not error.about_events:
                    fatal = error
                    unsent = indexes + [index for chunk in pending for index in chunk]
                    for index in unsent:
                        results[index]["error"] = error
                    break
                if len(indexes) == 1:
                    results[indexes[0]]["error"] = error
                    continue
                blamed = error.blamed_index
                if blamed is not None and 0 <= blamed < len(indexes):
                    results[indexes[blamed]]["error"] = error
                    rest = indexes[:blamed] + indexes[blamed + 1 :]
                    pending.insert(0, rest)
                    continue
                middle = len(indexes) // 2
                pending[:0] = [indexes[:middle], indexes[middle:]]
                continue
            self._record(results, indexes, attempts)
            received += int(response.get("events_received") or 0)
            for index in indexes:
                results[index].update(ok=True, response=response)
        return {"received": received, "fatal": fatal, "results": results}

    @staticmethod
    def _record(results, indexes, attempts):
        for index in indexes:
            done = results[index]["attempts"]
            for attempt in attempts or ():
                done.append(dict(attempt, attempt=len(done) + 1))
