"""openclaw_waba_mapping against a real shared database (migrated by openclaw_db_schema)."""

from __future__ import annotations

import hashlib
import uuid

import psycopg2
import psycopg2.sql
import pytest

from harness.ansible import REPO_ROOT, run_module
from harness.postgres import text_columns_holding as holding

MODULE = "openclaw.standalone.openclaw_waba_mapping"


@pytest.fixture
def shared(pg_cluster):
    name = "shared_" + uuid.uuid4().hex[:8]
    created = run_module("openclaw.standalone.openclaw_db_schema", {"name": name, "schema": "shared", **pg_cluster.connection_options()})
    assert created.result.get("failed") is not True, created.stdout
    yield name
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def row(pg_cluster, database, phone_id):
    connection = psycopg2.connect(pg_cluster.dsn_for(database))
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT slug, phone_number, waba_access_token, gateway_token_sha256, is_active, gateway_token FROM waba_phone_mapping WHERE waba_phone_id = %s",
            (phone_id,),
        )
        found = cursor.fetchone()
    connection.close()
    return found


def fingerprint(secret):
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def text_columns_holding(dsn, needle):
    connection = psycopg2.connect(dsn)
    try:
        with connection:
            return holding(connection, needle)
    finally:
        connection.close()


def test_mapping_is_created_updated_only_when_needed_and_deactivated(pg_cluster, shared, tmp_path):
    token_file = tmp_path / "gateway_token"
    token_file.write_text("gateway-" + uuid.uuid4().hex + "\n", encoding="utf-8")
    access_token = "access-" + uuid.uuid4().hex
    args = {
        "database": shared,
        "slug": "aliya",
        "waba_phone_id": "106540352242922",
        "phone_number": "+77011234567",
        "business_account_id": "102290129340398",
        "access_token": access_token,
        "app_secret": "secret-" + uuid.uuid4().hex,
        "gateway_token_file": str(token_file),
        **pg_cluster.connection_options(),
    }

    predicted = run_module(MODULE, args, "--check", "--diff")
    assert predicted.result["changed"] and predicted.result["created"], predicted.result.get("msg")
    assert row(pg_cluster, shared, "106540352242922") is None

    created = run_module(MODULE, args, "-vvv")
    assert created.result["changed"] and created.result["created"]
    token = token_file.read_text(encoding="utf-8").strip()
    # Only fingerprints of the tokens are kept; the app secret is kept as it is (the webhook's HMAC key).
    assert row(pg_cluster, shared, "106540352242922") == ("aliya", "+77011234567", fingerprint(access_token), fingerprint(token), True, None)
    for secret in (access_token, args["app_secret"], token):
        assert secret not in created.stdout + created.stderr
    dsn = pg_cluster.dsn_for(shared)
    assert text_columns_holding(dsn, token) == []
    assert text_columns_holding(dsn, access_token) == []
    # The same scan finds what is stored: the probe is real.
    assert text_columns_holding(dsn, "106540352242922") == [("waba_phone_mapping", "waba_phone_id")]
    assert text_columns_holding(dsn, args["app_secret"]) == [("waba_phone_mapping", "waba_app_secret")]

    assert not run_module(MODULE, args).result["changed"]

    # A rotated gateway token reaches the mapping; the diff names the column, not the value.
    token_file.write_text("gateway-" + uuid.uuid4().hex + "\n", encoding="utf-8")
    rotated = run_module(MODULE, args, "--diff")
    assert rotated.result["changed_columns"] == ["gateway_token_sha256"]
    assert token_file.read_text(encoding="utf-8").strip() not in rotated.stdout
    assert row(pg_cluster, shared, "106540352242922")[3] == fingerprint(token_file.read_text(encoding="utf-8").strip())

    # Another tenant cannot take an active number.
    taken = run_module(MODULE, {**args, "slug": "marat"})
    assert taken.failed and "mapped to tenant aliya" in taken.result["msg"]

    gone = run_module(MODULE, {**args, "state": "absent"})
    assert gone.result["changed_columns"] == ["is_active"]
    assert row(pg_cluster, shared, "106540352242922")[4] is False


def test_bad_input_is_refused_before_connecting(pg_cluster):
    result = run_module(MODULE, {"slug": "aliya", "waba_phone_id": "12ab", "phone_number": "77", **pg_cluster.connection_options()})
    assert result.failed
    assert "waba_phone_id must be 5-32 digits" in result.result["msg"] and "nothing was changed" in result.result["msg"]


def test_tokens_a_database_already_holds_are_replaced_by_their_fingerprints(pg_cluster, tmp_path):
    """A shared database migrated before V002 loses its plain tokens when V002 runs."""
    name = "shared_" + uuid.uuid4().hex[:8]
    before_v002 = tmp_path / "shared"
    before_v002.mkdir()
    baseline = REPO_ROOT / "migrations" / "shared" / "V001__baseline.sql"
    (before_v002 / baseline.name).write_text(baseline.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        old = run_module(
            "openclaw.standalone.openclaw_db_schema", {"name": name, "schema": "shared", "migrations_path": str(before_v002), **pg_cluster.connection_options()}
        )
        assert old.result.get("failed") is not True, old.stdout
        dsn = pg_cluster.dsn_for(name)
        connection = psycopg2.connect(dsn)
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO waba_phone_mapping (waba_phone_id, slug, waba_access_token, gateway_token, waba_app_secret) VALUES (%s, %s, %s, %s, %s)",
                ("555000111", "aliya", "access-old", "gateway-old", "app-old"),
            )
        connection.close()
        assert sorted(text_columns_holding(dsn, "-old")) == [
            ("waba_phone_mapping", "gateway_token"),
            ("waba_phone_mapping", "waba_access_token"),
            ("waba_phone_mapping", "waba_app_secret"),
        ]

        migrated = run_module("openclaw.standalone.openclaw_db_schema", {"name": name, "schema": "shared", **pg_cluster.connection_options()})
        assert migrated.result.get("failed") is not True, migrated.stdout
        assert 2 in migrated.result["applied"]
        assert row(pg_cluster, name, "555000111") == ("aliya", None, fingerprint("access-old"), fingerprint("gateway-old"), True, None)
        assert text_columns_holding(dsn, "access-old") == [] and text_columns_holding(dsn, "gateway-old") == []
        assert text_columns_holding(dsn, "app-old") == [("waba_phone_mapping", "waba_app_secret")]
        # And no writer can put a plain token back.
        connection = psycopg2.connect(dsn)
        with pytest.raises(psycopg2.errors.CheckViolation), connection, connection.cursor() as cursor:
            cursor.execute("UPDATE waba_phone_mapping SET gateway_token = 'gateway-new'")
        with pytest.raises(psycopg2.errors.CheckViolation), connection, connection.cursor() as cursor:
            cursor.execute("UPDATE waba_phone_mapping SET waba_access_token = 'access-new'")
        connection.close()
    finally:
        pg_cluster.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
