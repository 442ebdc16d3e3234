"""The deploy's lock budget: the startup options Prisma's connection carries, the retry's words and waits,
which migrations a lock timeout leaves unchanged, and the locks traced on the rehearsal's copy."""

from __future__ import annotations

import sys
import time

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils import pg_lock_trace
from ansible_collections.prismaguard.migrate.plugins.module_utils import prisma_migrations as pm
from ansible_collections.prismaguard.migrate.plugins.module_utils.migration_lint import lint_migrations
from conftest import ROOT

from ..conftest import PRISMA_HISTORY_DDL

SQUAWK = str(ROOT / ".venv" / "bin" / "squawk")


def test_the_settings_go_in_the_urls_startup_options_after_those_it_has():
    url = "postgresql://u:p%40ss@h:25060/db?sslmode=verify-full&options=-c%20search_path%3Dapp"
    out = pm.with_session_settings(url, {"lock_timeout": "2000ms", "statement_timeout": "900000ms"})
    params, _ = pm.connection_params(out)
    assert params["options"] == "-c search_path=app -c lock_timeout=2000ms -c statement_timeout=900000ms"
    assert params["password"] == "p@ss" and params["sslmode"] == "verify-full"  # noqa: S105
    assert "+" not in out.split("?", 1)[1]  # libpq reads %20 as a space, not +
    assert pm.with_session_settings(url, {}) == url


def test_postgresql_applies_the_urls_options_to_the_session(database):
    import psycopg2

    url, _ = database
    params, _ = pm.connection_params(pm.with_session_settings(url, {"lock_timeout": "2000ms"}))
    with psycopg2.connect(**params) as conn, conn.cursor() as cur:
        cur.execute("SHOW lock_timeout")
        assert cur.fetchone()[0] == "2s"


@pytest.mark.parametrize(
    "text",
    [
        "Database error code: 55P03\n\nDatabase error:\nERROR: canceling statement due to lock timeout",
        "Error: external connector error\ncanceling statement due to lock timeout (SQLSTATE 55P03)",
    ],
)
def test_a_lock_timeout_is_told_in_either_engines_words(text):
    assert pm.lock_timed_out(text)


def test_other_errors_are_not_lock_timeouts():
    assert not pm.lock_timed_out("ERROR: canceling statement due to statement timeout (SQLSTATE 57014)")
    assert not pm.lock_timed_out("")


def test_retries_wait_twice_as_long_each_time_up_to_the_cap_jittered():
    assert [pm.retry_delay(n, 1.0, 30.0, 1.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert pm.retry_delay(2, 1.0, 30.0, 0.5) == 1.0
    assert pm.retry_delay(2, 1.0, 30.0, 1.49) == 2.98


@pytest.mark.parametrize(
    ("sql", "one"),
    [
        ('ALTER TABLE "customers" ADD COLUMN "kyc" TEXT;\nCREATE INDEX "i" ON "customers"("kyc");', True),
        ("DO $$ BEGIN CREATE TYPE s AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN null; END $$;", True),
        ("BEGIN;\nALTER TABLE customers ADD COLUMN a int;\nCOMMIT;", False),
        ('CREATE INDEX CONCURRENTLY "i" ON "customers"("email");', False),
        ('DROP INDEX CONCURRENTLY "i";', False),
        ("VACUUM customers;", False),
        ("ALTER TABLE customers ADD COLUMN", False),  # does not parse: nothing is known of it
    ],
)
def test_the_lint_tells_a_migration_that_is_one_transaction(sql, one):
    report = lint_migrations([{"name": "20250101000000_m", "sql": sql}], tables={}, squawk=SQUAWK)
    assert report["migrations"][0]["one_transaction"] is one


def test_holds_are_spans_from_first_to_last_sample_per_migration_table_and_mode():
    samples = [
        (10.00, [("customers", "AccessShareLock", None)]),  # Prisma reading, no migration under way
        (10.02, [("customers", "AccessExclusiveLock", "m1"), ("users", "ShareLock", "m1")]),
    ]
    samples += [(10.04 + i * 0.02, [("customers", "AccessExclusiveLock", "m1")]) for i in range(14)]
    samples += [(10.32, [("payments", "AccessExclusiveLock", "m2")])]
    holds = pg_lock_trace.summarise(samples, 0.02)
    assert holds[0] == {"migration": "m1", "table": "customers", "mode": "ACCESS EXCLUSIVE", "held_ms": 300}
    assert {(h["migration"], h["table"], h["mode"], h["held_ms"]) for h in holds[1:]} == {
        ("m1", "users", "SHARE", 20),
        ("m2", "payments", "ACCESS EXCLUSIVE", 20),
    }
    assert [(h["migration"], h["held_ms"]) for h in pg_lock_trace.longest(holds)] == [("m1", 300), ("m2", 20)]


def test_the_trace_sees_a_migrations_access_exclusive_hold_on_a_real_server(database):
    import psycopg2

    url, conn = database
    cur = conn.cursor()
    cur.execute(PRISMA_HISTORY_DDL)
    cur.execute("CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers VALUES (1)")
    params, _ = pm.connection_params(url)
    trace = pg_lock_trace.LockTrace(lambda: _autocommit(psycopg2.connect(**params)), "public._prisma_migrations")
    trace.start()
    time.sleep(0.1)
    # As Prisma applies a migration: its row first, then the script as one transaction, then the row finished.
    cur.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('1', 'x', 'm1')")
    migrator = psycopg2.connect(**params)
    with migrator.cursor() as mcur:
        mcur.execute("ALTER TABLE customers ADD COLUMN kyc text; SELECT pg_sleep(0.4)")
        migrator.commit()
    migrator.close()
    cur.execute("UPDATE _prisma_migrations SET finished_at = now() WHERE id = '1'")
    time.sleep(0.1)
    found = trace.stop()
    assert found["error"] is None and found["samples"] > 10
    held = [h for h in found["holds"] if h["table"] == "customers" and h["mode"] == "ACCESS EXCLUSIVE"]
    assert len(held) == 1 and held[0]["migration"] == "m1", found
    assert 380 <= held[0]["held_ms"] <= 700, found


def _autocommit(conn):
    conn.autocommit = True
    return conn


def test_the_longest_hold_is_told_or_that_none_was_over_the_resolution():
    holds = [{"migration": "m1", "table": "customers", "mode": "ACCESS EXCLUSIVE", "held_ms": 60}]
    assert pg_lock_trace.describe_longest({"holds": holds, "samples": 9}) == "60 ms, m1 on customers"
    assert pg_lock_trace.describe_longest({"holds": [], "samples": 9, "resolution_ms": 20}) == (
        "none over 20 ms, the trace's resolution"
    )


@pytest.mark.parametrize(
    ("sql", "locks"),
    [
        ('ALTER TABLE "customers" ADD COLUMN "kyc" TEXT;', [("customers", "ACCESS EXCLUSIVE")]),
        ('CREATE INDEX "i" ON "customers"("email");', [("customers", "SHARE")]),
        ('CREATE INDEX CONCURRENTLY "i" ON "customers"("email");', [("customers", "SHARE UPDATE EXCLUSIVE")]),
        ('ALTER TABLE "customers" VALIDATE CONSTRAINT "c";', [("customers", "SHARE UPDATE EXCLUSIVE")]),
        (
            'ALTER TABLE "users" ADD CONSTRAINT "f" FOREIGN KEY ("customer_id") REFERENCES "customers"("id");',
            [("users", "SHARE ROW EXCLUSIVE")],
        ),
        ("UPDATE customers SET status = 'active' WHERE status IS NULL;", [("customers", "ROW EXCLUSIVE")]),
        # A table the same run makes is empty and unused: its locks hold no one up.
        ('CREATE TABLE "t" ("id" TEXT PRIMARY KEY);\nALTER TABLE "t" ADD COLUMN "a" INT;', []),
    ],
)
def test_the_lint_names_the_lock_each_statement_takes_on_a_live_table(sql, locks):
    tables = {"customers": {"rows": 10, "has_rows": True}, "users": {"rows": 10, "has_rows": True}}
    report = lint_migrations([{"name": "20250101000000_m", "sql": sql}], tables=tables, squawk=SQUAWK)
    found = [(lock["table"], lock["mode"]) for s in report["migrations"][0]["statements"] for lock in s["locks"]]
    assert found == locks


def test_the_plan_sums_up_the_locks_that_hold_up_the_app_strongest_first():
    sys.path.insert(0, str(ROOT / "plugins" / "filter"))
    import plan

    pending = [
        {"statements": [{"locks": [{"table": "users", "mode": "SHARE"}, {"table": "users", "mode": "ROW EXCLUSIVE"}]}]},
        {"statements": [{"locks": [{"table": "customers", "mode": "ACCESS EXCLUSIVE"}]}]},
        {"statements": [{"locks": [{"table": "customers", "mode": "SHARE"}]}]},
    ]
    assert plan.plan_locked_tables(pending) == {"ACCESS EXCLUSIVE": ["customers"], "SHARE": ["customers", "users"]}


def test_a_migration_tried_again_after_a_lock_timeout_takes_its_locks_anew():
    # Held 40 ms, then the retry's back-off (samples without it), then held 60 ms: the longest span, not 2.1 s.
    samples = [(10.00 + i * 0.02, [("customers", "AccessExclusiveLock", "m1")]) for i in range(2)]
    samples += [(11.0, [])]
    samples += [(12.0 + i * 0.02, [("customers", "AccessExclusiveLock", "m1")]) for i in range(3)]
    assert pg_lock_trace.summarise(samples, 0.02)[0]["held_ms"] == 60


def test_a_trace_that_did_not_run_or_failed_is_said_not_taken_for_none_seen():
    assert pg_lock_trace.describe_longest({}) == "not traced (migrate_deploy_trace_locks is off)"
    failed = {"holds": [], "samples": 3, "resolution_ms": 20, "error": "permission denied for pg_locks"}
    assert pg_lock_trace.describe_longest(failed) == "not traced: permission denied for pg_locks"
    assert pg_lock_trace.describe_longest({"holds": [], "samples": 0}) == "not traced: no sample was taken"


@pytest.mark.parametrize(
    ("sql", "rule"),
    [("SET lock_timeout = '30s';\nALTER TABLE customers ADD COLUMN a int;", "session-timeout-setting"),
     ("SET statement_timeout = 0;", "session-timeout-setting"),
     ("SET LOCAL lock_timeout = '30s';\nALTER TABLE customers ADD COLUMN a int;", None)],
)  # fmt: skip
def test_with_the_lock_budget_a_session_wide_timeout_in_a_migration_warns_and_squawks_advice_is_left_out(sql, rule):
    tables = {"customers": {"rows": 10, "has_rows": True}}
    report = lint_migrations([{"name": "20250101000000_m", "sql": sql}], tables=tables, squawk=SQUAWK, lock_budget=True)
    assert sorted({f["rule"] for f in report["findings"]}) == ([rule] if rule else [])


def test_a_migration_with_data_changes_is_not_retried_after_a_lock_timeout():
    sql = "ALTER TABLE customers ADD COLUMN a int;\nUPDATE customers SET a = 1;"
    report = lint_migrations([{"name": "20250101000000_m", "sql": sql}], tables={}, squawk=SQUAWK)
    assert report["migrations"][0]["one_transaction"] is True and report["migrations"][0]["lock_retry"] is False
