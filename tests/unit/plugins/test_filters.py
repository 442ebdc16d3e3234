"""The playbooks' filters: .env parsing and required names."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import migrate as filters  # noqa: E402

ENV = """# production settings
DATABASE_URL="postgresql://backend:p#ss@db:5432/backend?schema=public"
export PORT=3000
SPACES_KEY=abc  # the key
SPACES_SECRET=''
PAYSTACK_SECRET_KEY=sk_live_x
not a line
"""


def test_a_dotenv_file_parses_like_dotenv():
    values = filters.dotenv(ENV)
    assert values == {
        "DATABASE_URL": "postgresql://backend:p#ss@db:5432/backend?schema=public",
        "PORT": "3000",
        "SPACES_KEY": "abc",
        "SPACES_SECRET": "",
        "PAYSTACK_SECRET_KEY": "sk_live_x",
    }


@pytest.mark.parametrize(
    ("required", "missing"),
    [
        (["DATABASE_URL", "SPACES_*", "PAYSTACK_SECRET_KEY"], []),
        (["SPACES_SECRET"], ["SPACES_SECRET"]),  # empty counts as missing
        (["REDIS_URL", "SPACES_*"], ["REDIS_URL"]),
        (["SENTRY_*"], ["SENTRY_*"]),
    ],
)
def test_required_names_and_patterns_are_checked(required, missing):
    assert filters.missing_env(filters.dotenv(ENV), required) == missing


def test_a_url_becomes_a_secret_free_target():
    assert filters.pg_target("postgresql://backend:pw@db:5432/backend?schema=x") == "backend@db:5432/backend"


def test_each_migrations_objects_are_read_by_name_and_those_without_sql_left_out():
    found = filters.migration_objects_map(
        [{"name": "1_a", "sql": 'CREATE TABLE "a" ("id" TEXT);'}, {"name": "2_empty", "sql": None}]
    )
    assert list(found) == ["1_a"]
    assert (found["1_a"][0]["kind"], found["1_a"][0]["table"]) == ("table", "a")


def test_a_dotenv_file_reads_as_prismas_cli_reads_it():
    # dotenv 16's parser and Prisma's fork of dotenv-expand, as the CLI that runs `migrate deploy` reads .env.
    values = filters.dotenv(
        'DATABASE_URL="postgresql://u:p@db:25061/app?sslmode=require"  # prod, through the pool\r\n'
        'DIRECT_URL="postgresql://${DB_USER}:${DB_PASS}@db:25060/app"\n'
        "DB_USER=doadmin\n"
        "DB_PASS='s3#cret'\n"
        "PLAIN=postgresql://u:pa$word@h/db\n"
        "FALLBACK=${NOT_SET:-none}\n"
        'CA="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"\n'
        'ESCAPED="a\\nb"\n'
        "LITERAL=\\${DB_USER}\n"
        "UNQUOTED=x#y\n"
        'EMPTY=""\n'
    )
    assert values["DATABASE_URL"] == "postgresql://u:p@db:25061/app?sslmode=require", "quotes and comment gone"
    assert values["DIRECT_URL"] == "postgresql://doadmin:s3#cret@db:25060/app", "expanded from lines after it too"
    assert values["PLAIN"] == "postgresql://u:pa$word@h/db", "only ${NAME} is expanded"
    assert values["FALLBACK"] == "${NOT_SET:-none}", "Prisma's expansion has no defaults"
    assert values["CA"] == "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "several lines"
    assert values["ESCAPED"] == "a\nb", "\\n in double quotes is a line break"
    assert values["LITERAL"] == "${DB_USER}"
    assert values["UNQUOTED"] == "x", "a # ends an unquoted value"
    assert values["EMPTY"] == ""


def test_off_site_retention_deletes_the_oldest_dumps_with_their_checksums_and_nothing_else():
    prefix = "prisma-migrate/db-1/"
    keys = [prefix + k for k in ("backup_20261130_010000.dump", "backup_20261130_010000.dump.sha256",
                                 "backup_20261120_010000.dump", "backup_20261125_010000.dump", "notes.txt",
                                 "sub/backup_20261101_010000.dump")]  # fmt: skip
    # The 20261125 dump has no checksum beside it: only what is there is deleted.
    assert filters.backup_offsite_expired(keys, prefix, 1) == [
        prefix + "backup_20261120_010000.dump",
        prefix + "backup_20261125_010000.dump",
    ]
    assert filters.backup_offsite_expired(keys, prefix, 3) == []
    with pytest.raises(filters.AnsibleFilterError, match="keep at least the dump just sent"):
        filters.backup_offsite_expired(keys, prefix, 0)
