"""migration_lock_record on a real lock directory: the lease renewed in one call, the lock released only by its run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ..conftest import run_module


def lock(tmp_path, record=None):
    path = tmp_path / "prisma-migrate"
    path.mkdir()
    if record is not None:
        (path / "holder.json").write_text(json.dumps(record) + "\n")
    return path


def renew(path, **extra):
    return run_module("migration_lock_record", {"path": str(path), "run_id": "run1", "holder": "me@ci", **extra})


def test_given_a_fresh_lock_the_record_gets_a_lease_from_now(tmp_path):
    path = lock(tmp_path)
    result = renew(path, lease_minutes=30, since="2026-11-30T10:00:00Z")
    assert not result.get("failed"), result.get("msg")
    written = json.loads((path / "holder.json").read_text())
    assert written == result["record"]
    assert written["holder"] == "me@ci" and written["run_id"] == "run1" and written["since"] == "2026-11-30T10:00:00Z"
    expires = datetime.strptime(written["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)
    assert written["state"] == {} and written["taken_over"] == {} and written["reason"] == ""
    assert (path / "holder.json").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.iterdir()] == ["holder.json"]  # no temporary file left


def test_given_a_record_what_the_renewal_does_not_set_is_kept(tmp_path):
    undo = {"stage": "deploy", "backup": "/var/backups/b.dump", "revisions": {"app1": "abc"}}
    gone = {"run_id": "run0", "holder": "other@ci"}
    before = {"holder": "me@ci", "since": "2026-11-30T10:00:00Z", "run_id": "run1", "expires": "2026-11-30T10:01:00Z"}
    path = lock(tmp_path, {**before, "reason": "", "state": undo, "taken_over": gone})
    record = renew(path)["record"]
    assert record["since"] == "2026-11-30T10:00:00Z" and record["state"] == undo and record["taken_over"] == gone
    assert record["expires"] > "2026-11-30T10:01:00Z"
    record = renew(path, record_state={"stage": "restart"}, reason="rollback failed")["record"]
    assert record["state"] == {"stage": "restart"} and record["reason"] == "rollback failed"


def test_given_no_lock_directory_the_renewal_fails_and_creates_nothing(tmp_path):
    result = renew(tmp_path / "prisma-migrate")
    assert result.get("failed") and "no lock is held at" in result["msg"]
    assert not (tmp_path / "prisma-migrate").exists()


def test_check_mode_writes_nothing(tmp_path):
    path = lock(tmp_path)
    result = run_module("migration_lock_record", {"path": str(path), "run_id": "run1", "holder": "me@ci"}, check=True)
    assert result["changed"] is True and result["record"]["run_id"] == "run1"
    assert not (path / "holder.json").exists()


def test_the_lock_is_released_only_by_the_run_that_holds_it(tmp_path):
    path = lock(tmp_path, {"run_id": "run0", "holder": "other@ci"})
    args = {"path": str(path), "run_id": "run1", "state": "absent"}
    result = run_module("migration_lock_record", args)
    assert result["changed"] is False and result["released"] is False and path.is_dir()
    (path / "holder.json").write_text(json.dumps({"run_id": "run1"}))
    result = run_module("migration_lock_record", args)
    assert result["changed"] is True and result["released"] is True and not path.exists()
    result = run_module("migration_lock_record", args)  # released already: nothing to do
    assert result["changed"] is False and not result.get("failed")


def test_given_no_lock_taking_it_makes_the_folder_and_the_record_in_one_call(tmp_path):
    path = tmp_path / "prisma-migrate"
    result = run_module(
        "migration_lock_record", {"path": str(path), "run_id": "run1", "holder": "me@ci", "state": "taken"}
    )
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and result["taken"]
    written = json.loads((path / "holder.json").read_text())
    assert written == result["record"] and written["run_id"] == "run1" and written["holder"] == "me@ci"
    assert written["since"] <= written["expires"] and written["state"] == {} and written["reason"] == ""
    assert path.stat().st_mode & 0o777 == 0o755


def test_given_a_held_lock_taking_it_changes_nothing_and_hands_back_the_holder(tmp_path):
    held = {"holder": "other@ci", "run_id": "run0", "since": "2026-11-30T10:00:00Z", "expires": "2026-11-30T12:00:00Z"}
    path = lock(tmp_path, held)
    before = (path / "holder.json").read_text()
    result = run_module(
        "migration_lock_record", {"path": str(path), "run_id": "run1", "holder": "me@ci", "state": "taken"}
    )
    assert not result.get("failed"), result.get("msg")
    assert not result["changed"] and not result["taken"] and result["record"] == held
    assert (path / "holder.json").read_text() == before
    # A folder with no record yet (its run is between mkdir and writing) reads as an unknown holder.
    (path / "holder.json").unlink()
    assert (
        run_module("migration_lock_record", {"path": str(path), "run_id": "run1", "holder": "me@ci", "state": "taken"})[
            "record"
        ]
        == {}
    )


def test_in_check_mode_taking_a_free_lock_makes_nothing(tmp_path):
    path = tmp_path / "prisma-migrate"
    result = run_module(
        "migration_lock_record", {"path": str(path), "run_id": "run1", "holder": "me@ci", "state": "taken"}, check=True
    )
    assert result["taken"] and result["changed"] and not path.exists()


def test_the_runs_end_releases_or_keeps_the_lock_and_logs_its_line_once_in_the_same_call(tmp_path):
    log = tmp_path / "log" / "audit.log"  # its folder is made
    entry = {"run_id": "run1", "outcome": "succeeded", "migrations": ["a"], "failure": None}
    args = {"path": str(lock(tmp_path, {"run_id": "run1"})), "run_id": "run1", "state": "absent"}
    args.update(log_path=str(log), log_entry=entry)
    assert run_module("migration_lock_record", args, check=True)["logged"] is False and not log.exists()
    result = run_module("migration_lock_record", args)
    assert result["released"] is True and result["logged"] is True
    assert [json.loads(line) for line in log.read_text().splitlines()] == [entry]
    assert oct(log.stat().st_mode & 0o777) == "0o644"
    again = run_module("migration_lock_record", args)  # the same line is not written twice
    assert again["logged"] is False and again["changed"] is False and len(log.read_text().splitlines()) == 1
    # A lock kept after a failed rollback logs the run too, and keeps the reason.
    held = dict(args, state="present", holder="me@ci", reason="rollback failed", log_entry=dict(entry, run_id="run2"))
    (tmp_path / "again").mkdir()
    held["path"] = str(lock(tmp_path / "again", {"run_id": "run1", "state": {"stage": "deploy"}}))
    result = run_module("migration_lock_record", held)
    assert result["logged"] is True and result["record"]["reason"] == "rollback failed"
    assert result["record"]["state"] == {"stage": "deploy"} and len(log.read_text().splitlines()) == 2


# The database store: the lock a row of prisma_migrate_lock in the server's maintenance database, keyed by
# the database migrated (here the fixture's database is the maintenance database; "app" and "other" are keys).
def db_lock(database, key="app", **extra):
    url, conn = database
    server, maintenance = url.rsplit("/", 1)
    args = {"database_url": f"{server}/{key}", "maintenance_db": maintenance, "run_id": "run1", "holder": "me@ci"}
    return run_module("migration_lock_record", {**args, **extra})


def test_in_the_database_of_two_runs_one_takes_the_lock_and_the_other_reads_who_holds_it(database):
    first = db_lock(database, state="taken")
    assert first["taken"] and first["changed"] and first["record"]["run_id"] == "run1"
    second = db_lock(database, state="taken", run_id="run2", holder="other@laptop")
    assert second["taken"] is False and second["changed"] is False and second["record"] == first["record"]
    # Another database on the same server has a lock of its own.
    assert db_lock(database, key="other", state="taken", run_id="run3")["taken"]
    _, conn = database
    with conn.cursor() as cur:
        cur.execute("SELECT database, record->>'run_id' FROM prisma_migrate_lock ORDER BY database")
        assert cur.fetchall() == [("app", "run1"), ("other", "run3")]


def test_in_the_database_the_lease_is_renewed_and_only_its_run_releases_it_logging_once(database):
    db_lock(database, state="taken")
    undo = {"stage": "deploy", "backup": "/var/backups/b.dump"}
    renewed = db_lock(database, record_state=undo, lease_minutes=5)["record"]
    assert renewed["state"] == undo and renewed["run_id"] == "run1"
    assert db_lock(database, record_state={})["record"]["state"] == undo  # kept when not given
    entry = {"run_id": "run1", "outcome": "succeeded", "migrations": ["a"]}
    other = db_lock(database, state="absent", run_id="run2", log_entry=dict(entry, run_id="run2"))
    assert other["released"] is False and other["record"]["run_id"] == "run1"
    done = db_lock(database, state="absent", log_entry=entry)
    assert done["released"] and done["changed"] and done["logged"]
    assert db_lock(database, state="absent", log_entry=entry)["logged"] is False  # the same entry is not written twice
    _, conn = database
    with conn.cursor() as cur:
        # The documented query (roles/migration_lock/defaults/main.yml).
        cur.execute("SELECT at, entry FROM prisma_migrate_audit WHERE database = 'app' ORDER BY id DESC LIMIT 20")
        assert [row[1] for row in cur.fetchall()] == [entry, dict(entry, run_id="run2")]
        cur.execute("SELECT count(*) FROM prisma_migrate_lock")
        assert cur.fetchone() == (0,)
    renewal = db_lock(database)
    assert renewal["failed"] and "no lock is held at" in renewal["msg"] and "prisma_migrate_lock" in renewal["msg"]


def test_in_check_mode_the_database_store_makes_no_table(database):
    url, conn = database
    server, maintenance = url.rsplit("/", 1)
    args = {"database_url": f"{server}/app", "maintenance_db": maintenance, "run_id": "r", "holder": "me@ci"}
    result = run_module("migration_lock_record", dict(args, state="taken"), check=True)
    assert result["taken"] and result["changed"]
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('prisma_migrate_lock')")
        assert cur.fetchone() == (None,)


def test_a_login_that_may_not_make_the_tables_is_told_which_grant_it_needs(database, pg_server):
    url, conn = database
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS lockless; CREATE ROLE lockless LOGIN PASSWORD 'pw-secret'")
    try:
        server, maintenance = url.rsplit("/", 1)
        host = server.rsplit("@", 1)[1]
        args = {"database_url": f"postgresql://lockless:pw-secret@{host}/app", "maintenance_db": maintenance,
                "run_id": "r", "holder": "me@ci", "state": "taken"}  # fmt: skip
        result = run_module("migration_lock_record", args)
        assert result["failed"] and "permission denied" in result["msg"]
        assert f"Grant the login CREATE on the public schema of {maintenance}" in result["msg"]
        assert "pw-secret" not in json.dumps(result)
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP OWNED BY lockless; DROP ROLE lockless")
