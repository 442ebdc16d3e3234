"""prisma_migration_sources on real git repositories: the release's migrations read, the checkout untouched."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from ..conftest import run_module


def git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def tree_digest(root: Path) -> str:
    """Every file under root (the .git folder included), by path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def commit(clone, files, message):
    for name, text in files.items():
        path = clone / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)
    git(clone, "push", "-q", "origin", "HEAD:main")


def test_it_reads_the_pinned_release_and_changes_nothing_in_the_checkout(tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    commit(dev, {"prisma/migrations/20250101000000_init/migration.sql": "CREATE TABLE a (id int);\n"}, "v1")
    app = tmp_path / "app"
    git(tmp_path, "clone", "-q", str(origin), str(app))
    commit(
        dev,
        {
            "prisma/migrations/20250201000000_add_b/migration.sql": "CREATE TABLE b (id int);\n",
            "prisma/migrations/20250202_add_b/README.md": "no sql here\n",
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
        },
        "v2",
    )
    git(dev, "tag", "v2")
    git(dev, "push", "-q", "origin", "v2")
    before = tree_digest(app)

    result = run_module("prisma_migration_sources", {"app_dir": str(app), "version": "main"})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["revision"] == git(dev, "rev-parse", "HEAD").strip()
    assert result["migrations"] == [
        {"name": "20250101000000_init", "sql": "CREATE TABLE a (id int);\n"},
        {"name": "20250201000000_add_b", "sql": "CREATE TABLE b (id int);\n"},
        {"name": "20250202_add_b", "sql": None},
    ]
    assert "prisma/migrations/migration_lock.toml" in result["paths"]
    assert tree_digest(app) == before, "the checkout, its refs and objects must stay byte for byte"
    assert not list(Path(tempfile.gettempdir()).glob("prisma-sources-*")), "the scratch repository is removed"

    by_tag = run_module("prisma_migration_sources", {"app_dir": str(app), "version": "v2"})
    assert by_tag["revision"] == result["revision"]
    missing = run_module("prisma_migration_sources", {"app_dir": str(app), "version": "no-such-branch"})
    assert missing.get("failed") and "names no branch" in missing["msg"] and str(app) in missing["msg"]
