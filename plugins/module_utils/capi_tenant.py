# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""CAPI events of a tenant's WhatsApp dialogs, read from and logged to the tenant's own database.

Shared by the ``capi_event`` module (tenant mode) and the ``openclaw-capi``
command in the tenant's image, so both send the same events with the same
event ids (capi.dialog_event_id) under the same lock per dialog and level:
whichever runs first sends, the other finds the level marked. Imports no
ansible. The connection's search_path must be pinned to the catalog
(pgsession.PINNED_SEARCH_PATH); every statement names its schema.
"""

from __future__ import annotations

import datetime
import json
import time

from ansible_collections.openclaw.standalone.plugins.module_utils import capi

try:
    from psycopg2 import sql
except ImportError:  # the module reports the missing library before anything here runs
    sql = None

DIALOG_COLUMNS = (
    "id", "phone", "bsuid", "ctwa_clid", "source_id", "last_message", "capi_msg_count", "incoming_count",
    "l1_sent", "l1_sent_at", "l1_event_id", "l2_sent", "l2_sent_at", "l2_event_id", "l3_sent", "l3_sent_at", "l3_event_id",
)  # fmt: skip
SETTINGS_COLUMNS = (
    "pixel_id", "access_token", "l1_event_name", "l2_event_name", "l3_event_name", "l1_threshold", "whatsapp_business_account_id", "partner_agent",
)  # fmt: skip
# Level 3 is a booking. Purchase needs a value and a currency (subcode 2804009);
# without them the booking is reported as OrderCreated, the business-messaging
# event for "an order was placed", when the caller asks for that.
BOOKING_EVENT = "OrderCreated"


class TenantError(Exception):
    """A failure with a message for the operator; ``extra`` goes into the result.

    ``kind``: not_found (no settings or dialog), invalid (Meta would reject the
    event; nothing sent) or meta (Meta did not accept a request).
    """

    def __init__(self, msg, kind="invalid", **extra):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind
        self.extra = extra


def lock_key(dialog_id, level):
    return "openclaw.capi/%s/L%d" % (dialog_id, level)


def is_superuser(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user")
        row = cur.fetchone()
    conn.rollback()
    return row is None or bool(row[0])


def columns(names):
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def read_settings(cur):
    cur.execute(sql.SQL("SELECT {} FROM public.capi_settings WHERE is_active ORDER BY created_at DESC NULLS LAST LIMIT 1").format(columns(SETTINGS_COLUMNS)))
    row = cur.fetchone()
    return None if row is None else dict(zip(SETTINGS_COLUMNS, row))


def read_dialog(cur, phone=None, bsuid=None, dialog_id=None):
    """The dialog by id, BSUID or phone; Baileys rows store digits, WhatsApp Cloud API rows '+digits'."""
    select = sql.SQL("SELECT {} FROM public.wa_dialogs ").format(columns(DIALOG_COLUMNS))
    if dialog_id is not None:
        cur.execute(select + sql.SQL("WHERE id = %s"), (dialog_id,))
    elif bsuid:
        cur.execute(select + sql.SQL("WHERE bsuid = %s"), (bsuid,))
    else:
        cur.execute(select + sql.SQL("WHERE phone = ANY(%s) ORDER BY phone LIMIT 1"), ([phone, "+" + phone],))
    row = cur.fetchone()
    return None if row is None else dict(zip(DIALOG_COLUMNS, row))


def already_logged(cur, event_id, status):
    cur.execute("SELECT 1 FROM public.capi_events_log WHERE event_id = %s AND status = %s LIMIT 1", (event_id, status))
    return cur.fetchone() is not None


def insert_log(cur, log, event_id, status, error_text=None, attempt=None, response=None, fbtrace_id=None):
    cur.execute(
        "INSERT INTO public.capi_events_log"
        " (phone, bsuid, event_name, event_level, ctwa_clid, source_id, pixel_id, event_id, fb_response, status, error_text, attempt, fbtrace_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
        (
            log["phone"],
            log.get("bsuid"),
            log["event_name"],
            log["level"],
            log["ctwa_clid"],
            log["source_id"],
            log["pixel_id"],
            event_id,
            json.dumps(response) if response is not None else None,
            status,
            error_text,
            attempt,
            fbtrace_id,
        ),
    )


def log_attempts(cur, log, event_id, attempts, response=None):
    """One row per request the event was part of; the accepted one carries Meta's answer."""
    for attempt in attempts:
        if attempt["ok"]:
            insert_log(cur, log, event_id, "success", attempt=attempt["attempt"], response=response, fbtrace_id=(response or {}).get("fbtrace_id"))
        else:
            insert_log(cur, log, event_id, "error", error_text=attempt["error"], attempt=attempt["attempt"], response={"error": attempt["error"]})


def mark_sent(cur, dialog_id, level, event_id):
    flag = "l%d" % level
    cur.execute(
        sql.SQL("UPDATE public.wa_dialogs SET {} = true, {} = pg_catalog.now(), {} = %s, updated_at = pg_catalog.now() WHERE id = %s").format(
            sql.Identifier(flag + "_sent"), sql.Identifier(flag + "_sent_at"), sql.Identifier(flag + "_event_id")
        ),
        (event_id, dialog_id),
    )


class TenantSender:
    """Sends and logs one tenant's dialog events.

    ``options``: level, event_name, event_time, value, currency, force,
    non_ctwa, test_event_code, partner_agent, api_version, graph_url,
    timeout, retries, verify, booking_event (level 3 without a value:
    None keeps the settings' event, e.g. Purchase, which then fails).
    """

    def __init__(self, conn, tenant, dbname, options, check_mode=False, warn=None, on_secret=None, session=None):
        self.conn = conn
        self.tenant = tenant
        self.dbname = dbname
        self.options = options
        self.check_mode = check_mode
        self.warn = warn or (lambda _message: None)
        self.on_secret = on_secret or (lambda _secret: None)
        self.session = session
        self.result = dict(changed=False, sent=False)

    def option(self, name, default=None):
        value = self.options.get(name)
        return default if value is None else value

    def client(self, settings):
        return capi.CapiClient(
            self.option("graph_url", capi.DEFAULT_GRAPH_URL),
            self.option("api_version", capi.DEFAULT_API_VERSION),
            settings["pixel_id"],
            settings["access_token"],
            timeout=self.option("timeout", 10),
            retries=self.option("retries", 3),
            verify=self.option("verify", True),
            session=self.session,
        )

    def request_extra(self, settings):
        extra = {}
        if self.options.get("test_event_code"):
            extra["test_event_code"] = self.options["test_event_code"]
        partner = self.options.get("partner_agent") or settings.get("partner_agent")
        if partner:
            extra["partner_agent"] = partner
        return extra

    def settings(self, cur):
        settings = read_settings(cur)
        if settings is None:
            self.conn.rollback()
            raise TenantError("no active capi_settings row in %s; nothing was sent" % self.dbname, kind="not_found")
        self.on_secret(settings["access_token"])
        # Waits for a concurrent sender of the same dialog and level are bounded too.
        cur.execute("SET LOCAL lock_timeout = %s", ("%ds" % int(self.option("timeout", 10) * (self.option("retries", 3) + 1) + 60),))
        return settings

    def event_name(self, level, settings):
        name = self.options.get("event_name") or settings["l%d_event_name" % level] or capi.DEFAULT_LEVEL_EVENTS[level]
        if level == 3 and name == "Purchase" and self.options.get("value") is None and self.options.get("booking_event") and not self.options.get("event_name"):
            name = self.options["booking_event"]
        return name

    # -- one dialog, one level ---------------------------------------------
    def send(self, phone=None, bsuid=None, shown=None):
        """Send the level's event for the dialog of ``phone`` (normalised digits) or ``bsuid``, once."""
        level = self.options["level"]
        shown = shown or phone or bsuid
        conn = self.conn
        with conn.cursor() as cur:
            if self.check_mode:
                cur.execute("SET TRANSACTION READ ONLY")
            settings = self.settings(cur)
            dialog = read_dialog(cur, phone=phone, bsuid=bsuid)
            if dialog is None:
                conn.rollback()
                if bsuid:
                    raise TenantError("no WhatsApp dialog with bsuid %s in %s; nothing was sent" % (bsuid, self.dbname), kind="not_found")
                raise TenantError(
                    "no WhatsApp dialog with phone %s in %s (stored as %s or +%s); nothing was sent" % (shown, self.dbname, phone, phone), kind="not_found"
                )
            if not self.check_mode:
                # One sender per dialog and level at a time, held until commit. An
                # advisory lock rather than a row lock, so the gateway's own updates
                # of the dialog are not held up while Meta answers.
                cur.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%s, 0))", (lock_key(dialog["id"], level),))
                dialog = read_dialog(cur, dialog_id=dialog["id"])  # re-read: the previous holder may have sent it
            flag = "l%d" % level
            event_name = self.event_name(level, settings)
            event_id = capi.dialog_event_id(self.tenant, dialog["id"], level)
            self.result.update(level=level, event_name=event_name, event_id=event_id)
            if dialog["%s_sent" % flag]:
                if not self.options.get("force"):
                    conn.rollback()
                    sent_at = dialog["%s_sent_at" % flag]
                    self.result["reason"] = "level %d was already sent%s (event_id %s)" % (
                        level,
                        " at %s" % sent_at.isoformat() if sent_at else "",
                        dialog["%s_event_id" % flag] or "unknown",
                    )
                    return self.result
                event_id = "%s-f%d" % (event_id, int(time.time()))
                self.result["event_id"] = event_id
            event_time = self.options.get("event_time") or self.level_reached(cur, dialog, level, settings)
            event, skip_reason = self.build(dialog, settings, event_name, event_time, event_id)
            log = self.log_fields(dialog, settings, event_name, level)
            if skip_reason:
                self.result["reason"] = skip_reason
                if not already_logged(cur, event_id, "skipped"):
                    self.result["changed"] = True
                    if not self.check_mode:
                        insert_log(cur, log, event_id, "skipped", error_text=skip_reason)
                conn.commit()
                return self.result
            problems = capi.event_problems(event)
            if problems:
                conn.rollback()
                raise TenantError("the event would be rejected by Meta, nothing was sent: " + "; ".join(problems), event=event)
            self.result["event"] = event
            if self.check_mode:
                conn.rollback()
                self.result["changed"] = True
                return self.result
            try:
                response, attempts = self.client(settings).send([event], self.request_extra(settings))
            except capi.GraphError as error:
                log_attempts(cur, log, event_id, error.attempts)
                conn.commit()
                self.result["attempts"] = error.attempts
                raise TenantError(
                    "Meta did not accept the level %d event for %s: %s; the dialog was not marked" % (level, shown, error.describe()), kind="meta"
                ) from None
            log_attempts(cur, log, event_id, attempts, response)
            received = int(response.get("events_received") or 0)
            if received >= 1:
                mark_sent(cur, dialog["id"], level, event_id)
            conn.commit()
        self.result.update(attempts=attempts, events_received=received, fbtrace_id=response.get("fbtrace_id"), sent=received >= 1, changed=received >= 1)
        return self.result

    def build(self, dialog, settings, event_name, event_time, event_id):
        phone = dialog["phone"].lstrip("+") if dialog["phone"] else None
        if not phone and not (dialog["ctwa_clid"] and settings["whatsapp_business_account_id"]):
            # Nothing else identifies the customer to Meta: a chat event needs the phone.
            return None, "the dialog has no phone number and no ctwa_clid, so Meta cannot match it to anyone"
        return capi.build_event(
            event_name,
            event_time,
            event_id=event_id,
            phone=phone,
            ctwa_clid=dialog["ctwa_clid"],
            waba_id=settings["whatsapp_business_account_id"],
            value=self.options.get("value"),
            currency=self.options.get("currency"),
            non_ctwa=self.option("non_ctwa", "chat"),
        )

    @staticmethod
    def log_fields(dialog, settings, event_name, level):
        return dict(
            phone=dialog["phone"],
            bsuid=dialog["bsuid"],
            event_name=event_name,
            level=level,
            ctwa_clid=dialog["ctwa_clid"],
            source_id=dialog["source_id"],
            pixel_id=settings["pixel_id"],
        )

    def level_reached(self, cur, dialog, level, settings):
        """When the dialog reached the level, within Meta's 7-day window."""
        now = int(time.time())
        reached = dialog["last_message"]
        if level == 1:
            phones = [dialog["phone"], dialog["phone"].lstrip("+"), "+" + dialog["phone"].lstrip("+")] if dialog["phone"] else []
            cur.execute(
                "SELECT created_at FROM public.wa_messages WHERE (phone = ANY(%s) OR bsuid = %s) AND direction = 'inbound'"
                " ORDER BY created_at OFFSET %s LIMIT 1",
                (phones, dialog["bsuid"], max((settings["l1_threshold"] or 1) - 1, 0)),
            )
            row = cur.fetchone()
            if row is not None:
                reached = row[0]
        moment = int(reached.timestamp()) if isinstance(reached, datetime.datetime) else now
        oldest = now - capi.MAX_EVENT_AGE + 300
        if moment < oldest:
            self.warn("level %d was reached more than 7 days ago; event_time moved to the edge of Meta's window" % level)
            moment = oldest
        return min(moment, now)

    # -- level 1 for every dialog over the threshold -------------------------
    def sweep(self, limit=None):
        """Send level 1 for each dialog with at least l1_threshold counted messages that has not had it.

        Events go out up to capi.MAX_BATCH per request; an event Meta rejects
        is isolated and logged as an error while the others are sent. Dialogs
        another sender holds the lock of are left for the next sweep.
        """
        conn = self.conn
        summary = dict(changed=False, sent=False, candidates=0, events_received=0, requests=0, marked=0, busy=0, skipped=[], rejected=[])
        with conn.cursor() as cur:
            settings = self.settings(cur)
            threshold = settings["l1_threshold"] or 1
            cur.execute(
                "SELECT id FROM public.wa_dialogs WHERE NOT COALESCE(l1_sent, false) AND COALESCE(capi_msg_count, 0) >= %s"
                " ORDER BY last_message NULLS LAST, id",
                (threshold,),
            )
            ids = [row[0] for row in cur.fetchall()]
            event_ids = {dialog_id: capi.dialog_event_id(self.tenant, dialog_id, 1) for dialog_id in ids}
            # A dialog skipped once (no ad click with non_ctwa=skip, or nothing to match it by) is not retried every sweep.
            cur.execute("SELECT event_id FROM public.capi_events_log WHERE status = 'skipped' AND event_id = ANY(%s)", (list(event_ids.values()),))
            skipped_before = {row[0] for row in cur.fetchall()}
            ids = [dialog_id for dialog_id in ids if event_ids[dialog_id] not in skipped_before]
            if limit is not None:
                ids = ids[:limit]
            summary["candidates"] = len(ids)
            conn.rollback()
        if self.check_mode:
            summary["events"] = []
        for start in range(0, len(ids), capi.MAX_BATCH):
            self._sweep_chunk(ids[start : start + capi.MAX_BATCH], settings, summary)
        summary["sent"] = summary["events_received"] >= 1
        summary["changed"] = summary["sent"] or bool(self.check_mode and summary.get("events")) or any(item.get("logged") for item in summary["skipped"])
        self.result = summary
        return summary

    def _sweep_chunk(self, ids, settings, summary):
        conn = self.conn
        event_name = self.event_name(1, settings)
        with conn.cursor() as cur:
            if self.check_mode:
                cur.execute("SET TRANSACTION READ ONLY")
            cur.execute("SET LOCAL lock_timeout = %s", ("%ds" % int(self.option("timeout", 10) * (self.option("retries", 3) + 1) + 60),))
            events, pending = [], []
            for dialog_id in ids:
                cur.execute("SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtextextended(%s, 0))", (lock_key(dialog_id, 1),))
                if not cur.fetchone()[0]:
                    summary["busy"] += 1
                    continue
                dialog = read_dialog(cur, dialog_id=dialog_id)
                if dialog is None or dialog["l1_sent"]:
                    continue
                event_id = capi.dialog_event_id(self.tenant, dialog_id, 1)
                event, skip_reason = self.build(dialog, settings, event_name, self.level_reached(cur, dialog, 1, settings), event_id)
                log = self.log_fields(dialog, settings, event_name, 1)
                if skip_reason:
                    logged = not already_logged(cur, event_id, "skipped")
                    if logged and not self.check_mode:
                        insert_log(cur, log, event_id, "skipped", error_text=skip_reason)
                    summary["skipped"].append({"dialog_id": str(dialog_id), "event_id": event_id, "reason": skip_reason, "logged": logged})
                    continue
                problems = capi.event_problems(event)
                if problems:
                    # The same data would fail again: logged once as skipped, it is left out of later sweeps.
                    reason = "; ".join(problems)
                    if not self.check_mode:
                        insert_log(cur, log, event_id, "skipped", error_text="Meta would reject the event, not sent: " + reason)
                    summary["rejected"].append({"dialog_id": str(dialog_id), "event_id": event_id, "reason": reason})
                    continue
                events.append(event)
                pending.append((dialog, event_id, log))
            if self.check_mode or not events:
                if self.check_mode:
                    summary["events"].extend(events)
                    conn.rollback()
                else:
                    conn.commit()
                return
            client = self.client(settings)
            outcome = client.send_isolating(events, self.request_extra(settings))
            summary["requests"] += client.requests_made
            summary["events_received"] += outcome["received"]
            for (dialog, event_id, log), result in zip(pending, outcome["results"]):
                log_attempts(cur, log, event_id, result["attempts"], result["response"])
                if result["ok"]:
                    mark_sent(cur, dialog["id"], 1, event_id)
                    summary["marked"] += 1
                elif result["error"] is not None and outcome["fatal"] is None:
                    # Rejected on its own: resending the same event would fail the same way
                    # every sweep. The skipped row leaves it out of later sweeps; capi_event
                    # with force=true sends it once its data is fixed.
                    reason = "rejected by Meta: " + result["error"].describe()
                    insert_log(cur, log, event_id, "skipped", error_text=reason + "; not sent again by the sweep")
                    summary["rejected"].append({"dialog_id": str(dialog["id"]), "event_id": event_id, "reason": reason})
            conn.commit()
        if outcome["fatal"] is not None:
            summary["sent"] = summary["events_received"] >= 1
            message = "the sweep stopped: Meta did not accept a request: %s; dialogs not accepted were not marked" % outcome["fatal"].describe()
            raise TenantError(message, kind="meta", **summary)

    # -- read-only ---------------------------------------------------------------
    def status(self, phone=None, bsuid=None):
        conn = self.conn
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            settings = read_settings(cur)
            dialog = read_dialog(cur, phone=phone, bsuid=bsuid)
            conn.rollback()
        if dialog is None:
            raise TenantError("no WhatsApp dialog with %s %s in %s" % ("bsuid" if bsuid else "phone", bsuid or phone, self.dbname), kind="not_found")
        levels = {}
        for level in (1, 2, 3):
            flag = "l%d" % level
            sent_at = dialog["%s_sent_at" % flag]
            levels[str(level)] = {
                "sent": bool(dialog["%s_sent" % flag]),
                "sent_at": sent_at.isoformat() if sent_at else None,
                "event_id": dialog["%s_event_id" % flag],
            }
        return {
            "dialog_id": str(dialog["id"]),
            "phone": dialog["phone"],
            "bsuid": dialog["bsuid"],
            "ctwa_clid": dialog["ctwa_clid"],
            "source_id": dialog["source_id"],
            "incoming_count": dialog["incoming_count"],
            "capi_msg_count": dialog["capi_msg_count"],
            "l1_threshold": settings["l1_threshold"] if settings else None,
            "levels": levels,
        }
