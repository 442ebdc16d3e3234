"""A run killed in the middle of its deploy (controller killed, SSH cut): the next run finds it and puts
production back as it was before that run, by itself. Nothing half-applied is left silently, and no write
the apps acknowledged meanwhile (tests/sandbox/writes.py) is lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psycopg2
import pytest
from conftest import ROOT, SANDBOX_INVENTORY, run

from .conftest import (
    NO_REHEARSAL,
    SPENT,
    assert_no_write_lost,
    container,
    db,
    db_server,
    lock_record,
    playbook,
    writing,
)
from .test_rollback import MIGRATION_15, UNDONE, assert_release_1, branch, release_1  # noqa: F401 (fixture)

pytestmark = pytest.mark.sandbox

# The rehearsal would run migration 15 on a copy first; these tests need production's own deploy.
MIGRATE = ["ansible-playbook", "-i", str(SANDBOX_INVENTORY), "playbooks/migrate.yml", *NO_REHEARSAL]


def slow_migration_15(work):
    """Migration 15 takes 30 s: time enough to kill the run while Prisma applies it."""
    sql = work / "prisma" / "migrations" / MIGRATION_15 / "migration.sql"
    sql.write_text(sql.read_text() + "\nSELECT pg_sleep(30);\n")


def migration_15_running() -> bool:
    try:
        with db() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%pg_sleep(30)%%' AND pid <> pg_backend_pid()"
            )
            return cur.fetchone()[0] > 0
    except psycopg2.Error:
        return False


@contextlib.contextmanager
def deploy_under_way(tmp_path):
    """migrate.yml in the background (its output in tmp_path/run.log), once Prisma is inside migration 15.

    Yields the process and the log; a process still running on the way out is killed with its session.
    """
    name = branch(tmp_path, "slow15", slow_migration_15)
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    log = tmp_path / "run.log"
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            [*MIGRATE, "-e", f"app_version={name}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.time() + 240
            while not migration_15_running():
                assert process.poll() is None and time.time() < deadline, log.read_text()[-3000:]
                time.sleep(1)
            yield process, log
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            SPENT["migrate.yml"].append(time.monotonic() - started)


def test_a_run_killed_during_its_deploy_is_rolled_back_by_the_next_run(release_1, tmp_path):  # noqa: F811
    with writing() as writer:
        with deploy_under_way(tmp_path) as (migrate, _):
            os.killpg(migrate.pid, signal.SIGKILL)  # the controller dies, and with it every SSH session it held
            migrate.wait()
        # The killed run left its lock, its lease still running, and the database part-way.
        assert lock_record() is not None
        deadline = time.time() + 30
        while migration_15_running() and time.time() < deadline:
            time.sleep(1)

        result = playbook("migrate.yml", "-e", "migration_lock_break=true", expect_rc=2)
    out = " ".join(result.stdout.split())
    assert "did not finish its deploy" in out and UNDONE in out
    assert_no_write_lost(writer, "controller killed during the deploy, then the next run")
    assert_release_1(release_1)


def test_the_database_going_away_during_the_deploy_is_rolled_back_once_it_returns(release_1, tmp_path):  # noqa: F811
    with writing() as writer, deploy_under_way(tmp_path) as (migrate, log):
        assert db_server("systemctl", "stop", "postgresql").returncode == 0
        time.sleep(10)  # the deploy fails meanwhile; the rollback waits for the database
        assert db_server("systemctl", "start", "postgresql").returncode == 0
        assert migrate.wait(timeout=600) == 2, log.read_text()[-3000:]
    text = " ".join(log.read_text().split())
    assert f"migrate deploy failed on migration {MIGRATION_15}" in text
    assert "Rolled back: previous code checked out where it had changed, apps not restarted;" in text and UNDONE in text
    assert_no_write_lost(writer, "database unreachable for 10 s during migration 15")
    assert_release_1(release_1)


def test_an_ssh_connection_cut_during_the_deploy_keeps_the_lock_and_the_next_run_undoes_it(release_1, tmp_path):  # noqa: F811
    with writing() as writer:
        out, text = cut_ssh_then_recover(tmp_path)
    assert "INTERRUPTED: sandbox-pm2 stopped answering during the run" in text, text[-3000:]
    assert "did not finish its deploy" in out and UNDONE in out
    assert_no_write_lost(writer, "SSH to the app host running Prisma cut during the deploy, then the next run")
    assert_release_1(release_1)


def cut_ssh_then_recover(tmp_path) -> tuple[str, str]:
    """The run whose SSH to the Prisma host is cut (its log), then the next run (its output)."""
    with deploy_under_way(tmp_path) as (migrate, log):
        # The app host that runs Prisma drops every SSH session and takes no new ones.
        cut = run(
            [
                "podman",
                "exec",
                container("sandbox-pm2"),
                "sh",
                "-c",
                "systemctl stop ssh; pkill -KILL -f '[s]shd: deploy'",
            ]
        )
        assert cut.returncode in (0, 1), cut.stderr
        try:
            assert migrate.wait(timeout=600) != 0
        finally:
            run(["podman", "exec", container("sandbox-pm2"), "systemctl", "start", "ssh"])
    text = " ".join(log.read_text().split())
    assert lock_record() is not None, "the lock is kept"
    result = playbook("migrate.yml", "-e", "migration_lock_break=true", expect_rc=2)
    return " ".join(result.stdout.split()), text
