"""pg_schema_assert against a database built by the sample backend's real migrations."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from ..conftest import run_module

MIGRATIONS = [ROOT / "examples" / "backend" / "v1" / "prisma" / "migrations"]
MIGRATIONS.append(ROOT / "examples" / "backend" / "v2" / "prisma" / "migrations")
EXPECT = yaml.safe_load((ROOT / "inventories" / "sandbox" / "group_vars" / "sandbox" / "schema.yml").read_text())[
    "schema_assert_expect"
]


def apply(conn, upto=None):
    folders = sorted((p for d in MIGRATIONS for p in d.iterdir() if p.is_dir()), key=lambda p: p.name)
    for folder in folders[:upto]:
        conn.cursor().execute((folder / "migration.sql").read_text())


@pytest.fixture
def migrated(database):
    url, conn = database
    apply(conn)
    return url, conn


def test_after_all_28_migrations_the_shipped_expectations_hold(migrated):
    url, _ = migrated
    result = run_module("pg_schema_assert", {"database_url": url, "expect": EXPECT})
    assert not result.get("failed"), result.get("msg")
    assert result["checked"] == len(EXPECT["tables"]) and result["diff"] == []


def test_before_the_migration_the_four_verification_tables_are_reported_missing(database):
    url, conn = database
    apply(conn, upto=27)  # baseline + 26: everything but the consolidation
    result = run_module("pg_schema_assert", {"database_url": url, "expect": EXPECT})
    assert result["failed"] is True
    assert [line for line in result["diff"] if line.startswith("- table")] == [
        "- table provider_logs: missing",
        "- table verification_documents: missing",
        "- table verification_history: missing",
        "- table verification_requests: missing",
    ]
    assert "- table provider_logs: missing" in result["msg"]


def test_a_dropped_index_and_a_changed_type_fail_with_a_diff(migrated):
    url, conn = migrated
    conn.cursor().execute(
        'DROP INDEX "verification_requests_status_idx";'
        ' ALTER TABLE "provider_logs" ALTER COLUMN "status_code" TYPE bigint'
    )
    result = run_module("pg_schema_assert", {"database_url": url, "expect": EXPECT}, check=True)
    assert result["failed"] is True
    assert result["diff"] == [
        "~ column provider_logs.status_code: expected integer, found bigint",
        "- index on verification_requests: verification_requests_status_idx missing",
    ]
