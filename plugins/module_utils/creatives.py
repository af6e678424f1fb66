# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Facebook ad creatives from uploaded media: Graph ads calls and creative specs.

The access token always travels in the ``Authorization`` header, never in a URL.

Sources of the rules used here:

* images: https://developers.facebook.com/docs/marketing-api/reference/ad-account/adimages/
  (multipart upload, answer ``images{<name>: {hash, url}}``)
* videos: https://developers.facebook.com/docs/marketing-api/reference/ad-account/advideos/
  and https://developers.facebook.com/docs/marketing-api/advertise-with-video/video-upload
  (``source`` for small files; resumable ``upload_phase`` start/transfer/finish
  with ``upload_session_id``, ``start_offset``, ``end_offset``, ``video_file_chunk``;
  the video is usable once ``status.video_status`` is ``ready``)
* creatives: https://developers.facebook.com/docs/marketing-api/reference/ad-creative/
  and https://developers.facebook.com/docs/marketing-api/reference/ad-creative-video-data/
  (``video_data`` needs a thumbnail: ``image_url`` or ``image_hash``),
  https://developers.facebook.com/docs/marketing-api/reference/ad-creative-link-data/
  (``link_data`` with ``image_hash`` and ``link``) and
  https://developers.facebook.com/docs/marketing-api/ad-creative/messaging-ads/click-to-whatsapp
  (``WHATSAPP_MESSAGE`` call to action, ``page_welcome_message``).
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.openclaw.standalone.plugins.module_utils.service_common import redact

try:
    import requests
except ImportError:
    requests = None

OBJECTIVES = ("whatsapp", "instagram_traffic", "site_leads", "lead_forms", "app_installs")
# The seed's per-objective creative columns; app_installs never had one.
LEGACY_COLUMNS = {
    "whatsapp": "fb_creative_id_whatsapp",
    "instagram_traffic": "fb_creative_id_instagram",
    "site_leads": "fb_creative_id_site_leads",
    "lead_forms": "fb_creative_id_lead_forms",
}
CREATIVE_NAMES = {
    "whatsapp": "CTWA - WhatsApp",
    "instagram_traffic": "Instagram Profile Creative",
    "site_leads": "Website Leads Creative",
    "lead_forms": "Lead Form Creative",
    "app_installs": "App Installs Creative",
}
DEFAULT_MESSAGE = "Напишите нам, чтобы узнать подробности"
DEFAULT_URL_TAGS = "utm_source=facebook&utm_medium=cpc&utm_campaign={{campaign.name}}&utm_content={{ad.id}}"
WELCOME_SUBCODES = (1815166, 1487194)
MAX_REASON = 500


class GraphFailure(Exception):
    """Graph refused a call; ``reason`` is safe to store and show (no token)."""

    def __init__(self, reason, code=None, subcode=None):
        super().__init__(reason)
        self.reason = redact(str(reason))[:MAX_REASON]
        self.code = code
        self.subcode = subcode


def normalize_account(account_id):
    account_id = str(account_id or "").strip()
    if not account_id:
        return ""
    return account_id if account_id.startswith("act_") else "act_" + account_id


def _call_to_action(settings, objective):
    """CTA type and value per objective, and the link the ad leads to (None for WhatsApp/lead forms)."""
    if objective == "whatsapp":
        return "WHATSAPP_MESSAGE", {"app_destination": "WHATSAPP"}, None
    if objective == "instagram_traffic":
        link = settings.get("instagram_url") or "https://www.instagram.com/"
        return "LEARN_MORE", {"link": link}, link
    if objective == "site_leads":
        link = settings.get("site_url")
        if not link:
            raise ValueError("the direction's default_ad_settings have no site_url")
        return "SIGN_UP", {"link": link}, link
    if objective == "lead_forms":
        form = settings.get("lead_form_id")
        if not form:
            raise ValueError("the direction's default_ad_settings have no lead_form_id")
        return "LEARN_MORE", {"lead_gen_form_id": str(form)}, None
    if objective == "app_installs":
        link = settings.get("app_store_url")
        if not link:
            raise ValueError("the direction's default_ad_settings have no app_store_url")
        return "INSTALL_MOBILE_APP", {"link": link}, link
    raise ValueError("unknown objective %r" % (objective,))


def welcome_message(question):
    """The CTWA welcome message that pre-fills the customer's first message."""
    return json.dumps(
        {
            "type": "VISUAL_EDITOR",
            "version": 2,
            "landing_screen_type": "welcome_message",
            "media_type": "text",
            "text_format": {"customer_action_type": "autofill_message", "message": {"autofill_message": {"content": question}, "text": question}},
        },
        ensure_ascii=False,
    )


def build_creative(objective, media, settings, page_id, instagram_id=None, with_welcome=True, with_instagram=True):
    """The adcreatives parameters (a pure function of its arguments).

    ``media`` is ``{"type": "video", "video_id": ..., "image_url" or "image_hash": ...}``
    or ``{"type": "image", "image_hash": ...}``. ``settings`` is the direction's
    default_ad_settings row (a dict, possibly empty).
    """
    if objective not in OBJECTIVES:
        raise ValueError("unknown objective %r" % (objective,))
    if not page_id:
        raise ValueError("the tenant has no fb_page_id")
    settings = settings or {}
    message = settings.get("description") or DEFAULT_MESSAGE
    cta_type, cta_value, link = _call_to_action(settings, objective)
    call_to_action = {"type": cta_type, "value": cta_value}
    if media.get("type") == "video":
        if not media.get("video_id"):
            raise ValueError("a video creative needs the video id")
        data = {"video_id": str(media["video_id"]), "message": message, "call_to_action": call_to_action}
        # video_data needs a thumbnail (image_url or image_hash).
        if media.get("image_hash"):
            data["image_hash"] = media["image_hash"]
        elif media.get("image_url"):
            data["image_url"] = media["image_url"]
        else:
            raise ValueError("a video creative needs a thumbnail (image_url or image_hash)")
        story = {"page_id": str(page_id), "video_data": data}
    elif media.get("type") == "image":
        if not media.get("image_hash"):
            raise ValueError("an image creative needs the image hash")
        # link_data requires a link; for WhatsApp and lead forms Meta takes the page's URL.
        data = {
            "image_hash": media["image_hash"],
            "message": message,
            "link": link or "https://www.facebook.com/%s" % page_id,
            "call_to_action": call_to_action,
        }
        story = {"page_id": str(page_id), "link_data": data}
    else:
        raise ValueError("unknown media type %r" % (media.get("type"),))
    if instagram_id and with_instagram and objective in ("whatsapp", "instagram_traffic"):
        story["instagram_user_id"] = str(instagram_id)
    params = {"name": CREATIVE_NAMES[objective], "object_story_spec": story}
    if objective == "whatsapp" and with_welcome:
        question = settings.get("client_question")
        if question:
            params["page_welcome_message"] = welcome_message(question)
    if objective == "site_leads":
        params["url_tags"] = settings.get("utm_tag") or DEFAULT_URL_TAGS
    return params


class GraphAds:
    """The Graph ads calls of one tenant (its token and ad account)."""

    def __init__(self, graph, token, account_id, session=None, timeout=60, poll_interval=5.0, video_timeout=600, clock=time.monotonic, sleep=time.sleep):
        if requests is None and session is None:
            raise GraphFailure("python3-requests is not installed")
        self.graph = graph
        self.account = normalize_account(account_id)
        self._headers = {"Authorization": "Bearer " + token}
        self.session = session or requests.Session()
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.video_timeout = video_timeout
        self.clock = clock
        self.sleep = sleep

    def _request(self, method, url, timeout=None, **kwargs):
        try:
            response = self.session.request(method, url, headers=self._headers, timeout=timeout or self.timeout, verify=self.graph.verify, **kwargs)
        except requests.RequestException as exc:
            raise GraphFailure("Graph API not reachable: %s" % type(exc).__name__) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400 or not isinstance(payload, dict) or "error" in payload:
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                text = error.get("error_user_msg") or error.get("message") or "Graph API error"
                raise GraphFailure(
                    "Graph API error %s%s: %s" % (error.get("code"), "/%s" % error["error_subcode"] if error.get("error_subcode") else "", text),
                    code=error.get("code"),
                    subcode=error.get("error_subcode"),
                )
            raise GraphFailure("Graph API answered HTTP %d" % response.status_code)
        return payload

    def upload_image(self, path, name="image"):
        with open(path, "rb") as handle:
            payload = self._request("POST", self.graph.endpoint(self.account, "adimages"), files={"filename": (name, handle)}, timeout=300)
        images = payload.get("images")
        if not isinstance(images, dict) or not images:
            raise GraphFailure("adimages answered without images")
        first = next(iter(images.values()))
        if not isinstance(first, dict) or not first.get("hash"):
            raise GraphFailure("adimages answered without an image hash")
        return first["hash"], first.get("url")

    def upload_video(self, path, chunk_bytes):
        size = os.path.getsize(path)
        url = self.graph.endpoint(self.account, "advideos", video=True)
        if size <= chunk_bytes:
            with open(path, "rb") as handle:
                payload = self._request("POST", url, files={"source": ("video.mp4", handle, "video/mp4")}, timeout=600)
            video_id = payload.get("id")
        else:
            video_id = self._resumable(url, path, size)
        if not video_id:
            raise GraphFailure("advideos answered without a video id")
        return str(video_id)

    def _resumable(self, url, path, size):
        start = self._request("POST", url, data={"upload_phase": "start", "file_size": str(size)}, timeout=120)
        session_id = start.get("upload_session_id")
        video_id = start.get("video_id")
        if not session_id:
            raise GraphFailure("the upload session did not start")
        start_offset, end_offset = int(start.get("start_offset", 0)), int(start.get("end_offset", 0))
        with open(path, "rb") as handle:
            while start_offset < end_offset:
                handle.seek(start_offset)
                chunk = handle.read(end_offset - start_offset)
                answer = self._request(
                    "POST",
                    url,
                    data={"upload_phase": "transfer", "upload_session_id": session_id, "start_offset": str(start_offset)},
                    files={"video_file_chunk": ("chunk", chunk, "application/octet-stream")},
                    timeout=600,
                )
                new_start, new_end = int(answer.get("start_offset", -1)), int(answer.get("end_offset", -1))
                if new_start <= start_offset and new_start != new_end:
                    raise GraphFailure("the video upload made no progress")
                start_offset, end_offset = new_start, new_end
        finish = self._request("POST", url, data={"upload_phase": "finish", "upload_session_id": session_id}, timeout=120)
        if finish.get("success") is False:
            raise GraphFailure("the video upload did not finish")
        return finish.get("video_id") or video_id

    def wait_video(self, video_id):
        """Poll the video's status until ready, then return its thumbnail URL; errors and the deadline fail."""
        deadline = self.clock() + self.video_timeout
        while True:
            payload = self._request("GET", self.graph.endpoint(video_id), params={"fields": "status,picture"}, timeout=30)
            status = payload.get("status") or {}
            state = status.get("video_status")
            if state == "ready":
                return payload.get("picture")
            if state == "error":
                detail = status.get("processing_phase") or {}
                errors = detail.get("errors") if isinstance(detail, dict) else None
                reason = "; ".join(str(item.get("message")) for item in errors if isinstance(item, dict)) if isinstance(errors, list) else ""
                raise GraphFailure("Meta could not process the video" + (": " + reason if reason else ""))
            if self.clock() >= deadline:
                raise GraphFailure("the video was not processed within %d seconds" % self.video_timeout)
            self.sleep(self.poll_interval)

    def create_creative(self, params):
        # Form-encoded with nested objects as JSON, as the seed did and Graph accepts.
        data = {key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) for key, value in params.items()}
        payload = self._request("POST", self.graph.endpoint(self.account, "adcreatives"), data=data, timeout=60)
        if not payload.get("id"):
            raise GraphFailure("adcreatives answered without an id")
        return str(payload["id"])

    def create_with_fallbacks(self, objective, media, settings, page_id, instagram_id):
        """The seed's WhatsApp fallbacks: without the welcome message, without the Instagram account."""
        welcome, instagram = True, True
        for _attempt in range(4):
            params = build_creative(objective, media, settings, page_id, instagram_id, with_welcome=welcome, with_instagram=instagram)
            try:
                return self.create_creative(params)
            except GraphFailure as failure:
                if objective != "whatsapp":
                    raise
                if welcome and failure.subcode in WELCOME_SUBCODES and "page_welcome_message" in params:
                    welcome = False
                    continue
                if instagram and failure.code == 100 and "instagram_user_id" in failure.reason and "instagram_user_id" in params["object_story_spec"]:
                    instagram = False
                    continue
                raise
        raise GraphFailure("the creative was refused")
