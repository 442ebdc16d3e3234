"""What a migration creates, read with pglast from the sample backend's real migrations."""

from __future__ import annotations

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils import migration_sql as ms
from ansible_collections.prismaguard.migrate.plugins.module_utils.migration_sql import created_objects, expectation
from conftest import ROOT

MIGRATIONS = ROOT / "examples" / "backend" / "v2" / "prisma" / "migrations"


def test_every_real_migration_of_release_2_parses():
    for folder in sorted(MIGRATIONS.iterdir()):
        sql = folder / "migration.sql"
        if sql.exists():
            assert isinstance(created_objects(sql.read_text()), list), folder.name


def test_a_create_table_with_constraints_and_indexes():
    sql = """
    CREATE TYPE "Status" AS ENUM ('PENDING', 'DONE');
    CREATE TABLE "verification_requests" (
        "id" TEXT NOT NULL, "customer_id" TEXT NOT NULL, "size" BIGINT, "created_at" TIMESTAMP(3) NOT NULL,
        CONSTRAINT "verification_requests_pkey" PRIMARY KEY ("id"));
    CREATE INDEX "verification_requests_customer_id_idx" ON "verification_requests"("customer_id");
    ALTER TABLE "verification_requests" ADD CONSTRAINT "verification_requests_customer_id_fkey"
        FOREIGN KEY ("customer_id") REFERENCES "customers"("id") ON DELETE CASCADE;
    ALTER TABLE "customers" ADD COLUMN "phone2" VARCHAR(32);
    """
    assert created_objects(sql) == [
        {"kind": "type", "name": "Status"},
        {
            "kind": "table",
            "table": "verification_requests",
            "columns": {"id": "text", "customer_id": "text", "size": "bigint", "created_at": "timestamp(3)"},
        },
        {"kind": "constraint", "table": "verification_requests", "name": "verification_requests_pkey"},
        {"kind": "index", "table": "verification_requests", "name": "verification_requests_customer_id_idx"},
        {"kind": "constraint", "table": "verification_requests", "name": "verification_requests_customer_id_fkey"},
        {"kind": "column", "table": "customers", "name": "phone2", "type": "varchar(32)"},
    ]


def test_the_expectation_asserts_tables_columns_and_indexes():
    objects = created_objects(
        'CREATE TABLE "t" ("id" TEXT NOT NULL); CREATE INDEX "t_id_idx" ON "t"("id");'
        'ALTER TABLE "u" ADD COLUMN "x" INTEGER;'
    )
    assert expectation(objects) == {
        "tables": {"t": {"columns": {"id": "text"}, "indexes": ["t_id_idx"]}, "u": {"columns": {"x": "integer"}}}
    }


def test_sql_that_does_not_parse_is_an_error_not_a_crash():
    with pytest.raises(ValueError, match="does not parse"):
        created_objects("CREATE TABLE (;")


def test_a_select_is_nothing_to_undo_and_an_update_is():
    sql = 'CREATE TABLE "t" ("id" TEXT);\nSELECT no_such_function();\nUPDATE "customers" SET "status" = \'x\';'
    assert ms.not_invertible(sql) == ['UPDATE "customers" SET "status" = \'x\'']


def test_the_undo_of_a_migration_that_failed_part_way_drops_only_what_exists():
    objects = ms.created_objects(
        'CREATE TABLE "t" ("id" TEXT);\nALTER TABLE "customers" ADD COLUMN "kyc" TEXT;\n'
        'CREATE INDEX "c_kyc" ON "customers"("kyc");'
    )
    assert ms.down_statements(objects, if_exists=True) == [
        'DROP INDEX IF EXISTS "c_kyc";',
        'ALTER TABLE IF EXISTS "customers" DROP COLUMN IF EXISTS "kyc";',
        'DROP TABLE IF EXISTS "t";',
    ]
    assert ms.down_statements(objects)[0] == 'DROP INDEX "c_kyc";'


def test_an_object_dropped_then_made_again_in_one_migration_is_marked_replaced():
    objects = created_objects(
        'ALTER TABLE "Document" DROP CONSTRAINT "Document_teamId_fkey";\n'
        'CREATE TABLE "Org" ("id" INTEGER, CONSTRAINT "Org_pkey" PRIMARY KEY ("id"));\n'
        'ALTER TABLE "Document" ADD CONSTRAINT "Document_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Org"("id")'
        " ON DELETE CASCADE;\n"
    )
    replaced = {o.get("name", o.get("table")): bool(o.get("replaced")) for o in objects}
    assert replaced == {"Org": False, "Org_pkey": False, "Document_teamId_fkey": True}
