"""What the roles say when they stop a run, and how an undo is planned: the filters that hold that logic."""

from __future__ import annotations

import base64
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import lock  # noqa: E402
import migrate  # noqa: E402
import plan  # noqa: E402

MIGRATIONS = ROOT / "examples" / "backend" / "v2" / "prisma" / "migrations"
SESSIONS = "20251002100000_create_sessions"


def test_a_blocking_finding_names_file_line_rule_and_how_to_allow_it():
    finding = {
        "file": "prisma/migrations/1_drop/migration.sql",
        "line": 1,
        "rule": "drop-column",
        "message": "Drops a column.",
        "statement": 'ALTER TABLE "customers" DROP COLUMN "phone" ' + "x" * 200,
        "migration": "1_drop",
    }
    msg = plan.plan_blocking_msg([finding, dict(finding, line=2)])
    assert msg.startswith("2 statement(s) can lose or rewrite data, so nothing was backed up or changed.")
    assert "[prisma/migrations/1_drop/migration.sql:1 drop-column] Drops a column." in msg
    assert 'migration_plan_allow: ["1_drop"].' in msg and "x" * 200 not in msg


def test_an_approval_is_stale_or_missing():
    assert plan.plan_approval_msg("0123456789ab", "ba9876543210").startswith(
        "the plan changed since 0123456789ab was approved: it is now ba9876543210."
    )
    assert plan.plan_approval_msg("", "ba9876543210").startswith("this inventory needs the plan approved")


def test_a_held_lock_names_its_holder_and_the_way_on():
    info = {"holder": "ops@laptop", "since": "2026-12-01T10:00:00Z", "run_id": "r1", "expires": "2026-12-01T12:00:00Z"}
    assert lock.lock_held_msg(info) == (
        "another migration holds the lock: ops@laptop since 2026-12-01T10:00:00Z (run r1, lease until"
        " 2026-12-01T12:00:00Z). Wait for it to finish. If that run is gone, wait for its lease to end or run"
        " again with -e migration_lock_break=true."
    )
    kept = lock.lock_held_msg(dict(info, reason="rollback failed: x"))
    assert "It is kept because the rollback failed: x. Check the database and the apps" in kept
    assert lock.lock_held_msg({}).startswith("another migration holds the lock: (holder unknown) since (unknown)")


def test_an_app_host_not_ready_is_told_each_fix():
    host = {"checkout": False, "local_changes": ["server.js"], "dotenv": None, "database_error": "timeout"}
    problems = migrate.preflight_app_problems(host, "/srv/backend", ["DATABASE_URL"])
    assert [p.split(" ")[0] for p in problems] == ["/srv/backend", "/srv/backend", "/srv/backend/.env", "cannot"]
    assert "is missing or unreadable" in problems[2]
    lacking = migrate.preflight_app_problems({"checkout": True, "dotenv": "X=1"}, "/srv/backend", ["SPACES_*"])
    assert lacking == [
        "/srv/backend/.env lacks SPACES_*. Add them to the .env on this host (values are never printed)."
    ]
    assert migrate.preflight_app_problems({"checkout": True, "dotenv": ""}, "/srv/backend", []) == []


def source(name, down=None):
    return {"name": name, "sql": (MIGRATIONS / name / "migration.sql").read_text(), "down": down}


def test_an_undo_uses_the_down_sql_supplied_else_generates_it_and_a_failed_one_drops_what_exists():
    plan_ = migrate.migration_undo_plan([SESSIONS], [source(SESSIONS)])
    assert plan_["refused"] == [] and plan_["migrations"][0]["statements"] == ['DROP TABLE "sessions";']
    assert plan_["migrations"][0]["dropped"] == [{"kind": "table", "table": "sessions"}]
    supplied = migrate.migration_undo_plan([SESSIONS], [source(SESSIONS, down="DROP TABLE sessions;")])
    assert supplied["migrations"][0]["statements"] == ["DROP TABLE sessions;"]
    assert supplied["migrations"][0]["source"] == "down.sql"
    failed = migrate.migration_undo_plan([SESSIONS], [source(SESSIONS, down="DROP TABLE sessions;")], [SESSIONS])
    assert failed["migrations"][0]["statements"] == ['DROP TABLE IF EXISTS "sessions";']
    assert failed["migrations"][0]["failed"] is True


def test_an_undo_that_cannot_be_had_is_refused_naming_why():
    data_change = {"name": "2_backfill", "sql": 'UPDATE "customers" SET "status" = \'x\';', "down": None}
    refused = migrate.migration_undo_plan(["2_backfill", "3_gone"], [data_change])
    assert [r["name"] for r in refused["refused"]] == ["2_backfill", "3_gone"]
    assert "does more than create things" in refused["refused_msg"] and "has no down.sql" in refused["refused_msg"]
    assert "3_gone: its migration.sql was not found" in refused["refused_msg"]


def test_slurped_files_become_the_migrations_texts():
    def slurp(name, file, text):
        return {"item": [name, file], "content": base64.b64encode(text.encode()).decode() if text else None}

    results = [slurp("1_a", "migration.sql", "CREATE TABLE a ();"), slurp("1_a", "down.sql", None)]
    assert migrate.slurped_migrations(results) == [{"name": "1_a", "sql": "CREATE TABLE a ();", "down": None}]


def test_a_migration_that_is_not_additive_needs_a_window_that_the_plan_shows_and_its_fingerprint_covers():
    msg = plan.plan_window_msg(["1_drop_phone"])
    assert msg.startswith("1_drop_phone is not additive (allowed by name)")
    assert "Nothing was backed up or changed" in msg and "-e maintenance_window=true" in msg
    assert plan.plan_window_msg(["1_a", "2_b"]).startswith("1_a and 2_b are not additive")
    base = {"database": "d", "pending": [{"name": "1_drop_phone", "sha256": "ab", "additive": False, "allowed": True}]}
    windowed = dict(base, maintenance_window=True)
    assert plan.plan_fingerprint(base) != plan.plan_fingerprint(windowed), "an approval covers the window"
    assert any(line.startswith("Maintenance window: every app stopped") for line in plan.plan_lines(windowed))
    assert not any(line.startswith("Maintenance window") for line in plan.plan_lines(base))


def test_the_plan_names_a_statement_the_live_data_would_make_fail_and_what_is_unchecked():
    checks = [
        {"migration": "1_require", "file": "f", "line": 2, "kind": "not_null", "table": "documents",
         "columns": ["property_id"], "query": "q"},
        {"migration": "2_unique", "file": "f", "line": 1, "kind": "unique", "table": "payments",
         "columns": ["customer_id"], "query": "q"},
        {"migration": "3_slow", "file": "f", "line": 4, "kind": "not_null", "table": "big", "columns": ["x"],
         "query": "q"},
    ]  # fmt: skip
    results = [
        {"query_result": [{"count": 125}]},
        {"query_result": [{"count": 0}]},
        {"failed": True, "msg": "canceling statement due to statement timeout"},
    ]
    data = plan.plan_data_results(checks, results)
    assert [item["rows"] for item in data] == [125, 0, None]
    # Unchecked (None) is not in the way: papermark's plan crashed comparing None with 0 before.
    assert [item["migration"] for item in plan.plan_data_failing(data)] == ["1_require"]
    # With no rehearsal to run it on a copy first, a statement no count could check stops the plan too.
    assert [item["migration"] for item in plan.plan_data_failing(data, rehearsal=False)] == ["1_require", "3_slow"]
    assert plan.plan_data_msg(data, rehearsal=False).startswith("2 statement(s)")
    msg = plan.plan_data_msg(data)
    assert msg.startswith("1 statement(s) would fail on the data production holds, so nothing was backed up")
    assert "1_require line 2: SET NOT NULL on documents.property_id: 125 row(s) hold NULL" in msg
    lines = plan.plan_lines({"database": "d", "data": data})
    assert "  2_unique line 1: unique index on payments.customer_id: 0 value(s) held by more than one row" in lines
    assert any(
        "3_slow line 4: big.x not checked (canceling statement due to statement timeout)" in line for line in lines
    )


def test_the_plan_stops_on_a_migration_applied_by_hand_unless_the_baseline_will_check_it():
    found = {
        "2_partly": {"present": ["table a"], "missing": ["index a_idx"], "complete": False, "problem": "2 partly"},
        "1_whole": {"present": ["table b"], "missing": [], "complete": True, "problem": "1 whole"},
    }
    assert plan.plan_hand_applied(found) == ["1 whole", "2 partly"]
    assert plan.plan_hand_applied(found, baseline=True) == ["2 partly"]
    assert plan.plan_hand_applied({}) == []


LOCKS = {
    "holds": [
        {"migration": "m2", "table": "customers", "mode": "ACCESS EXCLUSIVE", "held_ms": 3100},
        {"migration": "m1", "table": "users", "mode": "ACCESS EXCLUSIVE", "held_ms": 40},
        {"migration": "m2", "table": "users", "mode": "SHARE", "held_ms": 5000},
    ]
}


def test_a_migration_holding_access_exclusive_past_the_budget_on_the_rehearsal_stops_unless_allowed():
    over = plan.plan_lock_holds_over(LOCKS, 2000)
    assert [(h["migration"], h["table"], h["held_ms"]) for h in over] == [("m2", "customers", 3100)]
    assert plan.plan_lock_holds_over(LOCKS, 2000, ["m2"]) == []
    assert plan.plan_lock_holds_over(LOCKS, 4000) == []  # SHARE is not ACCESS EXCLUSIVE
    msg = plan.plan_lock_hold_msg(over, 2000)
    assert "m2 held ACCESS EXCLUSIVE on customers for 3100 ms (budget 2000 ms)" in msg
    assert "Production was not touched" in msg and 'rehearsal_lock_hold_allow: ["m2"]' in msg


def test_the_plan_shows_the_lock_budget_and_an_allowance_is_part_of_its_fingerprint():
    budget = {"lock_timeout_ms": 2000, "retries": 5, "statement_timeout_ms": 0, "hold_budget_ms": 2000}
    base = {"database": "d", "database_bytes": 1, "pending": [{"name": "m1", "sha256": "a", "additive": True}]}
    lines = plan.plan_lines(dict(base, lock_budget=budget, rehearsal=True))
    assert any("waits at most 2000 ms for its lock" in line and "up to 5 time(s)" in line for line in lines)
    assert any("without limit" in line for line in lines)
    assert any("longer than 2000 ms there stops the run" in line for line in lines)
    # No allowance: the fingerprints of plans made before the lock budget stay as they were.
    assert plan.plan_fingerprint(dict(base, lock_budget=budget)) == plan.plan_fingerprint(base)
    assert plan.plan_fingerprint(dict(base, lock_hold_allow=["m1"])) != plan.plan_fingerprint(base)
    lines = plan.plan_lines(dict(base, pending=[dict(base["pending"][0], one_transaction=False)]))
    assert any("transaction control of its own: not retried" in line for line in lines)
