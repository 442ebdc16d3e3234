"""Filters for the migration playbooks: the app's .env, and Prisma URLs as libpq parameters."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

from ansible.errors import AnsibleFilterError

# The URL and .env logic lives with the modules; controller-side plugins reuse it.
from ansible_collections.prismaguard.migrate.plugins.module_utils import (
    migration_sql,
    prisma_datasource,
    prisma_migrations,
)
from ansible_collections.prismaguard.migrate.plugins.module_utils.dotenv_file import dotenv


def missing_env(values, required):
    """The required names (shell-style patterns such as SPACES_* allowed) that are absent or empty."""
    missing = []
    for pattern in required:
        regex = re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")
        if not any(regex.match(name) and str(value).strip() for name, value in values.items()):
            missing.append(pattern)
    return missing


def preflight_app_problems(host, app_dir, missing, env=None):
    """What keeps an app host from being deployed to, each with its fix: no checkout, local changes, settings
    missing from .env (names only), migrations pointed at a connection pool, a database it cannot read. `host`
    is what preflight_host_info returned, `env` the .env it read."""
    problems = []
    if not host.get("checkout"):
        problems.append("%s is not a git checkout. Set app_dir for this host, or clone the app there first." % app_dir)
    if host.get("local_changes"):
        problems.append(
            "%s has local changes to tracked files (%s), which the deploy would not overwrite. Commit or discard"
            " them on this host first." % (app_dir, ", ".join(host["local_changes"]))
        )
    if missing:
        what = "is missing or unreadable" if host.get("dotenv") is None else "lacks " + ", ".join(missing)
        problems.append("%s/.env %s. Add them to the .env on this host (values are never printed)." % (app_dir, what))
    pool = prisma_datasource.pool_problem(env or {}, host.get("datasource") or {}) if not missing else None
    if pool:
        problems.append(pool)
    if host.get("database_error") is not None:
        problems.append(
            "cannot read the database its .env names: %s. Check that this host reaches the database and the"
            " credentials in DATABASE_URL." % host["database_error"]
        )
    return problems


def pg_params(url):
    """A Prisma DATABASE_URL as libpq parameters (host, port, user, password, dbname, sslmode)."""
    try:
        return prisma_migrations.connection_params(url)[0]
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def pg_libpq_env(url):
    """A URL's TLS and other settings as libpq's PG* variables, for a task whose pg_dump or psql reads only
    host, port, user and database from its options (its password left out: the module passes it)."""
    env = prisma_migrations.libpq_env(pg_params(url))
    env.pop("PGPASSWORD", None)
    return env


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


def migration_objects_map(migrations):
    """{name: what it creates} for migrations [{name, sql}] (those without SQL left out)."""
    return {m["name"]: migration_objects(m["sql"]) for m in migrations if m.get("sql") is not None}


def migration_expect(objects):
    """The pg_schema_assert expectation that holds when a migration's objects exist as it makes them."""
    return migration_sql.expectation(objects)


def migration_undo_plan(names, sources, failed=()):
    """How to undo the migrations `names`, newest first, in one transaction.

    `sources` are the migrations' texts ([{name, sql, down}], as preflight_host_info reads a revision or
    slurped_migrations reads a checkout); `failed` names those that failed part-way. Out:
    {migrations: [{name, statements, dropped, failed, source}], refused: [{name, why}], refused_msg}.

    A migration that succeeded is undone by its down.sql, else by down SQL generated when it only
    creates things. One that failed part-way is undone by the generated drops of what of it exists
    (IF EXISTS): a supplied down.sql assumes all of it ran. What cannot be undone so is refused.
    """
    by_name = {s["name"]: s for s in sources}
    plan = {"migrations": [], "refused": []}
    for name in names:
        source = by_name.get(name) or {}
        up, is_failed = source.get("sql"), name in failed
        if not up:
            plan["refused"].append({"name": name, "why": "its migration.sql was not found"})
            continue
        try:
            blocking = migration_sql.not_invertible(up)
            objects = migration_sql.created_objects(up)
        except Exception as exc:  # pglast's ParseError, or anything it raises on odd input
            plan["refused"].append({"name": name, "why": "its migration.sql does not parse: %s" % exc})
            continue
        if source.get("down") and not is_failed:
            statements, origin = [source["down"]], "down.sql"
        elif blocking:
            why = "it does more than create things (%s)" % "; ".join(s[:80] for s in blocking[:3])
            plan["refused"].append({"name": name, "why": why + ("" if is_failed else " and has no down.sql")})
            continue
        else:
            statements = migration_sql.down_statements(objects, if_exists=is_failed)
            origin = "generated from what of it exists" if is_failed else "generated"
        plan["migrations"].append(
            {
                "name": name,
                "statements": statements,
                "dropped": migration_dropped_data("\n".join(statements)),
                "failed": is_failed,
                # What a failed one creates: the module drops only those that exist (and locks nothing else).
                "objects": objects if is_failed else None,
                "source": origin,
            }
        )
    plan["refused_msg"] = "; ".join("%s: %s" % (r["name"], r["why"]) for r in plan["refused"])
    return plan


def slurped_migrations(results):
    """[{name, sql, down}] from a slurp loop over [name, file] pairs (file migration.sql or down.sql)."""
    import base64

    out = {}
    for result in results:
        name, file = result["item"]
        entry = out.setdefault(name, {"name": name, "sql": None, "down": None})
        if result.get("content") is not None:
            entry["sql" if file == "migration.sql" else "down"] = base64.b64decode(result["content"]).decode("utf-8")
    return list(out.values())


def migration_dropped_data(sql_text):
    """Tables and columns a SQL text drops or truncates: where data would be lost."""
    try:
        return migration_sql.dropped_data(sql_text)
    except Exception as exc:  # pglast's ParseError, or anything it raises on odd input
        raise AnsibleFilterError("migration_dropped_data: the SQL does not parse: %s" % exc) from exc


def migration_tree_problems(paths, allow_near_duplicates=(), migrations=None):
    """Known issues (folders without migration.sql, near-duplicate names) in a revision's file list."""
    return prisma_migrations.tree_problems(paths, allow_near_duplicates=allow_near_duplicates, migrations=migrations)


def backup_offsite_expired(keys, prefix, keep):
    """The off-site objects to delete: every dump directly under `prefix` (backup_<UTC time>.dump, so by name is
    oldest first) but the newest `keep`, each with its .sha256. Anything else under the prefix is not ours: kept."""
    if int(keep) < 1:
        raise AnsibleFilterError("backup_offsite_keep is %s: keep at least the dump just sent (1 or more)." % keep)
    dumps = sorted(k for k in keys if re.fullmatch(re.escape(prefix) + r"backup_[0-9_]+\.dump", k))
    expired = dumps[: -int(keep)]
    present = set(keys)
    return [name for dump in expired for name in (dump, dump + ".sha256") if name in present]


class FilterModule:
    def filters(self):
        return {
            "backup_offsite_expired": backup_offsite_expired,
            "dotenv": dotenv,
            "missing_env": missing_env,
            "prisma_url_variables": prisma_datasource.url_variables,
            "preflight_app_problems": preflight_app_problems,
            "pg_params": pg_params,
            "pg_target": pg_target,
            "pg_libpq_env": pg_libpq_env,
            "pg_url_with_db": pg_url_with_db,
            "migration_objects": migration_objects,
            "migration_objects_map": migration_objects_map,
            "migration_expect": migration_expect,
            "migration_dropped_data": migration_dropped_data,
            "migration_undo_plan": migration_undo_plan,
            "slurped_migrations": slurped_migrations,
            "migration_tree_problems": migration_tree_problems,
        }
