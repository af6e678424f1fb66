"""Password verifier checks against verifiers made by PostgreSQL and libpq."""

from __future__ import annotations

from psycopg2.extensions import encrypt_password

from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import password_verifier_matches, scram_verifier

# Made by PostgreSQL 15 for: CREATE ROLE alice PASSWORD 'correct horse'
SCRAM_VERIFIER = "SCRAM-SHA-256$4096:DBdZM8O1XWBXbdd0nFB/YQ==$iRl6wgP8Z0S6KUL4KGH6szo4bSIMqGkZiR7p7ue2RZ8=:K7WHqjY3B+RpcxAm7Y7d234n3epsMsSlK6dRWsQIidw="


def test_scram_verifier_matches_only_its_password():
    assert password_verifier_matches(SCRAM_VERIFIER, "alice", "correct horse")
    assert not password_verifier_matches(SCRAM_VERIFIER, "alice", "correct horse ")
    assert not password_verifier_matches(SCRAM_VERIFIER, "alice", "")


def test_md5_verifier_includes_the_role_name():
    verifier = encrypt_password("s3cret", "bob", algorithm="md5")
    assert password_verifier_matches(verifier, "bob", "s3cret")
    assert not password_verifier_matches(verifier, "robert", "s3cret")


def test_missing_or_malformed_verifiers_never_match():
    assert not password_verifier_matches(None, "alice", "x")
    assert not password_verifier_matches("SCRAM-SHA-256$garbage", "alice", "x")
    assert not password_verifier_matches("plain-text", "alice", "plain-text")


def test_generated_verifier_has_postgres_format_and_matches():
    salt = __import__("base64").b64decode("DBdZM8O1XWBXbdd0nFB/YQ==")
    # The same salt and iteration count as PostgreSQL's own verifier above give the same verifier.
    assert scram_verifier("correct horse", salt=salt) == SCRAM_VERIFIER
    fresh = scram_verifier("s3cret")
    assert password_verifier_matches(fresh, "any", "s3cret")
    assert not password_verifier_matches(fresh, "any", "other")
    assert fresh != scram_verifier("s3cret")  # a new salt every time
