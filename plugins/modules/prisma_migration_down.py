#!/usr/bin/python
"""Ansible module: undo Prisma migrations, newest first, with their down SQL, in one transaction."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prisma_migration_down
short_description: Undo Prisma migrations, newest first, with their down SQL and history rows, in one transaction
description:
  - Undoes the migrations given, newest first, in one transaction; any error, or a refusal, changes nothing.
  - A migration that I(succeeded) is undone by its down statements (its C(down.sql), or what the
    C(migration_undo_plan) filter generates for a migration that only creates things) and its rows are removed
    from C(_prisma_migrations).
  - A migration that I(failed) part-way (O(migrations[].failed=true)) is undone by drops of what of it exists,
    and its row is marked rolled back, which is what C(prisma migrate resolve --rolled-back) does, here in the
    same transaction as the drops.
  - Refuses when the down SQL would drop data (rows in a dropped table; values in a dropped column other than
    NULL and the column's default), naming what and how much, unless O(allow_data_loss=true). Data there was
    written after the migration; undoing it would lose writes.
  - Refuses unless the list holds every migration applied after the oldest one in it, newest first.
options:
  database_url:
    type: str
    required: true
  migrations:
    description: The migrations to undo, newest first.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The migration's folder name.
        type: str
        required: true
      statements:
        description: The down SQL, as one or more statements or scripts.
        type: list
        elements: str
        required: true
      dropped:
        description:
          - What the down SQL drops that may hold data (C(migration_dropped_data) filter), each with C(kind) table
            or column, C(table), and C(name) for a column.
        type: list
        elements: dict
        default: []
      failed:
        description: The migration failed part-way (Prisma's P3009) rather than succeeded.
        type: bool
        default: false
      objects:
        description:
          - For a migration that I(failed), what it creates (C(kind) table, column, index, constraint or type, with
            C(table) and C(name)). Given, only the drops of those that exist are run, so a migration that failed
            before it made anything is undone without a lock on its tables (an C(ALTER TABLE IF EXISTS ... DROP
            COLUMN IF EXISTS) takes ACCESS EXCLUSIVE even when the column is not there).
        type: list
        elements: dict
      source:
        description: Where the down SQL came from (C(down.sql), generated), for the caller's report; not used.
        type: str
  allow_data_loss:
    description: Run even when a dropped table or column holds data.
    type: bool
    default: false
  lock_timeout:
    description:
      - How long to wait for the locks on the tables it drops from or drops (PostgreSQL's C(lock_timeout)). They
        are taken before the data is counted, so no write lands between the count and the drop; past this the
        undo fails, changing nothing, rather than queueing the app's queries behind it.
    type: str
    default: 5s
  lock_retries:
    description:
      - How many times to try the undo again when a lock was not had within O(lock_timeout) (SQLSTATE 55P03); the
        transaction changed nothing, and the app's queries go on meanwhile. Each retry waits twice as long as the
        one before (1 s first, jittered).
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    details: Checks the history and counts the data that would be dropped; runs nothing.
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
- name: Undo the last migration with its down.sql.
  prismaguard.migrate.prisma_migration_down:
    database_url: "{{ app_env.DATABASE_URL }}"
    migrations:
      - name: 20251204_consolidate_verification_service
        statements: ["{{ lookup('ansible.builtin.file', 'down.sql') }}"]
        dropped: "{{ lookup('ansible.builtin.file', 'down.sql') | migration_dropped_data }}"
  no_log: true
"""

RETURN = r"""
undone:
  description: The migrations undone (or that would be, in check mode), newest first.
  returned: always
  type: list
  elements: str
data:
  description: Rows (tables) or non-null values (columns) the down SQL drops, by C(table) or C(table.column).
  returned: always
  type: dict
  sample: {verification_requests: 0, customers.kyc_status: 200}
refused_msg:
  description: Why the undo was refused (data written since in what it drops), changing nothing; empty otherwise.
  returned: always
  type: str
statements:
  description: The statements run (or that would run, in check mode), in order.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.migration_sql import down_statements
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, present_objects, psycopg2
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_migrations import jitter, retry_delay

if psycopg2 is not None:
    from psycopg2 import sql

LATEST = (
    "SELECT DISTINCT ON (migration_name) id, migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL,"
    " started_at FROM {} ORDER BY migration_name, started_at DESC"
)


def existing_tables(cur, schema, dropped):
    """The tables of the dropped objects that exist (a failed migration may not have made them)."""
    tables = sorted({obj["table"] for obj in dropped})
    cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name = ANY(%s)",
        (schema, tables),
    )
    return sorted(r[0] for r in cur.fetchall())


def count_data(cur, schema, dropped, tables):
    """Rows of each dropped table; values of each dropped column other than NULL and the column's default.
    Only what exists is counted: a migration that failed may have made none of it."""
    data = {}
    for obj in dropped:
        if obj["table"] not in tables:
            continue
        table = sql.Identifier(schema, obj["table"])
        if obj.get("kind") == "column":
            cur.execute(
                "SELECT column_default FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s AND column_name = %s",
                (schema, obj["table"], obj["name"]),
            )
            found = cur.fetchone()
            if found is None:
                continue
            column = sql.Identifier(obj["name"])
            query = sql.SQL("SELECT count(*) FROM {} WHERE {} IS NOT NULL").format(table, column)
            if found[0]:
                # The default comes from the catalog; values it filled in are not anyone's data.
                query += sql.SQL(" AND {} IS DISTINCT FROM ({})").format(column, sql.SQL(found[0]))
            cur.execute(query)
            data["%s.%s" % (obj["table"], obj["name"])] = cur.fetchone()[0]
        else:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            data[obj["table"]] = cur.fetchone()[0]
    return data


KEEPS = ("table", "column")  # what holds data


def existing_drops(cur, schema, objects):
    """The drops of those of a failed migration's objects that exist, and the tables and columns among them
    (whose data is counted first): none when nothing of it is left, and then nothing of it is locked."""
    present = present_objects(cur, schema, objects)
    dropped = [{"kind": o["kind"], "table": o["table"], "name": o.get("name")} for o in present if o["kind"] in KEEPS]
    return down_statements(present, if_exists=True), dropped


def check(module, latest, migrations, target):
    """Refuse what cannot be undone as asked: not applied, not failed as said, not newest first, or a gap."""
    for m in migrations:
        row = latest.get(m["name"])
        if row is None or row["rolled_back"]:
            module.fail_json(
                msg="prisma_migration_down: %s is not applied in %s; nothing to undo." % (m["name"], target)
            )
        if m["failed"] and row["finished"]:
            module.fail_json(msg="prisma_migration_down: %s succeeded; it was named as failed." % m["name"])
        if not m["failed"] and not row["finished"]:
            module.fail_json(
                msg="prisma_migration_down: %s failed rather than succeeded: undo it as failed (drops of what of it"
                " exists; the rollback does that), or restore a backup." % m["name"]
            )
    starts = [latest[m["name"]]["started_at"] for m in migrations]
    if starts != sorted(starts, reverse=True):
        module.fail_json(msg="prisma_migration_down: undo newest first: %s." % ", ".join(m["name"] for m in migrations))
    named = {m["name"] for m in migrations}
    newer = sorted(
        (r["started_at"], n)
        for n, r in latest.items()
        if n not in named and r["finished"] and not r["rolled_back"] and r["started_at"] > min(starts)
    )
    if newer:
        module.fail_json(
            msg="prisma_migration_down: %s is not the newest migration applied: undo %s first."
            % (migrations[-1]["name"], ", ".join(n for _unused, n in reversed(newer)))
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database_url=dict(type="str", required=True, no_log=True),
            migrations=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    statements=dict(type="list", elements="str", required=True),
                    dropped=dict(type="list", elements="dict", default=[]),
                    failed=dict(type="bool", default=False),
                    objects=dict(type="list", elements="dict"),
                    source=dict(type="str"),
                ),
            ),
            allow_data_loss=dict(type="bool", default=False),
            lock_timeout=dict(type="str", default="5s"),
            lock_retries=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    migrations = p["migrations"]
    db = Database(module, p["database_url"], "prisma_migration_down")
    names = ", ".join(m["name"] for m in migrations)
    statements = [s for m in migrations for s in m["statements"]]
    result = dict(changed=False, undone=[], statements=statements, data={}, refused_msg="")
    if not migrations:
        module.exit_json(**result)
    history = sql.Identifier(db.schema, "_prisma_migrations")
    attempt = 0
    while not undo(module, db, p, migrations, history, names, result, last=attempt >= p["lock_retries"]):
        attempt += 1
        time.sleep(retry_delay(attempt, 1.0, 30.0, jitter()))
    module.exit_json(**result)


def undo(module, db, p, migrations, history, names, result, last):
    """The undo in one transaction: True when done, False when a lock was not had in time (nothing changed)
    and another try is left."""
    try:
        conn = db.connect()
    except psycopg2.Error as exc:
        db.fail("connect to", exc, "Check DATABASE_URL.")
    try:
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute(sql.SQL(LATEST).format(history))
            latest = {
                r[1]: {"id": r[0], "finished": r[2], "rolled_back": r[3], "started_at": r[4]} for r in cur.fetchall()
            }
            check(module, latest, migrations, db.target)
            # Every lock within lock_timeout, so the undo never queues production's queries behind it for long.
            cur.execute("SELECT set_config('lock_timeout', %s, true)", (p["lock_timeout"],))
            for m in migrations:
                if m["failed"] and m["objects"] is not None:
                    m["statements"], m["dropped"] = existing_drops(cur, db.schema, m["objects"])
            result["statements"] = [s for m in migrations for s in m["statements"]]
            dropped = [d for m in migrations for d in m["dropped"]]
            tables = existing_tables(cur, db.schema, dropped)
            if tables:
                # Locked before counting, so no write lands between the count and the drop.
                cur.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                        sql.SQL(", ").join(sql.Identifier(db.schema, t) for t in tables)
                    )
                )
            result["data"] = count_data(cur, db.schema, dropped, tables)
            at_risk = {what: n for what, n in result["data"].items() if n}
            if at_risk and not p["allow_data_loss"]:
                result["refused_msg"] = "undoing %s would drop data written since (%s)" % (
                    names,
                    ", ".join("%s: %d" % item for item in sorted(at_risk.items())),
                )
                module.fail_json(
                    msg="prisma_migration_down: %s. Nothing was changed. Keep the schema (the old code runs on it), or"
                    " back it up and set allow_data_loss (rollback_allow_data_loss=true) to go ahead."
                    % result["refused_msg"],
                    **result,
                )
            result["undone"] = [m["name"] for m in migrations]
            if module.check_mode:
                conn.rollback()
                result["changed"] = True
                return True
            for m in migrations:
                for statement in m["statements"]:
                    cur.execute(statement)
                if m["failed"]:
                    cur.execute(
                        sql.SQL("UPDATE {} SET rolled_back_at = now() WHERE id = %s").format(history),
                        (latest[m["name"]]["id"],),
                    )
                else:
                    cur.execute(sql.SQL("DELETE FROM {} WHERE migration_name = %s").format(history), (m["name"],))
        conn.commit()
        result["changed"] = True
    except psycopg2.Error as exc:
        conn.rollback()
        result["undone"] = []
        if exc.pgcode == "55P03" and not last:
            return False
        db.fail("undo %s in" % names, exc, "Nothing was changed (one transaction).", **result)
    finally:
        conn.close()
    return True


if __name__ == "__main__":
    main()
