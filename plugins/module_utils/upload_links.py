# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Per-tenant signed upload links.

A token is ``<expiry_unix>.<hex HMAC-SHA256(upload_secret, "openclaw-upload:<slug>:<expiry>")>``.
The slug is part of the signed text, so a token of one tenant is worthless for
another even if two tenants shared a secret. The link handed out is
``<public_url>#<token>``: the token sits in the URL fragment, which browsers
never send to a server nor write into access logs; the page's script reads it
from ``location.hash`` and sends it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import sys
import time

MAX_LIFETIME = 7 * 24 * 3600
DEFAULT_HOURS = 24
_TOKEN = re.compile(r"([0-9]{1,12})\.([0-9a-f]{64})")


def _signature(secret, slug, expiry):
    message = ("openclaw-upload:%s:%d" % (slug, expiry)).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def make_token(secret, slug, hours=DEFAULT_HOURS, now=None):
    """A token for ``slug`` valid ``hours`` from now (at most 7 days)."""
    if not secret:
        raise ValueError("the tenant has no upload secret")
    now = int(time.time() if now is None else now)
    lifetime = int(hours * 3600)
    if lifetime <= 0 or lifetime > MAX_LIFETIME:
        raise ValueError("a link lives more than 0 and at most %d hours" % (MAX_LIFETIME // 3600))
    expiry = now + lifetime
    return "%d.%s" % (expiry, _signature(secret, slug, expiry))


def verify_token(secret, slug, token, now=None):
    """True for an unexpired token signed for ``slug`` with ``secret``; anything else is False."""
    if not secret or not isinstance(token, str):
        return False
    match = _TOKEN.fullmatch(token.strip())
    if not match:
        return False
    expiry = int(match.group(1))
    now = int(time.time() if now is None else now)
    if expiry <= now or expiry > now + MAX_LIFETIME:
        return False
    return hmac.compare_digest(_signature(secret, slug, expiry), match.group(2))


def bearer_token(authorization):
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _space, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def make_link(public_url, token):
    """The link the agent hands out: the token in the fragment, never in the path or query."""
    base = public_url.split("#", 1)[0]
    if not base.endswith("/"):
        base += "/"
    return base + "#" + token


def link_main(argv=None, environ=None):
    """``openclaw-upload-link [--hours N]``: print an upload link for this tenant."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="openclaw-upload-link", description="Print a signed upload link for this tenant.")
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS, help="hours the link stays valid (default 24, at most 168)")
    args = parser.parse_args(argv)
    slug = environ.get("OPENCLAW_TENANT", "")
    secret = environ.get("OPENCLAW_UPLOAD_SECRET", "")
    url = environ.get("OPENCLAW_UPLOAD_URL", "")
    missing = [name for name, value in (("OPENCLAW_TENANT", slug), ("OPENCLAW_UPLOAD_SECRET", secret), ("OPENCLAW_UPLOAD_URL", url)) if not value]
    if missing:
        sys.stderr.write("openclaw-upload-link: not set: %s\n" % ", ".join(missing))
        return 2
    try:
        token = make_token(secret, slug, args.hours)
    except ValueError as exc:
        sys.stderr.write("openclaw-upload-link: %s\n" % exc)
        return 2
    sys.stdout.write(make_link(url, token) + "\n")
    return 0
