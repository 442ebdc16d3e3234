"""npm_dependencies_changed, on what real git prints for two revisions of the sample backend's package files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from npm import npm_dependencies_changed  # noqa: E402

SAMPLE = ROOT / "examples" / "backend"


def git(cwd, *args, stdin=None):
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=True).stdout


def batch(tmp_path, old: dict, new: dict) -> str:
    """Commit `old` then `new` (file name to text, None to delete) and ask git cat-file --batch as code_update does."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    revisions = []
    for files in (old, new):
        for name, text in files.items():
            path = repo / name
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text)
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "r")
        revisions.append(git(repo, "rev-parse", "HEAD").strip())
    a, b = revisions
    asked = f"{a}:package.json\n{b}:package.json\n{a}:package-lock.json\n{b}:package-lock.json\n"
    return git(repo, "cat-file", "--batch", stdin=asked)


def release(n: int) -> dict:
    return {name: (SAMPLE / f"v{n}" / name).read_text() for name in ("package.json", "package-lock.json")}


def edited(files: dict, name: str, change) -> dict:
    document = json.loads(files[name])
    change(document)
    return {**files, name: json.dumps(document, indent=2) + "\n"}


def test_a_release_that_only_bumps_its_own_version_changes_no_dependency(tmp_path):
    assert release(1)["package-lock.json"] != release(2)["package-lock.json"]  # the version differs
    assert npm_dependencies_changed(batch(tmp_path, release(1), release(2))) is False


def test_a_dependency_resolved_to_another_version_is_a_change(tmp_path):
    def bump(lock):
        lock["packages"]["node_modules/pg"]["version"] = "8.16.4"

    assert npm_dependencies_changed(batch(tmp_path, release(1), edited(release(2), "package-lock.json", bump))) is True


def test_a_dependency_added_to_package_json_is_a_change_and_a_script_is_not(tmp_path):
    def add(manifest):
        manifest["dependencies"]["left-pad"] = "1.3.0"

    def script(manifest):
        manifest["scripts"]["lint"] = "true"

    assert npm_dependencies_changed(batch(tmp_path, release(1), edited(release(1), "package.json", add))) is True
    assert npm_dependencies_changed(batch(tmp_path, release(1), edited(release(1), "package.json", script))) is False


@pytest.mark.parametrize(
    ("old_lock", "new_lock", "changed"),
    [(True, False, True), (False, True, True), (False, False, False)],
)
def test_a_lockfile_in_one_revision_only_is_a_change(tmp_path, old_lock, new_lock, changed):
    old = release(1) if old_lock else {"package.json": release(1)["package.json"]}
    new = release(2) if new_lock else {"package.json": release(2)["package.json"], "package-lock.json": None}
    assert npm_dependencies_changed(batch(tmp_path, old, new)) is changed


def test_output_that_is_not_what_git_prints_fails_clearly():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="expected 4 files"):
        npm_dependencies_changed("")
    with pytest.raises(AnsibleFilterError, match="not JSON"):
        npm_dependencies_changed("abc blob 3\n{x}\n")
