"""Filters for the migration playbooks: the app's .env, and Prisma URLs as libpq parameters."""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import quote, urlsplit, urlunsplit

from ansible.errors import AnsibleFilterError

# The URL and .env logic lives with the modules; controller-side plugins reuse it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils"))
import migration_sql  # noqa: E402
import prisma_migrations  # noqa: E402
from dotenv_file import dotenv  # noqa: E402


def missing_env(values, required):
    """The required names (shell-style patterns such as SPACES_* allowed) that are absent or empty."""
    missing = []
    for pattern in required:
        regex = re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")
        if not any(regex.match(name) and str(value).strip() for name, value in values.items()):
            missing.append(pattern)
    return missing


def pg_params(url):
    """A Prisma DATABASE_URL as libpq parameters (host, port, user, password, dbname, sslmode)."""
    try:
        return prisma_migrations.connection_params(url)[0]
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def pg_target(url):
    """A secret-free name for the database a URL points at: user@host:port/dbname."""
    return prisma_migrations.describe_target(pg_params(url))


def pg_url_with_db(url, dbname):
    """The same DATABASE_URL pointing at another database on the same server (a rehearsal's copy)."""
    pg_params(url)  # the same validation and message
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))


def migration_objects(sql_text):
    """What a migration.sql creates (tables with column types, columns, indexes, constraints, enum types)."""
    try:
        return migration_sql.created_objects(sql_text)
    except ValueError as exc:
        raise AnsibleFilterError("migration_objects: %s" % exc) from exc


def migration_expect(objects):
    """The pg_schema_assert expectation that holds when a migration's objects exist as it makes them."""
    return migration_sql.expectation(objects)


def migration_down(sql_text):
    """Down SQL for a migration that only creates things: {statements, not_invertible}."""
    try:
        return {
            "statements": migration_sql.down_statements(migration_sql.created_objects(sql_text)),
            "not_invertible": migration_sql.not_invertible(sql_text),
        }
    except ValueError as exc:
        raise AnsibleFilterError("migration_down: %s" % exc) from exc


def migration_dropped_data(sql_text):
    """Tables and columns a SQL text drops or truncates: where data would be lost."""
    try:
        return migration_sql.dropped_data(sql_text)
    except Exception as exc:  # pglast's ParseError, or anything it raises on odd input
        raise AnsibleFilterError("migration_dropped_data: the SQL does not parse: %s" % exc) from exc


def migration_tree_problems(paths, allow_near_duplicates=()):
    """Known issues (folders without migration.sql, near-duplicate names) in a revision's file list."""
    return prisma_migrations.tree_problems(paths, allow_near_duplicates=allow_near_duplicates)


class FilterModule:
    def filters(self):
        return {
            "dotenv": dotenv,
            "missing_env": missing_env,
            "pg_params": pg_params,
            "pg_target": pg_target,
            "pg_url_with_db": pg_url_with_db,
            "migration_objects": migration_objects,
            "migration_expect": migration_expect,
            "migration_down": migration_down,
            "migration_dropped_data": migration_dropped_data,
            "migration_tree_problems": migration_tree_problems,
        }
