#!/usr/bin/python
"""Ansible module: restore a pg_dump archive into a new database, then swap it in for the live one."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_restore_swap
short_description: Restore a backup into a new database and swap it in for the live one, keeping the old
description:
  - Restores a C(pg_dump -Fc) archive with C(pg_restore --exit-on-error) into a new database beside the
    live one (C(<db>_restoring)). The live database is not touched until that restore has fully succeeded.
  - Then ends every other session on both databases and, in one transaction, renames the live database to
    O(keep_as) and the restored one to the live name, carrying over the live database's settings
    (C(ALTER DATABASE ... SET)), connection limit and privileges. The swap happens whole or not at all.
  - The old database is kept under O(keep_as), never dropped. Rows written to it after the backup was taken
    are still there; the module compares row counts per table and reports every table that differs.
  - Why not C(pg_restore --clean) into the live database, as runbooks often say. C(--clean) drops only the
    objects the archive holds, so tables a failed migration created stay beside the restored schema (the
    next deploy then fails with "already exists"); and a restore that fails midway leaves the live
    database half restored.
  - The login needs C(CREATEDB) and must own the live database (renaming it requires that).
  - With O(swap=false) it only restores into a new database named O(restore_as), with the live database's
    settings, and leaves the live one alone (a rehearsal runs the migration there).
options:
  path:
    description: The archive to restore, on the host the module runs on.
    type: path
    required: true
  sha256:
    description: The archive's expected sha256. Checked before anything else; a mismatch changes nothing.
    type: str
  database_url:
    type: str
    required: true
  keep_as:
    description: Name the live database is renamed to. Must not exist. Defaults to C(<db>_before_restore_<UTC time>).
    type: str
  swap:
    description: Swap the restored database in for the live one. With V(false), restore into O(restore_as) only.
    type: bool
    default: true
  restore_as:
    description: Name of the new database to restore into when O(swap=false). Must not exist.
    type: str
  maintenance_db:
    description:
      - Database to connect to while the live one is renamed.
      - DigitalOcean managed databases call it C(defaultdb).
    type: str
    default: postgres
  no_owner:
    description: Pass C(--no-owner), so the restored objects belong to the login (the usual owner of an app's schema).
    type: bool
    default: true
  pg_restore:
    description: The pg_restore executable (its major version must be at least the archive's).
    type: path
    default: pg_restore
  terminate_roles:
    description:
      - Roles whose client sessions on the live database are ended for the swap (the apps should be stopped;
        this ends what is left). Empty means the role of O(database_url). Other sessions (autovacuum, other
        roles) are not ended, which would need a superuser, but waited for, up to O(swap_wait).
    type: list
    elements: str
    default: []
  swap_wait:
    description: Seconds to keep trying the swap while sessions the tool may not end hold the database.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    details: Checks the archive and its checksum and reports what it would do; creates, renames and restores nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - psycopg2
  - pg_restore on the host
extends_documentation_fragment:
  - prismaguard.migrate.database
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Put the verified backup back in place of the live database.
  prismaguard.migrate.pg_restore_swap:
    path: /var/backups/prisma-migrate/backup_20251204_101500.dump
    sha256: "{{ backup_result.sha256 }}"
    database_url: "{{ app_env.DATABASE_URL }}"
    keep_as: backend_failed_20251204_101500
  no_log: true
"""

RETURN = r"""
database:
  description: The live database's name; with O(swap=false), the database restored into.
  returned: always
  type: str
kept_as:
  description: The name the database that was live now has.
  returned: when O(swap=true)
  type: str
sha256:
  description: The archive's sha256, as computed here.
  returned: when the archive exists
  type: str
row_counts:
  description: Rows per table in the restored database.
  returned: when the restore ran
  type: dict
  sample: {public.customers: 200}
drift:
  description: Tables whose row count in the kept database differs from the restored one (rows written later).
  returned: when the restore ran
  type: dict
  sample: {public.payments: {restored: 1000, kept: 1003}}
only_in_kept:
  description: Tables the kept database has and the backup had not (made after the backup, by a migration for one).
  returned: when the restore ran
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, psycopg2
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_dump_archive import LIVE_TABLES_QUERY, sha256_file

if psycopg2 is not None:
    from psycopg2 import sql

# Database-wide settings, connection limit and privileges of the live database.
SETTINGS_QUERY = """
SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
WHERE d.datname = %s AND s.setrole = 0
"""
ACL_QUERY = """
SELECT d.datacl IS NULL, d.datconnlimit,
       coalesce((SELECT array_agg(ARRAY[CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                                        a.privilege_type])
                 FROM aclexplode(d.datacl) a), '{}')
FROM pg_database d WHERE d.datname = %s
"""
# Only what the tool may end: client sessions of the app's own roles. Ending anything else needs a
# superuser, which a managed database's admin role is not (autovacuum, other roles' sessions): those
# are waited for instead.
TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend' AND usename = ANY(%s)"
)
OTHERS = (
    "SELECT pid, coalesce(usename, ''), backend_type FROM pg_stat_activity WHERE datname = ANY(%s)"
    " AND pid <> pg_backend_pid() ORDER BY pid"
)


def row_counts(db, dbname):
    conn = db.connect(dbname, readonly=True)
    try:
        with conn.cursor() as cur:
            cur.execute(LIVE_TABLES_QUERY)
            tables = cur.fetchall()
            counts = {}
            for schema, name in tables:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name)))
                counts["%s.%s" % (schema, name)] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


def carry_over(cur, source, target):
    """Statements giving `target` the settings, connection limit and privileges `source` has now."""
    cur.execute(SETTINGS_QUERY, (source,))
    statements = []
    for (setting,) in cur.fetchall():
        name, _unused, value = setting.partition("=")
        statements.append(
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(sql.Identifier(target), sql.SQL(name), sql.Literal(value))
        )
    cur.execute(ACL_QUERY, (source,))
    default_acl, conn_limit, grants = cur.fetchone()
    if conn_limit != -1:
        statements.append(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(sql.Identifier(target), conn_limit))
    if not default_acl:
        statements.append(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(target)))
        for grantee, privilege in grants:
            statements.append(
                sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(privilege),
                    sql.Identifier(target),
                    sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee),
                )
            )
    return statements


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            sha256=dict(type="str"),
            database_url=dict(type="str", required=True, no_log=True),
            keep_as=dict(type="str"),
            swap=dict(type="bool", default=True),
            restore_as=dict(type="str"),
            maintenance_db=dict(type="str", default="postgres"),
            no_owner=dict(type="bool", default=True),
            pg_restore=dict(type="path", default="pg_restore"),
            terminate_roles=dict(type="list", elements="str", default=[]),
            swap_wait=dict(type="int", default=60),
        ),
        supports_check_mode=True,
        required_if=[("swap", False, ["restore_as"])],
    )
    p = module.params
    db = Database(module, p["database_url"], "pg_restore_swap")
    live = db.params["dbname"]
    keep_as = p["keep_as"] or "%s_before_restore_%s" % (live, time.strftime("%Y%m%d_%H%M%S", time.gmtime()))
    scratch = "%s_restoring" % live[:50] if p["swap"] else p["restore_as"]
    result = dict(changed=False, database=live, kept_as=keep_as) if p["swap"] else dict(changed=False, database=scratch)

    if not os.path.isfile(p["path"]):
        module.fail_json(msg="pg_restore_swap: no backup at %s; nothing was changed." % p["path"], **result)
    result["sha256"] = sha256_file(p["path"])
    if p["sha256"] and p["sha256"] != result["sha256"]:
        module.fail_json(
            msg="pg_restore_swap: %s has sha256 %s, expected %s: it changed after it was written."
            " Nothing was changed; restore another backup." % (p["path"], result["sha256"], p["sha256"]),
            **result,
        )
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    try:
        admin = db.connect(p["maintenance_db"])
    except psycopg2.Error as exc:
        db.fail("connect to the maintenance database beside", exc, "Set maintenance_db (DigitalOcean: defaultdb).")
    try:
        with admin.cursor() as cur:
            taken = keep_as if p["swap"] else scratch
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (taken,))
            if cur.fetchone():
                module.fail_json(
                    msg="pg_restore_swap: database %s exists already; choose another %s."
                    % (taken, "keep_as" if p["swap"] else "restore_as")
                )
            # A leftover of an interrupted restore is ours to replace.
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
        result["changed"] = True
        cmd = [p["pg_restore"], "--exit-on-error", "--dbname", scratch, p["path"]]
        if p["no_owner"]:
            cmd.insert(1, "--no-owner")
        rc, _unused, err = module.run_command(cmd, environ_update=db.libpq_env(scratch))
        if rc != 0:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            module.fail_json(
                msg="pg_restore_swap: pg_restore of %s failed: %s. The live database %s is untouched."
                % (p["path"], db.redact(err.strip()[-500:]), live),
                **result,
            )
        result["row_counts"] = row_counts(db, scratch)
        if not p["swap"]:
            with admin.cursor() as cur:
                for statement in carry_over(cur, live, scratch):
                    cur.execute(statement)
            module.exit_json(**result)

        # A client may reconnect between terminate and rename, and what the tool may not end (autovacuum,
        # another role's session) must end by itself: try again until swap_wait has passed.
        roles = p["terminate_roles"] or [db.params.get("user")]
        deadline = time.monotonic() + p["swap_wait"]
        while True:
            admin.autocommit = False
            try:
                with admin.cursor() as cur:
                    statements = carry_over(cur, live, live)  # applied once the restored one bears the name
                    cur.execute(TERMINATE, ([live, scratch], roles))
                    cur.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(live), sql.Identifier(keep_as))
                    )
                    cur.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(scratch), sql.Identifier(live))
                    )
                    for statement in statements:
                        cur.execute(statement)
                admin.commit()
                break
            except psycopg2.Error as exc:
                admin.rollback()
                admin.autocommit = True
                if exc.pgcode != "55006" or time.monotonic() >= deadline:  # 55006: object_in_use
                    with admin.cursor() as cur:
                        cur.execute(OTHERS, ([live, scratch],))
                        # backend_type is hidden (NULL) from a role that is not a superuser for others' sessions.
                        holders = [
                            "%s (pid %s%s)" % (r[1] or "no role", r[0], ", " + r[2] if r[2] else "")
                            for r in cur.fetchall()
                        ]
                    db.fail(
                        "swap the restored database in for",
                        exc,
                        "Still connected after %ss: %s; the tool ends only client sessions of %s. The live database"
                        " is unchanged; %s holds the restore. End those sessions (or wait for autovacuum) and run"
                        " again." % (p["swap_wait"], ", ".join(holders) or "none", ", ".join(roles), scratch),
                        **result,
                    )
                time.sleep(1)
            finally:
                admin.autocommit = True

        kept = row_counts(db, keep_as)
        result["drift"] = {
            table: {"restored": count, "kept": kept.get(table)}
            for table, count in result["row_counts"].items()
            if kept.get(table) != count
        }
        result["only_in_kept"] = sorted(set(kept) - set(result["row_counts"]))
        if result["drift"]:
            module.warn(
                "%s (the database before the restore) has other row counts than the backup in %s: rows written after"
                " the backup are there, not in %s." % (keep_as, ", ".join(sorted(result["drift"])), live)
            )
    finally:
        admin.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
