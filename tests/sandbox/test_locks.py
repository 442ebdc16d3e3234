"""The lock budget, on production as it runs: a long transaction open on `customers` while the deploy's first
migration alters it, and the app reading and writing `customers` all the while.

Without a budget, the ALTER queues behind that transaction and every app query on the table queues behind
the ALTER, for as long as the transaction stays open. With it, the ALTER gives up after lock_timeout (2 s),
the app's queries go on, and the migration is tried again until the transaction has ended, or the run stops
and rolls back. And a migration that would hold ACCESS EXCLUSIVE past its budget is found on the rehearsal's
copy, before production is touched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import ROOT
from receiver import receiving

from .conftest import DATABASE, DB_PORT, MANAGED, PROBES, SECRETS, db, fingerprint, lock_record, playbook, reset
from .test_rollback import assert_release_1, branch, release_1, run_failing  # noqa: F401 - release_1: a fixture

sys.path.insert(0, str(ROOT / "bench"))
from blocking import Holder, Prober  # noqa: E402

pytestmark = pytest.mark.sandbox

FIRST = sorted(p.name for p in (ROOT / "examples/backend/v2/prisma/migrations").glob("2025*"))[0]
BUDGET_MS = 2000
# The app's queries wait at most the lock budget, plus a query's own time on a loaded two-core machine.
MARGIN_MS = 700


def app_connection() -> dict:
    tls = {"sslmode": "verify-full", "sslrootcert": str(ROOT / ".sandbox" / "tls" / "ca.crt")} if MANAGED else {}
    return {"host": "127.0.0.1", "port": DB_PORT, "dbname": "backend", "user": DATABASE["db_user"],
            "password": SECRETS["vault_db_password"], **tls}  # fmt: skip


def first_customer() -> str:
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM customers ORDER BY id LIMIT 1")
        return cur.fetchone()[0]


def a_migration_waits_on_customers() -> bool:
    """Whether a session is queued for a lock on customers: the deploy's ALTER has met the transaction. The
    test's clock starts there, not when the deploy begins: on a loaded machine Prisma may take longer than the
    transaction's seconds to reach its first ALTER, and a transaction ended by then proves nothing."""
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'customers'::regclass"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cur.fetchone()[0] > 0


def run_with_a_long_transaction(seconds: float, *args: str, expect_rc: int = 0):
    """migrate.yml with a transaction reading customers open `seconds` from when the deploy's first ALTER queues
    behind it, and the app's reads and writes of customers timed throughout."""
    connect = app_connection()
    # Opened once the run holds its lock (long before Prisma's first ALTER, however fast Prisma starts), closed
    # `seconds` after that ALTER first waited for it.
    holder = Holder(connect, "customers", seconds, when=lambda: lock_record() is not None,
                    since=a_migration_waits_on_customers).start()  # fmt: skip
    with Prober(connect, "customers", first_customer()) as prober:
        result = playbook("migrate.yml", "-e", "rehearsal_enabled=false", *args, expect_rc=expect_rc)
    holder.stop()
    out = " ".join((result.stdout + result.stderr).split())
    # A test whose transaction never opened proves nothing about the budget.
    assert holder.opened_at is not None, f"the long transaction never opened ({holder.errors[-3:]}): {out[-2000:]}"
    probed = prober.summary()
    PROBES.append(dict(probed, held_s=holder.held_s, retries=out.count("gave up waiting for a lock after")))
    return out, holder, probed


def history(name: str) -> list[tuple]:
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT finished_at IS NOT NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations"
            " WHERE migration_name = %s ORDER BY started_at",
            (name,),
        )
        return cur.fetchall()


def test_retries_spent_on_a_lock_held_longer_stop_the_run_and_roll_it_back(release_1):  # noqa: F811
    out, holder, probed = run_with_a_long_transaction(
        40, "-e", "migrate_deploy_lock_retries=1", "-e", "migrate_deploy_lock_retry_delay=0.5", expect_rc=2
    )
    assert holder.opened_at is not None, "the transaction never opened: the deploy did not begin"
    assert f"migrate deploy failed on migration {FIRST}" in out
    assert "canceling statement due to lock timeout" in out
    assert f"It gave up waiting for a lock 2 time(s) (lock_timeout {BUDGET_MS} ms)" in out
    assert "Not tried again: its 1 retries are spent" in out
    assert f"{FIRST} gave up waiting for a lock after {BUDGET_MS} ms (attempt 1)" in out
    # Both attempts failed whole (one transaction each) and are marked rolled back; release 1 is as it was.
    assert history(FIRST) == [(False, True), (False, True)]
    assert_release_1(release_1)
    assert probed["failed"] == 0, probed
    assert probed["max_blocked_ms"] <= BUDGET_MS + MARGIN_MS, probed
    assert probed["queries"] > 100, probed


def test_a_migration_waiting_for_a_lock_gives_way_to_the_app_and_is_applied_once_the_lock_is_free(release_1):  # noqa: F811
    before = fingerprint()
    with receiving() as webhook:
        out, holder, probed = run_with_a_long_transaction(
            12, "-e", f"notify_webhook_url=http://127.0.0.1:{webhook.port}/hooks/migrations"
        )
    # A run that succeeds says it started and ended, with what it applied.
    events = [body for _, body in webhook.received]
    assert [(e["event"], e["outcome"]) for e in events] == [("start", None), ("end", "succeeded")], events
    assert "27" in events[-1]["text"], events
    assert holder.held_s >= 11, "the transaction was not held through the deploy's first attempts"
    assert f"{FIRST} gave up waiting for a lock after {BUDGET_MS} ms (attempt 1)" in out
    assert "'Applied: 27 migration(s)'" in out
    # Each attempt that met the lock is rolled back whole, then the migration applied once.
    rows = history(FIRST)
    assert rows[-1] == (True, False) and all(row == (False, True) for row in rows[:-1]) and len(rows) >= 2, rows
    assert fingerprint() == before
    # 12 s of an open transaction, and the app's queries on that table waited at most the lock budget.
    assert probed["failed"] == 0, probed
    assert probed["max_blocked_ms"] <= BUDGET_MS + MARGIN_MS, probed
    assert lock_record() is None


def hold_access_exclusive(work: Path):
    """The first migration sleeps 3 s after its ALTER TABLE customers: ACCESS EXCLUSIVE held 3 s."""
    sql = work / "prisma" / "migrations" / FIRST / "migration.sql"
    sql.write_text(sql.read_text() + "\nSELECT pg_sleep(3);\n")


def test_a_migration_holding_access_exclusive_past_its_budget_on_the_rehearsal_stops_the_run(tmp_path):
    reset()
    before = fingerprint()
    name = branch(tmp_path, "hold3s", hold_access_exclusive)
    out = " ".join((playbook("migrate.yml", "-e", f"app_version={name}", expect_rc=2).stdout).split())
    held = f"{FIRST} held ACCESS EXCLUSIVE on customers for "
    assert held in out, out[-3000:]
    ms = int(out.split(held, 1)[1].split(" ", 1)[0])
    assert 2900 <= ms <= 4000, ms
    assert "Production was not touched" in out and f'rehearsal_lock_hold_allow: ["{FIRST}"]' in out
    assert fingerprint() == before
    assert [row for row in history(FIRST)] == []
