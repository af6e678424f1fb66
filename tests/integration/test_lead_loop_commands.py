"""openclaw-lead and openclaw-capi inside the offline runtime image, against real PostgreSQL and the Graph API stand-in.

The image is built from the server role's own build context (its files plus
the module utils its runtime task copies in), on the gateway stand-in image
with OPENCLAW_INSTALL=none. A container of it runs on a network this test
creates; PostgreSQL and the Graph API stand-in listen on that network's
gateway address, the stand-in's CA comes in through REQUESTS_CA_BUNDLE, and
the commands log in as the tenant's own role.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import time
import uuid

import psycopg2
import pytest
import yaml

from harness.ansible import REPO_ROOT, run_module
from harness.docker import TEST_LABEL
from harness.graph_api import GraphAPIStandin
from harness.postgres import PostgresCluster, postgres_bindir

RUNTIME_FILES = REPO_ROOT / "roles" / "server" / "files" / "runtime"
SERVER_VARS = REPO_ROOT / "roles" / "server" / "vars" / "main.yml"
MODULE_UTILS = REPO_ROOT / "plugins" / "module_utils"
TOKEN = "EAAG-lead-loop-" + secrets.token_hex(12)
DATASET = "987654321"
WABA = "109876543210987"
AD_ID = "120210000000777"
HOSTILE_NAME = "Ro'bert\"); DROP TABLE leads;-- $(touch /tmp/pwned) `touch /tmp/pwned`\nEOF\nSQL\n'; DELETE FROM wa_dialogs; --x"
PROBE = "/tmp/pwned"


def runtime_tools() -> list[str]:
    """The module utils the server role copies into the runtime image's build context (its own list)."""
    return list(yaml.safe_load(SERVER_VARS.read_text(encoding="utf-8"))["openclaw_server_runtime_module_utils"])


def exec_stdin(client, container, command, data: bytes = b"", environment: dict | None = None) -> tuple[int, str, str]:
    """Run ``command`` in the container with ``data`` on its stdin; (exit code, stdout, stderr)."""
    from docker.utils.socket import STDERR, STDOUT, frames_iter

    exec_id = client.api.exec_create(container.id, command, stdin=True, stdout=True, stderr=True, environment=environment or {})["Id"]
    sock = client.api.exec_start(exec_id, socket=True)
    sock._sock.sendall(data)
    sock._sock.shutdown(socket.SHUT_WR)
    output = {STDOUT: b"", STDERR: b""}
    for stream, chunk in frames_iter(sock, tty=False):
        output[stream] += chunk
    sock.close()
    return client.api.exec_inspect(exec_id)["ExitCode"], output[STDOUT].decode(), output[STDERR].decode()


class LeadLoop:
    def __init__(self, client, container, cluster, graph, tenant):
        self.client = client
        self.container = container
        self.cluster = cluster
        self.graph = graph
        self.tenant = tenant

    def command(self, *argv, stdin=None, environment=None):
        data = json.dumps(stdin).encode() if isinstance(stdin, (dict, list)) else (stdin or b"")
        code, out, err = exec_stdin(self.client, self.container, list(argv), data, environment)
        lines = out.splitlines()
        assert len(lines) == 1, f"expected one JSON line, got {out!r} (stderr {err!r})"
        for line in err.splitlines():
            json.loads(line)  # logs are JSON lines too
        return code, json.loads(lines[0]), err

    def lead(self, message):
        return self.command("openclaw-lead", "record", stdin=message)

    def sql(self, statement, params=()):
        with psycopg2.connect(self.cluster.dsn_for(self.tenant["db"])) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def probe_exists(self) -> bool:
        return self.container.exec_run(["test", "-e", PROBE]).exit_code == 0

    def only_these_dialogs_pending(self, dialog_ids):
        """Other tests' dialogs are out of the sweep's way."""
        self.sql("UPDATE wa_dialogs SET l1_sent = true WHERE NOT (id::text = ANY(%s))", (list(dialog_ids),))


@pytest.fixture(scope="module")
def loop(docker_client, test_images, tmp_path_factory):
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
    ident = "oc-lead-" + uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("lead-loop")
    network = docker_client.networks.create(f"{ident}-net", driver="bridge", labels={TEST_LABEL: "1"})
    cleanup = [network.remove]
    try:
        network.reload()
        ipam = network.attrs["IPAM"]["Config"][0]
        gateway, subnet = ipam["Gateway"], ipam["Subnet"]

        cluster = PostgresCluster(bindir=bindir, host=gateway, tls=True, tls_names=("localhost",), tls_ips=(gateway,)).start()
        cleanup.append(cluster.stop)
        # It listens on this network's gateway only: its containers, and this host
        # (from whichever of its addresses it picks), log in over TLS.
        with (cluster.data_dir / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write(f"hostssl all all {subnet} scram-sha-256\nhostssl all all all scram-sha-256\n")
        assert cluster._run(f"{bindir}/pg_ctl", "--pgdata", str(cluster.data_dir), "reload").returncode == 0
        graph = GraphAPIStandin(host=gateway).start()
        cleanup.append(graph.stop)
        graph.add_dataset(DATASET, TOKEN)
        ca_dir = work / "ca"
        ca_dir.mkdir()
        shutil.copy(graph.ca_file, ca_dir / "graph-ca.pem")
        ca_dir.chmod(0o755)
        (ca_dir / "graph-ca.pem").chmod(0o644)

        slug = "lead" + secrets.token_hex(3)
        tenant = {"slug": slug, "db": f"openclaw_{slug}", "role": f"openclaw_{slug}", "password": secrets.token_urlsafe(18)}
        created = run_module(
            "openclaw.standalone.openclaw_db_schema",
            {**cluster.connection_options(), "ssl_mode": "require", "name": tenant["db"], "owner": tenant["role"], "owner_password": tenant["password"]},
        )
        assert created.returncode == 0, created.stdout
        with psycopg2.connect(cluster.dsn_for(tenant["db"])) as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO capi_settings (pixel_id, access_token, whatsapp_business_account_id, l1_threshold) VALUES (%s, %s, %s, 3)",
                (DATASET, TOKEN, WABA),
            )
            cur.execute("INSERT INTO directions (name) VALUES ('Test direction') RETURNING id")
            direction = cur.fetchone()[0]
            cur.execute("INSERT INTO creatives (title, direction_id) VALUES ('Video 1', %s) RETURNING id", (direction,))
            creative = cur.fetchone()[0]
            cur.execute("INSERT INTO ad_creative_mapping (ad_id, creative_id, direction_id) VALUES (%s, %s, %s)", (AD_ID, creative, direction))
        tenant.update(creative=creative, direction=direction)

        context = work / "runtime"
        shutil.copytree(RUNTIME_FILES, context)
        (context / "openclaw-tools").mkdir()
        for name in runtime_tools():
            shutil.copy(MODULE_UTILS / name, context / "openclaw-tools" / name)
        image = f"{ident}-runtime:test"
        built = run_module(
            "openclaw.standalone.openclaw_image",
            {
                "name": image,
                "build_context": str(context),
                "base_image": test_images["gateway"],
                "pull_base": False,
                "build_args": {"OPENCLAW_INSTALL": "none"},
            },
        )
        assert built.returncode == 0, built.stdout[-3000:]
        cleanup.append(lambda: docker_client.images.remove(image, force=True))

        environment = {
            "OPENCLAW_DB_URL": f"postgresql://{tenant['role']}:{tenant['password']}@{gateway}:{cluster.port}/{tenant['db']}?sslmode=require",
            "OPENCLAW_GRAPH_URL": graph.url,
            "OPENCLAW_TENANT": slug,
            "REQUESTS_CA_BUNDLE": "/etc/openclaw-test-ca/graph-ca.pem",
        }
        container = docker_client.containers.run(
            image,
            entrypoint=["/usr/bin/tini", "--", "sleep", "infinity"],
            name=f"{ident}-tenant",
            detach=True,
            network=network.name,
            environment=environment,
            volumes={str(ca_dir): {"bind": "/etc/openclaw-test-ca", "mode": "ro"}},
            labels={TEST_LABEL: "1"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        cleanup.append(lambda: container.remove(force=True))
        yield LeadLoop(docker_client, container, cluster, graph, tenant)
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - clean up the rest regardless
                print(f"cleanup: {type(exc).__name__}: {exc}")


@pytest.fixture
def graph(loop):
    loop.graph.reset()
    yield loop.graph
    loop.graph.reset()


def new_phone() -> str:
    return "7701" + str(secrets.randbelow(10**7)).zfill(7)


def baileys(phone, message_id=None, name="Aliya", text="Hello, how much?", source_id=AD_ID, ctwa_clid=None):
    context = {}
    if source_id or ctwa_clid:
        context["externalAdReply"] = {"sourceId": source_id, "ctwaClid": ctwa_clid, "sourceType": "ad", "title": "Ad"}
    return {
        "key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": message_id or "3EB0" + secrets.token_hex(8).upper()},
        "pushName": name,
        "messageTimestamp": int(time.time()),
        "message": {"extendedTextMessage": {"text": text, "contextInfo": context}},
    }


DIALOG = "SELECT id::text, phone, bsuid, name, incoming_count, capi_msg_count, ctwa_clid, source_id, creative_id, direction_id, l1_sent FROM wa_dialogs"


def dialog(loop, phone=None, bsuid=None):
    rows = loop.sql(DIALOG + " WHERE bsuid = %s", (bsuid,)) if bsuid else loop.sql(DIALOG + " WHERE phone = %s", (phone,))
    return rows[0] if rows else None


def test_the_image_runs_the_commands_without_ansible(loop):
    code, output = loop.container.exec_run(["python3", "-I", "-c", "import ansible"])
    assert code != 0 and b"No module named 'ansible'" in output
    code, result, _err = loop.command("openclaw-capi", "frobnicate")
    assert (code, result["ok"]) == (2, False)


def test_ctwa_message_records_dialog_message_and_lead_with_attribution(loop):
    phone = new_phone()
    clid = "ARAkLkA8rmlFeiCk-" + secrets.token_hex(4)
    code, result, _err = loop.lead(baileys(phone, ctwa_clid=clid))
    assert code == 0, result
    assert (result["ok"], result["recorded"], result["dialog_created"], result["lead"]) == (True, True, True, "created")
    row = dialog(loop, phone)
    assert row[1:8] == (phone, None, "Aliya", 1, 1, clid, AD_ID)
    assert (row[8], row[9]) == (loop.tenant["creative"], loop.tenant["direction"])
    leads = loop.sql(
        "SELECT phone, name, ad_id, ctwa_clid, chat_id, source_type, creative_id, direction_id, conversion_source FROM leads WHERE chat_id = %s", (phone,)
    )
    assert leads == [(phone, "Aliya", AD_ID, clid, phone, "whatsapp", loop.tenant["creative"], loop.tenant["direction"], "whatsapp_baileys")]
    messages = loop.sql("SELECT direction, channel, message_text, message_type FROM wa_messages WHERE phone = %s", (phone,))
    assert messages == [("inbound", "baileys", "Hello, how much?", "text")]


def test_the_same_message_twice_is_recorded_once(loop):
    phone = new_phone()
    message = baileys(phone)
    first = loop.lead(message)
    second = loop.lead(message)
    assert (first[0], first[1]["recorded"]) == (0, True)
    assert (second[0], second[1]["recorded"], second[1]["duplicate"]) == (0, False, True)
    assert dialog(loop, phone)[4:6] == (1, 1)
    assert loop.sql("SELECT count(*) FROM wa_messages WHERE phone = %s", (phone,)) == [(1,)]
    # A different message of the same dialog counts.
    assert loop.lead(baileys(phone))[1]["recorded"] is True
    assert dialog(loop, phone)[4:6] == (2, 2)


def test_cloud_api_message_known_only_by_its_bsuid(loop):
    bsuid = "KZ." + str(secrets.randbelow(10**18))
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "1"},
        "contacts": [{"profile": {"name": "No Phone"}, "user_id": bsuid}],
        "messages": [
            {
                "from_user_id": bsuid,
                "id": "wamid." + secrets.token_hex(10),
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "hi"},
                "referral": {"source_id": AD_ID, "source_type": "ad", "ctwa_clid": "ARA-bsuid"},
            }
        ],
    }
    envelope = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": value}]}]}
    code, result, _err = loop.lead(envelope)
    assert code == 0, result
    row = dialog(loop, bsuid=bsuid)
    assert row[1:6] == (None, bsuid, "No Phone", 1, 1)
    assert loop.sql("SELECT phone, bsuid, chat_id, conversion_source FROM leads WHERE bsuid = %s", (bsuid,)) == [(None, bsuid, bsuid, "WABA")]
    assert loop.sql("SELECT phone, channel, message_id = waba_message_id FROM wa_messages WHERE bsuid = %s", (bsuid,)) == [(None, "waba", True)]
    assert loop.lead(envelope)[1]["duplicate"] is True
    code, status, _err = loop.command("openclaw-capi", "status", "--bsuid", bsuid)
    assert (code, status["capi_msg_count"], status["levels"]["1"]["sent"]) == (0, 1, False)


def test_hostile_push_name_is_stored_verbatim_and_runs_nothing(loop):
    assert not loop.probe_exists()
    phone = new_phone()
    code, result, _err = loop.lead(baileys(phone, name=HOSTILE_NAME, text=HOSTILE_NAME))
    assert code == 0, result
    assert not loop.probe_exists(), "a command in the push name ran"
    assert dialog(loop, phone)[3] == HOSTILE_NAME
    assert loop.sql("SELECT name FROM leads WHERE chat_id = %s", (phone,)) == [(HOSTILE_NAME,)]
    assert loop.sql("SELECT message_text FROM wa_messages WHERE phone = %s", (phone,)) == [(HOSTILE_NAME,)]
    assert loop.sql("SELECT count(*) > 0 FROM wa_dialogs") == [(True,)]
    # Positive control: the name's command substitution, given to a shell as the old hook did, creates the probe.
    loop.container.exec_run(["sh", "-c", 'echo "name: $(touch /tmp/pwned)"'])
    assert loop.probe_exists()
    loop.container.exec_run(["rm", "-f", PROBE])


def test_sweep_sends_level_1_once_with_click_id_and_waba_id(loop, graph):
    phone = new_phone()
    clid = "ARAsweep-" + secrets.token_hex(6)
    for _index in range(3):
        assert loop.lead(baileys(phone, ctwa_clid=clid))[0] == 0
    dialog_id = dialog(loop, phone)[0]
    loop.only_these_dialogs_pending([dialog_id])

    code, dry, _err = loop.command("openclaw-capi", "sweep", "--dry-run")
    assert (code, dry["candidates"], len(dry["events"]), graph.requests()) == (0, 1, 1, [])

    code, result, _err = loop.command("openclaw-capi", "sweep")
    assert code == 0, result
    assert (result["candidates"], result["marked"], result["events_received"], result["rejected"]) == (1, 1, 1, [])
    (request,) = graph.requests()
    assert (request["token_source"], request["token_valid"]) == ("header", True)
    (event,) = request["events"]
    assert (event["event_name"], event["action_source"], event["messaging_channel"]) == ("LeadSubmitted", "business_messaging", "whatsapp")
    assert event["user_data"]["ctwa_clid"] == clid
    assert event["user_data"]["whatsapp_business_account_id"] == WABA
    assert dialog(loop, phone)[10] is True
    assert loop.sql("SELECT status, event_id FROM capi_events_log WHERE phone = %s", (phone,)) == [("success", event["event_id"])]

    again = loop.command("openclaw-capi", "sweep")
    assert (again[0], again[1]["candidates"], again[1]["events_received"]) == (0, 0, 0)
    assert len(graph.requests()) == 1

    # The capi_event module finds the same event id marked: a sweep and a single send never both send.
    module = run_module(
        "openclaw.standalone.capi_event",
        {
            **loop.cluster.connection_options(),
            "ssl_mode": "require",
            "login_user": loop.tenant["role"],
            "login_password": loop.tenant["password"],
            "tenant": loop.tenant["slug"],
            "phone": phone,
            "level": 1,
            "graph_url": graph.url,
            "ca_path": str(graph.ca_file),
        },
    )
    assert module.returncode == 0, module.stdout
    assert module.result["changed"] is False
    assert module.result["event_id"] == event["event_id"]
    assert len(graph.requests()) == 1


def test_a_batch_with_one_event_meta_rejects_still_sends_the_others(loop, graph):
    ids = {}
    # Meta rejects a hashed click id; 64 upper-case hex characters pass the local check (lower-case only).
    clids = {"good1": "ARAgood1-" + secrets.token_hex(4), "bad": secrets.token_hex(32).upper(), "good2": "ARAgood2-" + secrets.token_hex(4)}
    for label, clid in clids.items():
        phone = new_phone()
        rows = loop.sql(
            "INSERT INTO wa_dialogs (phone, incoming_count, capi_msg_count, ctwa_clid, last_message) VALUES (%s, 3, 3, %s, now()) RETURNING id::text",
            (phone, clid),
        )
        ids[label] = (rows[0][0], phone, clid)
    loop.only_these_dialogs_pending([value[0] for value in ids.values()])

    code, result, _err = loop.command("openclaw-capi", "sweep")
    assert code == 0, result
    assert (result["candidates"], result["marked"], result["events_received"]) == (3, 2, 2)
    assert [entry["dialog_id"] for entry in result["rejected"]] == [ids["bad"][0]]
    assert "2804019" in result["rejected"][0]["reason"]
    requests = graph.requests()
    assert [(len(request["events"]), request["status"]) for request in requests] == [(3, 400), (2, 200)]
    assert sorted(event["user_data"]["ctwa_clid"] for event in graph.accepted_events()) == sorted([ids["good1"][2], ids["good2"][2]])
    logged = dict(
        loop.sql(
            "SELECT phone, array_agg(status || ':' || coalesce(attempt::text, '') ORDER BY attempt) FROM capi_events_log WHERE phone = ANY(%s) GROUP BY phone",
            ([value[1] for value in ids.values()],),
        )
    )
    assert logged[ids["bad"][1]] == ["error:1", "skipped:"]
    assert logged[ids["good1"][1]] == logged[ids["good2"][1]] == ["error:1", "success:2"]
    assert [dialog(loop, value[1])[10] for value in ids.values()] == [True, False, True]
    # Resending the rejected event would fail the same way: the next sweep leaves it out.
    again = loop.command("openclaw-capi", "sweep")[1]
    assert (again["candidates"], len(graph.requests())) == (0, 2)


def test_levels_2_and_3_are_sent_once_and_a_booking_without_value_is_an_order(loop, graph):
    phone = new_phone()
    assert loop.lead(baileys(phone, ctwa_clid="ARAlevels-" + secrets.token_hex(4)))[0] == 0
    code, sent, _err = loop.command("openclaw-capi", "send", "--level", "2", "--phone", "+" + phone)
    assert (code, sent["sent"], sent["event_name"]) == (0, True, "QualifiedLead"), sent
    code, again, _err = loop.command("openclaw-capi", "send", "--level", "2", "--phone", phone)
    assert (code, again["sent"]) == (0, False)
    assert "level 2 was already sent" in again["reason"]
    code, booked, _err = loop.command("openclaw-capi", "send", "--level", "3", "--phone", phone)
    assert (code, booked["sent"], booked["event_name"]) == (0, True, "OrderCreated"), booked
    assert [request["events"][0]["event_name"] for request in graph.requests()] == ["QualifiedLead", "OrderCreated"]
    code, status, _err = loop.command("openclaw-capi", "status", "--phone", phone)
    assert [status["levels"][level]["sent"] for level in ("1", "2", "3")] == [False, True, True]

    code, missing, _err = loop.command("openclaw-capi", "send", "--level", "2", "--phone", "77000000001")
    assert (code, missing["ok"]) == (3, False)
    code, bad, _err = loop.command("openclaw-capi", "send", "--level", "3", "--phone", phone, "--value", "10")
    assert code == 2 and "--currency" in bad["error"]


def test_outbound_messages_are_logged_and_counted_once(loop):
    phone = new_phone()
    assert loop.lead(baileys(phone))[0] == 0
    outbound = {"to": "+" + phone, "text": "Thanks! $(touch /tmp/pwned)", "message_id": "out-" + secrets.token_hex(6), "channel": "baileys"}
    assert loop.command("openclaw-lead", "outbound", stdin=outbound)[1]["recorded"] is True
    assert loop.command("openclaw-lead", "outbound", stdin=outbound)[1]["duplicate"] is True
    assert loop.sql("SELECT outgoing_count FROM wa_dialogs WHERE phone = %s", (phone,)) == [(1,)]
    assert not loop.probe_exists()


def test_bad_input_and_a_superuser_login_are_refused(loop):
    code, result, _err = loop.command("openclaw-lead", "record", stdin=b"not json")
    assert (code, result["ok"]) == (2, False)
    code, result, _err = loop.lead({"key": {"remoteJid": "12@s.whatsapp.net", "id": "x"}})
    assert code == 2 and "phone" in result["error"]
    superuser = f"postgresql://postgres:{loop.cluster.password}@{loop.cluster.host}:{loop.cluster.port}/{loop.tenant['db']}?sslmode=require"
    code, result, _err = loop.command("openclaw-capi", "sweep", environment={"OPENCLAW_DB_URL": superuser})
    assert code == 4 and "superuser" in result["error"]
    assert loop.cluster.password not in json.dumps(result)


def test_v003_keeps_duplicate_message_ids_of_an_adopted_database(pg_cluster, tmp_path):
    """Rows an old webhook service logged twice stay; only the first keeps the id the unique index covers."""
    slug = "mig" + secrets.token_hex(3)
    names = {"name": f"openclaw_{slug}", "owner": f"openclaw_{slug}", "owner_password": secrets.token_urlsafe(18)}
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted((REPO_ROOT / "migrations" / "tenant").glob("V00[12]__*.sql")):
        shutil.copy(path, before / path.name)
    try:
        assert (
            run_module("openclaw.standalone.openclaw_db_schema", {**pg_cluster.connection_options(), **names, "migrations_path": str(before)}).returncode == 0
        )
        with psycopg2.connect(pg_cluster.dsn_for(names["name"])) as conn, conn.cursor() as cur:
            for minute in (3, 2, 1):
                cur.execute(
                    "INSERT INTO wa_messages (phone, direction, channel, waba_message_id, created_at)"
                    " VALUES ('+77011234567', 'inbound', 'waba', 'wamid.DUP', now() - %s * interval '1 minute')",
                    (minute,),
                )
        migrated = run_module("openclaw.standalone.openclaw_db_schema", {**pg_cluster.connection_options(), **names})
        assert migrated.returncode == 0, migrated.stdout
        with psycopg2.connect(pg_cluster.dsn_for(names["name"])) as conn, conn.cursor() as cur:
            cur.execute("SELECT message_id, waba_message_id FROM wa_messages ORDER BY created_at")
            assert cur.fetchall() == [("wamid.DUP", "wamid.DUP"), (None, "wamid.DUP"), (None, "wamid.DUP")]
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute("INSERT INTO wa_messages (phone, direction, channel, message_id) VALUES ('77011234567', 'inbound', 'waba', 'wamid.DUP')")
    finally:
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{names["name"]}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{names["owner"]}"')
