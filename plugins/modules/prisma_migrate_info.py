#!/usr/bin/python
"""Ansible module: the migration state of a Prisma app's database."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prisma_migrate_info
short_description: Report a Prisma app's migration state, from Prisma and from the database itself
description:
  - Runs C(npx prisma migrate status) in the app directory with the app's C(DATABASE_URL) in its
    environment (Prisma with a config file does not read C(.env)), and reads C(_prisma_migrations)
    directly.
  - Reading the table matters because C(migrate status) stops at the first problem, and reports
    "up to date" when the database has a migration missing locally or a C(migration.sql) was edited
    after it was applied.
  - Reports pending, applied, failed, rolled back and missing-locally migrations, checksum mismatches,
    folders without C(migration.sql) (which C(migrate deploy) fails on with P3015) and near-duplicate
    names, each blocking finding as a sentence that says what to do.
  - Read-only; never reports a change.
options:
  app_dir:
    description: The app's directory, where C(prisma/) and any C(prisma.config.ts) live. Prisma runs here.
    type: path
    required: true
  database_url:
    description:
      - The app's C(DATABASE_URL). Handed to Prisma in its environment and used to read C(_prisma_migrations).
      - Prisma-only query parameters such as C(schema) or C(connection_limit) are understood.
    type: str
    required: true
  migrations_dir:
    description: The migrations folder, relative to O(app_dir) unless absolute.
    type: path
    default: prisma/migrations
  prisma_command:
    description: How to run the Prisma CLI.
    type: list
    elements: str
    default: [npx, prisma]
  run_prisma:
    description:
      - Also run C(prisma migrate status) and report what it says.
      - Without it, only the migration folders and the table are read.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - psycopg2
  - Node.js and the app's dependencies installed, when O(run_prisma=true)
author:
  - migration-automation team
"""

EXAMPLES = r"""
- name: Read the migration state before deploying.
  prisma_migrate_info:
    app_dir: /srv/backend
    database_url: "{{ app_env.DATABASE_URL }}"
  register: migrations
  no_log: true

- name: Stop when the database is not in a state to deploy to.
  ansible.builtin.assert:
    that: migrations.problems | length == 0
    fail_msg: "{{ migrations.problems }}"
"""

RETURN = r"""
status:
  description: What C(prisma migrate status) said, as one word.
  returned: when O(run_prisma=true)
  type: str
  sample: pending
  choices: [up_to_date, pending, failed, diverged, unreachable, unknown]
prisma:
  description: Prisma's exit code and output, with the database URL and password taken out.
  returned: when O(run_prisma=true)
  type: dict
  sample: {rc: 1, stdout: "28 migrations found in prisma/migrations ...", stderr: ""}
target:
  description: The database read, without its password.
  returned: always
  type: str
  sample: backend@db.internal:5432/backend
history_table:
  description: Whether C(_prisma_migrations) exists (false on a database Prisma never migrated).
  returned: always
  type: bool
local:
  description: The migration folders in the order Prisma applies them.
  returned: always
  type: list
  elements: dict
  sample: [{name: 20240115093000_baseline, has_sql: true, checksum: cd5985...}]
applied:
  description: Migrations that finished and were not rolled back.
  returned: always
  type: list
  elements: str
pending:
  description: Folders with a C(migration.sql) that the database has not applied, in the order C(deploy) applies them.
  returned: always
  type: list
  elements: str
failed_migrations:
  description: Migrations that started and neither finished nor were rolled back (Prisma P3009).
  returned: always
  type: list
  elements: dict
  sample: [{name: 20251015_add_index, started_at: "2025-12-04T10:00:00+00:00", logs: "ERROR: ..."}]
rolled_back:
  description: Migrations marked rolled back; C(deploy) applies them again.
  returned: always
  type: list
  elements: str
missing_locally:
  description: Applied migrations that have no folder here.
  returned: always
  type: list
  elements: str
checksum_mismatches:
  description: Applied migrations whose C(migration.sql) changed since.
  returned: always
  type: list
  elements: dict
empty_folders:
  description: Migration folders without C(migration.sql).
  returned: always
  type: list
  elements: str
near_duplicates:
  description: Groups of folder names that differ only in their timestamp.
  returned: always
  type: list
  elements: list
problems:
  description: Each blocking or suspicious finding as a sentence naming the migration and the fix.
  returned: always
  type: list
  elements: str
up_to_date:
  description: Nothing pending, failed, missing, edited or empty.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pg_database import Database, psycopg2
from ansible.module_utils.prisma_migrations import HISTORY_QUERY, classify, parse_status, scan_migrations

if psycopg2 is not None:
    import psycopg2.extras
    from psycopg2 import sql


def read_history(db):
    """Rows of _prisma_migrations, or None when the table does not exist."""
    schema = db.schema
    conn = db.connect(readonly=True)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL AS present", ('"%s"._prisma_migrations' % schema,))
            if not cur.fetchone()["present"]:
                return None
            table = sql.Identifier(schema, "_prisma_migrations")
            cur.execute(sql.SQL(HISTORY_QUERY).format(table=table))
            return [dict(row) for row in cur.fetchall()]
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_dir=dict(type="path", required=True),
            database_url=dict(type="str", required=True, no_log=True),
            migrations_dir=dict(type="path", default="prisma/migrations"),
            prisma_command=dict(type="list", elements="str", default=["npx", "prisma"]),
            run_prisma=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    app_dir = module.params["app_dir"]
    url = module.params["database_url"]
    migrations_dir = os.path.join(app_dir, module.params["migrations_dir"])
    db = Database(module, url, "prisma_migrate_info")
    target = db.target

    if not os.path.isdir(migrations_dir):
        module.fail_json(
            msg="prisma_migrate_info: no migrations folder at %s. Check app_dir, and that the code is checked out."
            % migrations_dir,
            target=target,
        )
    local = scan_migrations(migrations_dir)

    try:
        rows = read_history(db)
    except psycopg2.Error as exc:
        db.fail(
            "read the migration history of",
            exc,
            "Check that this host reaches the database and that DATABASE_URL's credentials are right.",
            target=target,
        )

    result = dict(changed=False, target=target, history_table=rows is not None, local=local)
    result.update(classify(local, rows or []))

    if module.params["run_prisma"]:
        rc, out, err = module.run_command(
            module.params["prisma_command"] + ["migrate", "status"],
            cwd=app_dir,
            environ_update={"DATABASE_URL": url},
        )
        out, err = db.redact(out), db.redact(err)
        result["status"] = parse_status(rc, out, err)
        result["prisma"] = dict(rc=rc, stdout=out, stderr=err)
        if result["status"] == "up_to_date" and not result["up_to_date"]:
            result["problems"].append(
                "prisma migrate status says the database is up to date, but reading _prisma_migrations shows"
                " otherwise (see the findings above): Prisma stops at the first problem and misses these."
            )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
