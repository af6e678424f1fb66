"""Signed upload links: one tenant, one secret, a bounded lifetime."""

from __future__ import annotations

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils import upload_links

SECRET = "s3cret-upload-key"
NOW = 1_800_000_000


def test_a_fresh_token_verifies_for_its_tenant():
    token = upload_links.make_token(SECRET, "acme", hours=24, now=NOW)
    assert upload_links.verify_token(SECRET, "acme", token, now=NOW + 60)


@pytest.mark.parametrize(
    ("slug", "secret", "at"),
    [("other", SECRET, NOW), ("acme", "another-secret", NOW), ("acme", SECRET, NOW + 24 * 3600), ("acme", SECRET, NOW + 30 * 24 * 3600)],
    ids=["other-tenant", "other-secret", "expired-at-expiry", "long-expired"],
)
def test_a_token_is_refused_for_another_tenant_secret_or_when_expired(slug, secret, at):
    token = upload_links.make_token(SECRET, "acme", hours=24, now=NOW)
    assert not upload_links.verify_token(secret, slug, token, now=at)


@pytest.mark.parametrize("token", ["", "abc", "123.", ".abcdef", "1800090000." + "g" * 64, "1800090000." + "a" * 63, None, "1800090000 " + "a" * 64])
def test_malformed_tokens_are_refused(token):
    assert not upload_links.verify_token(SECRET, "acme", token, now=NOW)


def test_a_token_further_than_seven_days_ahead_is_refused():
    expiry = NOW + 8 * 24 * 3600
    forged = "%d.%s" % (expiry, upload_links._signature(SECRET, "acme", expiry))
    assert not upload_links.verify_token(SECRET, "acme", forged, now=NOW)


@pytest.mark.parametrize("hours", [0, -1, 169])
def test_lifetime_is_bounded(hours):
    with pytest.raises(ValueError):
        upload_links.make_token(SECRET, "acme", hours=hours, now=NOW)


def test_the_link_carries_the_token_in_its_fragment_only():
    token = upload_links.make_token(SECRET, "acme", now=NOW)
    link = upload_links.make_link("https://example.org/openclaw/upload/acme", token)
    assert link == "https://example.org/openclaw/upload/acme/#" + token


def test_bearer_header_parsing():
    assert upload_links.bearer_token("Bearer abc") == "abc"
    assert upload_links.bearer_token("bearer  abc ") == "abc"
    assert upload_links.bearer_token("Basic abc") is None
    assert upload_links.bearer_token(None) is None


def test_command_prints_a_link_and_refuses_a_missing_secret(capsys):
    env = {"OPENCLAW_TENANT": "acme", "OPENCLAW_UPLOAD_SECRET": SECRET, "OPENCLAW_UPLOAD_URL": "https://example.org/openclaw/upload/acme/"}
    assert upload_links.link_main(["--hours", "2"], env) == 0
    link = capsys.readouterr().out.strip()
    base, token = link.split("#")
    assert base == env["OPENCLAW_UPLOAD_URL"]
    assert upload_links.verify_token(SECRET, "acme", token)
    assert upload_links.link_main([], {**env, "OPENCLAW_UPLOAD_SECRET": ""}) == 2
    assert SECRET not in capsys.readouterr().err
