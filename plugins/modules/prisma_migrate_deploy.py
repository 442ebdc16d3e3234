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
  lock_timeout_ms:
    description:
      - How long each migration statement may wait for a lock (PostgreSQL's C(lock_timeout)), in milliseconds;
        0 waits for ever. An C(ALTER TABLE) waiting for its lock makes every later query on that table wait behind
        it, and this bounds that wait.
      - Set as a startup option of Prisma's own connection (the URL's C(options=-c lock_timeout=...)), which
        PostgreSQL applies before the session's first statement, whichever engine Prisma runs (native or a driver
        adapter). Nothing changes on the role or the database, and no other session is affected.
    type: int
    default: 0
  statement_timeout_ms:
    description:
      - How long any one statement of the deploy may run (PostgreSQL's C(statement_timeout)), in milliseconds; 0 for
        no limit. Set as O(lock_timeout_ms) is.
    type: int
    default: 0
  lock_retries:
    description:
      - How many times, per migration, to run the deploy again when a migration in O(lock_retry_migrations) gave
        up waiting for a lock (SQLSTATE 55P03). Its failed row is marked rolled back first (what C(prisma migrate
        resolve --rolled-back) writes), then the deploy resumes at that migration.
    type: int
    default: 0
  lock_retry_delay:
    description:
      - Seconds before the first retry; each later one waits twice as long, at most 30 s, times a random factor in
        [0.5, 1.5).
    type: float
    default: 1.0
  lock_retry_migrations:
    description:
      - The migrations a lock timeout may be retried on, each a migration the plan's lint (PostgreSQL's parser)
        found to be one transaction and DDL only. Prisma's engine sends a migration as one query, which
        PostgreSQL runs as one transaction, undone whole by the timeout; a driver adapter may run its statements
        one by one instead, leaving those before the timeout. So before a retry, the catalog must show none of
        what the migration creates (O(lock_retry_objects)), or it is not retried.
      - The C(migrate_deploy) role passes the plan's list.
    type: list
    elements: str
    default: []
  lock_retry_objects:
    description:
      - What each migration of O(lock_retry_migrations) creates (name to a list of objects with C(kind), C(table)
        and C(name), as the C(migration_objects_map) filter reads them), looked up before a retry.
    type: dict
    default: {}
  trace_locks:
    description:
      - Sample the table locks the deploy takes from a second connection while it runs (every 20 ms), and return
        them in RV(locks). For the rehearsal's copy, where every other session is the deploy's own.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reads the history and returns what is pending as RV(applied); runs nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - psycopg2
  - the Prisma CLI in the app's node_modules
extends_documentation_fragment:
  - prismaguard.migrate.database
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Apply the pending migrations.
  prismaguard.migrate.prisma_migrate_deploy:
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
lock_retry_refused:
  description:
    - Why the last lock timeout was not retried (retries spent, not one transaction, part of it applied); empty
      otherwise.
  returned: always
  type: str
lock_waits:
  description:
    - Each time a migration gave up waiting for a lock and was retried, with C(migration), C(attempt) and C(delay)
      (seconds waited before the next attempt).
  returned: always
  type: list
  elements: dict
locks:
  description:
    - With O(trace_locks), the table locks seen, longest first, in C(holds) (C(migration), C(table), C(mode),
      C(held_ms)), with C(resolution_ms) (a hold is known to within one sample) and C(error) (why the trace
      stopped, or null).
  returned: when O(trace_locks)
  type: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, present_objects, psycopg2
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_lock_trace import LockTrace
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_datasource import (
    read_datasource,
    url_variables,
)
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_migrations import (
    DATABASE_ERROR,
    database_error,
    deploy_outcome,
    jitter,
    lock_timed_out,
    migration_under_way,
    retry_delay,
    with_session_settings,
)


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


def retry_refused(module, db, p, failed, text, result):
    """None when the deploy may be run again after a lock timeout; else why not ('' when it was no lock timeout)."""
    if len(failed) != 1 or not lock_timed_out(text + "\n" + failed[0]["logs"]):
        return ""
    name = failed[0]["name"]
    if name not in p["lock_retry_migrations"]:
        return (
            "it is not one transaction of DDL only (the plan's lint), so part of it may be applied"
            if p["lock_retry_migrations"]
            else "no migration was named retryable (lock_retry_migrations; the plan names them)"
        )
    if sum(1 for wait in result["lock_waits"] if wait["migration"] == name) >= p["lock_retries"]:
        return "its %d retries are spent" % p["lock_retries"]
    try:
        conn = db.connect(readonly=True)
        try:
            with conn.cursor() as cur:
                left = present_objects(cur, db.schema, p["lock_retry_objects"].get(name))
        finally:
            conn.close()
    except psycopg2.Error as exc:
        return "what it creates could not be looked up (%s)" % db.said(exc)
    if left:
        return "part of it was applied (%s exists: its engine ran its statements one by one)" % ", ".join(
            "%s %s" % (o["kind"], o.get("name") or o.get("table")) for o in left
        )
    return None


def mark_rolled_back(module, db, name, result):
    """The failed row of `name` marked rolled back, so that the next deploy applies it again."""
    from psycopg2 import sql

    try:
        conn = db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL(
                        "UPDATE {} SET rolled_back_at = now()"
                        " WHERE migration_name = %s AND finished_at IS NULL AND rolled_back_at IS NULL"
                    ).format(sql.Identifier(db.schema, "_prisma_migrations")),
                    (name,),
                )
                marked = cur.rowcount
        finally:
            conn.close()
    except psycopg2.Error as exc:
        db.fail("mark migration %s rolled back, to retry it after its lock timeout, in" % name, exc, "", **result)
    if marked != 1:
        module.fail_json(
            msg="prisma_migrate_deploy: migration %s gave up waiting for a lock, and marking its failed row rolled"
            " back, to try it again, changed %d rows instead of 1." % (name, marked),
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
            lock_timeout_ms=dict(type="int", default=0),
            statement_timeout_ms=dict(type="int", default=0),
            lock_retries=dict(type="int", default=0),
            lock_retry_delay=dict(type="float", default=1.0),
            lock_retry_migrations=dict(type="list", elements="str", default=[]),
            lock_retry_objects=dict(type="dict", default={}),
            trace_locks=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    db = Database(module, p["database_url"], "prisma_migrate_deploy")
    result = dict(
        changed=False,
        applied=[],
        failed_migrations=[],
        outcome_known=True,
        error="",
        seconds=0.0,
        stdout="",
        stderr="",
        lock_waits=[],
        lock_retry_refused="",
    )
    try:
        before = db.read_history() or []
        if module.check_mode:
            state = db.migration_state(os.path.join(p["app_dir"], "prisma", "migrations"))
            result["applied"] = state["pending"]
            module.exit_json(**result)
    except psycopg2.Error as exc:
        db.fail("read the migration history of", exc, "Check DATABASE_URL and that this host reaches it.", **result)

    settings = {}
    if p["lock_timeout_ms"]:
        settings["lock_timeout"] = "%dms" % p["lock_timeout_ms"]
    if p["statement_timeout_ms"]:
        settings["statement_timeout"] = "%dms" % p["statement_timeout_ms"]
    prisma_url = with_session_settings(p["database_url"], settings)
    db.secrets.append(prisma_url)  # its password percent-encoded, as Prisma may print its URL
    module.no_log_values.add(prisma_url)
    env = {key: str(value) for key, value in p["environment"].items()}
    env.update(dict.fromkeys(p["datasource_env"] or url_variables(read_datasource(p["app_dir"])), prisma_url))
    history = '"%s"._prisma_migrations' % db.schema.replace('"', '""')
    trace = LockTrace(db.connect, history).start() if p["trace_locks"] else None
    started = time.monotonic()
    outputs, errors, result["lock_waits"] = [], [], []
    while True:
        rc, out, err = module.run_command(
            p["prisma_command"] + ["migrate", "deploy"], cwd=p["app_dir"], environ_update=env
        )
        outputs.append(out)
        errors.append(err)
        if rc == 0:
            break
        result["outcome_known"] = False
        after = read_history_after(module, db, out + "\n" + err, result)
        failed = deploy_outcome(before, after)["failed_migrations"]
        why_not = retry_refused(module, db, p, failed, out + "\n" + err, result)
        if why_not is not None:
            result["lock_retry_refused"] = why_not
            break
        attempt = 1 + sum(1 for wait in result["lock_waits"] if wait["migration"] == failed[0]["name"])
        # Nothing of it is left (one transaction, or the catalog says so): Prisma's resolve --rolled-back.
        mark_rolled_back(module, db, failed[0]["name"], result)
        delay = retry_delay(attempt, p["lock_retry_delay"], 30.0, jitter())
        result["lock_waits"].append(dict(migration=failed[0]["name"], attempt=attempt, delay=delay))
        time.sleep(delay)
    if trace:
        result["locks"] = trace.stop()
        result["locks"]["error"] = result["locks"]["error"] and db.redact(result["locks"]["error"])
    last = out + "\n" + err  # the last attempt's: what the run's outcome is
    out, err = "\n".join(outputs), "\n".join(errors)
    result.update(seconds=round(time.monotonic() - started, 1), stdout=db.redact(out), stderr=db.redact(err))

    result["outcome_known"] = False
    after = read_history_after(module, db, last, result)
    result["outcome_known"] = True
    result.update(deploy_outcome(before, after))
    result["changed"] = bool(result["applied"] or result["failed_migrations"])

    if rc != 0:
        failed = result["failed_migrations"][0] if result["failed_migrations"] else None
        text = last
        # No failed row (the database went away before Prisma wrote one): the migration it printed last.
        name = failed["name"] if failed else migration_under_way(text) or "(none started)"
        # Prisma's output quotes the database when it can; else the log it wrote in the migration's row may.
        if failed and failed["logs"] and not DATABASE_ERROR.search(text):
            text = failed["logs"]
        error = database_error(text)
        result["error"] = db.redact(error)
        waited = ""
        if lock_timed_out(text):
            tries = 1 + sum(1 for wait in result["lock_waits"] if wait["migration"] == name)
            waited = (
                ". It gave up waiting for a lock %d time(s) (lock_timeout %s): a transaction on its table held it"
                " (pg_stat_activity's xact_start names such sessions), and production's queries waited no longer"
                " than that behind it. Not tried again: %s. Deploy when that transaction has ended"
                % (
                    tries,
                    "%d ms" % p["lock_timeout_ms"] if p["lock_timeout_ms"] else "its own",
                    result.get("lock_retry_refused") or "no retries allowed",
                )
            )
        module.fail_json(
            msg="migrate deploy failed on migration %s: %s%s%s"
            % (
                name,
                result["error"],
                " (applied before it: %d)" % len(result["applied"]) if result["applied"] else "",
                waited,
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
