"""prisma_migrate_info against a real PostgreSQL, through Ansible."""

from __future__ import annotations

import hashlib
import shutil
import uuid

import pytest
from conftest import ROOT

from ..conftest import PRISMA_HISTORY_DDL, run_module

BACKEND = ROOT / "examples" / "backend"


@pytest.fixture
def release2(tmp_path):
    """The sample backend at release 2: the baseline plus 27 migrations."""
    app = tmp_path / "backend"
    shutil.copytree(BACKEND / "v1", app)
    shutil.copytree(BACKEND / "v2", app, dirs_exist_ok=True)
    return app


def migrations(app):
    return sorted(p for p in (app / "prisma" / "migrations").iterdir() if p.is_dir())


def record(conn, folder, finished=True, sql_override=None):
    sql = sql_override if sql_override is not None else (folder / "migration.sql").read_bytes()
    conn.cursor().execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)"
        " VALUES (%s, %s, %s, now(), CASE WHEN %s THEN now() END, %s)",
        (str(uuid.uuid4()), hashlib.sha256(sql).hexdigest(), folder.name, finished, int(finished)),
    )


def info(url, app, **extra):
    return run_module("prisma_migrate_info", {"app_dir": str(app), "database_url": url, "run_prisma": False, **extra})


def test_given_production_at_release_1_the_27_migrations_are_pending(database, release2):
    url, conn = database
    conn.cursor().execute(PRISMA_HISTORY_DDL)
    record(conn, migrations(release2)[0])
    result = info(url, release2)
    assert not result.get("failed") and result["changed"] is False, result.get("msg")
    assert result["applied"] == ["20240115093000_baseline"]
    assert len(result["pending"]) == 27
    assert result["pending"][-1] == "20251204_consolidate_verification_service"
    assert result["up_to_date"] is False and result["problems"] == []
    # Each pending migration's SQL comes with the state, read once (the status step parses it).
    assert list(result["pending_sql"]) == result["pending"]
    last = release2 / "prisma" / "migrations" / result["pending"][-1] / "migration.sql"
    assert result["pending_sql"][result["pending"][-1]] == last.read_text()


def test_given_a_database_prisma_never_touched_everything_is_pending(database, release2):
    url, _ = database
    result = info(url, release2)
    assert result["history_table"] is False
    assert len(result["pending"]) == 28


def test_given_a_failed_migration_and_the_runbooks_empty_duplicate_both_are_reported(database, release2):
    url, conn = database
    conn.cursor().execute(PRISMA_HISTORY_DDL)
    folders = migrations(release2)
    for folder in folders[:14]:
        record(conn, folder)
    record(conn, folders[14], finished=False)
    (release2 / "prisma" / "migrations" / "20251204175644_consolidate_verification_service").mkdir()
    result = info(url, release2)
    assert [f["name"] for f in result["failed_migrations"]] == [folders[14].name]
    assert result["empty_folders"] == ["20251204175644_consolidate_verification_service"]
    assert result["near_duplicates"] == [
        ["20251204175644_consolidate_verification_service", "20251204_consolidate_verification_service"]
    ]
    text = "\n".join(result["problems"])
    assert "P3009" in text and "P3015" in text


def test_an_edited_migration_and_one_missing_locally_are_found(database, release2):
    url, conn = database
    conn.cursor().execute(PRISMA_HISTORY_DDL)
    first = migrations(release2)[0]
    record(conn, first, sql_override=b"-- what was really applied\n")
    record(conn, release2 / "prisma" / "migrations" / "20230101000000_removed", sql_override=b"SELECT 1;")
    result = info(url, release2)
    assert result["missing_locally"] == ["20230101000000_removed"]
    assert [m["name"] for m in result["checksum_mismatches"]] == [first.name]


def test_check_mode_reads_the_same_and_changes_nothing(database, release2):
    url, _ = database
    result = run_module(
        "prisma_migrate_info",
        {"app_dir": str(release2), "database_url": url, "run_prisma": False},
        check=True,
    )
    assert result["changed"] is False and len(result["pending"]) == 28


def test_an_unreachable_database_fails_naming_the_target_but_not_the_password(release2):
    url = "postgresql://backend:TopSecret@127.0.0.1:1/backend"
    result = info(url, release2)
    assert result["failed"] is True
    assert "backend@127.0.0.1:1/backend" in result["msg"]
    assert "TopSecret" not in str(result)


HAND_APPLIED = {
    "20251204_add_verification": [
        {"kind": "table", "table": "verification_requests", "columns": {"id": "text"}},
        {"kind": "index", "table": "verification_requests", "name": "verification_requests_status_idx"},
    ],
    "20251205_add_phone": [{"kind": "column", "table": "customers", "name": "phone2", "type": "text"}],
}


def test_pending_migrations_whose_objects_exist_are_found_applied_by_hand(database, tmp_path):
    url, conn = database
    conn.cursor().execute(
        PRISMA_HISTORY_DDL + ";CREATE TABLE customers (id text PRIMARY KEY);"
        "CREATE TABLE verification_requests (id text, status text);"
        "CREATE INDEX verification_requests_status_idx ON verification_requests (status);"
    )
    app = tmp_path / "app"
    for name in HAND_APPLIED:
        (app / "prisma" / "migrations" / name).mkdir(parents=True)
        (app / "prisma" / "migrations" / name / "migration.sql").write_text("SELECT 1;")
    result = info(url, app, objects=HAND_APPLIED)
    assert sorted(result["looked_up"]) == sorted(HAND_APPLIED)
    found = result["hand_applied"]["20251204_add_verification"]
    assert found.pop("problem").startswith("20251204_add_verification is pending, but everything it creates")
    assert found == {
        "present": ["table verification_requests", "index verification_requests_status_idx"],
        "missing": [],
        "complete": True,
    }
    assert any(
        "applied by hand" in p and "resolve --applied 20251204_add_verification" in p for p in result["problems"]
    )
    # A partly applied migration is named with what is there and what is not.
    conn.cursor().execute("DROP INDEX verification_requests_status_idx")
    result = info(url, app, objects=HAND_APPLIED)
    assert result["hand_applied"]["20251204_add_verification"]["complete"] is False
    assert any("part of what it creates already exists" in p for p in result["problems"])
    # Only the pending migrations the caller parsed are looked up; the role parses the rest itself.
    (app / "prisma" / "migrations" / "20251206_more").mkdir()
    (app / "prisma" / "migrations" / "20251206_more" / "migration.sql").write_text("SELECT 1;")
    result = info(url, app, objects=HAND_APPLIED)
    assert "20251206_more" in result["pending"] and "20251206_more" not in result["looked_up"]
    # The plan looks up a release not checked out yet: the migrations it names, not the folder's.
    empty = tmp_path / "old"
    (empty / "prisma" / "migrations").mkdir(parents=True)
    planned = info(url, empty, objects=HAND_APPLIED, pending=sorted(HAND_APPLIED))
    assert planned["pending"] == [] and sorted(planned["looked_up"]) == sorted(HAND_APPLIED)
    assert planned["hand_applied"]["20251204_add_verification"]["complete"] is False
