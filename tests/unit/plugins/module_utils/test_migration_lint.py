"""The migration lint over a corpus of real-world statements: what Prisma writes, and what people add by hand."""

from __future__ import annotations

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils.migration_lint import lint_migrations
from conftest import ROOT

SQUAWK = str(ROOT / ".venv" / "bin" / "squawk")
# users holds rows and is large; sessions holds rows and is small; empty_log holds none.
TABLES = {
    "users": {"rows": 2_000_000, "has_rows": True},
    "User": {"rows": 50, "has_rows": True},
    "Post": {"rows": 50, "has_rows": True},
    "sessions": {"rows": 300, "has_rows": True},
    "empty_log": {"rows": 0, "has_rows": False},
}


def lint(*sqls, tables=None, allow=()):
    migrations = [{"name": f"2025010{i}000000_m{i}", "sql": sql} for i, sql in enumerate(sqls, 1)]
    return lint_migrations(migrations, tables=TABLES if tables is None else tables, allow=allow, squawk=SQUAWK)


def rules(report, level):
    return sorted(f["rule"] for f in report["findings"] if f["level"] == level)


BLOCKING = [
    # (real-world statement, the blocking rule)
    ('DROP TABLE "Legacy";', "drop-table"),
    ('DROP TABLE IF EXISTS "sessions" CASCADE;', "drop-table"),
    (
        "/*\n  Warnings:\n\n  - You are about to drop the column `bio` on the `User` table.\n*/\n"
        '-- AlterTable\nALTER TABLE "User" DROP COLUMN "bio";',
        "drop-column",
    ),
    ('ALTER TABLE "User" DROP COLUMN IF EXISTS "bio", ADD COLUMN "about" TEXT;', "drop-column"),
    ('DROP INDEX "Post_title_key";', "drop-index"),
    ('DROP INDEX CONCURRENTLY IF EXISTS "users_email_idx";', "drop-index"),
    ('ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";', "drop-constraint"),
    ('DROP TYPE "Mood";', "drop-type"),
    ('ALTER TABLE "Post" ALTER COLUMN "title" SET DATA TYPE VARCHAR(100);', "alter-column-type"),
    ("ALTER TABLE users ALTER COLUMN id TYPE bigint USING id::bigint;", "alter-column-type"),
    ('ALTER TABLE "Post" ALTER COLUMN "title" SET NOT NULL;', "set-not-null"),
    ('ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";', "rename"),
    ('ALTER TABLE "User" RENAME TO "Person";', "rename"),
    ("ALTER TYPE \"Role\" RENAME VALUE 'USER' TO 'MEMBER';", "rename"),
    ('TRUNCATE TABLE "sessions";', "truncate"),
    ('TRUNCATE "sessions", "User" RESTART IDENTITY;', "truncate"),
    ('DELETE FROM "sessions";', "delete-without-where"),
    # rallly deletes duplicate invites before a unique index: those rows are gone.
    ('DELETE FROM "sessions" WHERE "expires" < now();', "delete"),
    ('UPDATE "User" SET "active" = true;', "update-without-where"),
    ('ALTER TABLE "Post" ADD COLUMN "authorId" INTEGER NOT NULL;', "add-column-not-null-without-default"),
    ('ALTER TABLE "unknown_table" ADD COLUMN "x" TEXT NOT NULL;', "add-column-not-null-without-default"),
    ('CREATE TABLE "x" ("a" INTEGER,,);', "parse-error"),
    ("SELEC 1;", "parse-error"),
    ('DROP SCHEMA "legacy" CASCADE;', "drop-schema"),
    ('DROP VIEW "active_users";', "drop-view"),
    ('DROP SEQUENCE "order_seq";', "drop-sequence"),
    ('DROP FUNCTION "touch_updated_at"();', "drop-function"),
]


@pytest.mark.parametrize(("sql", "rule"), BLOCKING, ids=[r for _, r in BLOCKING])
def test_a_destructive_statement_blocks(sql, rule):
    report = lint(sql)
    assert rule in rules(report, "block"), report["findings"]
    assert report["blocking"], "a blocking finding must be in `blocking`"
    assert not report["migrations"][0]["additive"]
    finding = next(f for f in report["blocking"] if f["rule"] == rule)
    assert finding["file"] == "prisma/migrations/20250101000000_m1/migration.sql"
    assert finding["migration"] == "20250101000000_m1"
    assert finding["message"]


ADDITIVE = [
    '-- CreateTable\nCREATE TABLE "Profile" ("id" SERIAL NOT NULL, "bio" TEXT, "userId" INTEGER NOT NULL,\n'
    '    CONSTRAINT "Profile_pkey" PRIMARY KEY ("id"));\n'
    '-- CreateIndex\nCREATE UNIQUE INDEX "Profile_userId_key" ON "Profile"("userId");\n'
    '-- AddForeignKey\nALTER TABLE "Profile" ADD CONSTRAINT "Profile_userId_fkey" FOREIGN KEY ("userId")'
    ' REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;',
    '-- AlterTable\nALTER TABLE "User" ADD COLUMN "age" INTEGER NOT NULL DEFAULT 0;',
    '-- AlterTable\nALTER TABLE "User" ADD COLUMN "nickname" TEXT;',
    'ALTER TABLE "User" ADD COLUMN "seq" SERIAL NOT NULL;',
    'ALTER TABLE "User" ADD COLUMN "n" BIGINT GENERATED ALWAYS AS IDENTITY;',
    "ALTER TYPE \"Role\" ADD VALUE 'ADMIN';",
    # The app names tables, columns and types; never indexes or constraints (papermark renamed both).
    'ALTER INDEX "users_email_idx" RENAME TO "users_email_key";',
    'ALTER TABLE "Post" RENAME CONSTRAINT "Post_authorId_fkey" TO "Post_author_fkey";',
    "CREATE TYPE \"Mood\" AS ENUM ('HAPPY', 'SAD');",
    'CREATE EXTENSION IF NOT EXISTS "pgcrypto";',
    'ALTER TABLE "empty_log" ADD COLUMN "level" TEXT NOT NULL;',
    'CREATE INDEX "sessions_user_idx" ON "sessions"("user_id");',
    'CREATE INDEX CONCURRENTLY "users_created_idx" ON "users"("created_at");',
    "SET lock_timeout = '5s';",
    "COMMENT ON TABLE \"User\" IS 'people';",
]


@pytest.mark.parametrize("sql", ADDITIVE, ids=range(len(ADDITIVE)))
def test_an_additive_statement_passes(sql):
    report = lint(sql)
    assert report["blocking"] == []
    assert report["migrations"][0]["additive"], report["migrations"][0]["statements"]


CHANGING_NOT_BLOCKING = [
    'DELETE FROM "empty_log" WHERE "at" < now();',
    'UPDATE "User" SET "role" = \'MEMBER\' WHERE "role" IS NULL;',
    'INSERT INTO "Setting" ("key", "value") VALUES (\'theme\', \'dark\');',
    'ALTER TABLE "User" ALTER COLUMN "bio" DROP NOT NULL;',
    'ALTER TABLE "User" ALTER COLUMN "age" SET DEFAULT 18;',
    "CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$"
    " LANGUAGE plpgsql;",
]


@pytest.mark.parametrize("sql", CHANGING_NOT_BLOCKING, ids=range(len(CHANGING_NOT_BLOCKING)))
def test_a_statement_that_changes_but_loses_nothing_is_not_additive_and_does_not_block(sql):
    report = lint(sql)
    assert report["blocking"] == []
    assert not report["migrations"][0]["additive"]


ENUM_SWAP = """-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN');
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
COMMIT;
"""


def test_prismas_enum_value_removal_blocks_on_the_columns_conversion_only():
    # The type is replaced under its own name (renamed away, renamed into, the old one dropped): the loss, if
    # any, is in converting the column's values; rallly and hoppscotch do this in 6 migrations.
    report = lint(ENUM_SWAP)
    assert rules(report, "block") == ["alter-column-type"], report["findings"]
    assert "replaced" in rules(report, "warn")
    # On a type and a table this run made, nothing blocks.
    own = 'CREATE TYPE "Role" AS ENUM (\'USER\', \'OLD\');\nCREATE TABLE "Member" ("role" "Role");\n'
    assert lint(own, ENUM_SWAP.replace('"User"', '"Member"'))["blocking"] == []
    # Renamed away with nothing made under the old name: the previous release's name is gone.
    assert rules(lint('ALTER TYPE "Role" RENAME TO "Role_old";'), "block") == ["rename"]


def test_a_finding_names_the_line_of_its_statement_after_prismas_comments():
    sql = '-- é, a comment with a non-ASCII letter\n\n-- AlterTable\nALTER TABLE "User"\n  DROP COLUMN "bio";\n'
    finding = lint(sql)["blocking"][0]
    assert finding["line"] == 4
    assert finding["statement"].startswith('ALTER TABLE "User"')


def test_sql_that_does_not_parse_is_a_finding_with_its_line_not_a_crash():
    report = lint('CREATE TABLE "a" ("id" INTEGER);\n\nCREATE TABLE "b" (\n  "id" INTEGER,,\n);')
    assert rules(report, "block") == ["parse-error"]
    assert report["blocking"][0]["line"] == 4
    assert "syntax error" in report["blocking"][0]["message"]


def test_a_table_this_run_creates_is_empty_for_the_later_migrations():
    report = lint(
        'CREATE TABLE "audit" ("id" TEXT NOT NULL);',
        'ALTER TABLE "audit" ADD COLUMN "actor" TEXT NOT NULL;\nALTER TABLE "audit" ALTER COLUMN "id" SET NOT NULL;',
    )
    assert report["blocking"] == []


def test_a_column_this_run_adds_can_be_set_not_null_later():
    report = lint('ALTER TABLE "User" ADD COLUMN "tz" TEXT;', 'ALTER TABLE "User" ALTER COLUMN "tz" SET NOT NULL;')
    assert report["blocking"] == []


def test_an_allowed_migration_keeps_its_findings_and_blocks_nothing():
    report = lint('ALTER TABLE "User" DROP COLUMN "bio";', 'DROP TABLE "Legacy";', allow=["20250101000000_m1"])
    assert [(f["migration"], f["level"]) for f in report["findings"] if f["source"] == "pglast"] == [
        ("20250101000000_m1", "allowed"),
        ("20250102000000_m2", "block"),
    ]
    assert [f["migration"] for f in report["blocking"]] == ["20250102000000_m2"]
    assert report["migrations"][0]["allowed"] and not report["migrations"][1]["allowed"]


def test_squawk_warns_of_an_index_built_without_concurrently_on_a_large_table_only():
    large = lint('CREATE INDEX "users_email_idx" ON "users"("email");')
    small = lint('CREATE INDEX "sessions_token_idx" ON "sessions"("token");')
    assert "require-concurrent-index-creation" in rules(large, "warn")
    assert "require-concurrent-index-creation" not in rules(small, "warn")
    assert large["blocking"] == [] and large["advisories"][0]["source"] == "squawk"


def test_squawk_warns_of_a_foreign_key_without_not_valid_on_an_existing_table_only():
    existing = lint('ALTER TABLE "Post" ADD CONSTRAINT "Post_u_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");')
    assert "constraint-missing-not-valid" in rules(existing, "warn")
    new = lint(
        'CREATE TABLE "Like" ("id" TEXT NOT NULL, "userId" INTEGER NOT NULL);\n'
        'ALTER TABLE "Like" ADD CONSTRAINT "Like_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");'
    )
    assert rules(new, "warn") == []
    not_valid = lint(
        "SET lock_timeout = '2s';\n"
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") NOT VALID;'
    )
    assert "constraint-missing-not-valid" not in rules(not_valid, "warn")


def test_squawk_warns_of_a_missing_lock_timeout_and_not_once_it_is_set():
    assert "require-lock-timeout" in rules(lint('ALTER TABLE "User" ADD COLUMN "x" TEXT;'), "warn")
    assert rules(lint('SET lock_timeout = \'2s\';\nALTER TABLE "User" ADD COLUMN "x" TEXT;'), "warn") == []


def test_every_statement_is_summarised_with_its_line():
    report = lint('-- CreateTable\nCREATE TABLE "a" ("id" TEXT);\n\n-- CreateIndex\nCREATE INDEX "a_i" ON "a"("id");')
    assert report["migrations"][0]["statements"] == [
        {"line": 2, "summary": "create table a", "additive": True, "findings": [], "locks": []},
        {"line": 5, "summary": "create index a_i on a", "additive": True, "findings": [], "locks": []},
    ]
    assert len(report["migrations"][0]["sha256"]) == 64


def test_the_sample_releases_27_migrations_are_additive():
    folder = ROOT / "examples" / "backend" / "v2" / "prisma" / "migrations"
    migrations = [
        {"name": d.name, "sql": (d / "migration.sql").read_text()}
        for d in sorted(folder.iterdir())
        if (d / "migration.sql").exists()
    ]
    report = lint_migrations(
        migrations,
        tables={
            t: {"rows": 1000, "has_rows": True}
            for t in ("users", "customers", "payments", "subscriptions", "documents", "properties")
        },  # fmt: skip
        squawk=SQUAWK,
    )
    assert len(report["migrations"]) == 27
    assert report["blocking"] == []
    assert all(m["additive"] for m in report["migrations"])
    # Prisma sets no lock_timeout: the one warning worth reading on a busy production, unless the deploy sets it.
    assert {f["rule"] for f in report["advisories"]} == {"require-lock-timeout"}
    assert all(m["lock_retry"] for m in report["migrations"])


# Reproductions, written here, of patterns found in a public project's 163 migrations (issue 15).
ON_DELETE_CHANGE = """-- DropForeignKey
ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id")
  ON DELETE CASCADE ON UPDATE CASCADE;
"""


def test_a_foreign_key_dropped_and_added_again_in_one_migration_is_replaced_not_lost():
    report = lint(ON_DELETE_CHANGE)
    assert report["blocking"] == [], report["blocking"]
    assert "replaced" in rules(report, "warn")
    finding = next(f for f in report["findings"] if f["rule"] == "replaced")
    assert "constraint Post_authorId_fkey on Post" in finding["message"] and finding["line"] == 2


def test_a_function_dropped_then_created_again_is_replaced_and_named_as_sql():
    replaced = lint(
        "DROP FUNCTION IF EXISTS nanoid(int, text);\n"
        "CREATE OR REPLACE FUNCTION nanoid(size int DEFAULT 21, alphabet text DEFAULT 'abc') RETURNS text"
        " AS $$ SELECT alphabet $$ LANGUAGE sql;\n"
    )
    assert replaced["blocking"] == []
    gone = lint("DROP FUNCTION IF EXISTS nanoid(int, text);")
    [finding] = gone["blocking"]
    assert finding["rule"] == "drop-function"
    assert "Drops function nanoid(integer, text):" in finding["message"], finding["message"]
    assert "<" not in finding["message"], "the parser's objects are not printed"


def test_drops_of_what_belongs_to_a_table_this_run_created_do_not_block():
    create = (
        'CREATE TABLE "Sub" ("id" SERIAL NOT NULL, "userId" INTEGER, CONSTRAINT "Sub_pkey" PRIMARY KEY ("id"));\n'
        'CREATE INDEX "Sub_userId_idx" ON "Sub"("userId");\n'
        'ALTER TABLE "Sub" ADD CONSTRAINT "Sub_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id");\n'
    )
    later = (
        'ALTER TABLE "Sub" DROP CONSTRAINT "Sub_pkey", DROP CONSTRAINT "Sub_userId_fkey";\n'
        'ALTER TABLE "Sub" ALTER COLUMN "id" DROP DEFAULT, ALTER COLUMN "id" SET DATA TYPE TEXT;\n'
        'DROP SEQUENCE "Sub_id_seq";\n'
        'DROP INDEX "Sub_userId_idx";\n'
    )
    assert lint(create, later)["blocking"] == []
    # The same drops on a table the database already holds do block.
    existing = later.replace('"Sub"', '"Post"').replace("Sub_", "Post_")
    assert set(rules(lint(existing), "block")) >= {"drop-constraint", "drop-sequence", "drop-index"}


def test_statements_that_can_fail_on_existing_data_come_with_the_query_that_counts_it():
    report = lint(
        'ALTER TABLE "Post" ALTER COLUMN "authorId" SET NOT NULL;\n'
        'CREATE UNIQUE INDEX "Post_slug_key" ON "Post"("slug");\n'
        'CREATE TABLE "Tag" ("id" INTEGER, "name" TEXT);\n'
        'CREATE UNIQUE INDEX "Tag_name_key" ON "Tag"("name");\n',
        allow=["20250101000000_m1"],
    )
    assert [(c["kind"], c["table"], c["columns"], c["line"]) for c in report["data_checks"]] == [
        ("not_null", "Post", ["authorId"], 1),
        ("unique", "Post", ["slug"], 2),
    ], "allowed or not; none for the run's own new table"
    assert report["data_checks"][0]["query"] == 'SELECT count(*) FROM "Post" WHERE "authorId" IS NULL'


def test_what_a_table_of_this_run_is_called_after_a_rename_is_still_the_runs():
    # rallly's naming convention update: its tables made, renamed, their columns renamed, rewritten and dropped.
    made = (
        'CREATE TABLE "Comment" ("id" TEXT NOT NULL, "authorName" TEXT,'
        ' CONSTRAINT "Comment_pkey" PRIMARY KEY ("id"));\n'
        'CREATE INDEX "Comment_authorName_idx" ON "Comment"("authorName");\n'
        "CREATE TYPE \"PollType\" AS ENUM ('date');\n"
    )
    renamed = (
        'ALTER TABLE "Comment" RENAME TO "comments";\n'
        'ALTER TABLE "comments" RENAME COLUMN "authorName" TO "author_name";\n'
        'ALTER TABLE "comments" RENAME CONSTRAINT "Comment_pkey" TO "comments_pkey";\n'
        'ALTER INDEX "Comment_authorName_idx" RENAME TO "comments_author_name_idx";\n'
        'ALTER TYPE "PollType" RENAME TO "poll_type";\n'
        'UPDATE "comments" SET "author_name" = \'x\';\n'
        'ALTER TABLE "comments" DROP COLUMN "author_name", ADD COLUMN "n" INTEGER NOT NULL;\n'
        'DROP INDEX "comments_author_name_idx";\n'
        'DROP TYPE "poll_type";\n'
    )
    assert lint(made, renamed)["blocking"] == []
    # The same statements on what the database already holds block: the previous release uses those names.
    existing = lint(renamed, tables={"Comment": {"rows": 5, "has_rows": True}})
    assert set(rules(existing, "block")) >= {"rename", "update-without-where", "drop-column", "drop-index", "drop-type"}


def test_a_column_this_run_made_can_be_dropped():
    # umami: session_data made (02), its deleted_at dropped (06), in one run.
    assert (
        lint('CREATE TABLE "s" ("id" UUID, "deleted_at" TIMESTAMP);', 'ALTER TABLE "s" DROP COLUMN "deleted_at";')[
            "blocking"
        ]
        == []
    )
    assert lint('ALTER TABLE "User" ADD COLUMN "tmp" TEXT;', 'ALTER TABLE "User" DROP COLUMN "tmp";')["blocking"] == []


LIVE = {
    "website": {
        "rows": 40, "has_rows": True,
        "columns": {"website_id": "uuid", "name": "character varying(100)"},
        "indexes": {
            "website_pkey": {"unique": True, "covered_by": ["website_website_id_key"]},
            "website_website_id_key": {"unique": True, "covered_by": ["website_pkey"]},
            "website_name_key": {"unique": True, "columns": ["name"], "covered_by": None},
            "website_created_at_idx": {"unique": False, "covered_by": None},
        },
    },
    "Account": {"rows": 9, "has_rows": True, "columns": {"loggedIn": "timestamp(3) without time zone", "n": "integer",
                                                          "price": "numeric(10,2)", "code": "character varying(200)"}},
}  # fmt: skip


def test_an_index_drop_that_loses_no_rule_warns_and_one_that_does_blocks():
    # umami's unique keys duplicating the primary key, and rallly's plain indexes rebuilt as btree.
    report = lint('DROP INDEX "website_website_id_key";\nDROP INDEX "website_created_at_idx";', tables=LIVE)
    assert report["blocking"] == [] and rules(report, "warn").count("drop-index") == 2, report["findings"]
    assert "no data and no rule is lost" in report["findings"][0]["message"]
    assert rules(lint('DROP INDEX "website_name_key";', tables=LIVE), "block") == ["drop-index"]
    assert rules(lint('DROP INDEX "unknown_idx";', tables=LIVE), "block") == ["drop-index"]


@pytest.mark.parametrize(
    ("sql", "level"),
    [
        # hoppscotch's 26 columns to timestamptz(3); widening a varchar, an integer, a numeric's precision.
        ('ALTER TABLE "Account" ALTER COLUMN "loggedIn" SET DATA TYPE TIMESTAMPTZ(3);', "warn"),
        (
            'ALTER TABLE "Account" ALTER COLUMN "loggedIn" SET DATA TYPE TIMESTAMPTZ(3) USING "loggedIn" AT TIME ZONE'
            " 'UTC';",
            "warn",
        ),
        ('ALTER TABLE "Account" ALTER COLUMN "n" SET DATA TYPE BIGINT USING "n"::BIGINT;', "warn"),
        # rallly's invitee_email to CITEXT: the same values; blocks where a unique index would now fold case.
        ('ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE CITEXT;', "warn"),
        ('ALTER TABLE "website" ALTER COLUMN "name" SET DATA TYPE CITEXT;', "block"),
        ('ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE VARCHAR(255);', "warn"),
        ('ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE TEXT;', "warn"),
        ('ALTER TABLE "Account" ALTER COLUMN "n" SET DATA TYPE BIGINT;', "warn"),
        ('ALTER TABLE "Account" ALTER COLUMN "price" SET DATA TYPE DECIMAL(12,2);', "warn"),
        # umami's VARCHAR(200) to VARCHAR(50); a scale lost; a conversion of its own (USING); a type not described.
        ('ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE VARCHAR(50);', "block"),
        ('ALTER TABLE "Account" ALTER COLUMN "price" SET DATA TYPE DECIMAL(12,1);', "block"),
        ('ALTER TABLE "Account" ALTER COLUMN "n" SET DATA TYPE BIGINT USING "n" * 2;', "block"),
        ('ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE TEXT USING "code" AT TIME ZONE \'UTC\';', "block"),
        ('ALTER TABLE "Account" ALTER COLUMN "code" SET DATA TYPE JSONB;', "block"),
        ('ALTER TABLE "Account" ALTER COLUMN "other" SET DATA TYPE TEXT;', "block"),
    ],
)
def test_a_type_change_every_value_survives_warns_and_any_other_blocks(sql, level):
    report = lint(sql, tables=LIVE)
    assert [f["level"] for f in report["findings"] if f["rule"] == "alter-column-type"] == [level], report["findings"]
    if level == "block":
        assert "can fail or truncate" in report["blocking"][0]["message"]


def test_a_data_check_after_a_rename_counts_on_the_names_the_live_database_has():
    # papermark renames Conversation to Chat, then changes Chat's columns: the live database has no Chat yet.
    report = lint(
        'ALTER TABLE "Post" RENAME TO "Article";\n'
        'ALTER TABLE "Article" RENAME COLUMN "title" TO "headline";\n'
        'ALTER TABLE "Article" ALTER COLUMN "headline" SET NOT NULL, ALTER COLUMN "body" SET NOT NULL;\n',
        allow=["20250101000000_m1"],
    )
    assert [c["query"] for c in report["data_checks"]] == [
        'SELECT count(*) FROM "Post" WHERE "title" IS NULL',
        'SELECT count(*) FROM "Post" WHERE "body" IS NULL',
    ]


def test_a_tables_foreign_keys_dropped_before_the_table_itself_are_one_finding():
    # rallly drops watchers' and poll_views' foreign keys, then the tables: the table's drop is the loss.
    report = lint('ALTER TABLE "sessions" DROP CONSTRAINT "sessions_user_id_fkey";\nDROP TABLE "sessions";\n')
    assert rules(report, "block") == ["drop-table"], report["findings"]


def test_a_table_made_from_a_query_is_the_runs_own():
    # langfuse fills a prices table from a temporary one, then drops it.
    report = lint(
        "CREATE TEMPORARY TABLE temp_prices AS SELECT * FROM (VALUES ('gpt', 1)) AS v (model, price);\n"
        'INSERT INTO "User" ("name") SELECT model FROM temp_prices;\nDROP TABLE temp_prices;\n'
    )
    assert report["blocking"] == [], report["findings"]
    assert report["migrations"][0]["statements"][0]["summary"] == "create table temp_prices as select"


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        # A table or an index renamed into (or away from) a dropped one's name is another object: the drop loses.
        (
            'CREATE TABLE "User_new" (id TEXT);\nDROP TABLE "User";\nALTER TABLE "User_new" RENAME TO "User";',
            "drop-table",
        ),
        (
            'ALTER TABLE "User" RENAME TO "User_old";\nCREATE TABLE "User" (id TEXT);\nDROP TABLE "User_old";',
            "drop-table",
        ),
        ('DROP TABLE "User";\nCREATE TABLE "User" (id TEXT);', "drop-table"),
        # CASCADE drops the columns still of the type, the foreign keys on the index.
        (ENUM_SWAP.replace('DROP TYPE "Role_old";', 'DROP TYPE "Role_old" CASCADE;'), "drop-type"),
        ('DROP INDEX "website_created_at_idx" CASCADE;', "drop-index"),
        # Two unique indexes on the same columns, both dropped: the second takes the rule with it.
        ('DROP INDEX "website_pkey";\nDROP INDEX "website_website_id_key";', "drop-index"),
        # A unique index made again without UNIQUE.
        ('DROP INDEX "website_name_key";\nCREATE INDEX "website_name_key" ON "website" ("name");', "drop-index"),
        # IF NOT EXISTS over a live table makes nothing of the run's.
        ('CREATE TABLE IF NOT EXISTS "website" AS SELECT 1 AS x;\nDROP TABLE "website";', "drop-table"),
        ('CREATE TABLE IF NOT EXISTS "website" (x INT);\nDROP TABLE "website";', "drop-table"),
    ],
)
def test_what_only_looks_replaced_or_covered_still_blocks(sql, rule):
    assert rule in rules(lint(sql, tables=LIVE), "block"), lint(sql, tables=LIVE)["findings"]


@pytest.mark.parametrize(
    "sql",
    [
        'ALTER TABLE "Account" ALTER COLUMN "iv" SET DATA TYPE INTERVAL(3);',  # rounds the seconds
        'ALTER TABLE "Account" ALTER COLUMN "flags" SET DATA TYPE BIT(5);',  # a length PostgreSQL will not pad
        'ALTER TABLE "Account" ALTER COLUMN "loggedIn" SET DATA TYPE TIMESTAMPTZ(3) USING "loggedIn" AT TIME ZONE 5;',
    ],
)
def test_a_type_change_that_is_not_a_widening_blocks_and_odd_sql_does_not_crash(sql):
    live = {"Account": dict(LIVE["Account"], columns={**LIVE["Account"]["columns"], "iv": "interval(6)",
                                                       "flags": "bit(3)"})}  # fmt: skip
    assert rules(lint(sql, tables=live), "block") == ["alter-column-type"]


def test_renaming_a_schema_is_classified_not_a_crash():
    report = lint('ALTER SCHEMA "legacy" RENAME TO "old";')
    assert rules(report, "block") == ["rename"]
    assert report["findings"][0]["message"].startswith("Renames schema legacy to old")
