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
    type: str
    required: true
  datasource_env:
    description:
      - The variables Prisma's CLI reads its URLs from (the datasource's C(url) and C(directUrl)). Each is set to
        O(database_url) in Prisma's environment, so Prisma works on that database whatever the C(.env) names.
      - Not given, they are read where Prisma reads them (C(prisma.config.ts)'s datasource, else C(url) and
        C(directUrl) in C(schema.prisma)), C(DATABASE_URL) when neither names one.
    type: list
    elements: str
  migrations_dir:
    description: The migrations folder, relative to O(app_dir) unless absolute.
    type: path
    default: prisma/migrations
  prisma_command:
    description: How to run the Prisma CLI.
    type: list
    elements: str
    default: [npx, prisma]
  objects:
    description:
      - What each pending migration creates (migration name to a list of objects with C(kind) table, column,
        index, constraint or type, C(table) and C(name)), as the C(migration_objects) filter reads it from
        C(migration.sql).
      - Each is looked up in the database; a pending migration whose objects exist was applied by hand
        ("already exists" on deploy), and is reported with the way out.
    type: dict
    default: {}
  pending:
    description:
      - The migrations whose O(objects) are looked up, instead of those pending in the folder (the plan looks up
        a release that is not checked out yet, its migrations read from the pinned revision, in C(--check) too).
      - Those the database has applied, or holds as failed (reported as such), are left out.
    type: list
    elements: str
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
  platform:
    support: full
    platforms: posix
requirements:
  - psycopg2
  - Node.js and the app's dependencies installed, when O(run_prisma=true)
extends_documentation_fragment:
  - prismaguard.migrate.database
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Read the migration state before deploying.
  prismaguard.migrate.prisma_migrate_info:
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
datasource_env:
  description: The variables Prisma reads its URLs from, as given in O(datasource_env) or found in the app's files.
  returned: success
  type: list
  elements: str
  sample: [DIRECT_URL, DATABASE_URL]
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
pending_sql:
  description:
    - The C(migration.sql) of each pending migration, by name, read in the same pass as the folders.
    - What the caller parses to find what each one creates (see O(objects)), without one read per migration.
  returned: always
  type: dict
  sample: {20251204_add_verification: "CREATE TABLE \"verification\" (...);"}
empty_folders:
  description: Migration folders without C(migration.sql).
  returned: always
  type: list
  elements: str
near_duplicates:
  description:
    - Groups of folder names that differ only in their timestamp and hold the same SQL (or one holds none), one
      change committed twice.
  returned: always
  type: list
  elements: list
problems:
  description: Each blocking or suspicious finding as a sentence naming the migration and the fix.
  returned: always
  type: list
  elements: str
looked_up:
  description: The pending migrations whose objects O(objects) named and the database was asked about.
  returned: always
  type: list
  elements: str
hand_applied:
  description:
    - Pending migrations some or all of whose objects already exist (applied by hand), each with what is
      C(present) and C(missing), whether it is C(complete), and the C(problem) sentence.
  returned: always
  type: dict
  sample:
    20251204_add_verification_requests:
      present: [table verification_requests]
      missing: []
      complete: true
      problem: "20251204_add_verification_requests is pending, but everything it creates already exists ..."
up_to_date:
  description: Nothing pending, failed, missing, edited or empty.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import (
    PRESENCE,
    Database,
    present_objects,
    psycopg2,
)
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_datasource import (
    read_datasource,
    url_variables,
)
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_migrations import parse_status


def label(obj):
    if obj["kind"] == "table":
        return "table %s" % obj["table"]
    if obj["kind"] == "column":
        return "column %s.%s" % (obj["table"], obj["name"])
    return "%s %s" % (obj["kind"], obj["name"])


def hand_applied(db, objects, pending):
    """For each pending migration, which of its objects the database already has."""
    found = {}
    conn = db.connect(readonly=True)
    try:
        with conn.cursor() as cur:
            for name in pending:
                # A replaced object existed before the migration: its presence proves nothing.
                looked = [o for o in objects.get(name) or () if o.get("kind") in PRESENCE and not o.get("replaced")]
                found_here = present_objects(cur, db.schema, looked)
                present = [label(o) for o in found_here]
                missing = [label(o) for o in looked if o not in found_here]
                if present:
                    found[name] = dict(present=present, missing=missing, complete=not missing)
    finally:
        conn.close()
    return found


def hand_applied_problems(found):
    """Each migration's sentence, also kept in its entry (C(problem)) for a caller that lets some through."""
    out = []
    for name, state in sorted(found.items()):
        if state["complete"]:
            out.append(
                "%s is pending, but everything it creates already exists (%s): it was applied by hand, and deploy"
                " would fail with 'already exists'. If its schema assertion passes, baseline it with `prisma migrate"
                " resolve --applied %s` (migration_status_baseline: true checks and does that)."
                % (name, ", ".join(state["present"]), name)
            )
        else:
            out.append(
                "%s is pending, but part of what it creates already exists (present: %s; missing: %s): finish or"
                " undo that by hand first; deploy would fail with 'already exists'."
                % (name, ", ".join(state["present"]), ", ".join(state["missing"]))
            )
        state["problem"] = out[-1]
    return out


def read_sql(migrations_dir, names):
    """The migration.sql of each named folder, as text."""
    out = {}
    for name in names:
        with open(os.path.join(migrations_dir, name, "migration.sql"), encoding="utf-8", errors="replace") as handle:
            out[name] = handle.read()
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_dir=dict(type="path", required=True),
            database_url=dict(type="str", required=True, no_log=True),
            migrations_dir=dict(type="path", default="prisma/migrations"),
            datasource_env=dict(type="list", elements="str"),
            prisma_command=dict(type="list", elements="str", default=["npx", "prisma"]),
            objects=dict(type="dict", default={}),
            run_prisma=dict(type="bool", default=True),
            pending=dict(type="list", elements="str"),
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
    try:
        result = dict(changed=False, **db.migration_state(migrations_dir))
    except psycopg2.Error as exc:
        db.fail(
            "read the migration history of",
            exc,
            "Check that this host reaches the database and that DATABASE_URL's credentials are right.",
            target=target,
        )

    result["pending_sql"] = read_sql(migrations_dir, result["pending"])
    result["datasource_env"] = module.params["datasource_env"] or url_variables(read_datasource(app_dir))
    result["hand_applied"] = {}
    lookup = result["pending"]
    if module.params["pending"] is not None:
        done = set(result["applied"]) | {f["name"] for f in result["failed_migrations"]}
        lookup = [n for n in module.params["pending"] if n not in done]
    result["looked_up"] = [name for name in lookup if name in module.params["objects"]]
    if module.params["objects"] and lookup:
        try:
            result["hand_applied"] = hand_applied(db, module.params["objects"], lookup)
        except psycopg2.Error as exc:
            db.fail("look up the pending migrations' objects in", exc, "Check DATABASE_URL.", target=target)
        result["problems"].extend(hand_applied_problems(result["hand_applied"]))

    if module.params["run_prisma"]:
        rc, out, err = module.run_command(
            module.params["prisma_command"] + ["migrate", "status"],
            cwd=app_dir,
            environ_update=dict.fromkeys(result["datasource_env"], url),
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
