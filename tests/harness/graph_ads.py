"""Graph ads edges for the Graph API stand-in: adimages, advideos (plain and resumable), video status, adcreatives.

``install(standin)`` registers the routes once per stand-in and returns the
edges' state (``GraphAds``); calling it again resets and returns the same
state. Tokens are checked per ad account: missing or unknown -> 190; a token in
the URL query is refused as well (and the stand-in records it), so tests can
assert it never happens. Rules follow
https://developers.facebook.com/docs/marketing-api/reference/ad-account/adimages/,
https://developers.facebook.com/docs/marketing-api/reference/ad-account/advideos/ and
https://developers.facebook.com/docs/marketing-api/reference/ad-creative/.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import threading
import urllib.parse

from .graph_api import graph_error

ACCOUNT = r"/v[0-9]+\.[0-9]+/(act_[0-9]+)"
TRANSFER_CHUNK = 1024 * 1024
_ids = itertools.count(120200000000001)
# Video ids carry their own prefix so the GET /{video_id} route claims only
# videos made here, never another edge's objects (lead ids, pages) on the
# same session-wide stand-in.
VIDEO_PREFIX = "7770000"
_video_ids = itertools.count(100000001)


def parse_multipart(content_type: str | None, raw: bytes) -> dict | None:
    """Fields of a multipart/form-data body: name -> (filename or None, bytes). None if not multipart.

    The standard library's MIME parser does the work; no hand-written boundary scanning.
    """
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        return None
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _token_error():
    return (
        400,
        graph_error(190, "Invalid OAuth access token - Cannot parse access token"),
        {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token"'},
    )


def _invalid(message, subcode=None):
    return 400, graph_error(100, message, subcode=subcode), {}


class GraphAds:
    def __init__(self):
        self.lock = threading.Lock()
        self.accounts: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.images: dict[str, dict] = {}
            self.videos: dict[str, dict] = {}
            self.sessions: dict[str, dict] = {}
            self.creatives: dict[str, dict] = {}
            self.polls_until_ready = 2
            self.fail_videos = False
            self.reject_welcome = 0
            self.reject_creatives: list[dict] = []

    def add_account(self, account_id: str, token: str) -> None:
        """An ad account (``act_<digits>``) that ``token`` may use."""
        with self.lock:
            self.accounts[account_id] = token

    # -- helpers -----------------------------------------------------------
    def _auth(self, request, account=None):
        if request.record.get("token_source") == "query" or request.token is None:
            return _token_error()
        with self.lock:
            accounts = dict(self.accounts)
        known = [acc for acc, token in accounts.items() if hmac.compare_digest(token.encode(), request.token.encode())]
        if not known:
            return _token_error()
        if account is not None and account not in known:
            return _invalid(f"Unsupported post request. Object with ID '{account}' does not exist", subcode=33)
        request.record["account"] = known[0]
        return None

    # -- edges -------------------------------------------------------------
    def adimages(self, request):
        refused = self._auth(request, request.match.group(1))
        if refused:
            return refused
        fields = parse_multipart(request.headers.get("content-type"), request.raw)
        if not fields:
            return _invalid("(#100) An image file is required (multipart upload)")
        name, (filename, data) = next(iter(fields.items()))
        if not data.startswith((b"\xff\xd8\xff", b"\x89PNG")):
            return _invalid("(#100) Invalid image file", subcode=1487242)
        image_hash = hashlib.md5(data).hexdigest()  # noqa: S324 - Meta's image hash is an MD5-like id; not security
        key = filename or name
        with self.lock:
            self.images[image_hash] = {"account": request.match.group(1), "size": len(data)}
        return 200, {"images": {key: {"hash": image_hash, "url": f"https://scontent.example/{image_hash}.jpg"}}}, {}

    def advideos(self, request):  # noqa: PLR0911 - one answer per documented refusal
        account = request.match.group(1)
        refused = self._auth(request, account)
        if refused:
            return refused
        fields = parse_multipart(request.headers.get("content-type"), request.raw)
        if fields is None:
            fields = {k: (None, v.encode()) for k, v in urllib.parse.parse_qsl(request.raw.decode("utf-8", "replace"))}
        text = {k: v[1].decode("utf-8", "replace") for k, v in fields.items() if v[0] is None}
        phase = text.get("upload_phase")
        if phase is None:
            if "source" not in fields:
                return _invalid("(#100) source or upload_phase is required")
            return 200, {"id": self._new_video(account, len(fields["source"][1]))}, {}
        if phase == "start":
            try:
                size = int(text.get("file_size", ""))
            except ValueError:
                return _invalid("(#100) file_size must be an integer")
            video_id = self._new_video(account, 0, ready=False)
            session = str(next(_ids))
            with self.lock:
                self.sessions[session] = {"video_id": video_id, "size": size, "received": bytearray(), "chunks": [], "finished": False}
            return 200, {"upload_session_id": session, "video_id": video_id, "start_offset": "0", "end_offset": str(min(TRANSFER_CHUNK, size))}, {}
        with self.lock:
            session = self.sessions.get(text.get("upload_session_id", ""))
        if session is None:
            return _invalid("(#100) Invalid upload session", subcode=1363019)
        if phase == "transfer":
            chunk = fields.get("video_file_chunk")
            if chunk is None:
                return _invalid("(#100) video_file_chunk is required")
            offset = int(text.get("start_offset", "-1"))
            with self.lock:
                if offset != len(session["received"]):
                    return _invalid(f"(#100) start_offset {offset} does not match the bytes received ({len(session['received'])})", subcode=1363037)
                session["received"] += chunk[1]
                session["chunks"].append((offset, len(chunk[1])))
                received = len(session["received"])
                if received > session["size"]:
                    return _invalid("(#100) more bytes than file_size", subcode=1363037)
            return 200, {"start_offset": str(received), "end_offset": str(min(received + TRANSFER_CHUNK, session["size"]))}, {}
        if phase == "finish":
            with self.lock:
                if len(session["received"]) != session["size"]:
                    return _invalid("(#100) the upload is incomplete", subcode=1363040)
                session["finished"] = True
                self.videos[session["video_id"]]["size"] = session["size"]
                self.videos[session["video_id"]]["uploaded"] = True
            return 200, {"success": True, "video_id": session["video_id"]}, {}
        return _invalid("(#100) unknown upload_phase")

    def _new_video(self, account, size, ready=True):
        video_id = VIDEO_PREFIX + str(next(_video_ids))
        with self.lock:
            self.videos[video_id] = {"account": account, "size": size, "uploaded": ready, "polls": 0}
        return video_id

    def video(self, request):
        refused = self._auth(request)
        if refused:
            return refused
        video_id = request.match.group(1)
        with self.lock:
            video = self.videos.get(video_id)
            if video is None or video["account"] != request.record["account"]:
                return _invalid(f"Unsupported get request. Object with ID '{video_id}' does not exist", subcode=33)
            video["polls"] += 1
            if self.fail_videos:
                status = {"video_status": "error", "processing_phase": {"status": "error", "errors": [{"code": 1363008, "message": "Video file is corrupt"}]}}
            elif video["uploaded"] and video["polls"] > self.polls_until_ready:
                status = {"video_status": "ready"}
            else:
                status = {"video_status": "processing"}
        return 200, {"id": video_id, "status": status, "picture": f"https://scontent.example/{video_id}.jpg"}, {}

    def adcreatives(self, request):
        account = request.match.group(1)
        refused = self._auth(request, account)
        if refused:
            return refused
        params = dict(urllib.parse.parse_qsl(request.raw.decode("utf-8", "replace")))
        try:
            story = json.loads(params.get("object_story_spec", ""))
        except ValueError:
            return _invalid("(#100) object_story_spec must be JSON")
        problem = self._check_story(story)
        if problem:
            return _invalid("(#100) " + problem)
        with self.lock:
            if self.reject_creatives:
                fault = self.reject_creatives.pop(0)
                return 400, graph_error(fault.get("code", 100), fault.get("message", "(#100) Invalid parameter"), subcode=fault.get("subcode")), {}
            if self.reject_welcome and "page_welcome_message" in params:
                self.reject_welcome -= 1
                return 400, graph_error(100, "Invalid parameter", subcode=1815166), {}
            creative_id = str(next(_ids))
            self.creatives[creative_id] = {"account": account, "params": {**params, "object_story_spec": story}}
        return 200, {"id": creative_id}, {}

    def _check_story(self, story):  # noqa: PLR0911 - one answer per documented refusal
        if not isinstance(story, dict) or not story.get("page_id"):
            return "object_story_spec needs page_id"
        kinds = [kind for kind in ("video_data", "link_data") if kind in story]
        if len(kinds) != 1:
            return "object_story_spec needs exactly one of video_data, link_data"
        data = story[kinds[0]]
        if not isinstance(data, dict):
            return kinds[0] + " must be an object"
        if kinds[0] == "video_data":
            with self.lock:
                known = data.get("video_id") in self.videos
            if not known:
                return "video_data.video_id is not a video of this account"
            if not (data.get("image_url") or data.get("image_hash")):
                return "video_data needs image_url or image_hash"
        else:
            with self.lock:
                known = data.get("image_hash") in self.images
            if not known:
                return "link_data.image_hash is not an image of this account"
            if not data.get("link"):
                return "link_data needs link"
        cta = data.get("call_to_action")
        if cta is not None and (not isinstance(cta, dict) or not cta.get("type")):
            return "call_to_action needs a type"
        return None


def install(standin) -> GraphAds:
    """Register the ads edges on ``standin`` (once) and return their state, reset."""
    ads = getattr(standin, "_graph_ads", None)
    if ads is not None:
        ads.reset()
        return ads
    ads = GraphAds()
    standin._graph_ads = ads
    standin.route("POST", ACCOUNT + r"/adimages", ads.adimages)
    standin.route("POST", ACCOUNT + r"/advideos", ads.advideos)
    standin.route("POST", ACCOUNT + r"/adcreatives", ads.adcreatives)
    standin.route("GET", r"/v[0-9]+\.[0-9]+/(" + VIDEO_PREFIX + r"[0-9]+)", ads.video)
    return ads
