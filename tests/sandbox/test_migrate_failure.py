"""Gates that fail: the run stops there, says which host and step and why,
touches no further host, and releases the lock.

The tests share one fresh sandbox and run in file order: the health-gate test
leaves the database migrated, the broken-migration test builds on that.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest
from conftest import ROOT

from .conftest import health, playbook, ssh

pytestmark = pytest.mark.sandbox

ORIGIN = ROOT / ".sandbox" / "git" / "backend.git"
BROKEN = "20251205090000_add_broken_column"


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def broken_release(tmp_path_factory):
    """Release 2 plus a migration whose SQL fails, pushed to the origin as branch `broken`."""
    work = tmp_path_factory.mktemp("broken") / "backend"
    git("clone", "-q", str(ORIGIN), str(work))
    folder = work / "prisma" / "migrations" / BROKEN
    folder.mkdir()
    (folder / "migration.sql").write_text(
        'ALTER TABLE "customers" ADD COLUMN "broken" TEXT;\nSELECT no_such_function();\n'
    )
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "broken migration", cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/broken", cwd=work)
    yield
    git("--git-dir", str(ORIGIN), "branch", "-D", "broken")


def lock_held() -> bool:
    return ssh(2230, "test -e /var/lock/prisma-migrate").returncode == 0


def test_a_failing_health_gate_stops_the_rolling_restart_at_that_host():
    checks = json.dumps(
        {"health_gate_checks": [{"path": "/api/does-not-exist", "token": ""}], "health_gate_deadline": 4}
    )
    result = playbook("migrate.yml", "-e", checks, expect_rc=2)
    out = " ".join(result.stdout.split())
    assert "sandbox-pm2: health gate: /api/does-not-exist -> 404 did not answer 200 within 4s" in out
    assert "(migration lock released)" in out
    assert not lock_held()
    # Restarts go one host at a time: the first host failed, the others were never touched.
    assert health(3031)["version"] == "2.0.0"
    assert health(3032)["version"] == "1.0.0" and health(3033)["version"] == "1.0.0"


def test_a_failing_migration_stops_the_run_naming_it_and_the_database_error(broken_release):
    run_started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    result = playbook("migrate.yml", "-e", "app_version=broken", expect_rc=2)
    out = " ".join(result.stdout.split())
    assert f"migrate deploy failed on migration {BROKEN}" in out
    assert "function no_such_function() does not exist" in out
    assert "(migration lock released)" in out
    assert "| Apply migrations |" in result.stdout and "| failed |" in result.stdout
    assert "Restart application" not in result.stdout
    # Nothing restarted: every process answering (PM2 has two workers) predates the run.
    for port in (3031, 3032, 3033):
        for _ in range(4):
            assert health(port)["startedAt"] < run_started, port
    assert not lock_held()
