"""One way for our modules to reach PostgreSQL from a Prisma DATABASE_URL.

psycopg2 is optional at import time (the module fails with missing_required_lib);
every error message names the database without its password.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_migrations import (
    HISTORY_QUERY,
    classify,
    connection_params,
    describe_target,
    libpq_env,
    redact,
    scan_migrations,
    tls_hint,
)

try:
    import psycopg2
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
else:
    PSYCOPG2_IMPORT_ERROR = None


MEASURE_QUERY = """
SELECT pg_database_size(current_database()),
       COALESCE((SELECT json_agg(t) FROM (
         SELECT c.relname AS name, GREATEST(c.reltuples, 0)::bigint AS rows,
                (xpath('/row/e/text()', query_to_xml(format('SELECT EXISTS (SELECT 1 FROM %I.%I) AS e',
                                                            n.nspname, c.relname), false, true, '')))[1]::text
                  = 'true' AS has_rows,
                -- For the lint: each column's type as PostgreSQL names it, and each index's uniqueness, columns
                -- and the other unique indexes (the primary key's among them) with the same columns.
                (SELECT json_object_agg(a.attname, format_type(a.atttypid, a.atttypmod)) FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
                (SELECT json_object_agg(i.relname, json_build_object('unique', x.indisunique,
                          'columns', (SELECT json_agg(a.attname ORDER BY k.n)
                                      FROM unnest(x.indkey) WITH ORDINALITY AS k (attnum, n)
                                      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum),
                          'covered_by', (SELECT json_agg(j.relname ORDER BY j.relname) FROM pg_index y
                            JOIN pg_class j ON j.oid = y.indexrelid WHERE y.indrelid = x.indrelid
                            AND y.indexrelid <> x.indexrelid AND y.indisunique AND y.indkey::text = x.indkey::text
                            AND y.indexprs IS NULL AND y.indpred IS NULL)))
                   FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid) AS indexes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false))) t), '[]')
"""


# Whether an object a migration creates exists (migration_sql.created_objects' kinds), in the schema given.
PRESENCE = {
    "table": "SELECT to_regclass(format('%%I.%%I', %(schema)s, %(table)s)) IS NOT NULL",
    "index": "SELECT to_regclass(format('%%I.%%I', %(schema)s, %(name)s)) IS NOT NULL",
    "column": "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
    " WHERE table_schema = %(schema)s AND table_name = %(table)s AND column_name = %(name)s)",
    "constraint": "SELECT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
    " WHERE n.nspname = %(schema)s AND c.conname = %(name)s)",
    "type": "SELECT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE n.nspname = %(schema)s AND t.typname = %(name)s)",
}


def present_objects(cur, schema, objects):
    """Those of a migration's objects that exist. One it dropped and made again (replaced) existed before it:
    its presence says nothing of the migration, and it is left out."""
    present = []
    for obj in objects or ():
        if obj.get("kind") not in PRESENCE or obj.get("replaced"):
            continue
        cur.execute(PRESENCE[obj["kind"]], dict(obj, schema=schema))
        if cur.fetchone()[0]:
            present.append(obj)
    return present


class Database:
    """The database a URL names: its libpq parameters, schema and a secret-free target."""

    def __init__(self, module, url, who):
        self.module = module
        self.who = who
        if psycopg2 is None:
            module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
        try:
            self.params, self.schema = connection_params(url)
        except ValueError as exc:
            module.fail_json(msg="%s: %s. Fix DATABASE_URL in the app's .env." % (who, exc))
        self.target = describe_target(self.params)
        self.secrets = [url, self.params.get("password")]

    def connect(self, dbname=None, readonly=False):
        params = dict(self.params)
        if dbname:
            params["dbname"] = dbname
        conn = psycopg2.connect(connect_timeout=10, **params)
        conn.set_session(readonly=readonly, autocommit=True)
        return conn

    def read_history(self):
        """Rows of _prisma_migrations, or None when the table does not exist."""
        from psycopg2 import extras, sql

        conn = self.connect(readonly=True)
        try:
            with conn.cursor(cursor_factory=extras.RealDictCursor) as cur:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL AS present", ('"%s"._prisma_migrations' % self.schema,))
                if not cur.fetchone()["present"]:
                    return None
                cur.execute(sql.SQL(HISTORY_QUERY).format(table=sql.Identifier(self.schema, "_prisma_migrations")))
                return [dict(row) for row in cur.fetchall()]
        finally:
            conn.close()

    def migration_state(self, migrations_dir):
        """The migration folders in migrations_dir compared with this database's _prisma_migrations: what
        prisma_migrate_info and preflight_host_info return (psycopg2.Error when the database cannot be read)."""
        local = scan_migrations(migrations_dir)
        rows = self.read_history()
        state = dict(target=self.target, history_table=rows is not None, local=local)
        state.update(classify(local, rows or []))
        return state

    def measure(self):
        """The database's size in bytes, and each table of its search path with the planner's row estimate
        and whether it holds any row (the check for a row reads one, whatever the table's size)."""
        conn = self.connect(readonly=True)
        try:
            with conn.cursor() as cur:
                cur.execute(MEASURE_QUERY)
                size, tables = cur.fetchone()
                return {"bytes": int(size), "tables": tables}
        finally:
            conn.close()

    def libpq_env(self, dbname=None):
        """The connection as PG* environment variables, for pg_dump and pg_restore (never on a command line):
        every parameter the URL gave, TLS's CA file and mode among them."""
        env = libpq_env(self.params)
        env["PGDATABASE"] = dbname or self.params.get("dbname", "")
        return env

    def redact(self, text):
        return redact(text, self.secrets)

    def said(self, exc):
        """What a connection's error said, its secrets left out, the CA setting named when TLS failed."""
        return tls_hint(self.redact(str(exc).strip()))

    def fail(self, doing, exc, remedy, **result):
        """Fail naming what was being done to which database, the error (redacted) and the fix."""
        self.module.fail_json(
            msg="%s: cannot %s %s: %s. %s" % (self.who, doing, self.target, self.said(exc), remedy),
            **result,
        )
