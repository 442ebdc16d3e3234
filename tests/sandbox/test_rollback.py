"""Fault injection: a run that fails leaves production as it found it, by itself.

Every test starts from release 1 (the fault is rolled back), injects one fault,
runs migrate.yml under production's write traffic (tests/sandbox/writes.py, 25
writes/s through the apps) and asserts: the run fails naming host, step and
cause; every write the apps acknowledged is in production; every row of every
release-1 table is identical (fingerprint); the schema, the applied migrations,
the code on each host and the served version are release 1's; the apps answer;
the lock is free; the audit log has the run's line.
The matrix in docs/fault-matrix.md lists each fault with where it is caught.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from .conftest import (
    DB_SSH,
    HTTP,
    SSH,
    SUPERUSER_PSQL,
    as_postgres,
    assert_no_write_lost,
    audit_lines,
    db,
    fingerprint,
    health,
    lock_record,
    playbook,
    reset,
    ssh,
    writing,
)

pytestmark = pytest.mark.sandbox

ORIGIN = ROOT / ".sandbox" / "git" / "backend.git"
GIT_ID = ("-c", "user.name=t", "-c", "user.email=t@example.com")


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def branch(tmp: Path, name: str, change) -> str:
    """Release 2 with `change(worktree)` applied, pushed to the origin as a branch."""
    work = tmp / name
    git("clone", "-q", str(ORIGIN), str(work))
    change(work)
    git(*GIT_ID, "add", "-A", cwd=work)
    git(*GIT_ID, "commit", "-qm", name, cwd=work)
    git("push", "-q", "-f", "origin", f"HEAD:refs/heads/{name}", cwd=work)
    return name


MIGRATION_15 = sorted(p.name for p in (ROOT / "examples/backend/v2/prisma/migrations").glob("2025*"))[14]


def fail_migration_15(work: Path):
    """Migration 15 of 27 ends with a statement that fails after its others ran."""
    sql = work / "prisma" / "migrations" / MIGRATION_15 / "migration.sql"
    sql.write_text(sql.read_text() + "\nSELECT no_such_function();\n")


def break_session_endpoint(work: Path):
    """Release 2's code answers 500 on validate-session (the migrations are fine)."""
    server = work / "server.js"
    server.write_text(
        server.read_text().replace(
            "const role = roleOf(bearer(req))\n    return role ?", "throw new Error('boom')\n    return role ?", 1
        )
    )


@pytest.fixture(scope="module")
def release_1():
    """What must come back after each fault: data, history, code and version of release 1."""
    revisions = {host: ssh(port, "git -C /srv/backend rev-parse HEAD").stdout.strip() for host, port in SSH.items()}
    return {"fingerprint": fingerprint(), "revisions": revisions}


def assert_release_1(state: dict):
    assert fingerprint() == state["fingerprint"]
    with db() as conn, conn.cursor() as cur:
        # A migration that failed part-way keeps its row, marked rolled back, as `prisma migrate resolve` leaves it.
        cur.execute("SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL ORDER BY started_at")
        assert [r[0] for r in cur.fetchall()] == ["20240115093000_baseline"]
        cur.execute("SELECT to_regclass('verification_requests')")
        assert cur.fetchone()[0] is None
        # Undone, not restored: no database was swapped in (the writes since the backup stay where they are).
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'backend\\_%'")
        assert cur.fetchall() == []
    for host, port in SSH.items():
        assert ssh(port, "git -C /srv/backend rev-parse HEAD").stdout.strip() == state["revisions"][host], host
    for port in HTTP.values():
        assert health(port)["version"] == "1.0.0"
    assert lock_record() is None, "lock left behind"


def run_failing(*args: str) -> str:
    result = playbook("migrate.yml", *args, expect_rc=2)
    return " ".join((result.stdout + result.stderr).split())


UNDONE = "migration(s) undone with their down SQL in one transaction, no write discarded"


def run_failing_under_writes(fault: str, *args: str) -> str:
    """The failing run with production's writes going on; none of those acknowledged may be lost."""
    with writing() as writer:
        out = run_failing(*args)
    assert_no_write_lost(writer, fault)
    return out


def test_failing_sql_in_migration_15_of_27_is_rolled_back(release_1, tmp_path):
    name = branch(tmp_path, "fail15", fail_migration_15)
    # The rehearsal would catch it on a copy first (test_plan.py): off, to fail production's own deploy.
    out = run_failing_under_writes(
        "failing SQL in migration 15 of 27", "-e", f"app_version={name}", "-e", "rehearsal_enabled=false"
    )
    assert f"migrate deploy failed on migration {MIGRATION_15}" in out
    assert "function no_such_function() does not exist" in out
    # 14 applied and the 15th's partial objects, undone newest first in one transaction; nothing restarted.
    assert f"Rolled back: previous code checked out where it had changed, apps not restarted; 15 {UNDONE}" in out
    assert_release_1(release_1)
    last = audit_lines()[-1]
    assert last["outcome"] == "rolled back" and "no_such_function" in last["failure"]
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rolled_back_at IS NOT NULL FROM _prisma_migrations WHERE migration_name = %s", (MIGRATION_15,)
        )
        assert cur.fetchall() == [(True,)]


DROP_FAILS = "20251210090000_drop_customer_phone_then_fail"


def test_a_failed_migration_that_is_not_additive_restores_the_backup_taken_with_the_apps_stopped(release_1, tmp_path):
    def change(work: Path):
        folder = work / "prisma" / "migrations" / DROP_FAILS
        folder.mkdir()
        (folder / "migration.sql").write_text(
            'ALTER TABLE "customers" DROP COLUMN "phone";\nSELECT no_such_function();\n'
        )

    name = branch(tmp_path, "dropfails", change)
    window = json.dumps({"migration_plan_allow": [DROP_FAILS], "maintenance_window": True, "rehearsal_enabled": False})
    out = run_failing_under_writes(
        "a migration that is not additive fails in a maintenance window", "-e", f"app_version={name}", "-e", window
    )
    assert "Maintenance window: every app stopped before the backup" in out
    assert f"migrate deploy failed on migration {DROP_FAILS}" in out
    # Its down SQL could not bring a dropped column back; the backup was taken with every app stopped,
    # so swapping it in discards nothing; the apps start on release 1 and pass the rollback's gate.
    assert "apps restarted and healthy; database restored from /var/backups/prisma-migrate/backup_" in out
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'backend\\_failed\\_%'")
        kept = [r[0] for r in cur.fetchall()]
    assert len(kept) == 1, kept
    assert as_postgres(f"{SUPERUSER_PSQL} -qc 'DROP DATABASE \"{kept[0]}\"'").returncode == 0
    assert_release_1(release_1)
    assert audit_lines()[-1]["outcome"] == "rolled back"


def test_a_schema_assertion_failure_after_deploy_is_rolled_back(release_1):
    expect = {"schema_assert_expect": {"tables": {"verification_requests": {"columns": {"approved_at": "text"}}}}}
    out = run_failing_under_writes(
        "schema assertion fails after the deploy", "-e", json.dumps(expect), "-e", "rehearsal_enabled=false"
    )
    assert "schema assertion" in out and "approved_at" in out
    assert f"27 {UNDONE}" in out
    assert_release_1(release_1)


def test_a_health_check_failing_after_restart_is_rolled_back(release_1, tmp_path):
    name = branch(tmp_path, "unhealthy", break_session_endpoint)
    # The forward run's checks set by extra vars, one that release 1 cannot pass among them: the rollback's
    # gate runs its own checks against the release it puts back, not these.
    checks = {"health_gate_checks": [
        {"path": "/api/auth/validate-session", "token": "session"}, {"path": "/api/release-2-only", "token": ""}
    ]}  # fmt: skip
    out = run_failing_under_writes(
        "health check fails after the restart", "-e", f"app_version={name}", "-e", json.dumps(checks)
    )
    assert "sandbox-pm2: health gate: /api/auth/validate-session -> 500" in out
    assert (
        f"Rolled back: previous code checked out where it had changed, apps restarted and healthy; 27 {UNDONE}" in out
    )
    assert_release_1(release_1)


def test_a_backup_corrupted_after_writing_stops_the_run_before_any_change(release_1):
    # postgresql_db runs `pg_dump ... > FILE`: this pg_dump writes the first half of the real dump and exits 0.
    wrapper = (
        '#!/bin/sh\nt=$(mktemp); /usr/bin/pg_dump "$@" > "$t" || exit 1\n'
        'head -c $(( $(stat -c %s "$t") / 2 )) "$t"; rm -f "$t"\n'
    )
    encoded = base64.b64encode(wrapper.encode()).decode()
    install = f"echo {encoded} | base64 -d | sudo tee /usr/local/bin/pg_dump >/dev/null"
    install += " && sudo chmod 755 /usr/local/bin/pg_dump"
    assert ssh(DB_SSH, install).returncode == 0
    try:
        out = run_failing_under_writes("backup corrupted after writing")
    finally:
        ssh(DB_SSH, "sudo rm -f /usr/local/bin/pg_dump")
    assert "backup verification" in out and "full_read" in out
    assert "database untouched" in out
    assert_release_1(release_1)


def test_too_little_disk_for_the_backup_stops_the_run_in_preflight(release_1):
    out = run_failing_under_writes("disk too small for the backup", "-e", "preflight_disk_factor=100000000")
    assert "sandbox-db: preflight: /var/backups/prisma-migrate has" in out
    assert "Free space there or set backup_dir elsewhere" in out
    assert_release_1(release_1)


def add_empty_duplicate(work: Path):
    """The runbook's known issue: a second, empty folder for the last migration (git keeps it by a README)."""
    folder = work / "prisma" / "migrations" / "20251204175644_consolidate_verification_service"
    folder.mkdir()
    (folder / "README.md").write_text("moved to 20251204_consolidate_verification_service\n")


def test_an_empty_migration_folder_is_found_in_preflight_and_nothing_is_changed(release_1, tmp_path):
    name = branch(tmp_path, "emptyfolder", add_empty_duplicate)
    out = run_failing_under_writes("empty migration folder beside its near-duplicate", "-e", f"app_version={name}")
    assert "sandbox-pm2: preflight: revision emptyfolder" in out and "cannot be deployed as it is" in out
    assert "Migration folder 20251204175644_consolidate_verification_service has no migration.sql" in out
    assert "P3015" in out and "share one name under different timestamps" in out
    assert_release_1(release_1)


DROP_PHONE = "20251210090000_drop_customer_phone"


def test_a_window_whose_new_release_ran_on_a_dropped_column_is_left_as_it_is_with_the_lock(release_1, tmp_path):
    def change(work: Path):
        break_session_endpoint(work)
        folder = work / "prisma" / "migrations" / DROP_PHONE
        folder.mkdir()
        (folder / "migration.sql").write_text('ALTER TABLE "customers" DROP COLUMN "phone";\n')

    name = branch(tmp_path, "dropunhealthy", change)
    window = json.dumps({"migration_plan_allow": [DROP_PHONE], "maintenance_window": True, "rehearsal_enabled": False})
    out = run_failing_under_writes(
        "new release unhealthy after a migration that is not additive, in a window",
        "-e", f"app_version={name}", "-e", window,
    )  # fmt: skip
    assert "sandbox-pm2: health gate: /api/auth/validate-session -> 500" in out
    # Its down SQL cannot bring the phone numbers back, the backup would discard what release 2 acknowledged,
    # and release 1 reads the column: nothing is put back, and a person decides.
    assert f"NOT rolled back: {DROP_PHONE} is not additive and the new release already ran" in out
    assert lock_record() is not None, "the lock is kept"
    assert audit_lines()[-1]["outcome"] == "failed, release kept"
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'phone'"
        )
        assert cur.fetchone()[0] == 0
    reset()  # release 1 for the tests after this one
    assert_release_1(release_1)


SESSIONS = "20251002100000_create_sessions"


def test_a_migration_applied_by_hand_is_found_and_baselined_only_when_its_schema_matches(release_1):
    sql = (ROOT / "examples/backend/v2/prisma/migrations" / SESSIONS / "migration.sql").read_text()
    with db() as conn, conn.cursor() as cur:
        cur.execute(sql)  # what someone did by hand with psql
    # Found by the plan, before any backup, and by --check alike (the status step's lookup, on the release's SQL).
    checked = run_failing("--check")
    out = run_failing_under_writes("tables already present from a manual apply")
    for said in (checked, out):
        assert f"plan: {SESSIONS} is pending, but everything it creates already exists (table sessions" in said
        assert "Nothing was backed up or changed." in said
    assert fingerprint() == release_1["fingerprint"]

    # Opted in, the tool checks the objects against the migration, marks it applied and deploys the rest.
    result = playbook("migrate.yml", "-e", "migration_status_baseline=true")
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE finished_at IS NOT NULL) FROM _prisma_migrations")
        assert cur.fetchone() == (28, 28)
    assert "Mark it applied with prisma migrate resolve --applied" in result.stdout
    assert fingerprint() == release_1["fingerprint"]
