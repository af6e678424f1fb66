#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: capi_event
short_description: Send deduplicated Meta Conversions API events for WhatsApp dialogs
version_added: 0.1.0
description:
  - B(Tenant mode) (O(tenant)) - logs in to the tenant database as the tenant's own role (O(login_user),
    O(login_password_file)), reads the tenant's active C(capi_settings) row and the C(wa_dialogs) row of
    O(phone) or O(bsuid), sends the event of O(level) once, logs every attempt to
    C(capi_events_log) and marks the dialog (C(lN_sent), C(lN_sent_at), C(lN_event_id)), all in the transaction
    that holds a lock on the dialog and level (a transaction-scoped advisory lock), so concurrent calls for the
    same dialog and level send exactly one event.
  - B(Sweep) (O(tenant) with O(sweep=true)) - sends level 1 for every dialog that has not had it and counts at
    least C(capi_settings.l1_threshold) messages, up to 1,000 events per request. When Meta rejects a request
    because of one event, that event is set aside (the one Graph blames, else by halving the request) and logged
    as an error, and the others are sent. Event ids are the same as for single sends, and the same lock per
    dialog and level is taken (dialogs locked by another sender are left for the next sweep), so a sweep and a
    single send never both send a level. The C(openclaw-lead) and C(openclaw-capi) commands in the tenant's
    runtime image share this code.
  - B(Direct mode) (O(dataset_id), O(access_token)) - sends one event built from the options, or the list
    O(events), without a database. Events are validated locally first and sent up to 1,000 per request;
    when Meta still rejects a request, it is split to isolate the rejected events and the rest are sent.
  - Dialogs from a click-to-WhatsApp ad (a C(ctwa_clid) and the WhatsApp Business Account id known) are sent
    as C(action_source=business_messaging) with both ids unhashed, and the event name must be one Meta allows
    for business messaging. Other dialogs are sent as C(action_source=chat) with the hashed phone, or skipped,
    by O(non_ctwa).
  - The access token travels in the C(Authorization) header only, never in a URL, log row or result.
  - Transient failures (HTTP 5xx, connection failures, Graph codes 1, 2, 4, 17, 341, 613, 80000-80014,
    C(is_transient)) are retried with exponential backoff and jitter; other errors fail at once with Meta's
    message, code, subcode and C(fbtrace_id).
  - A request that was sent but got no answer within O(timeout) is not retried - Meta may have counted it, and
    it does not deduplicate business-messaging events - and fails saying so (nothing is marked; check Events
    Manager before sending again with O(force)).
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.postgres
  - openclaw.standalone.attributes
  - openclaw.standalone.attributes.actiongroup_openclaw
attributes:
  check_mode:
    support: full
    details:
      - Builds and validates the payload and returns it in RV(event) or RV(events); sends nothing and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Tenant mode is idempotent - a level already sent returns C(changed=false) with the reason.
      - Direct mode has no record of what was sent; every run sends.
options:
  tenant:
    description:
      - Tenant slug; selects tenant mode. The database is V(openclaw_<tenant>) unless O(db) is set.
    type: str
  db:
    description:
      - Tenant database, when it is not V(openclaw_<tenant>).
    type: str
  phone:
    description:
      - Customer's phone number, in any common notation (V(+7 701 123-45-67), V(87011234567), a WhatsApp id
        such as V(77011234567)). It is normalised to digits with the country code (see O(default_country_code)),
        matched against C(wa_dialogs.phone) and sent SHA-256 hashed.
      - In tenant mode exactly one of O(phone) and O(bsuid) names the dialog, unless O(sweep=true).
    type: str
  bsuid:
    description:
      - Business-scoped user id of a WhatsApp customer who shares no phone number (for example
        V(KZ.13491208655302741918)); tenant mode matches it against C(wa_dialogs.bsuid).
      - A dialog known only by its BSUID can be sent only when it came from an ad (C(ctwa_clid) and the WhatsApp
        Business Account id known); otherwise nothing identifies the customer to Meta and the dialog is skipped.
    type: str
  sweep:
    description:
      - Tenant mode - send level 1 for every dialog over C(capi_settings.l1_threshold) that has not had it,
        instead of one dialog's O(level). Takes no O(phone), O(bsuid) or O(level).
      - A dialog once logged as skipped is not swept again; that includes an event Meta rejected on its own or that
        local validation refused (the same data would fail again). Send such a level with O(phone) or O(bsuid) and
        O(force=true) once the data is fixed.
    type: bool
    default: false
  limit:
    description:
      - With O(sweep=true), at most this many dialogs (those whose last message is oldest first).
    type: int
  email:
    description:
      - Customer's e-mail (direct mode), sent trimmed, lower-cased and SHA-256 hashed.
    type: str
  level:
    description:
      - Dialog level in tenant mode - 1 (lead), 2 (qualified), 3 (purchase). Selects the event name from
        C(capi_settings) (C(l1_event_name) ...) and the dialog flags. Required in tenant mode unless O(sweep=true).
    type: int
    choices: [1, 2, 3]
  event_name:
    description:
      - Event name; overrides the one C(capi_settings) gives for O(level). Required in direct mode.
    type: str
  event_time:
    description:
      - Unix seconds of the conversion. Must be within the last 7 days and not in the future.
      - In tenant mode the default is when the dialog reached the level - for level 1 the arrival of the
        C(l1_threshold)-th incoming message when messages are recorded, else the dialog's last message -
        never later than now, and never older than 7 days (older times are moved to the edge of the window,
        with a warning). In direct mode the default is now.
    type: int
  value:
    description:
      - Purchase value (C(custom_data.value)). Required with O(currency) for C(Purchase).
    type: float
  currency:
    description:
      - ISO 4217 currency of O(value), for example V(USD) or V(KZT).
    type: str
  test_event_code:
    description:
      - Meta's test event code from Events Manager. Such events still count for ads; use only for testing.
    type: str
  partner_agent:
    description:
      - Partner name Meta assigned to the sending platform. In tenant mode the default is C(capi_settings.partner_agent).
    type: str
  api_version:
    description:
      - Graph API version. Versions expire (v25.0 on 2028-07-29).
    type: str
    default: v25.0
  graph_url:
    description:
      - Base URL of the Graph API.
    type: str
    default: https://graph.facebook.com
  timeout:
    description:
      - Seconds to wait for one answer from the Graph API.
    type: float
    default: 10
  retries:
    description:
      - How often a transient failure is retried.
    type: int
    default: 3
  validate_certs:
    description:
      - Verify the Graph API's TLS certificate.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle on the managed host to verify the Graph API's certificate with, instead of the system's.
    type: path
  force:
    description:
      - In tenant mode, send a level again although the dialog records it as sent (with a new event id).
    type: bool
    default: false
  non_ctwa:
    description:
      - What to do with a dialog that did not come from a click-to-WhatsApp ad (no C(ctwa_clid) or no WhatsApp
        Business Account id) - V(chat) sends it as C(action_source=chat) with the hashed phone (not attributed
        to an ad), V(skip) sends nothing and logs the dialog as skipped.
    type: str
    choices: [chat, skip]
    default: chat
  default_country_code:
    description:
      - Country calling code (digits, for example V(7)) for phone numbers written nationally
        (V(8 701 123 45 67), V(0301234567)). Without it, numbers without V(+) or V(00) are taken as already
        international, which WhatsApp ids are.
    type: str
  dataset_id:
    description:
      - Dataset (pixel) id; selects direct mode.
    type: str
  access_token:
    description:
      - Access token for O(dataset_id) (direct mode). Tenant mode reads it from C(capi_settings).
    type: str
  whatsapp_business_account_id:
    description:
      - WhatsApp Business Account id of the dialog (direct mode; tenant mode reads it from C(capi_settings)).
    type: str
  ctwa_clid:
    description:
      - Click id of the click-to-WhatsApp ad the dialog came from (direct mode; tenant mode reads it from the dialog).
    type: str
  event_id:
    description:
      - Event id (direct mode). Default - derived from the dataset, event name, customer and event time, so
        a repeated send of the same event carries the same id.
    type: str
  events:
    description:
      - Direct mode batch - a list of events, each a dict with the keys O(phone), O(email), O(ctwa_clid),
        O(whatsapp_business_account_id) (defaults to the option), O(event_name), O(event_time) (default now),
        O(event_id), O(value), O(currency).
      - Invalid events are reported in RV(rejected) and not sent; the valid ones are sent.
    type: list
    elements: dict
notes:
  - In tenant mode the module refuses to log in as a superuser. The tables it reads and writes belong to the
    tenant, whose triggers or functions would run with the rights of whoever wrote to them; as the tenant's own
    role (V(openclaw_<tenant>), password in C(<secrets_dir>/db-<tenant>.password) or the vault) they run with
    the tenant's rights only. Its statements name every table with its schema and the session's search_path
    is pinned to the system catalog.
  - Meta does not deduplicate business-messaging events; in tenant mode this module does (a lock per dialog
    and level, C(lN_sent) flags, and a unique index on successful C(event_id)s).
  - Tenant mode needs the tenant schema of migration V003 or later (C(bsuid) columns).
seealso:
  - name: Conversions API for Business Messaging
    description: Meta's guide to sending WhatsApp events.
    link: https://developers.facebook.com/docs/marketing-api/conversions-api/business-messaging
"""

EXAMPLES = r"""
- name: Report that the dialog with +7 701 123 45 67 qualified (level 2), once
  openclaw.standalone.capi_event:
    tenant: aliya
    phone: "+77011234567"
    level: 2
    login_port: 5435
    login_user: openclaw_aliya
    login_password_file: /etc/openclaw/secrets/db-aliya.password

- name: Report a purchase with its value
  openclaw.standalone.capi_event:
    tenant: aliya
    phone: "87011234567"
    default_country_code: "7"
    level: 3
    value: 45000
    currency: KZT
    login_port: 5435
    login_user: openclaw_aliya
    login_password_file: /etc/openclaw/secrets/db-aliya.password

- name: Preview the payload without sending
  openclaw.standalone.capi_event:
    tenant: aliya
    phone: "77011234567"
    level: 1
    login_port: 5435
    login_user: openclaw_aliya
    login_password_file: /etc/openclaw/secrets/db-aliya.password
  check_mode: true
  register: preview

- name: Send level 1 for every dialog over the threshold, 1,000 events per request
  openclaw.standalone.capi_event:
    tenant: aliya
    sweep: true
    login_port: 5435
    login_user: openclaw_aliya
    login_password_file: /etc/openclaw/secrets/db-aliya.password

- name: Send a batch directly to a dataset
  openclaw.standalone.capi_event:
    dataset_id: "123456789012345"
    access_token: "{{ vault_capi_token }}"
    whatsapp_business_account_id: "109876543210987"
    events:
      - {ctwa_clid: "ARAkLkA8rmlFeiCk", event_name: LeadSubmitted, event_time: 1763900000}
      - {phone: "+14155550100", event_name: Purchase, value: 19.9, currency: USD}
"""

RETURN = r"""
sent:
  description: Whether Meta accepted at least one event in this run.
  returned: always
  type: bool
reason:
  description: Why nothing was sent (level already sent, dialog skipped).
  returned: when nothing was sent on purpose
  type: str
  sample: level 2 was already sent at 2026-11-23T10:00:00+00:00 (event_id oc-3f0c...)
event:
  description: The event as sent (or, in check mode, as it would be sent). Holds no token.
  returned: tenant mode and single direct events
  type: dict
  sample:
    event_name: QualifiedLead
    event_time: 1763891000
    event_id: oc-3f0c2a...
    action_source: business_messaging
    messaging_channel: whatsapp
    user_data: {whatsapp_business_account_id: "109876543210987", ctwa_clid: ARAkLkA8rmlFeiCk, ph: ["4b1c..."]}
events:
  description: The valid events of a batch or a sweep, in check mode.
  returned: check mode with O(events) or O(sweep)
  type: list
  elements: dict
event_id:
  description: Event id of the event.
  returned: tenant mode
  type: str
events_received:
  description: How many events Meta reported as received.
  returned: when something was sent
  type: int
fbtrace_id:
  description: Meta's trace id of the successful request.
  returned: when a single event was sent
  type: str
attempts:
  description: Every request attempt with its outcome (no tokens).
  returned: when a single event was sent or failed
  type: list
  elements: dict
requests:
  description: HTTP requests made for a batch or a sweep.
  returned: with O(events) or O(sweep)
  type: int
rejected:
  description:
    - Events of a batch that were not accepted - by local validation or by Meta - with the reason (C(index)).
    - With O(sweep), the dialogs whose level 1 event was not accepted (C(dialog_id), C(event_id), C(reason)); each
      attempt is logged as an error in C(capi_events_log), then a C(skipped) row keeps later sweeps from sending the
      same event again; the dialog stays unmarked.
  returned: with O(events) or O(sweep)
  type: list
  elements: dict
  sample: [{index: 12, reason: "Purchase needs custom_data.value (a number) and custom_data.currency"}]
skipped:
  description: Events of a batch (C(index)) or dialogs of a sweep (C(dialog_id)) that were skipped, with the reason.
  returned: with O(events) or O(sweep)
  type: list
  elements: dict
candidates:
  description: Dialogs over the threshold without level 1 that the sweep looked at.
  returned: with O(sweep)
  type: int
marked:
  description: Dialogs the sweep marked as sent (C(l1_sent)).
  returned: with O(sweep)
  type: int
busy:
  description: Dialogs another sender held the lock of; the next sweep takes them.
  returned: with O(sweep)
  type: int
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.openclaw.standalone.plugins.module_utils import capi, capi_tenant, leads
from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import (
    PINNED_SEARCH_PATH,
    POSTGRES_MUTUALLY_EXCLUSIVE,
    ConnectionFailure,
    connect,
    ensure_psycopg2,
    error_text,
    postgres_common_argument_spec,
    psycopg2,
    resolve_login_password,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import DATABASE_NAME, slug_problems

EVENT_KEYS = ("phone", "email", "ctwa_clid", "whatsapp_business_account_id", "event_name", "event_time", "event_id", "value", "currency")


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        tenant=dict(type="str"),
        db=dict(type="str"),
        phone=dict(type="str"),
        bsuid=dict(type="str"),
        sweep=dict(type="bool", default=False),
        limit=dict(type="int"),
        email=dict(type="str"),
        level=dict(type="int", choices=[1, 2, 3]),
        event_name=dict(type="str"),
        event_time=dict(type="int"),
        value=dict(type="float"),
        currency=dict(type="str"),
        test_event_code=dict(type="str"),
        partner_agent=dict(type="str"),
        api_version=dict(type="str", default=capi.DEFAULT_API_VERSION),
        graph_url=dict(type="str", default=capi.DEFAULT_GRAPH_URL),
        timeout=dict(type="float", default=10),
        retries=dict(type="int", default=3),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        force=dict(type="bool", default=False),
        non_ctwa=dict(type="str", default="chat", choices=["chat", "skip"]),
        default_country_code=dict(type="str"),
        dataset_id=dict(type="str"),
        access_token=dict(type="str", no_log=True),
        whatsapp_business_account_id=dict(type="str"),
        ctwa_clid=dict(type="str"),
        event_id=dict(type="str"),
        events=dict(type="list", elements="dict"),
    )
    return spec


class CapiRun:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = dict(changed=False, sent=False)

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **dict(self.result, **extra))

    def client(self, dataset_id, access_token):
        verify = self.params["ca_path"] or self.params["validate_certs"]
        return capi.CapiClient(
            self.params["graph_url"],
            self.params["api_version"],
            dataset_id,
            access_token,
            timeout=self.params["timeout"],
            retries=self.params["retries"],
            verify=verify,
        )

    def request_extra(self, partner_agent=None):
        extra = {}
        if self.params["test_event_code"]:
            extra["test_event_code"] = self.params["test_event_code"]
        if self.params["partner_agent"] or partner_agent:
            extra["partner_agent"] = self.params["partner_agent"] or partner_agent
        return extra

    def phone(self, value):
        try:
            return capi.normalize_phone(value, self.params["default_country_code"])
        except capi.CapiError as exc:
            self.fail(str(exc))

    # -- tenant mode ---------------------------------------------------------
    def tenant(self):
        params = self.params
        problems = slug_problems(params["tenant"], variable="tenant")
        if params["sweep"]:
            extra = [name for name in ("phone", "bsuid", "level") if params[name] is not None]
            if extra:
                problems.append("sweep sends level 1 to every dialog over the threshold; it takes no %s" % ", ".join(extra))
        elif params["level"] is None or (params["phone"] is None) == (params["bsuid"] is None):
            problems.append("tenant mode needs level and exactly one of phone or bsuid (or sweep=true)")
        if params["limit"] is not None and params["limit"] < 1:
            problems.append("limit must be at least 1")
        if problems:
            self.fail("invalid input, nothing was sent: " + "; ".join(str(problem) for problem in problems))
        phone = self.phone(params["phone"]) if params["phone"] else None
        bsuid = self.bsuid(params["bsuid"]) if params["bsuid"] else None
        ensure_psycopg2(self.module)
        resolve_login_password(self.module)
        dbname = params["db"] or DATABASE_NAME.format(slug=params["tenant"])
        try:
            conn = connect(params, dbname=dbname, options=PINNED_SEARCH_PATH)
        except ConnectionFailure as exc:
            self.fail(str(exc))
        sender = capi_tenant.TenantSender(
            conn,
            params["tenant"],
            dbname,
            dict(params, verify=params["ca_path"] or params["validate_certs"]),
            check_mode=self.module.check_mode,
            warn=self.module.warn,
            on_secret=self.module.no_log_values.add,
        )
        try:
            self.refuse_superuser(conn, dbname)
            if params["sweep"]:
                self.result = sender.sweep(limit=params["limit"])
            else:
                self.result = sender.send(phone=phone, bsuid=bsuid, shown=params["phone"] or bsuid)
        except capi_tenant.TenantError as exc:
            self.result = dict(sender.result, **exc.extra)
            self.fail(exc.msg)
        except psycopg2.Error as exc:
            conn.rollback()
            self.result = sender.result
            self.fail("database error in %s: %s" % (dbname, error_text(exc)))
        finally:
            conn.close()
        if params["sweep"] and self.result["rejected"]:
            self.module.warn("%d dialogs' level 1 events were not accepted; see 'rejected'" % len(self.result["rejected"]))

    def bsuid(self, value):
        try:
            return leads.check_bsuid(value)
        except leads.LeadInputError as exc:
            self.fail(str(exc))

    def refuse_superuser(self, conn, dbname):
        if capi_tenant.is_superuser(conn):
            conn.close()
            self.fail(
                "login_user %s is a superuser; tenant mode logs in to %s as the tenant's own role (login_user=%s with "
                "login_password_file=<secrets_dir>/db-%s.password), so nothing the tenant planted in its tables runs with "
                "superuser rights; nothing was sent" % (self.params["login_user"], dbname, dbname, self.params["tenant"])
            )

    # -- direct mode ---------------------------------------------------------
    def direct(self):
        params = self.params
        if params["sweep"]:
            self.fail("sweep needs tenant: it reads the dialogs from the tenant's database")
        if params["events"] is not None:
            return self.batch()
        if not params["event_name"]:
            self.fail("event_name is required in direct mode")
        phone = self.phone(params["phone"]) if params["phone"] else None
        event, skip_reason = self.direct_event(dict(params), phone)
        if skip_reason:
            self.result["reason"] = skip_reason
            return
        problems = capi.event_problems(event)
        if problems:
            self.fail("the event would be rejected by Meta, nothing was sent: " + "; ".join(problems), event=event)
        self.result["event"] = event
        if self.module.check_mode:
            self.result["changed"] = True
            return
        try:
            response, attempts = self.client(params["dataset_id"], params["access_token"]).send([event], self.request_extra())
        except capi.GraphError as error:
            self.result["attempts"] = error.attempts
            self.fail("Meta did not accept the event: %s" % error.describe())
        received = int(response.get("events_received") or 0)
        self.result.update(attempts=attempts, events_received=received, fbtrace_id=response.get("fbtrace_id"), sent=received >= 1, changed=received >= 1)

    def direct_event(self, item, phone):
        event_time = item.get("event_time")
        if event_time is None:
            event_time = int(time.time())
        event_id = item.get("event_id") or capi.dialog_event_id(
            "direct:%s" % self.params["dataset_id"], "%s/%s" % (item.get("ctwa_clid") or phone or item.get("email"), event_time), 0
        )
        value = item.get("value")
        return capi.build_event(
            item.get("event_name"),
            event_time,
            event_id=event_id,
            phone=phone,
            email=item.get("email"),
            ctwa_clid=item.get("ctwa_clid"),
            waba_id=item.get("whatsapp_business_account_id") or self.params["whatsapp_business_account_id"],
            value=float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value,
            currency=item.get("currency"),
            non_ctwa=self.params["non_ctwa"],
        )

    def batch(self):
        events, positions, rejected, skipped = [], [], [], []
        for index, item in enumerate(self.params["events"]):
            unknown = sorted(set(item) - set(EVENT_KEYS))
            if unknown:
                rejected.append({"index": index, "reason": "unknown keys: %s" % ", ".join(unknown)})
                continue
            try:
                phone = capi.normalize_phone(item["phone"], self.params["default_country_code"]) if item.get("phone") else None
            except capi.CapiError as exc:
                rejected.append({"index": index, "reason": str(exc)})
                continue
            event, skip_reason = self.direct_event(item, phone)
            if skip_reason:
                skipped.append({"index": index, "reason": skip_reason})
                continue
            problems = capi.event_problems(event)
            if problems:
                rejected.append({"index": index, "reason": "; ".join(problems)})
                continue
            events.append(event)
            positions.append(index)
        self.result.update(rejected=rejected, skipped=skipped, requests=0, events_received=0)
        if self.module.check_mode:
            self.result.update(events=events, changed=bool(events))
            return
        if events:
            client = self.client(self.params["dataset_id"], self.params["access_token"])
            try:
                received, refused = client.send_batch(events, self.request_extra())
            except capi.GraphError as error:
                self.result["requests"] = client.requests_made
                self.fail("Meta did not accept the batch: %s" % error.describe())
            rejected.extend({"index": positions[index], "reason": "rejected by Meta: %s" % error.describe()} for index, error in refused)
            rejected.sort(key=lambda entry: entry["index"])
            self.result.update(requests=client.requests_made, events_received=received, sent=received >= 1, changed=received >= 1)
        if rejected:
            self.module.warn("%d of %d events were not accepted; see 'rejected'" % (len(rejected), len(self.params["events"])))


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_one_of=[("tenant", "dataset_id")],
        mutually_exclusive=[*POSTGRES_MUTUALLY_EXCLUSIVE, ("tenant", "dataset_id"), ("tenant", "events"), ("events", "phone"), ("events", "event_name")],
        required_by={"dataset_id": ("access_token",), "bsuid": ("tenant",), "limit": ("tenant",)},
    )
    if not capi.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests") + " On Debian: apt-get install python3-requests.", exception=capi.REQUESTS_IMPORT_ERROR)
    problem = capi.api_version_problem(module.params["api_version"])
    if problem:
        module.fail_json(msg=problem)
    run = CapiRun(module)
    try:
        if module.params["tenant"]:
            run.tenant()
        else:
            run.direct()
    except capi.CapiError as exc:
        run.fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - last resort: a clear message, never the request (it holds the token)
        run.fail("unexpected error: %s" % type(exc).__name__, exception=traceback.format_exc())
    module.exit_json(**run.result)


if __name__ == "__main__":
    main()
