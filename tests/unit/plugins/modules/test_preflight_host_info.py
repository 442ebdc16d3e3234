"""preflight_host_info on real git repositories, a real filesystem and a real PostgreSQL: one call reads what
preflight checks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from ..conftest import PRISMA_HISTORY_DDL, run_module


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def commit(cwd, message):
    git(cwd, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


def origin_and_checkout(tmp_path):
    """An origin with main at commit 2 and tags v1 (annotated) and v2 (light); a checkout of commit 1."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "app.js").write_text("one\n")
    git(origin, "add", "app.js")
    first = commit(origin, "one")
    git(origin, "-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", "v1", "-m", "v1")
    second = commit(origin, "two")
    git(origin, "tag", "v2")
    app = tmp_path / "app"
    git(tmp_path, "clone", "-q", str(origin), str(app))
    git(app, "checkout", "-q", first)
    return origin, app, first, second


def read(app, origin, version, **extra):
    return run_module("preflight_host_info", {"app_dir": str(app), "repo": str(origin), "version": version, **extra})


def test_given_a_checkout_behind_its_branch_before_and_after_differ(tmp_path):
    origin, app, first, second = origin_and_checkout(tmp_path)
    (app / ".env").write_text("DATABASE_URL=postgresql://u:secret@db/x\n")
    result = read(app, origin, "main")
    assert not result.get("failed"), result.get("msg")
    assert result["checkout"] is True and result["changed"] is False
    assert (result["before"], result["after"]) == (first, second)
    assert result["dotenv"] == "DATABASE_URL=postgresql://u:secret@db/x\n"
    assert result["local_changes"] == []


def test_given_tags_an_annotated_tag_names_its_commit_not_the_tag_object(tmp_path):
    origin, app, first, second = origin_and_checkout(tmp_path)
    assert read(app, origin, "v1")["after"] == first
    assert read(app, origin, "v2")["after"] == second
    assert read(app, origin, first)["after"] == first  # a commit the checkout has
    assert read(app, origin, "HEAD")["after"] == second


def test_given_a_name_that_is_nothing_the_read_fails_naming_it(tmp_path):
    origin, app, _, _ = origin_and_checkout(tmp_path)
    result = read(app, origin, "no-such-branch")
    assert result.get("failed")
    assert "no-such-branch names no branch, tag or commit of" in result["msg"] and "app_version" in result["msg"]
    # A repository URL's password is not repeated in the message.
    hidden = read(app, "https://bot:s3cret@127.0.0.1:9/nowhere.git", "main")
    assert hidden.get("failed") and "s3cret" not in hidden["msg"] and "ls-remote failed" in hidden["msg"]
    # A commit git cannot ask the remote for is handed back as it is, as ansible.builtin.git does.
    assert read(app, origin, "0123456789abcdef0123456789abcdef01234567")["after"].startswith("0123456789ab")


def test_given_a_changed_tracked_file_it_is_listed_and_untracked_files_are_not(tmp_path):
    origin, app, _, _ = origin_and_checkout(tmp_path)
    (app / "app.js").write_text("edited on the host\n")
    (app / "notes.txt").write_text("untracked\n")
    result = read(app, origin, "main")
    assert result["local_changes"] == ["app.js"]
    assert result["dotenv"] is None  # no .env


def test_reading_a_checkout_whose_index_is_stale_leaves_the_index_as_it_was(tmp_path):
    origin, app, _, _ = origin_and_checkout(tmp_path)
    # Same content, new times (as on a droplet started from a snapshot): git's cached stat data no longer matches.
    os.utime(app / "app.js", (1_000_000_000, 1_000_000_000))
    index = (app / ".git" / "index").read_bytes()
    result = read(app, origin, "main")
    assert result["local_changes"] == []
    assert (app / ".git" / "index").read_bytes() == index, "a read-only check rewrote .git/index"


def test_given_a_folder_that_is_no_checkout_only_checkout_and_dotenv_are_read(tmp_path):
    (tmp_path / ".env").write_text("A=1\n")
    result = read(tmp_path, tmp_path / "nowhere", "main")
    assert not result.get("failed"), result.get("msg")
    assert result["checkout"] is False and result["dotenv"] == "A=1\n"
    assert "before" not in result and "after" not in result


def test_given_a_backup_folder_not_made_yet_its_free_space_is_read_where_it_would_be(tmp_path):
    result = run_module("preflight_host_info", {"backup_dir": str(tmp_path / "not" / "yet")}, check=True)
    assert not result.get("failed"), result.get("msg")
    stats = os.statvfs(tmp_path)
    assert abs(result["backup_free"] - stats.f_bavail * stats.f_frsize) < 64 * 1024 * 1024
    assert not (tmp_path / "not").exists() and "checkout" not in result


def tree_digest(root: Path) -> str:
    """Every file under root (the .git folder included), by path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def push(clone, files, message):
    for name, text in files.items():
        path = clone / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(clone, "add", "-A")
    commit(clone, message)
    git(clone, "push", "-q", "origin", "HEAD:main")


def test_the_pinned_releases_migrations_are_read_and_the_checkout_stays_byte_for_byte(tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    push(dev, {"prisma/migrations/20250101000000_init/migration.sql": "CREATE TABLE a (id int);\n"}, "v1")
    app = tmp_path / "app"
    git(tmp_path, "clone", "-q", str(origin), str(app))
    push(
        dev,
        {
            "prisma/migrations/20250201000000_add_b/migration.sql": "CREATE TABLE b (id int);\n",
            "prisma/migrations/20250201000000_add_b/down.sql": "DROP TABLE b;\n",
            "prisma/migrations/20250202_add_b/README.md": "no sql here\n",
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
        },
        "v2",
    )
    git(dev, "tag", "v2")
    git(dev, "push", "-q", "origin", "v2")
    before = tree_digest(app)

    result = read(app, "", "main", sources=True)  # the checkout's origin
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["sources"]["revision"] == result["after"] == git(dev, "rev-parse", "HEAD")
    assert result["sources"]["migrations"] == [
        {"name": "20250101000000_init", "sql": "CREATE TABLE a (id int);\n", "down": None},
        {"name": "20250201000000_add_b", "sql": "CREATE TABLE b (id int);\n", "down": "DROP TABLE b;\n"},
        {"name": "20250202_add_b", "sql": None, "down": None},
    ]
    assert "prisma/migrations/migration_lock.toml" in result["sources"]["paths"]
    assert tree_digest(app) == before, "the checkout, its refs and objects must stay byte for byte"
    assert not list(Path(tempfile.gettempdir()).glob("prisma-sources-*")), "the scratch repository is removed"
    assert read(app, origin, "v2", sources=True)["sources"] == result["sources"]
    assert "sources" not in read(app, origin, "main"), "read only when asked"
    # A commit that is nowhere fails the read, naming it.
    nowhere = read(app, origin, "0123456789abcdef0123456789abcdef01234567", sources=True)
    assert nowhere.get("failed") and "0123456789ab" in nowhere["msg"] and "app_version" in nowhere["msg"]


def test_the_checkouts_migration_state_and_the_databases_tables_are_read_from_its_env_database(tmp_path, database):
    url, conn = database
    origin, app, _, _ = origin_and_checkout(tmp_path)
    folder = app / "prisma" / "migrations"
    for name in ("20250101000000_init", "20250201000000_add_b"):
        (folder / name).mkdir(parents=True)
        (folder / name / "migration.sql").write_text(f"SELECT 1; -- {name}\n")
    conn.cursor().execute(PRISMA_HISTORY_DDL)
    conn.cursor().execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count)"
        " VALUES ('1', %s, '20250101000000_init', now(), 1)",
        (hashlib.sha256(b"SELECT 1; -- 20250101000000_init\n").hexdigest(),),
    )
    (app / ".env").write_text(f'DATABASE_URL="{url}"\n')
    conn.cursor().execute(
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(80), seen timestamp(3)); INSERT INTO users VALUES (1);"
        " CREATE UNIQUE INDEX users_id_key ON users (id); CREATE UNIQUE INDEX users_email_key ON users (email);"
        " CREATE INDEX users_seen_idx ON users (seen); CREATE TABLE empty (id int)"
    )
    result = read(app, origin, "main", database=True)
    state = result["migration_state"]
    tables = {t["name"]: t["has_rows"] for t in result["database"]["tables"]}
    assert tables == {"_prisma_migrations": True, "users": True, "empty": False} and result["database"]["bytes"] > 0
    # What the lint needs to tell a widening type change and a harmless index drop from a loss.
    users = next(t for t in result["database"]["tables"] if t["name"] == "users")
    assert users["columns"] == {
        "id": "integer",
        "email": "character varying(80)",
        "seen": "timestamp(3) without time zone",
    }
    assert users["indexes"] == {
        "users_pkey": {"unique": True, "columns": ["id"], "covered_by": ["users_id_key"]},
        "users_id_key": {"unique": True, "columns": ["id"], "covered_by": ["users_pkey"]},
        "users_email_key": {"unique": True, "columns": ["email"], "covered_by": None},
        "users_seen_idx": {"unique": False, "columns": ["seen"], "covered_by": None},
    }
    assert state["applied"] == ["20250101000000_init"] and state["pending"] == ["20250201000000_add_b"]
    assert state["up_to_date"] is False and state["problems"] == [] and state["history_table"] is True

    password = url.split(":")[2].split("@")[0]
    (app / ".env").write_text("DATABASE_URL=" + url.replace("@", "x@") + "\n")  # a wrong password
    failed = read(app, origin, "main", database=True)
    assert "migration_state" not in failed and "database" not in failed
    assert "cannot reach" in failed["database_error"] and password not in failed["database_error"]
    (app / ".env").write_text("OTHER=1\n")
    assert "database_error" not in read(app, origin, "main", database=True), "no database named, none read"
