"""migration_lint through Ansible, as the plan runs it on the controller: by its action plugin, and as a module."""

from __future__ import annotations

import pytest

from ..conftest import run_module


@pytest.mark.parametrize("runs_as", ["action plugin", "module"])
def test_the_module_reports_blocking_findings_and_warnings_with_squawk_found_beside_python(
    runs_as, tmp_path, monkeypatch
):
    if runs_as == "module":  # no action plugin: the module file runs, as where plugins/action is not configured
        monkeypatch.setenv("ANSIBLE_ACTION_PLUGINS", str(tmp_path))
    result = run_module(
        "migration_lint",
        {
            "migrations": [
                {"name": "20250101000000_add_index", "sql": 'CREATE INDEX "u_e" ON "users"("email");'},
                {"name": "20250102000000_drop_bio", "sql": '-- AlterTable\nALTER TABLE "users" DROP COLUMN "bio";'},
            ],
            "tables": [{"name": "users", "rows": 500000, "has_rows": True}],
        },
    )
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert [(f["migration"], f["line"], f["rule"]) for f in result["blocking"]] == [
        ("20250102000000_drop_bio", 2, "drop-column")
    ]
    assert "require-concurrent-index-creation" in {f["rule"] for f in result["advisories"]}
    assert [m["additive"] for m in result["migrations"]] == [True, False]


def test_a_migration_without_a_name_is_refused():
    result = run_module("migration_lint", {"migrations": [{"sql": "SELECT 1"}]})
    assert result.get("failed") and "needs a name" in result["msg"]
