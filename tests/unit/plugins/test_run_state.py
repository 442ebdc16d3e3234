"""migrate_run_state: what migrate.yml's end says, for each way a run can end."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from ansible.errors import AnsibleFilterError  # noqa: E402
from run_state import (  # noqa: E402
    migrate_rollback_keep,
    migrate_rollback_restore,
    migrate_run_state,
    rollback_hold_reason,
)

BACKUP = {"file": "/var/backups/prisma-migrate/backup_20261201_120000.dump", "sha256": "ab" * 32}
FAILURE = {"host": "sandbox-pm2", "task": "Apply", "msg": "sandbox-pm2: migrate deploy failed on migration 15."}
# A run with work that got to its end on every host.
RUN = {
    "check_mode": False,
    "work": True,
    "lost": [],
    "failures": [],
    "rollback_failure": "",
    "recovered": "",
    "restored_as": "",
    "backup": BACKUP,
    "applied": ["20251001090000_a", "20251001091500_b"],
    "version": "2.0.0",
    "plan_fingerprint": "0123456789ab",
    "db_target": "backend@sandbox-db:5432/backend",
    "code": {"sandbox-pm2": "f" * 40, "sandbox-systemd": "e" * 40},
    "restarts": {"sandbox-pm2": "pm2", "sandbox-systemd": "systemd"},
    "revisions": {"sandbox-pm2": "a" * 40, "sandbox-systemd": "a" * 40},
}


def state(**changes):
    return migrate_run_state({**RUN, **changes})


def test_a_run_that_succeeded_reports_and_releases_the_lock():
    s = state()
    assert s["outcome"] == "succeeded" and s["failure"] == "" and s["lock_reason"] == ""
    assert s["report"] == [
        "Database: backend@sandbox-db:5432/backend",
        "Applied: 2 migration(s)",
        f"Backup: {BACKUP['file']} (sha256 {BACKUP['sha256']})",
        "Code: ['ffffffffffff', 'eeeeeeeeeeee']",
        "Restarted: {'sandbox-pm2': 'pm2', 'sandbox-systemd': 'systemd'}",
    ]
    assert s["entry"] == {
        "kind": "migrate",
        "revisions": RUN["revisions"],
        "migrations": RUN["applied"],
        "backup": BACKUP["file"],
        "backup_sha256": BACKUP["sha256"],
        "outcome": "succeeded",
        "failure": None,
    }
    assert s["result"] == {"outcome": "succeeded", "failure": None, "rollback_failure": None, "restored": False}


def test_nothing_to_do_says_so():
    s = state(work=False, backup={}, applied=[], code={}, restarts={})
    assert s["outcome"] == "up to date" and s["failure"] == ""
    assert s["report"] == ["Database schema is up to date and every app host runs 2.0.0."]


def test_a_plan_says_how_to_run_it_with_its_approval():
    s = state(check_mode=True)
    assert s["outcome"] == "planned"
    assert s["report"] == [
        "Plan only (--check): nothing was changed. To run it, drop --check and add -e approve=0123456789ab."
    ]
    assert state(check_mode=True, plan_fingerprint="")["report"][0].endswith("drop --check.")


def test_a_failure_before_the_deploy_rolls_back_the_code_only():
    s = state(failures=[FAILURE], applied=[])
    assert s["outcome"] == "rolled back" and s["report"] == [] and s["lock_reason"] == ""
    assert s["failure"] == (
        "Migration failed: sandbox-pm2: migrate deploy failed on migration 15. Rolled back: previous code checked"
        " out where it had changed, apps not restarted; database untouched."
    )
    assert s["entry"]["failure"] == FAILURE["msg"] and s["result"]["failure"] == FAILURE


def test_a_failure_after_the_deploy_undoes_the_migrations_losing_no_write():
    s = state(failures=[FAILURE], undone=RUN["applied"], restarted=["sandbox-pm2"])
    assert s["outcome"] == "rolled back" and s["lock_reason"] == "" and s["undone"] == RUN["applied"]
    assert s["failure"].endswith(
        "Rolled back: previous code checked out where it had changed, apps restarted and healthy; 2 migration(s)"
        " undone with their down SQL in one transaction, no write discarded."
    )


def test_an_undo_refused_keeps_the_schema_and_the_lock_saying_why():
    why = "undoing 2_b would drop data written since (sessions: 3)"
    s = state(failures=[FAILURE], schema_kept=why, restarted=["sandbox-pm2"])
    assert s["outcome"] == "rolled back, schema kept"
    assert (
        "the schema stays as the deploy left it, the previous code running on it: undoing it was refused"
        in s["failure"]
    )
    assert why in s["failure"] and "rollback.yml -e rollback_migrations=" in s["failure"]
    assert s["lock_reason"].startswith(f"schema was kept as the deploy left it ({why})")
    assert "-e migration_lock_break=true" in s["failure"]
    # Not a deploy to undo: the run that breaks the lock must not "recover" it and refuse again.
    assert s["lock_state"] == {"stage": "schema_kept", "migrations": RUN["applied"]}
    assert state(failures=[FAILURE])["lock_state"] == {}, "any other end keeps what the record holds"


def test_a_restore_says_from_which_backup_and_what_it_kept():
    s = state(failures=[FAILURE], restored_as="backend_failed_r1")
    assert s["outcome"] == "rolled back" and s["result"]["restored"] is True
    assert (
        f"database restored from {BACKUP['file']} (the database as it was is kept as backend_failed_r1)" in s["failure"]
    )


def test_a_failed_rollback_keeps_the_lock_with_the_reason():
    s = state(failures=[FAILURE], rollback_failure="sandbox-db: restore: disk full")
    assert s["outcome"] == "rollback failed"
    assert s["failure"].startswith(
        "Migration failed: sandbox-pm2: migrate deploy failed on migration 15. ROLLBACK FAILED:"
    )
    assert 'see the README, "After a failed rollback"' in s["failure"]
    assert s["lock_reason"] == "rollback failed: sandbox-db: restore: disk full"


def test_a_host_lost_during_the_run_keeps_the_lock_and_says_how_to_go_on():
    s = state(lost=["sandbox-pm2"], failures=[FAILURE])
    assert s["outcome"] == "interrupted"
    assert s["failure"].startswith("INTERRUPTED: sandbox-pm2 stopped answering during the run")
    assert "-e migration_lock_break=true" in s["lock_reason"] and "sandbox-pm2" in s["lock_reason"]


def test_a_recovery_of_a_dead_run_says_what_it_undid_and_that_nothing_was_migrated():
    s = state(recovered="r0", undone=["1_a"], applied=[])
    assert s["outcome"] == "recovered" and s["lock_reason"] == ""
    assert s["failure"].startswith("Run r0 did not finish its deploy (its lock was taken over).")
    assert "1 migration(s) undone with their down SQL in one transaction, no write discarded" in s["failure"]
    assert s["failure"].endswith("Nothing was migrated: run again.")
    kept = state(recovered="r0", schema_kept="no down SQL")
    assert kept["outcome"] == "recovered, schema kept" and kept["lock_reason"].startswith(
        "schema was kept as the deploy left it (no down SQL)"
    )


def test_a_failed_recovery_keeps_the_lock():
    s = state(recovered="r0", rollback_failure="sandbox-db: restore: gone")
    assert s["outcome"] == "rollback failed"
    assert s["failure"].startswith("RECOVERY FAILED: sandbox-db: restore: gone.")
    assert s["lock_reason"] == "rollback failed: sandbox-db: restore: gone"


def test_missing_keys_count_as_empty():
    assert migrate_run_state({"work": True})["outcome"] == "succeeded"


def test_a_fact_that_is_not_a_dict_is_refused():
    with pytest.raises(AnsibleFilterError, match="expected a dict"):
        migrate_run_state(["work"])


def test_a_recorded_rollback_failure_is_one_sentence_naming_its_host_once():
    recorded = [{"host": "sandbox-db", "task": "Restore", "msg": "sandbox-db: restore: gone"}]
    assert (
        state(failures=[FAILURE], rollback_failure=recorded)["lock_reason"]
        == "rollback failed: sandbox-db: restore: gone"
    )
    recorded = [{"host": "sandbox-pm2", "task": "Gate", "msg": "timed out"}]
    assert (
        state(failures=[FAILURE], rollback_failure=recorded)["lock_reason"] == "rollback failed: sandbox-pm2: timed out"
    )


def test_a_step_goes_only_while_nothing_failed_and_no_dead_run_is_being_undone():
    from run_state import migrate_run_clear

    assert migrate_run_clear({}) is True
    assert migrate_run_clear({"migration_lock_interrupted": {"state": {"stage": "plan"}}}) is True
    assert migrate_run_clear({"migration_lock_interrupted": {"state": {"stage": "deploy"}}}) is False
    assert migrate_run_clear({"migrate_failures": [FAILURE]}) is False
    assert migrate_run_clear({"migrate_rollback_failure": [FAILURE]}) is False


# A maintenance window's failed deploy of a migration that drops a column, before any app restarted.
WINDOW = {
    "window": True,
    "started": True,
    "restarted": False,
    "not_additive": ["20251205_drop_phone"],
    "applied": ["20251001090000_a"],
    "failed": ["20251205_drop_phone"],
    "backup": BACKUP,
    "database": "backend",
    "run_id": "20261201T120000Z",
}


def test_a_window_restores_the_backup_only_where_nothing_less_undoes_the_failure():
    assert migrate_rollback_restore(WINDOW) == {
        "file": BACKUP["file"],
        "sha256": BACKUP["sha256"],
        "keep_as": "backend_failed_20261201T120000Z",
    }
    assert migrate_rollback_restore({**WINDOW, "failed": [], "applied": ["20251205_drop_phone"]})["file"]
    # Less undoes it: only additive migrations touched; or no window (writes since the backup); or the
    # deploy never began; or an app already ran the new release (its writes would be discarded).
    for changes in (
        {"failed": ["20251002_b"]},
        {"window": False},
        {"started": False},
        {"restarted": True},
        {"not_additive": []},
    ):
        assert migrate_rollback_restore({**WINDOW, **changes}) == {}, changes
    with pytest.raises(AnsibleFilterError, match="without a verified backup"):
        migrate_rollback_restore({**WINDOW, "backup": {}})


def test_a_window_whose_new_release_ran_on_a_migration_that_is_not_additive_is_left_as_it_is():
    ran = {**WINDOW, "restarted": True}
    why = migrate_rollback_keep(ran)
    assert why.startswith("20251205_drop_phone is not additive and the new release already ran")
    assert migrate_rollback_restore(ran) == {}, "the backup would discard what the new release acknowledged"
    # Anything less leaves the rollback free to act: before any restart (the restore), or additive only.
    for changes in ({"restarted": False}, {"window": False}, {"failed": [], "applied": ["20251001090000_a"]}):
        assert migrate_rollback_keep({**WINDOW, "restarted": True, **changes}) == "", changes
    s = state(failures=[FAILURE], release_kept=why)
    assert s["outcome"] == "failed, release kept" and s["entry"]["outcome"] == "failed, release kept"
    assert "NOT rolled back: " + why in s["failure"] and "Rolled back:" not in s["failure"]
    assert s["lock_reason"] == f"the release was left as it is ({why})"
    assert s["lock_state"]["stage"] == "schema_kept"


def test_rollback_yml_keeps_the_lock_only_when_it_failed_with_apps_stopped():
    failed = [{"msg": "sandbox-db: restore: pg_restore_swap: cannot swap ..."}]
    why = rollback_hold_reason(failed, [True, False])
    assert why.startswith("rollback.yml failed after stopping the apps, which stay stopped: sandbox-db: restore:")
    assert "migration_lock_break=true" in why
    assert rollback_hold_reason(failed, [False, False]) == "", "refused before anything stopped: released"
    assert rollback_hold_reason([], [True]) == "", "succeeded: released"


def test_a_notification_says_the_event_the_run_and_the_database_and_no_more():
    import run_state

    body = run_state.notify_body("start", "20261202_031500", "backend@db:5432/backend", "", "", "2026-12-02T03:15:00")
    assert body == {"event": "start", "run_id": "20261202_031500", "database": "backend@db:5432/backend",
                    "outcome": None, "at": "2026-12-02T03:15:00",
                    "text": "Migration run 20261202_031500 started on backend@db:5432/backend."}  # fmt: skip
    text = run_state.notify_end_text({"migrations": ["a", "b"], "failure": "deploy failed on migration b"})
    end = run_state.notify_body("end", "r", "d", "rolled back", text, "t")
    assert (
        end["text"]
        == "Migration run r on d ended: rolled back. Migrations applied: 2. Failed: deploy failed on migration b"
    )
    assert run_state.notify_end_text({"migrations": [], "failure": None}) == ""
    with pytest.raises(ValueError, match="notify_event must be one of start, rollback, end"):
        run_state.notify_body("gate", "r", "d", "", "", "t")
