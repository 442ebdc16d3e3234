"""rollback.yml, run by a person after a migration: undo named migrations, or restore a chosen backup.

The module's sandbox is migrated to release 2 once; the tests then run in file order.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from .conftest import (
    DB_SERVER,
    DB_SSH,
    HTTP,
    NO_REHEARSAL,
    SSH,
    SUPERUSER_PSQL,
    as_postgres,
    audit_lines,
    break_lock,
    container,
    db,
    fingerprint,
    health,
    lock_record,
    playbook,
    ssh,
)

pytestmark = pytest.mark.sandbox

LAST = "20251204_consolidate_verification_service"
NEW_TABLES = ("verification_requests", "verification_documents", "verification_history", "provider_logs")


def history() -> list[str]:
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT migration_name FROM _prisma_migrations ORDER BY started_at")
        return [r[0] for r in cur.fetchall()]


def relation(name: str):
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (name,))
        return cur.fetchone()[0]


def out(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="module")
def migrated():
    release_1 = fingerprint()
    playbook("migrate.yml", *NO_REHEARSAL)
    backups = ssh(DB_SSH, "ls /var/backups/prisma-migrate/*.dump").stdout.split()
    assert len(backups) == 1
    return {"fingerprint": release_1, "backup": backups[0]}


def test_undoing_the_last_migration_drops_its_new_empty_tables_and_its_history_row(migrated):
    result = playbook("rollback.yml", "-e", f"rollback_migrations={LAST}")
    assert "Undid 20251204_consolidate_verification_service with their down SQL in one transaction" in out(result)
    assert relation("verification_requests") is None
    assert LAST not in history() and len(history()) == 27
    assert fingerprint() == migrated["fingerprint"]
    for port in HTTP.values():
        assert health(port)["status"] == "ok"


def test_undo_refuses_to_drop_a_table_that_holds_rows(migrated):
    playbook("migrate.yml", *NO_REHEARSAL)  # applies the last migration again
    assert LAST in history()
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO verification_requests (id, customer_id, type) SELECT 'vr1', id, 'kyc' FROM customers LIMIT 1"
        )
    result = playbook("rollback.yml", "-e", f"rollback_migrations={LAST}", expect_rc=2)
    assert "would drop data written since (verification_requests: 1)" in out(result)
    assert relation("verification_requests") is not None and LAST in history()
    assert lock_record() is None


def wait_for_session(query: str, timeout: float = 60) -> None:
    """Until a session other than ours runs `query` on the database server (started in the background)."""
    deadline = time.monotonic() + timeout
    count = f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{query}%' AND pid <> pg_backend_pid()"
    while as_postgres(f'{SUPERUSER_PSQL} -tAc "{count}"').stdout.strip() in ("", "0"):
        assert time.monotonic() < deadline, f"no session ran {query} within {timeout} s"
        time.sleep(0.5)


def test_a_restore_a_session_of_another_role_holds_up_puts_no_old_code_on_the_new_schema(migrated):
    # A superuser's session (a person's psql, say) holds the database: the tool may not end it, waits, then stops.
    # It sleeps until killed below, however long the rollback takes to reach the swap on a loaded machine.
    holder = subprocess.Popen(
        ["podman", "exec", container(DB_SERVER), "su", "postgres", "-c",
         f"{SUPERUSER_PSQL} -d backend -c 'SELECT pg_sleep(600)'"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_session("pg_sleep(600)")
        backup = migrated["backup"].rsplit("/", 1)[1]
        result = playbook(
            "rollback.yml", "-e", f"rollback_backup={backup}", "-e", "rollback_app_version=v1",
            "-e", "db_restore_swap_wait=5", expect_rc=2,
        )  # fmt: skip
    finally:
        holder.kill()
        as_postgres(f"{SUPERUSER_PSQL} -qc \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()\"")  # fmt: skip
    said = out(result)
    assert "Still connected after 5s: postgres (pid " in said, said[-3000:]
    assert "The live database is unchanged" in said
    assert "so the previous code is not put back on the new schema" in said
    assert len(history()) == 28, "release 2's schema and history stay"
    for port in SSH.values():
        assert ssh(port, "git -C /srv/backend describe --tags --always").stdout.strip() != "v1", "no old code"
    # The apps stay stopped (the restore was wanted), and the lock says why.
    holder_record = lock_record()
    assert "rollback.yml failed after stopping the apps, which stay stopped" in holder_record["reason"], holder_record
    break_lock()  # the person's call, for the tests after this one


def test_restoring_the_first_backup_with_the_old_code_brings_back_release_1(migrated):
    backup = migrated["backup"].rsplit("/", 1)[1]
    result = playbook("rollback.yml", "-e", f"rollback_backup={backup}", "-e", "rollback_app_version=v1")
    assert "Restored /var/backups/prisma-migrate/" in out(result)
    assert fingerprint() == migrated["fingerprint"]
    assert history() == ["20240115093000_baseline"]
    assert all(relation(t) is None for t in NEW_TABLES)
    for port in HTTP.values():
        assert health(port)["version"] == "1.0.0"
    lines = audit_lines()
    assert lines[-1]["kind"] == "rollback" and lines[-1]["outcome"] == "rolled back"
    assert lines[-1]["backup"].endswith(backup)


def test_a_backup_that_changed_since_it_was_written_is_refused_before_anything_stops(migrated):
    backup = migrated["backup"]
    ssh(DB_SSH, f"printf 'x' | dd of={backup} bs=1 seek=1000 conv=notrunc 2>/dev/null")
    result = playbook("rollback.yml", "-e", f"rollback_backup={backup}", expect_rc=2)
    assert "checksum" in out(result)
    for port in HTTP.values():
        assert health(port)["version"] == "1.0.0"
