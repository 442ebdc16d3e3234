#!/usr/bin/python
"""Ansible module: assert a PostgreSQL schema holds the tables, columns, indexes and keys declared."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_schema_assert
short_description: Assert that a database's schema has the declared tables, columns, indexes and foreign keys
description:
  - Reads C(pg_catalog) and compares it with expectations declared in YAML, as the runbook's
    "verify new tables exist" step should have, namely every table, each column's data type and
    nullability, indexes (by name, or by columns and uniqueness) and foreign keys (by name, or by
    columns and the table and columns they reference).
  - Extra tables, columns and indexes are allowed; only what is declared is asserted.
  - Fails with a readable diff when anything declared is missing or different; never changes anything.
options:
  database_url:
    type: str
    required: true
  expect:
    description:
      - The expectations. C(tables) maps a table name to C(columns) (name to a type such as
        C(text) or C(timestamp(3)), or to a dict with C(type) and C(nullable)), C(indexes) (index
        names, or dicts with C(columns) and C(unique)) and C(foreign_keys) (constraint names, or
        dicts with C(columns) and C(references) written C(table) or C(table(column, ...))).
      - A table mapped to nothing is asserted to exist.
    type: dict
    required: true
  schema:
    description: The schema to read. Defaults to the URL's C(schema) parameter, else C(public).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - psycopg2
extends_documentation_fragment:
  - prismaguard.migrate.database
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Assert the verification service's tables after the migration.
  prismaguard.migrate.pg_schema_assert:
    database_url: "{{ app_env.DATABASE_URL }}"
    expect:
      tables:
        verification_requests:
          columns:
            id: text
            status: {type: text, nullable: false}
            created_at: timestamp(3)
          indexes: [verification_requests_status_idx]
          foreign_keys:
            - {columns: [customer_id], references: customers(id)}
        provider_logs:
  no_log: true
"""

RETURN = r"""
mismatches:
  description: Each difference between the expectations and the database.
  returned: always
  type: list
  elements: dict
  sample: [{table: users, kind: column_type, name: kyc_status, expected: text, actual: "character varying(20)"}]
diff:
  description: The differences as lines, C(-) for missing and C(~) for different.
  returned: always
  type: list
  elements: str
  sample: ["- table provider_logs: missing", "~ column users.kyc_status: expected text, found character varying(20)"]
checked:
  description: How many tables were asserted.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, psycopg2
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_schema import (
    COLUMNS_QUERY,
    FOREIGN_KEYS_QUERY,
    INDEXES_QUERY,
    TABLES_QUERY,
    compare,
)


def read_catalog(db, schema):
    conn = db.connect(readonly=True)
    try:
        with conn.cursor() as cur:
            args = {"schema": schema}
            cur.execute(TABLES_QUERY, args)
            tables = {row[0] for row in cur.fetchall()}
            columns, indexes, fks = {}, {}, {}
            cur.execute(COLUMNS_QUERY, args)
            for table, col, typ, nullable in cur.fetchall():
                columns.setdefault(table, {})[col] = (typ, nullable)
            cur.execute(INDEXES_QUERY, args)
            for table, name, unique, cols in cur.fetchall():
                indexes.setdefault(table, []).append((name, unique, list(cols)))
            cur.execute(FOREIGN_KEYS_QUERY, args)
            for table, name, ref, cols, ref_cols in cur.fetchall():
                fks.setdefault(table, []).append((name, ref, list(cols), list(ref_cols)))
        return dict(tables=tables, columns=columns, indexes=indexes, foreign_keys=fks)
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database_url=dict(type="str", required=True, no_log=True),
            expect=dict(type="dict", required=True),
            schema=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    db = Database(module, module.params["database_url"], "pg_schema_assert")
    schema = module.params["schema"] or db.schema
    target = db.target
    try:
        actual = read_catalog(db, schema)
    except psycopg2.Error as exc:
        db.fail("read the schema of", exc, "Check that this host reaches the database.")
    try:
        mismatches = compare(module.params["expect"], actual)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        module.fail_json(msg="pg_schema_assert: the expectations are malformed: %s" % exc)
    diff = [m.pop("line") for m in mismatches]
    result = dict(
        changed=False, mismatches=mismatches, diff=diff, checked=len(module.params["expect"].get("tables") or {})
    )
    if mismatches:
        module.fail_json(
            msg="Schema of %s (schema %s) does not match the expectations:\n%s" % (target, schema, "\n".join(diff)),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
