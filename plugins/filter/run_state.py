"""How a migrate.yml run ended, in one place: its outcome, the message that fails it, its report lines,
what the lock keeps, and its audit entry. migrate.yml's last play gathers one fact (`run`, described in
`migrate_run_state`) and reads everything it says from this filter's answer."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

AFTER_FAILED_ROLLBACK = 'The lock is kept: see the README, "After a failed rollback".'


def _outcome(run):
    if run.get("check_mode"):
        return "planned"
    if run.get("lost"):
        return "interrupted"
    if run.get("rollback_failure"):
        return "rollback failed"
    if run.get("recovered"):
        return "recovered, schema kept" if run.get("schema_kept") else "recovered"
    if not run.get("work"):
        return "up to date"
    if not run.get("failures"):
        return "succeeded"
    if run.get("release_kept"):
        return "failed, release kept"
    return "rolled back, schema kept" if run.get("schema_kept") else "rolled back"


def _schema(run):
    """What became of the schema the deploy changed: undone, kept (and why), or restored."""
    if run.get("schema_kept"):
        return (
            "the schema stays as the deploy left it, the previous code running on it: undoing it was refused (%s)."
            " The lock is kept: a person decides, then undoes it (rollback.yml -e rollback_migrations=..."
            " -e migration_lock_break=true, after backing up what it drops) or deploys again"
            " (migrate.yml -e migration_lock_break=true)" % run["schema_kept"]
        )
    if run.get("restored_as"):
        return "database restored from %s (the database as it was is kept as %s)" % (
            run.get("restored_from") or (run.get("backup") or {}).get("file"),
            run["restored_as"],
        )
    undone = run.get("undone") or []
    if undone:
        return "%d migration(s) undone with their down SQL in one transaction, no write discarded" % len(undone)
    return "database untouched"


def _rolled_back(run):
    """What the rollback after a failure did, in one sentence."""
    if run.get("rollback_failure"):
        return "ROLLBACK FAILED: %s. %s" % (run["rollback_failure"], AFTER_FAILED_ROLLBACK)
    if run.get("release_kept"):
        return (
            "NOT rolled back: %s. The lock is kept: a person decides, then fixes forward (migrate.yml"
            " -e migration_lock_break=true) or restores the backup (rollback.yml -e rollback_backup=...)."
            % run["release_kept"]
        )
    return "Rolled back: previous code checked out where it had changed%s; %s." % (
        ", apps restarted and healthy" if run.get("restarted") else ", apps not restarted",
        _schema(run),
    )


def _failure(run, outcome):
    """The message the run fails with ('' when it does not fail)."""
    if outcome == "interrupted":
        return (
            "INTERRUPTED: %s stopped answering during the run, so it could neither finish nor roll back there."
            " The lock is kept and records what to undo: once every host answers, run again with"
            " -e migration_lock_break=true; that run undoes what this one began." % ", ".join(run["lost"])
        )
    failures = run.get("failures") or []
    if run.get("recovered") and not run.get("rollback_failure"):
        return (
            "Run %s did not finish its deploy (its lock was taken over). This run put production back as it was"
            " before that run: each host's previous code checked out, apps restarted and healthy; %s."
            " Nothing was migrated%s"
            % (run["recovered"], _schema(run), "." if run.get("schema_kept") else ": run again.")
        )
    if run.get("rollback_failure") and not failures:
        return "RECOVERY FAILED: %s. %s" % (run["rollback_failure"], AFTER_FAILED_ROLLBACK)
    if failures:
        return "Migration failed: %s %s" % (failures[0]["msg"], _rolled_back(run))
    return ""


def _report(run):
    """The lines a run that does not fail prints."""
    if not run.get("work"):
        return ["Database schema is up to date and every app host runs %s." % run.get("version")]
    if run.get("check_mode"):
        approve = run.get("plan_fingerprint")
        return [
            "Plan only (--check): nothing was changed. To run it, drop --check%s."
            % ((" and add -e approve=" + approve) if approve else "")
        ]
    backup = run.get("backup") or {}
    return [
        "Database: %s" % run.get("db_target"),
        "Applied: %d migration(s)" % len(run.get("applied") or []),
        "Backup: %s (sha256 %s)" % (backup.get("file"), backup.get("sha256")),
        "Code: %s" % [(sha or "")[:12] for sha in (run.get("code") or {}).values()],
        "Restarted: %s" % (run.get("restarts") or {}),
    ]


def _lock_reason(run):
    """Why the lock stays held ('' releases it)."""
    if run.get("lost"):
        return (
            "hosts became unreachable: %s; once they answer, run again with -e migration_lock_break=true"
            " and that run undoes what this one began" % ", ".join(run["lost"])
        )
    if run.get("rollback_failure"):
        return "rollback failed: %s" % run["rollback_failure"]
    if run.get("release_kept"):
        return "the release was left as it is (%s)" % run["release_kept"]
    if run.get("schema_kept"):
        return "schema was kept as the deploy left it (%s); undo it by hand or deploy again" % run["schema_kept"]
    return ""


def _first_failure(recorded):
    """A recorded failure list ([{host, task, msg}], playbooks/tasks/record_failure.yml) as one sentence."""
    if isinstance(recorded, str):
        return recorded
    if not recorded:
        return ""
    first = recorded[0]
    msg = first.get("msg") or "a step failed"
    host = first.get("host")
    return msg if not host or msg.startswith(host + ":") else "%s: %s" % (host, msg)


def migrate_run_state(run):
    """Everything the end of a migrate.yml run says, from the one fact its last play gathers.

    `run` holds: check_mode; work (preflight found work); lost (hosts that dropped out); failures
    ([{host, task, msg}]); rollback_failure (the same list, or a sentence); recovered (the dead run's
    id); undone (migrations the rollback undid); schema_kept (why the undo was refused); release_kept
    (why the rollback left the new release as it is: migrate_rollback_keep); restored_as
    and restored_from (a restore's kept database and backup); restarted (hosts the run restarted);
    backup ({file, sha256}); applied; version; plan_fingerprint; db_target; code ({host: revision
    after}); restarts ({host: strategy}); revisions ({host: revision before}). Missing keys are empty.
    """
    if not isinstance(run, dict):
        raise AnsibleFilterError("migrate_run_state: expected a dict, got %s" % type(run).__name__)
    run = dict(run, rollback_failure=_first_failure(run.get("rollback_failure")))
    outcome = _outcome(run)
    failure = _failure(run, outcome)
    failures = run.get("failures") or []
    backup = run.get("backup") or {}
    return {
        "outcome": outcome,
        "failure": failure,
        "report": [] if failure else _report(run),
        "lock_reason": _lock_reason(run),
        # A kept schema is a state, not a deploy to undo: the run that breaks the lock must not recover it.
        "lock_state": (
            {"stage": "schema_kept", "migrations": run.get("applied") or []}
            if run.get("schema_kept") or run.get("release_kept")
            else {}
        ),
        "undone": run.get("undone") or [],
        "entry": {
            "kind": "migrate",
            "revisions": run.get("revisions") or {},
            "migrations": run.get("applied") or [],
            "backup": backup.get("file"),
            "backup_sha256": backup.get("sha256"),
            "outcome": outcome,
            "failure": failures[0]["msg"] if failures else None,
        },
        # What the report callback reads (plugins/callback/migration_report.py).
        "result": {
            "outcome": outcome,
            "failure": failures[0] if failures else None,
            "rollback_failure": run.get("rollback_failure") or None,
            "restored": bool(run.get("restored_as")),
        },
    }


def migrate_run_clear(db_facts):
    """Whether a run's next step may go, by what its database host's facts record: no failure, no
    failed rollback, and no dead run's deploy (stage deploy in the lock taken over) being undone."""
    interrupted = (db_facts.get("migration_lock_interrupted") or {}).get("state") or {}
    return not (
        db_facts.get("migrate_failures")
        or db_facts.get("migrate_rollback_failure")
        or interrupted.get("stage") == "deploy"
    )


def migrate_rollback_restore(run):
    """The backup the rollback swaps in ({file, sha256, keep_as}), or {} to undo by down SQL instead.

    Only where nothing less can work and nothing is lost: in a maintenance window (every app stopped
    before the backup, so nothing was written after it), once the deploy began, before any app ran the
    new release (a restart ends the window's guarantee: writes since would be discarded), and when a
    migration that is not additive was applied or failed (its down SQL cannot bring back what it
    dropped). `run` holds window, started, restarted, not_additive, applied, failed, backup ({file,
    sha256}), database (its name) and run_id.
    """
    if not (run.get("window") and run.get("started")) or run.get("restarted"):
        return {}
    touched = set(run.get("applied") or []) | set(run.get("failed") or [])
    if not touched & set(run.get("not_additive") or []):
        return {}
    backup = run.get("backup") or {}
    if not backup.get("file") or not backup.get("sha256"):
        raise AnsibleFilterError("migrate_rollback_restore: the deploy began without a verified backup")
    return {
        "file": backup["file"],
        "sha256": backup["sha256"],
        "keep_as": "%s_failed_%s" % (run["database"], run["run_id"]),
    }


def migrate_rollback_keep(run):
    """Why the rollback must leave the release as it is ('' when it may act), from the facts
    migrate_rollback_restore reads: in a window, once an app ran the new release, a migration that is not
    additive and was applied or failed can be undone neither by its down SQL (it cannot bring back what it
    dropped) nor by the backup (it would discard what the new release acknowledged since), and the old
    code may not run on what it left."""
    touched = set(run.get("applied") or []) | set(run.get("failed") or [])
    hit = sorted(touched & set(run.get("not_additive") or []))
    if not (run.get("window") and run.get("started") and run.get("restarted") and hit):
        return ""
    return (
        "%s %s not additive and the new release already ran: neither down SQL nor the backup (taken before"
        " the writes the new release acknowledged) undoes it without loss, and the previous release may not run"
        " on it. The new release is left as it is (apps the window stopped and not restarted yet stay stopped):"
        " the maintenance window stays open" % (" and ".join(hit), "is" if len(hit) == 1 else "are")
    )


def rollback_hold_reason(failures, stopped):
    """Why rollback.yml keeps the lock: it failed after stopping apps (a restore that could not swap, say),
    so production is down and half-way; '' when it succeeded or failed before changing anything."""
    if not failures or not any(stopped):
        return ""
    return (
        "rollback.yml failed after stopping the apps, which stay stopped: %s Fix that, then run rollback.yml"
        " again with -e migration_lock_break=true (or start the apps on the code they run)." % failures[0]["msg"]
    )


EVENTS = {
    "start": "Migration run {run_id} started on {database}.",
    "rollback": "Migration run {run_id} on {database} failed: rolling back.",
    "end": "Migration run {run_id} on {database} ended: {outcome}. {text}",
}


def notify_body(event, run_id, database, outcome, text, at):
    """The JSON a webhook receives for a run's event: what happened, never a secret (the database is named
    user@host:port/db, without its password; the text is the run's own message, as it prints it)."""
    if event not in EVENTS:
        raise ValueError("notify_event must be one of %s, not %r" % (", ".join(EVENTS), event))
    body = {"event": event, "run_id": run_id, "database": database, "outcome": outcome or None, "at": at}
    body["text"] = EVENTS[event].format(run_id=run_id, database=database, outcome=outcome, text=text or "").strip()
    return body


def notify_end_text(entry):
    """What the end's notification says after the outcome: the migrations applied, and why it failed."""
    parts = []
    if entry.get("migrations"):
        parts.append("Migrations applied: %d." % len(entry["migrations"]))
    if entry.get("failure"):
        parts.append("Failed: %s" % entry["failure"])
    return " ".join(parts)


def notify_slack_text(body):
    """The line Slack shows for a webhook body."""
    return body["text"]


class FilterModule:
    def filters(self):
        return {
            "notify_body": notify_body,
            "notify_end_text": notify_end_text,
            "notify_slack_text": notify_slack_text,
            "migrate_run_state": migrate_run_state,
            "migrate_run_clear": migrate_run_clear,
            "migrate_rollback_restore": migrate_rollback_restore,
            "migrate_rollback_keep": migrate_rollback_keep,
            "rollback_hold_reason": rollback_hold_reason,
        }
