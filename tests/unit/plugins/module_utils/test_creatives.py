"""Creative specs per objective and media type, and the WhatsApp fallbacks."""

from __future__ import annotations

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import creatives

PAGE = "1122334455"
IG = "17841400000000000"
SETTINGS = {
    "description": "Ad text",
    "client_question": "Hello, tell me more",
    "site_url": "https://shop.example/",
    "utm_tag": "utm_source=fb",
    "lead_form_id": "555",
    "app_store_url": "https://apps.apple.com/app/id1",
    "instagram_url": "https://www.instagram.com/acme/",
}
VIDEO = {"type": "video", "video_id": "987", "image_url": "https://scontent.example/987.jpg"}
IMAGE = {"type": "image", "image_hash": "abc123"}
EXPECTED = {
    "whatsapp": ("WHATSAPP_MESSAGE", {"app_destination": "WHATSAPP"}),
    "instagram_traffic": ("LEARN_MORE", {"link": SETTINGS["instagram_url"]}),
    "site_leads": ("SIGN_UP", {"link": SETTINGS["site_url"]}),
    "lead_forms": ("LEARN_MORE", {"lead_gen_form_id": "555"}),
    "app_installs": ("INSTALL_MOBILE_APP", {"link": SETTINGS["app_store_url"]}),
}


@pytest.mark.parametrize("objective", creatives.OBJECTIVES)
@pytest.mark.parametrize("media", [VIDEO, IMAGE], ids=["video", "image"])
def test_spec_per_objective_and_media(objective, media):
    params = creatives.build_creative(objective, media, SETTINGS, PAGE, IG)
    story = params["object_story_spec"]
    assert story["page_id"] == PAGE
    cta_type, cta_value = EXPECTED[objective]
    if media["type"] == "video":
        data = story["video_data"]
        assert "link_data" not in story
        assert data["video_id"] == "987"
        assert data["image_url"] == VIDEO["image_url"]
    else:
        data = story["link_data"]
        assert "video_data" not in story
        assert data["image_hash"] == "abc123"
        assert data["link"].startswith("https://")
    assert data["message"] == "Ad text"
    assert data["call_to_action"] == {"type": cta_type, "value": cta_value}
    assert ("instagram_user_id" in story) == (objective in ("whatsapp", "instagram_traffic"))
    assert ("page_welcome_message" in params) == (objective == "whatsapp")
    assert ("url_tags" in params) == (objective == "site_leads")


def test_whatsapp_welcome_message_carries_the_question():
    params = creatives.build_creative("whatsapp", VIDEO, SETTINGS, PAGE)
    assert "Hello, tell me more" in params["page_welcome_message"]
    assert "instagram_user_id" not in params["object_story_spec"]


def test_defaults_without_settings():
    params = creatives.build_creative("whatsapp", IMAGE, {}, PAGE)
    assert params["object_story_spec"]["link_data"]["message"] == creatives.DEFAULT_MESSAGE
    assert "page_welcome_message" not in params
    assert creatives.build_creative("instagram_traffic", VIDEO, None, PAGE)["object_story_spec"]["video_data"]["call_to_action"]["value"]["link"]


@pytest.mark.parametrize(
    ("objective", "media", "settings", "page"),
    [
        ("site_leads", VIDEO, {}, PAGE),
        ("lead_forms", VIDEO, {}, PAGE),
        ("app_installs", IMAGE, {}, PAGE),
        ("whatsapp", {"type": "video", "video_id": "1"}, SETTINGS, PAGE),
        ("whatsapp", {"type": "image"}, SETTINGS, PAGE),
        ("whatsapp", VIDEO, SETTINGS, ""),
        ("carousel", VIDEO, SETTINGS, PAGE),
    ],
    ids=["site-without-url", "form-without-id", "app-without-url", "video-without-thumbnail", "image-without-hash", "no-page", "unknown-objective"],
)
def test_incomplete_input_is_refused(objective, media, settings, page):
    with pytest.raises(ValueError):
        creatives.build_creative(objective, media, settings, page)


def test_account_is_normalised():
    assert creatives.normalize_account("123") == "act_123"
    assert creatives.normalize_account("act_123") == "act_123"


class Recorder(creatives.GraphAds):
    """GraphAds whose adcreatives call answers from a list of failures."""

    def __init__(self, failures):
        self.failures = list(failures)
        self.sent = []

    def create_creative(self, params):
        self.sent.append(params)
        if self.failures:
            raise self.failures.pop(0)
        return "cr-1"


def test_welcome_message_rejection_retries_without_it():
    ads = Recorder([creatives.GraphFailure("x", code=100, subcode=1815166)])
    assert ads.create_with_fallbacks("whatsapp", VIDEO, SETTINGS, PAGE, IG) == "cr-1"
    assert "page_welcome_message" in ads.sent[0]
    assert "page_welcome_message" not in ads.sent[1]


def test_instagram_rejection_retries_without_it_then_without_welcome():
    ads = Recorder([creatives.GraphFailure("(#100) Param instagram_user_id is not valid", code=100), creatives.GraphFailure("x", code=100, subcode=1487194)])
    assert ads.create_with_fallbacks("whatsapp", IMAGE, SETTINGS, PAGE, IG) == "cr-1"
    assert "instagram_user_id" in ads.sent[0]["object_story_spec"]
    assert "instagram_user_id" not in ads.sent[1]["object_story_spec"]
    assert "page_welcome_message" in ads.sent[1]
    assert "page_welcome_message" not in ads.sent[2]


def test_other_errors_and_other_objectives_are_not_retried():
    ads = Recorder([creatives.GraphFailure("x", code=100, subcode=1815166)])
    with pytest.raises(creatives.GraphFailure):
        ads.create_with_fallbacks("site_leads", VIDEO, SETTINGS, PAGE, IG)
    ads = Recorder([creatives.GraphFailure("boom", code=2)])
    with pytest.raises(creatives.GraphFailure):
        ads.create_with_fallbacks("whatsapp", VIDEO, SETTINGS, PAGE, IG)
    assert len(ads.sent) == 1


def test_failure_reason_never_carries_a_token():
    failure = creatives.GraphFailure("bad call https://x/?access_token=EAAsecret and Bearer EAAsecret2")
    assert "EAAsecret" not in failure.reason
