"""openclaw_waba_mapping against a real shared database (migrated by openclaw_db_schema)."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from harness.ansible import run_module

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
        cursor.execute("SELECT slug, phone_number, waba_access_token, gateway_token, is_active FROM waba_phone_mapping WHERE waba_phone_id = %s", (phone_id,))
        found = cursor.fetchone()
    connection.close()
    return found


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
    assert predicted.result["changed"] and predicted.result["created"]
    assert row(pg_cluster, shared, "106540352242922") is None

    created = run_module(MODULE, args, "-vvv")
    assert created.result["changed"] and created.result["created"]
    token = token_file.read_text(encoding="utf-8").strip()
    assert row(pg_cluster, shared, "106540352242922") == ("aliya", "+77011234567", access_token, token, True)
    for secret in (access_token, args["app_secret"], token):
        assert secret not in created.stdout + created.stderr

    assert not run_module(MODULE, args).result["changed"]

    # A rotated gateway token reaches the mapping; the diff names the column, not the value.
    token_file.write_text("gateway-" + uuid.uuid4().hex + "\n", encoding="utf-8")
    rotated = run_module(MODULE, args, "--diff")
    assert rotated.result["changed_columns"] == ["gateway_token"]
    assert token_file.read_text(encoding="utf-8").strip() not in rotated.stdout
    assert row(pg_cluster, shared, "106540352242922")[3] == token_file.read_text(encoding="utf-8").strip()

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
