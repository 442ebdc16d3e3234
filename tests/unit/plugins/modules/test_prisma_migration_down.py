"""prisma_migration_down on a real PostgreSQL, with down SQL planned (migration_undo_plan) from the sample's real
migrations."""

from __future__ import annotations

import sys
import uuid

import pytest
from conftest import ROOT

from ..conftest import PRISMA_HISTORY_DDL, run_module

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from migrate import migration_undo_plan  # noqa: E402

MIGRATIONS = ROOT / "examples" / "backend" / "v2" / "prisma" / "migrations"
SESSIONS = "20251002100000_create_sessions"
TIMEZONE = "20251118100000_add_user_timezone"


def apply(conn, name, finished=True):
    conn.cursor().execute((MIGRATIONS / name / "migration.sql").read_text())
    conn.cursor().execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)"
        " VALUES (%s, 'x', %s, clock_timestamp(), CASE WHEN %s THEN clock_timestamp() END, 1)",
        (str(uuid.uuid4()), name, finished),
    )


@pytest.fixture
def db(database):
    url, conn = database
    conn.cursor().execute(
        PRISMA_HISTORY_DDL + ";CREATE TABLE users (id text PRIMARY KEY, email text);"
        "INSERT INTO users SELECT 'u' || i, 'u' || i || '@example.com' FROM generate_series(1, 5) i;"
    )
    apply(conn, SESSIONS)
    return url, conn


def down(url, *names, failed=(), **extra):
    """Undo `names` (newest first) as the rollback does: planned by migration_undo_plan, one module call."""
    sources = [{"name": n, "sql": (MIGRATIONS / n / "migration.sql").read_text(), "down": None} for n in names]
    plan = migration_undo_plan(list(names), sources, failed)
    assert plan["refused"] == []
    args = {"database_url": url, "migrations": plan["migrations"], **extra}
    return run_module("prisma_migration_down", args, check=args.pop("_check", False))


def exists(conn, relation):
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,))
        return cur.fetchone()[0]


def history(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT migration_name FROM _prisma_migrations ORDER BY started_at")
        return [r[0] for r in cur.fetchall()]


def test_an_empty_new_table_is_dropped_with_its_history_row_in_one_go(db):
    url, conn = db
    result = down(url, SESSIONS)
    assert not result.get("failed"), result.get("msg")
    assert result["statements"] == ['DROP TABLE "sessions";'] and result["data"] == {"sessions": 0}
    assert not exists(conn, "sessions") and history(conn) == []


def test_data_in_what_would_be_dropped_is_refused_unless_allowed(db):
    url, conn = db
    conn.cursor().execute(
        "INSERT INTO sessions (id, user_id, token_hash, expires_at) VALUES ('s1', 'u1', 'h', now() + interval '1 day')"
    )
    result = down(url, SESSIONS)
    assert result["failed"] and "would drop data written since (sessions: 1)" in result["msg"]
    assert exists(conn, "sessions") and history(conn) == [SESSIONS]
    assert not down(url, SESSIONS, allow_data_loss=True).get("failed")
    assert not exists(conn, "sessions")


def test_only_the_newest_migration_can_be_undone(db):
    url, conn = db
    apply(conn, TIMEZONE)
    result = down(url, SESSIONS)
    assert result["failed"] and f"undo {TIMEZONE} first" in result["msg"]
    assert not down(url, TIMEZONE).get("failed")  # a column it added goes back out
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'timezone'"
        )
        assert cur.fetchone()[0] == 0


def test_several_migrations_are_undone_newest_first_in_one_transaction(db):
    url, conn = db
    apply(conn, TIMEZONE)
    result = down(url, TIMEZONE, SESSIONS)
    assert not result.get("failed"), result.get("msg")
    assert result["undone"] == [TIMEZONE, SESSIONS] and history(conn) == []
    assert not exists(conn, "sessions")


def test_oldest_first_is_refused(db):
    url, conn = db
    apply(conn, TIMEZONE)
    result = down(url, SESSIONS, TIMEZONE)
    assert result["failed"] and "undo newest first" in result["msg"]
    assert history(conn) == [SESSIONS, TIMEZONE]


def test_a_migration_that_failed_part_way_loses_what_of_it_ran_and_is_marked_rolled_back(db):
    url, conn = db
    # Its first statements ran (the table), the rest did not (its indexes): Prisma marked it failed.
    conn.cursor().execute("DROP INDEX IF EXISTS sessions_token_hash_key")
    conn.cursor().execute("UPDATE _prisma_migrations SET finished_at = NULL")
    result = down(url, SESSIONS, failed=[SESSIONS])
    assert not result.get("failed"), result.get("msg")
    assert not exists(conn, "sessions")
    with conn.cursor() as cur:
        cur.execute("SELECT migration_name, rolled_back_at IS NOT NULL FROM _prisma_migrations")
        assert cur.fetchall() == [(SESSIONS, True)]  # as `prisma migrate resolve --rolled-back` leaves it


def test_a_failed_migration_that_made_nothing_is_marked_rolled_back(db):
    url, conn = db
    # Most failures: PostgreSQL ran the script as one transaction and rolled all of it back.
    conn.cursor().execute("DROP TABLE sessions; UPDATE _prisma_migrations SET finished_at = NULL")
    result = down(url, SESSIONS, failed=[SESSIONS])
    assert not result.get("failed"), result.get("msg")
    assert result["data"] == {} and result["undone"] == [SESSIONS]
    with conn.cursor() as cur:
        cur.execute("SELECT rolled_back_at IS NOT NULL FROM _prisma_migrations")
        assert cur.fetchall() == [(True,)]


def test_a_table_held_by_a_transaction_fails_within_the_lock_timeout_and_changes_nothing(db, database):
    url, conn = db
    import psycopg2

    holder = psycopg2.connect(url)
    try:
        holder.cursor().execute("SELECT count(*) FROM sessions")  # open transaction: ACCESS SHARE on sessions
        result = down(url, SESSIONS, lock_timeout="200ms", lock_retries=0)
    finally:
        holder.rollback()
        holder.close()
    assert result["failed"] and "lock timeout" in result["msg"] and "Nothing was changed" in result["msg"]
    assert exists(conn, "sessions") and history(conn) == [SESSIONS]


def test_a_failed_migration_that_made_nothing_locks_nothing_of_its_table(db):
    url, conn = db
    import psycopg2

    # Its ALTER TABLE users was undone with its transaction (a lock timeout, say); a transaction reads users.
    conn.cursor().execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ('t', 'x', %s, now())",
        (TIMEZONE,),
    )
    holder = psycopg2.connect(url)
    try:
        holder.cursor().execute("SELECT count(*) FROM users")
        result = down(url, TIMEZONE, failed=[TIMEZONE], lock_timeout="200ms", lock_retries=0)
    finally:
        holder.rollback()
        holder.close()
    assert not result.get("failed"), result.get("msg")
    assert result["statements"] == [] and result["undone"] == [TIMEZONE]


def test_an_undo_that_met_a_held_lock_is_tried_again_and_done_once_it_is_free(db):
    url, conn = db
    import threading

    import psycopg2

    holder = psycopg2.connect(url)
    holder.cursor().execute("SELECT count(*) FROM sessions")
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    try:
        result = down(url, SESSIONS, lock_timeout="200ms", lock_retries=5)
    finally:
        release.join()
        holder.close()
    assert not result.get("failed"), result.get("msg")
    assert not exists(conn, "sessions") and history(conn) == []


def test_a_failed_migration_named_as_succeeded_is_refused(db):
    url, conn = db
    conn.cursor().execute("UPDATE _prisma_migrations SET finished_at = NULL")
    result = down(url, SESSIONS)
    assert result["failed"] and "undo it as failed" in result["msg"]


def test_a_statement_that_fails_changes_nothing(db):
    url, conn = db
    result = run_module(
        "prisma_migration_down",
        {
            "database_url": url,
            "migrations": [{"name": SESSIONS, "statements": ['DROP TABLE "sessions";', "SELECT no_such_function();"]}],
        },
    )
    assert result["failed"] and "Nothing was changed" in result["msg"]
    assert exists(conn, "sessions") and history(conn) == [SESSIONS]


def test_check_mode_counts_but_changes_nothing(db):
    url, conn = db
    result = down(url, SESSIONS, _check=True)
    assert result["changed"] is True and result["data"] == {"sessions": 0}
    assert exists(conn, "sessions") and history(conn) == [SESSIONS]
