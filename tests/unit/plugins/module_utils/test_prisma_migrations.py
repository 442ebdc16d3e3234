"""Pure logic of the migration state: URLs, folders, history rows, Prisma's words."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils import prisma_migrations as pm

T0 = dt.datetime(2025, 12, 4, 10, 0, tzinfo=dt.UTC)


def local(name, sql="SELECT 1;"):
    checksum = hashlib.sha256(sql.encode()).hexdigest() if sql is not None else None
    return {"name": name, "has_sql": sql is not None, "checksum": checksum}


def row(name, sql="SELECT 1;", finished=True, rolled_back=False, logs=None):
    return {
        "migration_name": name,
        "checksum": hashlib.sha256(sql.encode()).hexdigest(),
        "started_at": T0,
        "finished_at": T0 if finished else None,
        "rolled_back_at": T0 if rolled_back else None,
        "applied_steps_count": 1 if finished else 0,
        "logs": logs,
    }


@pytest.mark.parametrize(
    ("url", "params", "schema"),
    [
        (
            "postgresql://backend:s3cret@db:5432/backend",
            {"host": "db", "port": 5432, "user": "backend", "password": "s3cret", "dbname": "backend"},
            "public",
        ),
        (
            "postgres://u:p%40ss%2Fw@h/app?schema=tenant&sslmode=require&connection_limit=5&pgbouncer=true",
            {"host": "h", "user": "u", "password": "p@ss/w", "dbname": "app", "sslmode": "require"},
            "tenant",
        ),
    ],
)
def test_a_prisma_url_becomes_libpq_parameters(url, params, schema):
    assert pm.connection_params(url) == (params, schema)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        # A socket folder: libpq's host, not TCP to localhost.
        ("postgresql://backend:pw@/backend?host=/var/run/postgresql", {"host": "/var/run/postgresql"}),
        # Several hosts, for a standby to take over.
        (
            "postgresql://u:p@db1:5432,db2:5433/app?target_session_attrs=read-write",
            {"host": "db1,db2", "port": "5432,5433", "target_session_attrs": "read-write"},
        ),
        ("postgresql://u:p@h/app?channel_binding=require&gssencmode=disable", {"channel_binding": "require"}),
        # Prisma's sslcert is the CA's certificate (DigitalOcean's ca-certificate.crt): libpq's sslrootcert.
        (
            "postgresql://doadmin:p@db.example:25060/defaultdb?sslmode=require&sslcert=/etc/ssl/do-ca.crt",
            {"sslmode": "require", "sslrootcert": "/etc/ssl/do-ca.crt", "port": 25060},
        ),
        # A space in an argument stays a space (libpq reads %20, not +); an "@" in the password is the password's.
        ("postgresql://u:p@h/app?options=-c%20statement_timeout%3D5000", {"options": "-c statement_timeout=5000"}),
        ("postgresql://u:p@ss@h/app", {"host": "h", "user": "u", "password": "p@ss"}),
        # Prisma's own arguments, and one neither knows, are left out (Prisma drops what it does not know).
        ("postgresql://u:p@h/app?pgbouncer=true&sslaccept=strict&unheard_of=1", {"host": "h", "dbname": "app"}),
    ],
)
def test_libpq_reads_the_url_as_postgresql_would(url, params):
    found, _ = pm.connection_params(url)
    assert params.items() <= found.items(), found
    assert not {"pgbouncer", "sslaccept", "unheard_of", "sslcert", "schema"} & set(found)


def test_a_port_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError, match="port is not a number"):
        pm.connection_params("postgresql://u:p@h:abc/app")


def test_a_url_libpq_cannot_read_is_refused_saying_why_without_the_password():
    with pytest.raises(ValueError, match="percent-encoded") as raised:
        pm.connection_params("postgresql://u:s3cret@h/a%ZZpp")  # libpq quotes the token it cannot read
    assert "s3cret" not in str(raised.value) and "a%ZZpp" in str(raised.value)


def test_a_url_that_is_not_postgresql_is_refused():
    with pytest.raises(ValueError, match="postgresql://"):
        pm.connection_params("mysql://u:p@h/db")


def test_the_target_description_never_holds_the_password():
    params, _ = pm.connection_params("postgresql://backend:s3cret@db:5432/backend")
    assert pm.describe_target(params) == "backend@db:5432/backend"


def test_folders_are_read_in_name_order_with_prismas_checksum(tmp_path):
    (tmp_path / "20250102_b").mkdir()
    (tmp_path / "20250102_b" / "migration.sql").write_text("CREATE TABLE b ();\n")
    (tmp_path / "20250101_a").mkdir()
    (tmp_path / "20250101_a" / "migration.sql").write_text("CREATE TABLE a ();\n")
    (tmp_path / "20250103_empty").mkdir()
    (tmp_path / "migration_lock.toml").write_text('provider = "postgresql"\n')
    found = pm.scan_migrations(str(tmp_path))
    assert [m["name"] for m in found] == ["20250101_a", "20250102_b", "20250103_empty"]
    assert found[0]["checksum"] == hashlib.sha256(b"CREATE TABLE a ();\n").hexdigest()
    assert found[2] == {"name": "20250103_empty", "has_sql": False, "checksum": None}


def test_the_runbooks_near_duplicate_names_are_found():
    names = [
        "20251201100000_add_documents_verification_flag",
        "20251204175644_consolidate_verification_service",
        "20251204_consolidate_verification_service",
    ]
    assert pm.near_duplicates(names) == [
        ["20251204175644_consolidate_verification_service", "20251204_consolidate_verification_service"]
    ]


def test_near_duplicates_are_one_change_committed_twice_not_two_changes_of_one_name():
    names = ["20250818154928_fix_order_index", "20251202154928_fix_order_index"]
    fix = 'UPDATE "UserCollection" SET "orderIndex" = 1;\n'
    assert pm.near_duplicates(names, {names[0]: fix, names[1]: fix.replace("User", "Team")}) == []
    assert pm.near_duplicates(names, {names[0]: fix, names[1]: "  " + fix.replace(" ", "\n")}) == [names]
    assert pm.near_duplicates(names, {names[0]: fix, names[1]: None}) == [names]
    paths = [f"prisma/migrations/{n}/migration.sql" for n in names]
    assert pm.tree_problems(paths, migrations=[{"name": n, "sql": n} for n in names]) == []
    assert len(pm.tree_problems(paths, migrations=[{"name": n, "sql": fix} for n in names])) == 1


def test_given_no_history_every_folder_with_sql_is_pending():
    state = pm.classify([local("1_a"), local("2_b")], [])
    assert state["pending"] == ["1_a", "2_b"]
    assert state["up_to_date"] is False
    assert state["problems"] == []


def test_given_everything_applied_it_is_up_to_date():
    state = pm.classify([local("1_a"), local("2_b")], [row("1_a"), row("2_b")])
    assert state["applied"] == ["1_a", "2_b"]
    assert state["pending"] == []
    assert state["up_to_date"] is True


def test_a_failed_migration_is_failed_not_pending_and_both_ways_out_are_named():
    state = pm.classify(
        [local("1_a"), local("2_b"), local("3_c")], [row("1_a"), row("2_b", finished=False, logs="boom")]
    )
    assert [f["name"] for f in state["failed_migrations"]] == ["2_b"]
    assert state["failed_migrations"][0]["logs"] == "boom"
    assert state["pending"] == ["3_c"]
    [problem] = state["problems"]
    assert "P3009" in problem
    assert "prisma migrate resolve --applied 2_b" in problem
    assert "prisma migrate resolve --rolled-back 2_b" in problem


def test_a_rolled_back_migration_is_pending_again():
    state = pm.classify([local("1_a")], [row("1_a", finished=False, rolled_back=True)])
    assert state["rolled_back"] == ["1_a"]
    assert state["pending"] == ["1_a"]
    assert state["failed_migrations"] == []


def test_the_latest_row_of_a_migration_counts():
    rows = [row("1_a", finished=False, rolled_back=True), row("1_a")]
    state = pm.classify([local("1_a")], rows)
    assert state["applied"] == ["1_a"] and state["pending"] == [] and state["rolled_back"] == []


def test_what_migrate_status_misses_is_found_missing_locally_and_edited():
    state = pm.classify([local("1_a", sql="edited;")], [row("1_a"), row("0_gone")])
    assert state["missing_locally"] == ["0_gone"]
    assert [m["name"] for m in state["checksum_mismatches"]] == ["1_a"]
    assert state["up_to_date"] is False
    assert len(state["problems"]) == 2


def test_an_empty_folder_is_never_pending_and_blocks():
    state = pm.classify([local("1_a"), local("2_empty", sql=None)], [row("1_a")])
    assert state["pending"] == []
    assert state["empty_folders"] == ["2_empty"]
    assert state["up_to_date"] is False
    assert "P3015" in state["problems"][0]


# What Prisma 6.19 prints, as seen on the sandbox (../shared/TESTBED.md).
@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "expected"),
    [
        (0, "1 migration found in prisma/migrations\n\nDatabase schema is up to date!\n", "", "up_to_date"),
        (1, "Following migration have not yet been applied:\n20250102_b\n", "", "pending"),
        (1, "Following migrations have not yet been applied:\n1_a\n2_b\n", "", "pending"),
        (1, "", "Following migration have failed:\n20250102_bad\n", "failed"),
        (
            1,
            "",
            "Your local migration history and the migrations table from your database are different:",
            "diverged",
        ),
        (1, "", "Error: P1001: Can't reach database server at `db:5432`", "unreachable"),
        (1, "", "Error: something new", "unknown"),
    ],
)
def test_prismas_status_words_are_classified(rc, stdout, stderr, expected):
    assert pm.parse_status(rc, stdout, stderr) == expected


def test_secrets_are_taken_out_of_output():
    assert pm.redact("url postgresql://u:pw@h/db pw", ["postgresql://u:pw@h/db", "pw", None]) == "url ******** ********"


def test_a_revisions_file_list_shows_the_runbooks_empty_duplicate_folder():
    paths = [
        "prisma/migrations/20240115093000_baseline/migration.sql",
        "prisma/migrations/20251204_consolidate_verification_service/migration.sql",
        "prisma/migrations/20251204175644_consolidate_verification_service/README.md",
        "prisma/migrations/migration_lock.toml",
        "prisma/schema.prisma",
    ]
    found = pm.tree_problems(paths)
    assert len(found) == 2
    assert found[0].startswith("Migration folder 20251204175644_consolidate_verification_service has no migration.sql")
    assert "P3015" in found[0]
    assert "20251204175644_consolidate_verification_service, 20251204_consolidate_verification_service" in found[1]
    allowed = ["20251204175644_consolidate_verification_service", "20251204_consolidate_verification_service"]
    assert len(pm.tree_problems(paths, allow_near_duplicates=allowed)) == 1  # the empty folder stays a problem


def test_a_clean_revision_has_no_known_issues():
    assert pm.tree_problems(["prisma/migrations/20240115093000_baseline/migration.sql"]) == []


def at(row_, minutes):
    return {**row_, "started_at": T0 + dt.timedelta(minutes=minutes)}


def test_a_deploy_applied_what_it_finished_in_order_whatever_the_folder_names():
    before = [at(row("0_base"), 0)]
    after = before + [at(row("2_b.v2"), 2), at(row("1_a-fix"), 1), at(row("3_c", finished=False, logs="x"), 3)]
    outcome = pm.deploy_outcome(before, after)
    assert outcome["applied"] == ["1_a-fix", "2_b.v2"]
    assert outcome["failed_migrations"] == [{"name": "3_c", "logs": "x"}]


def test_a_migration_rolled_back_before_and_applied_now_counts_once():
    before = [at(row("1_a", finished=False, rolled_back=True), 0)]
    after = before + [at(row("1_a"), 5)]
    assert pm.deploy_outcome(before, after) == {"applied": ["1_a"], "failed_migrations": []}


def test_a_deploy_with_nothing_new_applied_nothing():
    rows = [at(row("1_a"), 0), at(row("2_b", finished=False), 1)]
    assert pm.deploy_outcome(rows, rows) == {"applied": [], "failed_migrations": []}


# As Prisma 6 prints a failed migration (P3018), and as the offline path's driver adapter words it.
PRISMA_P3018 = """Error: P3018

A migration failed to apply. New migrations cannot be applied before the error is recovered from.

Migration name: 20251205090000_require_document_property

Database error code: 23502

Database error:
ERROR: column "property_id" of relation "documents" contains null values
HINT: Fill the column first.

DbError { severity: "ERROR", code: SqlState(E23502) }
"""


ADAPTER_ERROR = """2 migrations found in prisma/migrations

Error: external connector error
No such table: no_such_table
   0: sql_schema_connector::apply_migration::apply_script
           with migration_name="20251206000000_broken"
             at schema-engine/connectors/sql-schema-connector/src/apply_migration.rs:113
   1: schema_engine_wasm::wasm::engine::ApplyMigrations
             at schema-engine/schema-engine-wasm/src/wasm/engine.rs:167
"""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            PRISMA_P3018,
            'ERROR: column "property_id" of relation "documents" contains null values (SQLSTATE 23502)'
            " HINT: Fill the column first.",
        ),
        (
            'Error querying the database: ERROR: relation "nope" does not exist\n',
            'ERROR: relation "nope" does not exist',
        ),
        ("Applying migration `1_a`\nError: external connector error\n", "Error: external connector error"),
        # Prisma 6.19 with a driver adapter (prisma.config.ts), as it printed in the sandbox; its row's log
        # has the same lines without "Error: ".
        (ADAPTER_ERROR, "Error: external connector error: No such table: no_such_table"),
        (ADAPTER_ERROR.replace("Error: ", ""), "external connector error: No such table: no_such_table"),
        # The sample's prisma.config.ts passes PostgreSQL's own words on (as it printed in the sandbox).
        (
            ADAPTER_ERROR.replace(
                "No such table: no_such_table",
                'Error querying the database: ERROR: could not create unique index "exp_u" (SQLSTATE 23505)\n'
                "DETAIL: Key (a)=(1) is duplicated.",
            ),
            'ERROR: could not create unique index "exp_u" (SQLSTATE 23505) DETAIL: Key (a)=(1) is duplicated.',
        ),
        ("something odd\nlast words\n", "last words"),
        ("", "Prisma printed nothing"),
    ],
)
def test_the_databases_own_error_is_quoted(text, error):
    assert pm.database_error(text) == error


def test_the_migration_under_way_is_the_last_one_prisma_printed_as_starting():
    out = "Applying migration `1_a`\nApplying migration `2_b-c.v2`\nError: P1017 Server has closed the connection.\n"
    assert pm.migration_under_way(out) == "2_b-c.v2"
    assert pm.migration_under_way("No pending migrations to apply.\n") is None
    assert pm.migration_under_way(None) is None
