"""The sandbox's git origin: release 1 at v1, release 2 (27 migrations) on main."""

from __future__ import annotations

import subprocess

from conftest import ROOT

SCRIPT = ROOT / "roles" / "sandbox_hosts" / "files" / "make-backend-repo"
SRC = ROOT / "examples" / "backend"


def make(dest) -> str:
    out = subprocess.run([str(SCRIPT), str(SRC), str(dest)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def migrations_at(repo, ref) -> list[str]:
    names = git(repo, "ls-tree", "--name-only", f"{ref}:prisma/migrations").split()
    return sorted(n for n in names if n[0].isdigit())


def test_given_no_origin_it_is_created_with_both_releases(tmp_path):
    repo = tmp_path / "backend.git"
    assert make(repo) == "created"
    assert migrations_at(repo, "v1") == ["20240115093000_baseline"]
    at_main = migrations_at(repo, "main")
    assert len(at_main) == 28
    pending = [m for m in at_main if m not in migrations_at(repo, "v1")]
    assert len(pending) == 27
    assert pending[-1] == "20251204_consolidate_verification_service"
    assert git(repo, "rev-parse", "v2").strip() == git(repo, "rev-parse", "main").strip()


def test_given_the_same_sources_a_second_run_leaves_the_origin_alone(tmp_path):
    repo = tmp_path / "backend.git"
    make(repo)
    first = git(repo, "rev-parse", "main")
    assert make(repo) == "unchanged"
    assert git(repo, "rev-parse", "main") == first
    # Fixed authors and dates: a new origin elsewhere gets the very same commits.
    other = tmp_path / "other.git"
    make(other)
    assert git(other, "rev-parse", "main") == first


def test_the_offline_engine_stub_stays_executable_in_the_origin(tmp_path):
    repo = tmp_path / "backend.git"
    make(repo)
    entry = git(repo, "ls-tree", "v1", "prisma/offline/schema-engine").split()
    assert entry[0] == "100755"
