"""The upload service in process, against a migrated tenant database on ``pg_cluster`` and the Graph API stand-in."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import threading
import time

import psycopg2
import pytest
import requests

from ansible_collections.openclaw.standalone.plugins.module_utils import upload_links, upload_service
from ansible_collections.openclaw.standalone.plugins.module_utils.service_common import ServiceServer
from harness import graph_ads
from harness.ansible import run_module

META_TOKEN = "EAAG-upload-" + secrets.token_hex(12)
ACCOUNT = "act_1234567890"
PAGE = "1122334455"
SECRET = secrets.token_hex(32)
OTHER_SECRET = secrets.token_hex(32)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + secrets.token_bytes(2048)
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


@pytest.fixture(scope="module")
def tenant(pg_cluster, tmp_path_factory):
    slug = "up" + secrets.token_hex(3)
    password = secrets.token_urlsafe(18)
    created = run_module(
        "openclaw.standalone.openclaw_db_schema",
        {**pg_cluster.connection_options(), "name": f"openclaw_{slug}", "owner": f"openclaw_{slug}", "owner_password": password},
    )
    assert created.returncode == 0, created.stdout
    dsn = pg_cluster.dsn_for(f"openclaw_{slug}")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("UPDATE config SET fb_access_token = %s, fb_ad_account_id = %s, fb_page_id = %s", (META_TOKEN, ACCOUNT.removeprefix("act_"), PAGE))
        cur.execute("INSERT INTO directions (name, objective) VALUES ('WhatsApp', 'whatsapp') RETURNING id::text")
        whatsapp = cur.fetchone()[0]
        cur.execute("INSERT INTO directions (name, objective) VALUES ('Site', 'site_leads') RETURNING id::text")
        site = cur.fetchone()[0]
        cur.execute("INSERT INTO default_ad_settings (direction_id, site_url) VALUES (%s, 'https://shop.example/')", (site,))
        cur.execute("INSERT INTO directions (name, objective, is_active) VALUES ('Old', 'whatsapp', false)")
    registry = tmp_path_factory.mktemp("tenants")
    entry = {"slug": slug, "database": f"openclaw_{slug}", "db_user": f"openclaw_{slug}", "db_password": password, "upload_secret": SECRET}
    (registry / f"{slug}.json").write_text(json.dumps(entry), encoding="utf-8")
    other = "other" + secrets.token_hex(3)
    other_entry = {"slug": other, "database": f"openclaw_{other}", "db_user": f"openclaw_{other}", "db_password": "x", "upload_secret": OTHER_SECRET}
    (registry / f"{other}.json").write_text(json.dumps(other_entry), encoding="utf-8")
    yield {"slug": slug, "other": other, "dsn": dsn, "registry": registry, "whatsapp": whatsapp, "site": site}
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "openclaw_{slug}" WITH (FORCE)', f'DROP ROLE IF EXISTS "openclaw_{slug}"')


@pytest.fixture(scope="module")
def service(pg_cluster, graph_api_server, tenant, tmp_path_factory):
    upload_tmp = tmp_path_factory.mktemp("upload-tmp")
    config = upload_service.UploadConfig(
        {
            "OPENCLAW_TENANTS_DIR": str(tenant["registry"]),
            "PG_HOST": pg_cluster.host,
            "PG_PORT": str(pg_cluster.port),
            "PG_SSLMODE": "disable",
            "OPENCLAW_GRAPH_URL": graph_api_server.url,
            "OPENCLAW_GRAPH_VIDEO_URL": graph_api_server.url,
            "OPENCLAW_GRAPH_CA_FILE": str(graph_api_server.ca_file),
            "MAX_FILE_SIZE_MB": "4",
            "OPENCLAW_UPLOAD_TMP": str(upload_tmp),
            "OPENCLAW_UPLOAD_CHUNK_MB": "1",
            "OPENCLAW_UPLOAD_VIDEO_TIMEOUT": "20",
            "OPENCLAW_UPLOAD_POLL_INTERVAL": "0.05",
        }
    )
    server = ServiceServer(("127.0.0.1", 0), upload_service.make_handler(upload_service.UploadApp(config)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "tmp": upload_tmp}
    server.shutdown()
    server.server_close()


@pytest.fixture
def ads(graph_api):
    state = graph_ads.install(graph_api)
    state.add_account(ACCOUNT, META_TOKEN)
    return state


def sql(tenant, statement, params=()):
    with psycopg2.connect(tenant["dsn"]) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def token(tenant, slug=None, secret=SECRET, hours=1, now=None):
    return upload_links.make_token(secret, slug or tenant["slug"], hours=hours, now=now)


def upload(service, tenant, body, auth, direction=None, content_type="application/octet-stream"):
    headers = {"Content-Type": content_type}
    if auth is not None:
        headers["Authorization"] = "Bearer " + auth
    params = {"direction_id": direction or tenant["whatsapp"], "title": "Spring <b>offer</b>"}
    return requests.post(f"{service['url']}/{tenant['slug']}/upload", params=params, data=body, headers=headers, timeout=30)


def settled(service, tenant, creative_id, auth, timeout=30):
    """The creative once it is no longer 'processing', read through the service itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = requests.get(f"{service['url']}/{tenant['slug']}/creatives/{creative_id}", headers={"Authorization": "Bearer " + auth}, timeout=10)
        assert answer.status_code == 200
        if answer.json()["status"] != "processing":
            return answer.json()
        time.sleep(0.05)
    raise AssertionError(f"creative {creative_id} still processing after {timeout}s")


def creative_count(tenant):
    return sql(tenant, "SELECT count(*) FROM creatives")[0][0]


def assert_no_token_in_urls(graph_api):
    seen = [record for record in graph_api.requests() if record["path"] != "/__standin/health"]
    assert seen, "the stand-in saw no request"
    assert not [record for record in seen if record["token_in_query"]]
    assert {record["token_source"] for record in seen} == {"header"}


def test_anonymous_upload_is_refused_and_a_valid_link_is_accepted(service, tenant, ads, graph_api):
    before = creative_count(tenant)
    for auth in (None, "", "garbage", "Basic x"):
        refused = upload(service, tenant, JPEG, auth)
        assert refused.status_code == 401
    assert creative_count(tenant) == before
    accepted = upload(service, tenant, JPEG, token(tenant))
    assert accepted.status_code == 202, accepted.text
    assert creative_count(tenant) == before + 1
    settled(service, tenant, accepted.json()["creative_id"], token(tenant))


def test_expired_and_other_tenants_tokens_are_refused(service, tenant, ads):
    before = creative_count(tenant)
    expired = token(tenant, hours=1, now=time.time() - 7200)
    other = token(tenant, slug=tenant["other"], secret=OTHER_SECRET)
    forged = token(tenant, secret=OTHER_SECRET)
    for auth in (expired, other, forged):
        assert upload(service, tenant, JPEG, auth).status_code == 401
        listing = requests.get(f"{service['url']}/{tenant['slug']}/directions", headers={"Authorization": "Bearer " + auth}, timeout=10)
        assert listing.status_code == 401
    assert creative_count(tenant) == before


def test_directions_lists_active_ones(service, tenant):
    answer = requests.get(f"{service['url']}/{tenant['slug']}/directions", headers={"Authorization": "Bearer " + token(tenant)}, timeout=10)
    assert answer.status_code == 200
    assert sorted(item["name"] for item in answer.json()) == ["Site", "WhatsApp"]


def test_image_becomes_a_ready_creative(service, tenant, ads, graph_api):
    auth = token(tenant)
    answer = upload(service, tenant, JPEG, auth, direction=tenant["site"], content_type="image/jpeg")
    assert answer.status_code == 202, answer.text
    result = settled(service, tenant, answer.json()["creative_id"], auth)
    assert result["status"] == "ready", result
    row = sql(
        tenant,
        "SELECT media_type, fb_image_hash, fb_creative_id, fb_creative_id_site_leads, title FROM creatives WHERE id = %s",
        (answer.json()["creative_id"],),
    )[0]
    assert row[0] == "image" and row[1] in ads.images and row[2] in ads.creatives and row[3] == row[2]
    assert row[4] == "Spring <b>offer</b>"
    story = ads.creatives[row[2]]["params"]["object_story_spec"]
    assert story["link_data"]["image_hash"] == row[1]
    assert story["link_data"]["link"] == "https://shop.example/"
    assert_no_token_in_urls(graph_api)


def test_large_video_is_uploaded_in_order_polled_and_ready(service, tenant, ads, graph_api):
    ads.polls_until_ready = 3
    video = MP4_HEAD + secrets.token_bytes(int(2.5 * 1024 * 1024))
    auth = token(tenant)
    answer = upload(service, tenant, video, auth, content_type="video/mp4")
    assert answer.status_code == 202, answer.text
    result = settled(service, tenant, answer.json()["creative_id"], auth)
    assert result["status"] == "ready", result
    fb_video_id, fb_creative_id, legacy = sql(
        tenant, "SELECT fb_video_id, fb_creative_id, fb_creative_id_whatsapp FROM creatives WHERE id = %s", (answer.json()["creative_id"],)
    )[0]
    session = next(item for item in ads.sessions.values() if item["video_id"] == fb_video_id)
    assert bytes(session["received"]) == video and session["finished"]
    assert len(session["chunks"]) == 3
    assert ads.videos[fb_video_id]["polls"] > 3
    assert legacy == fb_creative_id
    params = ads.creatives[fb_creative_id]["params"]
    assert params["object_story_spec"]["video_data"]["video_id"] == fb_video_id
    assert params["object_story_spec"]["video_data"]["call_to_action"]["type"] == "WHATSAPP_MESSAGE"
    assert_no_token_in_urls(graph_api)


def test_small_video_and_welcome_message_fallback(service, tenant, ads):
    ads.reject_welcome = 1
    sql(tenant, "INSERT INTO default_ad_settings (direction_id) VALUES (%s) ON CONFLICT DO NOTHING", (tenant["whatsapp"],))
    auth = token(tenant)
    answer = upload(service, tenant, MP4_HEAD + secrets.token_bytes(4096), auth)
    assert answer.status_code == 202
    result = settled(service, tenant, answer.json()["creative_id"], auth)
    assert result["status"] == "ready", result
    assert ads.reject_welcome == 0
    assert "page_welcome_message" not in ads.creatives[result["fb_creative_id"]]["params"]


def test_graph_failures_mark_the_creative_failed(service, tenant, ads):
    auth = token(tenant)
    ads.reject_creatives.append({"code": 100, "message": "(#100) The page is not allowed to advertise"})
    answer = upload(service, tenant, JPEG, auth)
    result = settled(service, tenant, answer.json()["creative_id"], auth)
    assert result["status"] == "failed"
    assert "not allowed to advertise" in result["failure_reason"]
    assert META_TOKEN not in result["failure_reason"]

    ads.fail_videos = True
    answer = upload(service, tenant, MP4_HEAD + b"x" * 100, auth)
    result = settled(service, tenant, answer.json()["creative_id"], auth)
    assert result["status"] == "failed" and "corrupt" in result["failure_reason"]


def test_over_limit_upload_is_refused_before_reading(service, tenant):
    before = creative_count(tenant)
    host, port = service["url"].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", f"/{tenant['slug']}/upload?direction_id={tenant['whatsapp']}")
    connection.putheader("Authorization", "Bearer " + token(tenant))
    connection.putheader("Content-Length", str(5 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert creative_count(tenant) == before
    assert os.listdir(service["tmp"]) == []


def test_non_media_is_refused_and_leaves_nothing(service, tenant):
    before = creative_count(tenant)
    answer = upload(service, tenant, b"<html><script>alert(1)</script></html>", token(tenant), content_type="image/jpeg")
    assert answer.status_code == 415
    assert creative_count(tenant) == before
    assert os.listdir(service["tmp"]) == []


def test_page_is_static_under_a_strict_csp_and_unknown_slugs_are_404(service, tenant):
    page = requests.get(f"{service['url']}/{tenant['slug']}/?q=<script>alert(1)</script>", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"):
        assert rule in csp
    assert "<script>alert" not in page.text and tenant["slug"] not in page.text
    assert 'src="app.js"' in page.text
    script = requests.get(f"{service['url']}/{tenant['slug']}/app.js", timeout=10)
    assert script.status_code == 200 and "location.hash" in script.text
    for hostile in ("%3Cscript%3Ealert(1)%3C/script%3E/", "nosuchtenant/", "nosuchtenant/directions"):
        answer = requests.get(f"{service['url']}/{hostile}", timeout=10)
        assert answer.status_code == 404
        assert "script" not in answer.text and "nosuchtenant" not in answer.text
    assert requests.get(f"{service['url']}/health", timeout=10).text == "ok"


def test_a_full_queue_answers_503_and_leaves_no_creative_processing(pg_cluster, graph_api_server, tenant, ads, tmp_path):
    config = upload_service.UploadConfig(
        {
            "OPENCLAW_TENANTS_DIR": str(tenant["registry"]),
            "PG_HOST": pg_cluster.host,
            "PG_PORT": str(pg_cluster.port),
            "PG_SSLMODE": "disable",
            "OPENCLAW_GRAPH_URL": graph_api_server.url,
            "OPENCLAW_GRAPH_CA_FILE": str(graph_api_server.ca_file),
            "OPENCLAW_UPLOAD_TMP": str(tmp_path),
            "OPENCLAW_UPLOAD_POLL_INTERVAL": "0.05",
            "OPENCLAW_UPLOAD_WORKERS": "1",
            "OPENCLAW_UPLOAD_QUEUE": "1",
        }
    )
    app = upload_service.UploadApp(config)
    release = threading.Event()
    started = threading.Event()
    real_process = app.process

    def held(*job):
        started.set()
        release.wait(20)
        real_process(*job)

    app.process = held
    server = ServiceServer(("127.0.0.1", 0), upload_service.make_handler(app))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    busy = {"url": f"http://127.0.0.1:{server.server_address[1]}"}
    try:
        auth = token(tenant)
        first = upload(busy, tenant, JPEG, auth)
        assert first.status_code == 202
        assert started.wait(10)
        second = upload(busy, tenant, JPEG, auth)
        assert second.status_code == 202
        third = upload(busy, tenant, JPEG, auth)
        assert third.status_code == 503
        rows = sql(
            tenant,
            "SELECT status FROM creatives WHERE created_at > now() - interval '1 minute' AND status = 'failed' AND failure_reason LIKE %s",
            ("%busy%",),
        )
        assert rows, "the refused upload's creative is not marked failed"
        assert os.listdir(tmp_path) != []  # the two accepted files wait for their worker
        release.set()
        for answer in (first, second):
            assert settled(busy, tenant, answer.json()["creative_id"], auth)["status"] == "ready"
        assert os.listdir(tmp_path) == []
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_restart_fails_what_the_old_process_left_processing_and_nothing_newer(pg_cluster, graph_api_server, tenant):
    orphan = sql(tenant, "INSERT INTO creatives (title, media_type, status) VALUES ('orphan', 'image', 'processing') RETURNING id::text")[0][0]
    config = upload_service.UploadConfig(
        {"OPENCLAW_TENANTS_DIR": str(tenant["registry"]), "PG_HOST": pg_cluster.host, "PG_PORT": str(pg_cluster.port), "PG_SSLMODE": "disable"}
    )
    app = upload_service.UploadApp(config)
    # Accepted by the new process after its start: still being worked on.
    fresh = sql(tenant, "INSERT INTO creatives (title, media_type, status) VALUES ('fresh', 'image', 'processing') RETURNING id::text")[0][0]
    # The other registered tenant has no database: logged, and the real one is still recovered.
    assert app.recover_interrupted() >= 1
    assert sql(tenant, "SELECT status, failure_reason FROM creatives WHERE id = %s", (orphan,)) == [("failed", upload_service.INTERRUPTED)]
    assert sql(tenant, "SELECT status FROM creatives WHERE id = %s", (fresh,)) == [("processing",)]
    sql(tenant, "DELETE FROM creatives WHERE id = %s", (fresh,))
