"""A release whose migration fails: the run stops at the deploy step, names the
migration and the database's error, restarts nothing and releases the lock."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import UTC, datetime

import pytest
from conftest import ROOT

from .conftest import playbook

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


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as response:
        return json.load(response)


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
            answer = health(port)
            assert answer["startedAt"] < run_started and answer["version"] == "1.0.0", (port, answer)
    lock = subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", "2230", "-i", str(ROOT / ".sandbox" / "ssh" / "id_ed25519"),
         "-o", f"UserKnownHostsFile={ROOT / '.sandbox' / 'ssh' / 'known_hosts'}", "deploy@127.0.0.1",
         "test -e /var/lock/prisma-migrate"],
        check=False,
    )  # fmt: skip
    assert lock.returncode == 1
