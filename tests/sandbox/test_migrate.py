"""migrate.yml on the sandbox, end to end: from "27 pending" to "up to date",
every host restarted its own way, nothing lost, nothing printed that is secret.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import (
    BACKUPS,
    DB_SSH,
    HOSTS,
    HTTP,
    SECRETS,
    assert_no_write_lost,
    assert_the_report_of_a_succeeded_run,
    audit_lines,
    break_lock,
    db,
    fingerprint,
    get,
    hold_lock,
    lock_record,
    playbook,
    production_state,
    reset,
    ssh,
    started_at,
    writing,
)

pytestmark = pytest.mark.sandbox


def changed(output: str) -> dict[str, int]:
    return {h: int(c) for h, c in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)}


def ssh_db(command: str) -> subprocess.CompletedProcess:
    return ssh(DB_SSH, command)


@pytest.fixture(scope="module")
def first_run():
    state = production_state()
    before = fingerprint()
    started = {host: started_at(host) for host in HTTP}
    with writing() as writer:  # production's writes go on through the run, its restarts included
        result = playbook("migrate.yml")
    return {
        "state": state,
        "before": before,
        "started": started,
        "out": result.stdout + result.stderr,
        "writer": writer,
    }


def test_no_write_acknowledged_during_the_run_is_lost(first_run):
    stats = assert_no_write_lost(first_run["writer"], "none: a run that succeeds")
    assert stats["refused"] == 0, stats  # every host answered every write with its own code, old or new
    # Every write answered: PM2 reloads a worker at a time, and the systemd and Docker hosts restart one
    # instance at a time behind nginx (app_instances), so no host refused a connection during its restart.
    assert stats["unanswered"] == 0, stats


def test_a_run_takes_production_from_27_pending_to_up_to_date(first_run):
    out = first_run["out"]
    assert "'Applied: 1, pending: 27'" in out
    assert "'Applied: 27 migration(s)'" in out
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL")
        assert cur.fetchone()[0] == 28
        cur.execute("SELECT to_regclass('verification_requests') IS NOT NULL")
        assert cur.fetchone()[0] is True


def test_no_row_of_release_1_is_lost_or_changed(first_run):
    assert fingerprint() == first_run["before"]
    assert first_run["before"]["payments"][0] == 1000


def test_every_host_runs_release_2_restarted_its_own_way_and_healthy(first_run):
    for host, port in HTTP.items():
        status, health = get(port, "/api/health")
        assert status == 200 and health["version"] == "2.0.0", host
        before, after = first_run["started"][host], started_at(host)
        # Every instance restarted (where instances stand behind nginx, each one).
        assert min(after) > max(before) if isinstance(after, list) else after > before, f"{host} was not restarted"
        status, body = get(port, "/api/admin/verification/requests", SECRETS["vault_app_admin_token"])
        assert status == 200 and body == {"requests": []}
    out = first_run["out"]
    for step in (
        "app_restart : Reload the app under PM2 and wait until every instance is online.",
        # One instance at a time behind nginx, the next only once this one answers (app_instances).
        "app_restart : Restart contrezz-backend@3001.",
        "app_restart : Wait, before the next one stops, until it answers on its own port: contrezz-backend@3001",
        "app_restart : Restart contrezz-backend@3002.",
    ):
        assert step in out
    # Each compose service restarted by the Compose this host chose: a task's header shows even when it is
    # skipped, so its result on the Docker droplet must follow it.
    compose_2 = int(HOSTS["sandbox-docker"].get("app_compose_version", 1)) == 2
    restart = "Restart" if compose_2 else "With docker-compose 1, restart"
    for service in ("backend", "backend_b"):
        task = f"{restart} compose service {service}."
        warnings = r"(\[WARNING\].*\n)*"  # Compose 2 warns of the sample's obsolete `version:` key
        assert re.search(rf"app_restart : {re.escape(task)}\] \**\n{warnings}changed: \[sandbox-docker\]", out), task


def test_restarts_happen_one_host_at_a_time(first_run):
    restart_plays = re.findall(r"^PLAY \[Restart each app host.*$", first_run["out"], re.M)
    assert len(restart_plays) == 3  # serial: 1 over three app hosts


def test_the_backup_is_verified_and_kept_on_both_ends_with_one_checksum(first_run):
    dumps = sorted((BACKUPS / "sandbox-db").glob("backup_*.dump"))
    assert dumps
    local = dumps[-1]
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    assert local.with_name(local.name + ".sha256").read_text().split()[0] == digest
    assert oct(local.stat().st_mode & 0o777) == "0o600"
    remote = ssh_db(
        f"stat -c %a /var/backups/prisma-migrate/{local.name} && sha256sum /var/backups/prisma-migrate/{local.name}"
    )
    assert remote.returncode == 0, remote.stderr
    mode, line = remote.stdout.splitlines()
    assert mode == "600" and line.split()[0] == digest
    assert f"(sha256 {digest})" in first_run["out"]


def test_the_lock_is_released_after_the_run(first_run):
    assert lock_record() is None
    assert audit_lines()[-1]["outcome"] == "succeeded"


def test_no_secret_is_printed(first_run):
    for name, value in SECRETS.items():
        assert value not in first_run["out"], f"{name} was printed"


def test_a_second_run_changes_nothing_and_reports_up_to_date(first_run):
    result = playbook("migrate.yml")
    assert {h: c for h, c in changed(result.stdout).items() if c} == {}
    assert "Database schema is up to date" in result.stdout


def test_a_run_while_another_holds_the_lock_is_refused_naming_the_holder(first_run):
    holder = {"holder": "alice@laptop", "since": "2025-12-04T10:00:00+00:00", "run_id": "other"}
    hold_lock(holder)
    try:
        before = fingerprint()
        # Asking for release 1 again gives this run work to do, so it needs the lock.
        result = playbook("migrate.yml", "-e", "app_version=v1", expect_rc=2)
        assert "another migration holds the lock: alice@laptop since 2025-12-04T10:00:00+00:00 (run other)" in (
            " ".join(result.stdout.split())
        )
        assert fingerprint() == before
        assert get(HTTP["sandbox-pm2"], "/api/health")[1]["version"] == "2.0.0"
        assert lock_record() == holder
    finally:
        break_lock()


def test_the_report_shows_the_runbooks_timeline_and_is_saved(first_run):
    out = first_run["out"]
    assert "| Step | Duration | Status |" in out
    for step in (
        "Backup database (and verify)",
        "Apply migrations",
        "Restart application",
        "Verify application health",
    ):
        assert re.search(rf"^\| {re.escape(step)} \| [\d.]+s \| done \|$", out, re.M), step
    # Taking the lock is quick; its release at the end is a step of its own.
    lock = re.search(r"^\| Take migration lock \| ([\d.]+)s \| done \|$", out, re.M)
    assert lock and float(lock.group(1)) < 10, lock
    assert re.search(r"^\| Release migration lock \| [\d.]+s \| done \|$", out, re.M)
    saved = re.search(r"Report written to (\S+)\.\{json,md,html\}", out).group(1)
    assert_the_report_of_a_succeeded_run(Path(saved))


def test_a_reset_after_the_runs_gives_release_1_exactly_with_every_process_started_anew(first_run):
    """Last in this module: the runs above migrated, held the lock and wrote backups and audit lines."""
    assert production_state() != first_run["state"]
    reset()
    after, before = production_state(), first_run["state"]
    started = [key for key in before if key.endswith(" started")]
    assert {k: v for k, v in after.items() if k not in started} == {
        k: v for k, v in before.items() if k not in started
    }  # data, history, database list, every checkout with its dependencies, backups, audit log, lock
    for key in started:
        pairs = (
            zip(after[key], before[key], strict=True) if key == "sandbox-pm2 started" else [(after[key], before[key])]
        )
        for now, then in pairs:
            assert now > then, f"{key}: not started anew ({then} then {now})"
    assert [worker[0] for worker in after["sandbox-pm2 started"]] == [0, 1]
