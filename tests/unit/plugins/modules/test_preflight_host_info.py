"""preflight_host_info on real git repositories and a real filesystem: one call reads what preflight checks."""

from __future__ import annotations

import os
import subprocess

from ..conftest import run_module


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
