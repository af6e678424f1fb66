"""The migration engine's pure parts: file names, checksums, planning, error positions, the order of commits."""

from __future__ import annotations

import psycopg2
import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils.migrations import (
    HISTORY_OWNER,
    HistoryRow,
    Migration,
    MigrationError,
    Migrator,
    checksum,
    error_line,
    load_migrations,
    plan,
)


def files(*names):
    return [{"script": name, "sql": f"-- {name}\nSELECT 1;\n"} for name in names]


def applied(migration, checksum_value=None):
    return HistoryRow(migration.version, migration.description, migration.script, checksum_value or migration.checksum, "SQL", True)


@pytest.mark.parametrize(
    ("script", "version", "description"),
    [("V001__baseline.sql", 1, "baseline"), ("V012__add_capi_index.sql", 12, "add capi index"), ("V1000__big.sql", 1000, "big")],
)
def test_file_names_give_version_and_description(script, version, description):
    migration = Migration(script, "SELECT 1;")
    assert (migration.version, migration.description) == (version, description)


@pytest.mark.parametrize("script", ["V1__short.sql", "V001_single.sql", "v001__lower.sql", "V001__x.SQL", "V001__with space.sql", "V001__.sql", "R001__x.sql"])
def test_bad_file_names_are_refused(script):
    with pytest.raises(MigrationError, match=r"does not match V<NNN>__<description>\.sql"):
        Migration(script, "SELECT 1;")


def test_migrations_are_sorted_and_versions_unique():
    assert [m.version for m in load_migrations(files("V002__b.sql", "V001__a.sql", "V010__c.sql"))] == [1, 2, 10]
    with pytest.raises(MigrationError, match="version 1 is used twice"):
        load_migrations(files("V001__a.sql", "V0001__b.sql"))
    with pytest.raises(MigrationError, match="no migration files"):
        load_migrations([])


def test_checksum_ignores_line_endings_but_not_content():
    assert checksum("SELECT 1;\r\nSELECT 2;\r\n") == checksum("SELECT 1;\nSELECT 2;\n")
    assert checksum("SELECT 1;\n") != checksum("SELECT 2;\n")


def test_created_tables_skip_comments():
    migration = Migration("V001__t.sql", "-- CREATE TABLE ghost (id int);\nCREATE TABLE one (id int);\ncreate table public.two (id int);\n")
    assert migration.created_tables() == ["one", "two"]


def test_plan_lists_pending_after_applied():
    migrations = load_migrations(files("V001__a.sql", "V002__b.sql", "V003__c.sql"))
    pending, repairs = plan(migrations, [applied(migrations[0])])
    assert [m.version for m in pending] == [2, 3]
    assert repairs == []
    assert plan(migrations, [applied(m) for m in migrations]) == ([], [])


def test_plan_refuses_drift_naming_the_file_unless_repairing():
    migrations = load_migrations(files("V001__a.sql", "V002__b.sql"))
    history = [applied(migrations[0], checksum_value="0" * 64)]
    with pytest.raises(MigrationError, match=r"checksum of applied migration V001__a\.sql changed"):
        plan(migrations, history)
    pending, repairs = plan(migrations, history, repair=True)
    assert [m.script for m in repairs] == ["V001__a.sql"]
    assert [m.version for m in pending] == [2]


def test_plan_refuses_unknown_and_out_of_order_versions():
    migrations = load_migrations(files("V001__a.sql", "V002__b.sql", "V003__c.sql"))
    newer = HistoryRow(9, "future", "V009__future.sql", "x", "SQL", True)
    with pytest.raises(MigrationError, match="records version 9"):
        plan(migrations, [applied(migrations[0]), newer])
    with pytest.raises(MigrationError, match=r"V002__b\.sql is older than the newest applied version 3"):
        plan(migrations, [applied(migrations[0]), applied(migrations[2])])


class FakeDiag:
    def __init__(self, position):
        self.statement_position = position


class FakeError(Exception):
    def __init__(self, position):
        super().__init__("boom")
        self.diag = FakeDiag(position)


def test_error_line_counts_lines_up_to_the_position():
    text = "SELECT 1;\nSELECT 2;\nSELECT oops;\n"
    assert error_line(text, FakeError(str(text.index("oops") + 1))) == 3
    assert error_line(text, FakeError(None)) is None


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def execute(self, query, params=None):
        text = query if isinstance(query, str) else "composed"
        self.conn.log.append((self.conn.name, "execute", "INSERT" if params and len(params) == 7 else text))
        if self.conn.fail_on and self.conn.fail_on in text:
            raise psycopg2.errors.SyntaxError("boom")

    def fetchone(self):
        return ("openclaw_t1",)


class FakeConnection:
    def __init__(self, name, log, fail_on=None, fail_commit=False):
        self.name, self.log, self.fail_on, self.fail_commit = name, log, fail_on, fail_commit

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        self.log.append((self.name, "commit", None))
        if self.fail_commit:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")

    def rollback(self):
        self.log.append((self.name, "rollback", None))


def test_history_row_is_inserted_before_the_tenant_commits_and_committed_after():
    log = []
    tenant, meta = FakeConnection("tenant", log), FakeConnection("meta", log)
    migration = Migration("V002__next.sql", "ALTER TABLE wa_dialogs ADD COLUMN note text;")
    Migrator(tenant, [migration], meta=meta, expected_owner=HISTORY_OWNER).apply(migration)
    steps = [(name, action) for name, action, _text in log if action != "execute" or _text in ("INSERT", migration.sql)]
    assert steps == [("tenant", "execute"), ("meta", "execute"), ("tenant", "commit"), ("meta", "commit")]


def test_failing_migration_rolls_back_both_connections():
    log = []
    tenant, meta = FakeConnection("tenant", log, fail_on="ALTER"), FakeConnection("meta", log)
    migration = Migration("V002__next.sql", "ALTER TABLE wa_dialogs ADD COLUMN note text;")
    with pytest.raises(MigrationError, match=r"V002__next\.sql failed and was rolled back"):
        Migrator(tenant, [migration], meta=meta).apply(migration)
    assert ("tenant", "commit", None) not in log
    assert ("meta", "commit", None) not in log
    assert {("tenant", "rollback", None), ("meta", "rollback", None)} <= set(log)


def test_lost_history_commit_names_the_migration_and_what_to_do():
    log = []
    tenant, meta = FakeConnection("tenant", log), FakeConnection("meta", log, fail_commit=True)
    migration = Migration("V002__next.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"V002__next\.sql was committed but its history row was not .*record version 2"):
        Migrator(tenant, [migration], meta=meta).apply(migration)
    assert ("tenant", "commit", None) in log
