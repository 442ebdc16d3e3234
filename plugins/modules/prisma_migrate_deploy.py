"""Ansible module: run `prisma migrate deploy` and say, from _prisma_migrations, what it applied and what failed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prisma_migrate_deploy
short_description: Run prisma migrate deploy; return what it applied and what failed, read from _prisma_migrations
description:
  - Runs C(prisma migrate deploy) in the app's folder (never C(prisma db push), which bypasses the history).
  - What was applied and what failed is read from C(_prisma_migrations) before and after the deploy, not from
    Prisma's printed tree, whose format changes between versions and which a migration folder named with
    C(-) or C(.) would escape.
  - On failure, names the migration and quotes the database's own error (SQLSTATE, message, DETAIL, HINT)
    from Prisma's output or, failing that, from the log Prisma wrote in the migration's row.
  - With O(expected), fails unless exactly those migrations were applied, in that order.
options:
  app_dir:
    description: The app's folder (where C(prisma/) and C(node_modules/) are).
    type: path
    required: true
  database_url:
    description: The database to migrate (Prisma's C(DATABASE_URL)).
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
  prisma_command:
    description: How to call the Prisma CLI.
    type: list
    elements: str
    default: [npx, prisma]
  environment:
    description: More environment variables for the Prisma CLI (the O(datasource_env) are set from O(database_url)).
    type: dict
    default: {}
  expected:
    description: The migrations the deploy must apply, in order (the status step's pending list). Empty skips the check.
    type: list
    elements: str
    default: []
  history_wait:
    description:
      - Seconds to keep trying to read C(_prisma_migrations) after the deploy when the database does not
        answer (a deploy can fail because the server restarted). Past that, the migration under way is the
        last one Prisma printed as applying, and the outcome is unknown.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details: Reads the history and returns what is pending as RV(applied); runs nothing.
  diff_mode:
    support: none
requirements:
  - psycopg2
  - the Prisma CLI in the app's node_modules
author:
  - migration-automation team
"""

EXAMPLES = r"""
- name: Apply the pending migrations.
  prisma_migrate_deploy:
    app_dir: /srv/backend
    database_url: "{{ preflight_database_url }}"
    expected: "{{ migration_status_result.pending }}"
  become: true
  become_user: backend
  no_log: true
  register: deploy
"""

RETURN = r"""
applied:
  description: Migrations this deploy finished, in the order Prisma applied them (in check mode, those pending).
  returned: always
  type: list
  elements: str
failed_migrations:
  description: Migrations this deploy left failed, each with C(name) and the C(logs) Prisma wrote in its row.
  returned: always
  type: list
  elements: dict
outcome_known:
  description: Whether the history was read after the deploy; false when the database did not answer in time.
  returned: always
  type: bool
error:
  description: The database's error (or Prisma's) when the deploy failed; empty otherwise.
  returned: always
  type: str
seconds:
  description: How long the deploy ran.
  returned: always
  type: float
stdout:
  description: What Prisma printed, the database URL redacted.
  returned: always
  type: str
stderr:
  description: Prisma's errors, the database URL redacted.
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pg_database import Database, psycopg2
from ansible.module_utils.prisma_datasource import read_datasource, url_variables
from ansible.module_utils.prisma_migrations import DATABASE_ERROR, database_error, deploy_outcome, migration_under_way


def read_history_after(module, db, text, result):
    """The history after the deploy, waiting up to history_wait seconds for a database that went away."""
    deadline = time.monotonic() + module.params["history_wait"]
    while True:
        try:
            return db.read_history() or []
        except psycopg2.Error as exc:
            if time.monotonic() < deadline:
                time.sleep(2)
                continue
            under_way = migration_under_way(text)
            db.fail(
                "read the migration history after the deploy (it stopped %s: %s) of"
                % ("at migration %s" % under_way if under_way else "before any migration", database_error(text)),
                exc,
                "The deploy's outcome is unknown: the run treats it as failed",
                **result,
            )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_dir=dict(type="path", required=True),
            database_url=dict(type="str", required=True, no_log=True),
            datasource_env=dict(type="list", elements="str"),
            prisma_command=dict(type="list", elements="str", default=["npx", "prisma"]),
            environment=dict(type="dict", default={}),
            expected=dict(type="list", elements="str", default=[]),
            history_wait=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    db = Database(module, p["database_url"], "prisma_migrate_deploy")
    result = dict(
        changed=False, applied=[], failed_migrations=[], outcome_known=True, error="", seconds=0.0, stdout="", stderr=""
    )
    try:
        before = db.read_history() or []
        if module.check_mode:
            state = db.migration_state(os.path.join(p["app_dir"], "prisma", "migrations"))
            result["applied"] = state["pending"]
            module.exit_json(**result)
    except psycopg2.Error as exc:
        db.fail("read the migration history of", exc, "Check DATABASE_URL and that this host reaches it.", **result)

    env = {key: str(value) for key, value in p["environment"].items()}
    env.update(dict.fromkeys(p["datasource_env"] or url_variables(read_datasource(p["app_dir"])), p["database_url"]))
    started = time.monotonic()
    rc, out, err = module.run_command(p["prisma_command"] + ["migrate", "deploy"], cwd=p["app_dir"], environ_update=env)
    result.update(seconds=round(time.monotonic() - started, 1), stdout=db.redact(out), stderr=db.redact(err))

    result["outcome_known"] = False
    after = read_history_after(module, db, out + "\n" + err, result)
    result["outcome_known"] = True
    result.update(deploy_outcome(before, after))
    result["changed"] = bool(result["applied"] or result["failed_migrations"])

    if rc != 0:
        failed = result["failed_migrations"][0] if result["failed_migrations"] else None
        text = out + "\n" + err
        # No failed row (the database went away before Prisma wrote one): the migration it printed last.
        name = failed["name"] if failed else migration_under_way(text) or "(none started)"
        # Prisma's output quotes the database when it can; else the log it wrote in the migration's row may.
        if failed and failed["logs"] and not DATABASE_ERROR.search(text):
            text = failed["logs"]
        error = database_error(text)
        result["error"] = db.redact(error)
        module.fail_json(
            msg="migrate deploy failed on migration %s: %s%s"
            % (
                name,
                result["error"],
                " (applied before it: %d)" % len(result["applied"]) if result["applied"] else "",
            ),
            **result,
        )
    if p["expected"] and result["applied"] != p["expected"]:
        module.fail_json(
            msg="migrate deploy applied %s, but %s were pending. Compare the code on this host with the status step."
            % (result["applied"], p["expected"]),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
