"""Self-test of the Graph ads edges of the stand-in, over real HTTPS on loopback."""

from __future__ import annotations

import json

import pytest
import requests

from harness import graph_ads
from harness.graph_api import GraphAPIStandin

TOKEN = "EAAB-ads-token"
OTHER_TOKEN = "EAAB-other-ads-token"
ACCOUNT = "act_111"
OTHER_ACCOUNT = "act_222"
JPEG = b"\xff\xd8\xff\xe0" + b"j" * 100


@pytest.fixture(scope="module")
def server():
    with GraphAPIStandin() as standin:
        yield standin


@pytest.fixture
def ads(server):
    server.reset()
    state = graph_ads.install(server)
    state.add_account(ACCOUNT, TOKEN)
    state.add_account(OTHER_ACCOUNT, OTHER_TOKEN)
    return state


def call(server, method, path, token=TOKEN, **kwargs):
    headers = {"Authorization": "Bearer " + token} if token else {}
    answer = requests.request(method, server.url + "/v25.0/" + path, headers=headers, verify=str(server.ca_file), timeout=10, **kwargs)
    return answer.status_code, answer.json()


def test_install_twice_keeps_one_set_of_routes(server, ads):
    assert graph_ads.install(server) is ads


def test_adimages_returns_a_hash_and_refuses_bad_tokens(server, ads):
    status, body = call(server, "POST", ACCOUNT + "/adimages", files={"filename": ("a.jpg", JPEG)})
    assert status == 200
    image = body["images"]["a.jpg"]
    assert image["hash"] in ads.images and image["url"]
    assert call(server, "POST", ACCOUNT + "/adimages", token=None, files={"filename": ("a.jpg", JPEG)})[1]["error"]["code"] == 190
    assert call(server, "POST", ACCOUNT + "/adimages", token="wrong", files={"filename": ("a.jpg", JPEG)})[1]["error"]["code"] == 190
    status, body = call(server, "POST", ACCOUNT + "/adimages", token=OTHER_TOKEN, files={"filename": ("a.jpg", JPEG)})
    assert body["error"]["error_subcode"] == 33
    assert call(server, "POST", ACCOUNT + "/adimages", files={"filename": ("a.txt", b"text")})[0] == 400


def test_token_in_the_query_is_refused_and_recorded(server, ads):
    answer = requests.post(
        server.url + "/v25.0/" + ACCOUNT + "/adimages",
        params={"access_token": TOKEN},
        files={"filename": ("a.jpg", JPEG)},
        verify=str(server.ca_file),
        timeout=10,
    )
    assert answer.json()["error"]["code"] == 190
    assert server.requests()[-1]["token_in_query"] is True


def test_resumable_upload_checks_order_and_size(server, ads):
    data = bytes(range(256)) * (graph_ads.TRANSFER_CHUNK // 256 * 2 + 10)
    status, start = call(server, "POST", ACCOUNT + "/advideos", data={"upload_phase": "start", "file_size": str(len(data))})
    assert status == 200 and start["start_offset"] == "0"
    session = start["upload_session_id"]

    def transfer(offset, chunk):
        return call(
            server,
            "POST",
            ACCOUNT + "/advideos",
            data={"upload_phase": "transfer", "upload_session_id": session, "start_offset": str(offset)},
            files={"video_file_chunk": ("c", chunk)},
        )

    assert transfer(5, data[5:10])[0] == 400  # out of order
    assert call(server, "POST", ACCOUNT + "/advideos", data={"upload_phase": "finish", "upload_session_id": session})[0] == 400  # incomplete
    start_offset, end_offset = int(start["start_offset"]), int(start["end_offset"])
    while start_offset < end_offset:
        status, body = transfer(start_offset, data[start_offset:end_offset])
        assert status == 200
        start_offset, end_offset = int(body["start_offset"]), int(body["end_offset"])
    status, body = call(server, "POST", ACCOUNT + "/advideos", data={"upload_phase": "finish", "upload_session_id": session})
    assert status == 200 and body["video_id"] == start["video_id"]
    assert bytes(ads.sessions[session]["received"]) == data


def test_video_status_turns_ready_after_polls_or_fails(server, ads):
    ads.polls_until_ready = 2
    video_id = call(server, "POST", ACCOUNT + "/advideos", files={"source": ("v.mp4", b"video")})[1]["id"]
    states = [call(server, "GET", video_id, params={"fields": "status"})[1]["status"]["video_status"] for _poll in range(3)]
    assert states == ["processing", "processing", "ready"]
    assert call(server, "GET", video_id, token=OTHER_TOKEN)[1]["error"]["error_subcode"] == 33
    ads.fail_videos = True
    assert call(server, "GET", video_id)[1]["status"]["video_status"] == "error"


def test_adcreatives_validates_the_story_and_rejects_a_welcome_message_once(server, ads):
    image_hash = call(server, "POST", ACCOUNT + "/adimages", files={"filename": ("a.jpg", JPEG)})[1]["images"]["a.jpg"]["hash"]
    video_id = call(server, "POST", ACCOUNT + "/advideos", files={"source": ("v.mp4", b"video")})[1]["id"]

    def create(story, **extra):
        return call(server, "POST", ACCOUNT + "/adcreatives", data={"name": "c", "object_story_spec": json.dumps(story), **extra})

    cta = {"type": "WHATSAPP_MESSAGE", "value": {"app_destination": "WHATSAPP"}}
    assert create({"page_id": "1", "video_data": {"video_id": video_id, "call_to_action": cta}})[0] == 400  # no thumbnail
    assert create({"page_id": "1", "link_data": {"image_hash": image_hash}})[0] == 400  # no link
    assert create({"page_id": "1", "link_data": {"image_hash": "unknown", "link": "https://x/"}})[0] == 400
    assert create({"video_data": {"video_id": video_id, "image_url": "https://x/t.jpg"}})[0] == 400  # no page
    ok = {"page_id": "1", "video_data": {"video_id": video_id, "image_url": "https://x/t.jpg", "call_to_action": cta}}
    ads.reject_welcome = 1
    status, body = create(ok, page_welcome_message="{}")
    assert status == 400 and body["error"]["error_subcode"] == 1815166
    status, body = create(ok, page_welcome_message="{}")
    assert status == 200 and body["id"] in ads.creatives
    assert create({"page_id": "1", "link_data": {"image_hash": image_hash, "link": "https://x/"}})[0] == 200
