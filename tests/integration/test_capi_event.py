"""capi_event against the Graph API stand-in and a real tenant database."""

from __future__ import annotations

import secrets
import sys
import threading
import time

import psycopg2
import pytest
import yaml

from harness.ansible import ansible_env, recap, run, run_module

MODULE = "openclaw.standalone.capi_event"
TOKEN = "EAAG-test-token-" + secrets.token_hex(12)
DATASET = "1234567890"
WABA = "109876543210987"


@pytest.fixture(scope="module")
def tenant_db(pg_cluster, graph_api_server):
    slug = "capi" + secrets.token_hex(3)
    password = secrets.token_urlsafe(18)
    created = run_module(
        "openclaw.standalone.openclaw_db_schema",
        {**pg_cluster.connection_options(), "name": f"openclaw_{slug}", "owner": f"openclaw_{slug}", "owner_password": password},
    )
    assert created.returncode == 0, created.stdout
    graph_api_server.add_dataset(DATASET, TOKEN)
    with psycopg2.connect(pg_cluster.dsn_for(f"openclaw_{slug}")) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO capi_settings (pixel_id, access_token, whatsapp_business_account_id, l1_threshold) VALUES (%s, %s, %s, 3)",
            (DATASET, TOKEN, WABA),
        )
    yield {"slug": slug, "dsn": pg_cluster.dsn_for(f"openclaw_{slug}"), "role": f"openclaw_{slug}", "password": password}
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "openclaw_{slug}" WITH (FORCE)', f'DROP ROLE IF EXISTS "openclaw_{slug}"')


def sql(tenant_db, statement, params=()):
    with psycopg2.connect(tenant_db["dsn"]) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def new_dialog(tenant_db, ctwa_clid="ARAkLkA8rmlFeiCktEJQ-" + "x", stored_with_plus=False):
    digits = "7701" + str(secrets.randbelow(10**7)).zfill(7)
    sql(
        tenant_db,
        "INSERT INTO wa_dialogs (phone, name, incoming_count, ctwa_clid, last_message) VALUES (%s, 'Test', 5, %s, now() - interval '2 hours')",
        ("+" + digits if stored_with_plus else digits, ctwa_clid),
    )
    return digits


def capi(pg_cluster, graph_api, tenant_db, args, *options):
    # Logged in as the tenant's own role, as the playbook does.
    base = {
        **pg_cluster.connection_options(),
        "login_user": tenant_db["role"],
        "login_password": tenant_db["password"],
        "tenant": tenant_db["slug"],
        "graph_url": graph_api.url,
        "ca_path": str(graph_api.ca_file),
        "timeout": 3,
    }
    return run_module(MODULE, {**base, **args}, *options)


def log_rows(tenant_db, phone):
    return sql(
        tenant_db, "SELECT status, event_level, attempt, event_id FROM capi_events_log WHERE phone IN (%s, %s) ORDER BY sent_at, attempt", (phone, "+" + phone)
    )


def flags(tenant_db, phone, level):
    return sql(tenant_db, f"SELECT l{level}_sent, l{level}_event_id FROM wa_dialogs WHERE phone IN (%s, %s)", (phone, "+" + phone))[0]


@pytest.mark.parametrize(
    ("level", "event_name", "extra"), [(1, "LeadSubmitted", {}), (2, "QualifiedLead", {}), (3, "Purchase", {"value": 45000, "currency": "KZT"})]
)
def test_levels_are_sent_once_as_business_messaging_events(pg_cluster, graph_api, tenant_db, level, event_name, extra):
    phone = new_dialog(tenant_db, stored_with_plus=level == 2)
    sent = capi(pg_cluster, graph_api, tenant_db, {"phone": "+" + phone, "level": level, **extra})
    assert sent.returncode == 0, sent.stdout + sent.stderr
    result = sent.result
    assert (result["changed"], result["sent"], result["events_received"], result["event_name"]) == (True, True, 1, event_name)

    (request,) = graph_api.requests()
    assert request["path"] == f"/v25.0/{DATASET}/events"
    assert (request["token_source"], request["token_in_query"], request["token_valid"]) == ("header", False, True)
    (event,) = request["events"]
    assert event["action_source"] == "business_messaging"
    assert event["messaging_channel"] == "whatsapp"
    assert event["user_data"]["ctwa_clid"].startswith("ARAkLk")
    assert event["user_data"]["whatsapp_business_account_id"] == WABA
    assert event["event_id"] == result["event_id"]
    assert time.time() - 7 * 86400 < event["event_time"] <= time.time()
    if level == 3:
        assert event["custom_data"] == {"value": 45000.0, "currency": "KZT"}

    assert flags(tenant_db, phone, level) == (True, result["event_id"])
    assert log_rows(tenant_db, phone) == [("success", level, 1, result["event_id"])]

    again = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": level, **extra})
    assert again.result["changed"] is False
    assert f"level {level} was already sent" in again.result["reason"]
    assert len(graph_api.requests()) == 1


def test_concurrent_calls_send_exactly_one_event(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    results = []

    def call():
        results.append(capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1}))

    threads = [threading.Thread(target=call) for _index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [run.returncode for run in results] == [0] * 20
    assert sum(run.result["changed"] for run in results) == 1
    assert len(graph_api.requests()) == 1
    assert [row[0] for row in log_rows(tenant_db, phone)] == ["success"]


def test_transient_error_is_retried_and_both_attempts_logged(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    graph_api.inject({"status": 500})
    sent = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1})
    assert sent.returncode == 0, sent.stdout
    assert [attempt["ok"] for attempt in sent.result["attempts"]] == [False, True]
    assert len(graph_api.requests()) == 2
    assert [(status, attempt) for status, _level, attempt, _id in log_rows(tenant_db, phone)] == [("error", 1), ("success", 2)]
    assert flags(tenant_db, phone, 1)[0] is True


def test_permanent_error_fails_and_leaves_the_dialog_unmarked(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    graph_api.inject({"error_code": 190})
    failed = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1})
    assert failed.returncode != 0
    assert "code 190" in failed.result["msg"]
    assert "the dialog was not marked" in failed.result["msg"]
    assert len(graph_api.requests()) == 1  # not retried
    assert flags(tenant_db, phone, 1) == (False, None)
    assert [row[0] for row in log_rows(tenant_db, phone)] == ["error"]


def test_check_mode_returns_the_payload_and_sends_or_writes_nothing(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    checked = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 2}, "--check", "-vvv")
    assert checked.returncode == 0, checked.stdout
    assert checked.result["changed"] is True
    assert checked.result["event"]["event_name"] == "QualifiedLead"
    assert graph_api.requests() == []
    assert log_rows(tenant_db, phone) == []
    assert flags(tenant_db, phone, 2) == (False, None)
    assert TOKEN not in checked.stdout + checked.stderr


def test_token_never_appears_in_results_or_verbose_output(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    sent = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1}, "-vvv")
    assert sent.returncode == 0
    assert TOKEN not in sent.stdout + sent.stderr
    assert TOKEN not in str(sent.records)
    graph_api.inject(
        {"error_code": 2, "is_transient": True},
        {"error_code": 2, "is_transient": True},
        {"error_code": 2, "is_transient": True},
        {"error_code": 2, "is_transient": True},
    )
    failing = capi(pg_cluster, graph_api, tenant_db, {"phone": new_dialog(tenant_db), "level": 1, "retries": 3}, "-vvv")
    assert failing.returncode != 0
    assert TOKEN not in failing.stdout + failing.stderr


def test_dialog_without_ad_click_is_skipped_once_when_asked(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db, ctwa_clid=None)
    predicted = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1, "non_ctwa": "skip"}, "--check")
    assert predicted.result["changed"] is True
    assert log_rows(tenant_db, phone) == []
    skipped = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1, "non_ctwa": "skip"})
    assert skipped.result["changed"] is True
    assert "no ctwa_clid" in skipped.result["reason"]
    assert capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1, "non_ctwa": "skip"}).result["changed"] is False
    assert capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1, "non_ctwa": "skip"}, "--check").result["changed"] is False
    assert [row[0] for row in log_rows(tenant_db, phone)] == ["skipped"]
    assert graph_api.requests() == []

    chat = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1})
    assert chat.result["sent"] is True
    (request,) = graph_api.requests()
    assert request["events"][0]["action_source"] == "chat"
    assert len(request["events"][0]["user_data"]["ph"][0]) == 64


def test_rejected_event_names_fail_before_sending(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    refused = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 2, "event_name": "CompleteRegistration"})
    assert refused.returncode != 0
    assert "'CompleteRegistration' is not allowed for WhatsApp business messaging; allowed: Purchase, LeadSubmitted, QualifiedLead" in refused.result["msg"]
    purchase = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 3})
    assert "Purchase needs custom_data.value" in purchase.result["msg"]
    assert graph_api.requests() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [({"tenant": "Bad_Slug", "phone": "77011234567", "level": 1}, "slug-charset"), ({"tenant": "ok", "phone": "+7 70x", "level": 1}, "phone")],
)
def test_bad_input_fails_before_connecting(args, message):
    refused = run_module(MODULE, {"login_host": "127.0.0.1", "login_port": 9, **args})
    assert refused.returncode != 0
    assert message in refused.result["msg"]
    assert "unable to connect" not in refused.result["msg"]


def test_unknown_dialog_sends_nothing(pg_cluster, graph_api, tenant_db):
    refused = capi(pg_cluster, graph_api, tenant_db, {"phone": "77000000001", "level": 1})
    assert refused.returncode != 0
    assert "no WhatsApp dialog with phone 77000000001" in refused.result["msg"]
    assert graph_api.requests() == []


def test_direct_batch_of_1000_with_3_invalid_events_sends_997(graph_api):
    graph_api.add_dataset("555", TOKEN)
    now = int(time.time())
    events = [{"ctwa_clid": f"clid-{index}", "event_name": "LeadSubmitted", "event_time": now - index} for index in range(1000)]
    events[7]["event_name"] = "CompleteRegistration"
    events[400] = {"ctwa_clid": "clid-400", "event_name": "Purchase", "event_time": now}
    events[999]["event_time"] = now - 8 * 86400
    sent = run_module(
        MODULE,
        {
            "dataset_id": "555",
            "access_token": TOKEN,
            "whatsapp_business_account_id": WABA,
            "events": events,
            "graph_url": graph_api.url,
            "ca_path": str(graph_api.ca_file),
        },
    )
    assert sent.returncode == 0, sent.stdout[-3000:]
    assert sent.result["events_received"] == 997
    assert [entry["index"] for entry in sent.result["rejected"]] == [7, 400, 999]
    assert sent.result["requests"] == 1
    (request,) = graph_api.requests()
    assert len(request["events"]) == 997
    assert TOKEN not in sent.stdout + sent.stderr


def test_operator_playbook_sends_for_one_tenant(pg_cluster, graph_api, tenant_db, tmp_path):
    phone = new_dialog(tenant_db)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    # The tenant's password where the tenant role generated it on the server.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / f"db-{tenant_db['slug']}.password").write_text(tenant_db["password"] + "\n", encoding="utf-8")
    (secrets_dir / f"db-{tenant_db['slug']}.password").chmod(0o600)
    server = {**local, "openclaw_postgres_port": pg_cluster.port, "openclaw_postgres_password": pg_cluster.password, "openclaw_secrets_dir": str(secrets_dir)}
    inventory = {
        "openclaw_servers": {"hosts": {"srv1": server}},
        "openclaw_tenants": {
            "vars": {**local, "openclaw_domain": "example.test", "openclaw_capi_graph_url": graph_api.url},
            "hosts": {tenant_db["slug"]: {"openclaw_server": "srv1", "openclaw_port": 18801}, "other": {"openclaw_server": "srv1", "openclaw_port": 18802}},
        },
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    env = ansible_env(REQUESTS_CA_BUNDLE=str(graph_api.ca_file))

    unlimited = run("ansible-playbook", "-i", str(path), "playbooks/capi_event.yml", "-e", f"phone={phone}", "-e", "level=1", env=env)
    assert unlimited.returncode != 0
    assert "Run for one tenant with its dialog" in unlimited.stdout
    assert graph_api.requests() == []

    args = ["-i", str(path), "playbooks/capi_event.yml", "--limit", tenant_db["slug"], "-e", f"phone=+{phone}", "-e", "level=1", "-v"]
    sent = run("ansible-playbook", *args, env=env)
    assert sent.returncode == 0, sent.stdout[-3000:]
    assert len(graph_api.requests()) == 1
    assert recap(sent.stdout)[tenant_db["slug"]]["changed"] == 1
    assert TOKEN not in sent.stdout + sent.stderr
    assert pg_cluster.password not in sent.stdout + sent.stderr
    assert tenant_db["password"] not in sent.stdout + sent.stderr

    again = run("ansible-playbook", *args, env=env)
    assert recap(again.stdout)[tenant_db["slug"]]["changed"] == 0
    assert "level 1 was already sent" in again.stdout


def test_a_request_without_answer_is_not_retried(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    graph_api.inject({"delay": 2})
    failed = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1, "timeout": 1})
    assert failed.returncode != 0
    assert "the event may have been received, so it was not retried" in failed.result["msg"]
    assert len(graph_api.requests()) == 1
    assert flags(tenant_db, phone, 1) == (False, None)
    assert [row[0] for row in log_rows(tenant_db, phone)] == ["error"]
    time.sleep(2)  # let the stand-in finish the delayed answer before the next test resets it


def test_tenant_mode_refuses_a_superuser_login(pg_cluster, graph_api, tenant_db):
    phone = new_dialog(tenant_db)
    refused = capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1, "login_user": "postgres", "login_password": pg_cluster.password})
    assert refused.returncode != 0
    assert "is a superuser; tenant mode logs in" in refused.result["msg"]
    assert graph_api.requests() == []
    assert log_rows(tenant_db, phone) == []
    # The same call as the tenant's role goes through.
    assert capi(pg_cluster, graph_api, tenant_db, {"phone": phone, "level": 1}).result["sent"] is True


def pending_only(tenant_db, *phones):
    """Other tests' dialogs are out of the sweep's way."""
    sql(tenant_db, "UPDATE wa_dialogs SET l1_sent = true WHERE NOT (phone = ANY(%s))", ([*phones, *("+" + phone for phone in phones)],))


def test_sweep_sends_level_1_for_dialogs_over_the_threshold_once(pg_cluster, graph_api, tenant_db):
    over, under = new_dialog(tenant_db), new_dialog(tenant_db)
    sql(tenant_db, "UPDATE wa_dialogs SET capi_msg_count = CASE WHEN phone = %s THEN 3 ELSE 2 END WHERE phone IN (%s, %s)", (over, over, under))
    pending_only(tenant_db, over, under)

    predicted = capi(pg_cluster, graph_api, tenant_db, {"sweep": True}, "--check")
    assert predicted.returncode == 0, predicted.stdout
    assert (predicted.result["changed"], predicted.result["candidates"], len(predicted.result["events"])) == (True, 1, 1)
    assert graph_api.requests() == []
    assert log_rows(tenant_db, over) == []

    swept = capi(pg_cluster, graph_api, tenant_db, {"sweep": True})
    assert swept.returncode == 0, swept.stdout
    assert (swept.result["changed"], swept.result["marked"], swept.result["events_received"], swept.result["requests"]) == (True, 1, 1, 1)
    (request,) = graph_api.requests()
    (event,) = request["events"]
    assert event["user_data"]["whatsapp_business_account_id"] == WABA
    assert event["user_data"]["ctwa_clid"].startswith("ARAkLk")
    assert flags(tenant_db, over, 1)[0] is True
    assert flags(tenant_db, under, 1) == (False, None)
    assert TOKEN not in swept.stdout + swept.stderr

    # The sweep's event id is the single send's: a later single send finds it marked.
    single = capi(pg_cluster, graph_api, tenant_db, {"phone": over, "level": 1})
    assert (single.result["changed"], single.result["event_id"]) == (False, event["event_id"])
    again = capi(pg_cluster, graph_api, tenant_db, {"sweep": True})
    assert (again.result["changed"], again.result["candidates"]) == (False, 0)
    assert len(graph_api.requests()) == 1


def test_sweep_isolates_the_event_meta_rejects(pg_cluster, graph_api, tenant_db):
    # 64 upper-case hex characters pass the local check but Meta refuses a hashed click id.
    phones = [new_dialog(tenant_db), new_dialog(tenant_db, ctwa_clid=secrets.token_hex(32).upper()), new_dialog(tenant_db)]
    sql(tenant_db, "UPDATE wa_dialogs SET capi_msg_count = 5 WHERE phone = ANY(%s)", (phones,))
    pending_only(tenant_db, *phones)
    swept = capi(pg_cluster, graph_api, tenant_db, {"sweep": True})
    assert swept.returncode == 0, swept.stdout
    assert (swept.result["marked"], swept.result["events_received"]) == (2, 2)
    assert len(swept.result["rejected"]) == 1 and "subcode 2804019" in swept.result["rejected"][0]["reason"]
    assert [len(request["events"]) for request in graph_api.requests()] == [3, 2]
    assert [flags(tenant_db, phone, 1)[0] for phone in phones] == [True, False, True]
    assert [row[0] for row in log_rows(tenant_db, phones[1])] == ["error", "skipped"]
    # The same event would fail again: the next sweep leaves it out.
    again = capi(pg_cluster, graph_api, tenant_db, {"sweep": True})
    assert (again.result["candidates"], len(graph_api.requests())) == (0, 2)


def test_dialog_known_only_by_bsuid(pg_cluster, graph_api, tenant_db):
    bsuid = "KZ." + str(secrets.randbelow(10**15))
    sql(tenant_db, "INSERT INTO wa_dialogs (bsuid, incoming_count, ctwa_clid) VALUES (%s, 4, 'ARAkLk-bsuid')", (bsuid,))
    sent = capi(pg_cluster, graph_api, tenant_db, {"bsuid": bsuid, "level": 2})
    assert sent.returncode == 0, sent.stdout
    assert sent.result["sent"] is True
    (request,) = graph_api.requests()
    assert "ph" not in request["events"][0]["user_data"]
    assert sql(tenant_db, "SELECT phone, bsuid, status FROM capi_events_log WHERE bsuid = %s", (bsuid,)) == [(None, bsuid, "success")]

    no_click = "KZ." + str(secrets.randbelow(10**15))
    sql(tenant_db, "INSERT INTO wa_dialogs (bsuid, incoming_count) VALUES (%s, 4)", (no_click,))
    skipped = capi(pg_cluster, graph_api, tenant_db, {"bsuid": no_click, "level": 2})
    assert skipped.returncode == 0 and "no phone number and no ctwa_clid" in skipped.result["reason"]
    assert len(graph_api.requests()) == 1
    refused = capi(pg_cluster, graph_api, tenant_db, {"bsuid": "not a bsuid", "level": 2})
    assert refused.returncode != 0 and "business-scoped user id" in refused.result["msg"]
    both = capi(pg_cluster, graph_api, tenant_db, {"bsuid": bsuid, "phone": "77011234567", "level": 2})
    assert both.returncode != 0 and "exactly one of phone or bsuid" in both.result["msg"]
