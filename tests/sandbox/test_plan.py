"""Safety gates on the sandbox: the plan (--check) changes nothing anywhere; a destructive migration is blocked
before any backup, then applied once allowed by name; a rehearsal that fails on real data stops the run with
production untouched; production needs the plan's fingerprint approved; the CLI runs the same playbooks.

Order matters: every test up to the last starts from release 1; the last one migrates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SANDBOX_INVENTORY, run
from receiver import notify_args, receiving

from .conftest import LANE, SECRETS, TARGET, assert_no_write_lost, db, playbook, production_state, writing
from .test_rollback import assert_release_1, audit_lines, branch, release_1  # noqa: F401 (fixture)

pytestmark = pytest.mark.sandbox

DROP_PHONE = "20251210090000_drop_customer_phone"
CHECK_PAYMENT = "20251210090000_small_payments_only"
REQUIRE_PROPERTY = "20251205090000_require_document_property"


def add_migration(name: str, sql: str):
    def change(work: Path):
        folder = work / "prisma" / "migrations" / name
        folder.mkdir()
        (folder / "migration.sql").write_text(sql)

    return change


def plain(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def test_the_plan_says_what_a_run_would_do_and_changes_nothing_anywhere(release_1):  # noqa: F811
    before = production_state()
    # The short form a person types, through the project's root playbook.
    result = run(["ansible-playbook", "migrate.yml", "-i", str(SANDBOX_INVENTORY), "--check"])
    assert result.returncode == 0, result.stdout[-4000:]
    out = plain(result)
    assert "Migrations pending: 27" in out
    assert "20251002100000_create_sessions (additive) line 2: create table sessions" in out
    # The deploy sets lock_timeout itself: squawk's advice to add one is left out, the locks shown instead.
    assert "Lint: 0 blocking, 0 warning(s)" in out and "require-lock-timeout" not in out
    assert "add column kyc_provider [ACCESS EXCLUSIVE on customers]" in out
    assert "Lock budget: each statement waits at most 2000 ms for its lock" in out
    assert re.search(r"sandbox-pm2: [0-9a-f]{12} -> [0-9a-f]{12}", out)
    assert "Restarts, 1 host(s) at a time: batch 1: sandbox-pm2 (pm2) batch 2: sandbox-systemd (systemd)" in out
    assert "Rehearsal: the fresh backup restored into a scratch database" in out
    assert re.search(r"Fingerprint: [0-9a-f]{12}", out)
    assert "Plan only (--check): nothing was changed" in out
    assert production_state() == before


def test_a_statement_the_live_data_would_make_fail_is_found_by_the_plan_before_any_backup(release_1, tmp_path):  # noqa: F811
    # Allowed by name (a person read it), and still refused: 125 documents have no property, and every
    # customer has several payments. The plan counts them on the live database, read only, bounded.
    name = branch(
        tmp_path,
        "notnulldocs",
        add_migration(
            REQUIRE_PROPERTY,
            'ALTER TABLE "documents" ALTER COLUMN "property_id" SET NOT NULL;\n'
            'CREATE UNIQUE INDEX "payments_customer_key" ON "payments"("customer_id");\n',
        ),
    )
    before = production_state()
    allow = f'{{"migration_plan_allow": ["{REQUIRE_PROPERTY}"]}}'
    with writing() as writer:
        out = plain(playbook("migrate.yml", "-e", f"app_version={name}", "-e", allow, expect_rc=2))
    assert_no_write_lost(writer, "a statement the live data would make fail (plan)")
    assert "plan: 2 statement(s) would fail on the data production holds, so nothing was backed up" in out
    assert f"{REQUIRE_PROPERTY} line 1: SET NOT NULL on documents.property_id: 125 row(s) hold NULL" in out
    assert f"{REQUIRE_PROPERTY} line 2: unique index on payments.customer_id: 200 value(s)" in out
    assert production_state() == before
    checked = plain(playbook("migrate.yml", "--check", "-e", f"app_version={name}", "-e", allow, expect_rc=2))
    assert "125 row(s) hold NULL" in checked, "--check finds it too"


def test_a_rehearsal_that_fails_on_real_data_stops_the_run_with_production_untouched(release_1, tmp_path):  # noqa: F811
    # Additive, so the lint lets it through, and no count the plan makes predicts a CHECK: it fails on the copy.
    name = branch(
        tmp_path,
        "checkpay",
        add_migration(CHECK_PAYMENT, 'ALTER TABLE "payments" ADD CONSTRAINT "payments_small" CHECK ("amount" < 10);\n'),
    )
    started = {k: v for k, v in production_state().items() if k.endswith(" started")}
    with writing() as writer, receiving() as webhook, receiving(tls=True) as slack:
        out = plain(playbook("migrate.yml", "-e", f"app_version={name}", *notify_args(webhook, slack), expect_rc=2))
    assert_no_write_lost(writer, "a migration that breaks on real data (rehearsal)")
    # Told as it went: the start (the lock taken), the rollback beginning, and how it ended and why.
    events = [body for _, body in webhook.received]
    assert [e["event"] for e in events] == ["start", "rollback", "end"], events
    assert events[-1]["outcome"] == "rolled back" and CHECK_PAYMENT in events[-1]["text"], events
    assert {e["database"] for e in events} == {TARGET}
    assert [path for path, _ in slack.received] == ["/services/hooks/incoming-webhook?token=sandbox-token"] * 3
    # Slack's text: the message's own for the start (colour normal), an attachment's (red) for the others.
    said = [body.get("text") or body["attachments"][0]["text"] for _, body in slack.received]
    assert said == [e["text"] for e in events]
    assert [body["attachments"][0]["color"] for _, body in slack.received[1:]] == ["danger", "danger"]
    assert slack.received[0][1]["channel"] == "#deploys"
    sent = json.dumps(webhook.received + slack.received)
    assert not [name for name, value in SECRETS.items() if str(value) in sent], "a secret was sent"
    assert f"rehearsal on a copy of production: migrate deploy failed on migration {CHECK_PAYMENT}" in out
    # PostgreSQL's own words and code, through the offline path's driver adapter too.
    assert 'check constraint "payments_small" of relation "payments" is violated by some row (SQLSTATE 23514)' in out
    assert "Production was not touched" in out
    assert "Rolled back: previous code checked out where it had changed, apps not restarted; database untouched" in out
    assert_release_1(release_1)
    assert {k: v for k, v in production_state().items() if k.endswith(" started")} == started, "nothing restarts"
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE '%rehearsal%'")
        assert cur.fetchall() == [], "the rehearsal's copy is dropped"
    assert audit_lines()[-1]["outcome"] == "rolled back"


def test_production_runs_only_the_plan_approved(release_1):  # noqa: F811
    gate = ("-e", "migration_plan_require_approval=true")
    plan = plain(playbook("migrate.yml", "--check", *gate))
    fingerprint_ = re.search(r"Fingerprint: ([0-9a-f]{12})", plan).group(1)
    assert f"drop --check and add -e approve={fingerprint_}" in plan
    before = production_state()

    with writing() as writer:
        refused = plain(playbook("migrate.yml", *gate, expect_rc=2))
    assert_no_write_lost(writer, "a plan not approved on a production inventory")
    assert "this inventory needs the plan approved and none was given" in refused
    stale = plain(playbook("migrate.yml", *gate, "-e", "approve=0123456789ab", expect_rc=2))
    assert f"the plan changed since 0123456789ab was approved: it is now {fingerprint_}" in stale
    # A different plan (another batch size) is not the one approved.
    other = plain(playbook("migrate.yml", *gate, "-e", f"approve={fingerprint_}", "-e", "migrate_restart_batch=3",
                           expect_rc=2))  # fmt: skip
    assert "the plan changed since" in other
    assert production_state() == before


def test_the_cli_shows_progress_and_the_plan_and_exits_nonzero_on_failure():
    status = run(["prisma-migrate", "status", LANE])
    assert status.returncode == 0, status.stdout[-3000:]
    assert "== Status: code, .env, database and migrations, read only." in status.stdout
    said = " ".join(status.stdout.split())
    assert "Prisma says: up_to_date; applied 1, pending []" in said  # of the code each host runs
    assert "Release main brings 27 migration(s) the database has not applied; a run would have work to do" in said
    assert "Lock: free" in status.stdout
    plan = run(["prisma-migrate", "plan", LANE])
    assert plan.returncode == 0, plan.stdout[-3000:]
    assert re.search(r"^\[\d\d:\d\d\] == Preflight", plan.stdout, re.M)
    assert "Fingerprint:" in plan.stdout and "Plan only (--check)" in plan.stdout
    assert "prisma-migrate: migrate.yml succeeded" in plan.stdout
    missing = run(["prisma-migrate", "plan", "nowhere"])
    assert missing.returncode == 2 and "no inventory 'nowhere'" in missing.stderr
    bad = run(["prisma-migrate", "plan", LANE, "-e", "app_version=no-such-branch"])
    assert bad.returncode != 0
    assert "FAILED" in bad.stdout and "no-such-branch" in bad.stdout


def test_a_destructive_migration_is_blocked_before_any_backup_then_applied_once_allowed(release_1, tmp_path):  # noqa: F811
    name = branch(
        tmp_path,
        "dropphone",
        add_migration(DROP_PHONE, '-- AlterTable\nALTER TABLE "customers" DROP COLUMN "phone";\n'),
    )
    before = production_state()
    with writing() as writer:
        out = plain(playbook("migrate.yml", "-e", f"app_version={name}", expect_rc=2))
    assert_no_write_lost(writer, "a destructive migration in the release")
    assert "plan: 1 statement(s) can lose or rewrite data, so nothing was backed up or changed" in out
    assert f"[prisma/migrations/{DROP_PHONE}/migration.sql:2 drop-column] Drops column customers.phone" in out
    assert f'migration_plan_allow: ["{DROP_PHONE}"]' in out
    assert production_state() == before

    # Allowed is not enough: the apps keep writing meanwhile, and only the backup could undo it.
    allow = f'{{"migration_plan_allow": ["{DROP_PHONE}"]}}'
    with writing() as writer:
        out = plain(playbook("migrate.yml", "-e", f"app_version={name}", "-e", allow, expect_rc=2))
    assert_no_write_lost(writer, "a destructive migration allowed, without a maintenance window")
    assert f"plan: {DROP_PHONE} is not additive (allowed by name)" in out
    assert "Nothing was backed up or changed. Run it in a maintenance window" in out
    assert "-e maintenance_window=true" in out
    assert production_state() == before

    # In a window: every app stopped before the backup and started on the new release; the requests
    # meanwhile are refused, none acknowledged and lost.
    window = f'{{"migration_plan_allow": ["{DROP_PHONE}"], "maintenance_window": true}}'
    with writing() as writer:
        allowed = plain(playbook("migrate.yml", "-e", f"app_version={name}", "-e", window))
    assert_no_write_lost(writer, "a destructive migration in a maintenance window")
    assert writer.refused + writer.unanswered > 0, "the window stopped the apps"
    assert f"{DROP_PHONE} (NOT additive, allowed by name)" in allowed
    assert "Maintenance window: every app stopped before the backup" in allowed
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL")
        assert cur.fetchone()[0] == 1 + 27 + 1
        cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'phone'"
        )
        assert cur.fetchone()[0] == 0
    assert "Rehearse on a copy of production" in allowed
    assert audit_lines()[-1]["outcome"] == "succeeded"
