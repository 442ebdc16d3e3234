#!/usr/bin/python
"""Ansible module: prove a pg_dump archive is whole and restorable before trusting it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup_verify
short_description: Verify a pg_dump custom-format backup instead of trusting pg_dump's exit code
description:
  - A C(pg_dump) that cannot connect exits 1 but leaves a 0-byte file, and C(pg_restore --list)
    exits 0 on an archive cut in half or with bytes overwritten. This module checks, in order,
    that the file exists and is not empty, that it is a custom-format archive, that its sha256
    matches the checksum file written beside it, that its table of contents has TABLE DATA for
    every table of the live database, and that C(pg_restore) can read the whole archive.
  - Optionally restores the archive into a scratch database with C(--exit-on-error), compares the
    row count of every table with the live database, and drops the scratch database again.
  - Fails at the first check that does not hold, with a message saying what it means and what to do.
  - Check mode runs every read-only check and skips the restore.
options:
  path:
    description: The dump file (C(pg_dump -Fc)).
    type: path
    required: true
  checksum_path:
    description: The sha256sum-style file beside the dump. Defaults to O(path) with C(.sha256) appended.
    type: path
  database_url:
    description:
      - The live database the dump was taken from (a Prisma C(DATABASE_URL) is fine).
      - Needed to compare the table of contents and row counts with the live tables;
        without it those checks are skipped.
    type: str
  exclude_tables:
    description: Tables deliberately left out of the dump (C(table) or C(schema.table)).
    type: list
    elements: str
    default: []
  restore_check:
    description: Also restore into a scratch database and compare row counts. The login needs C(CREATEDB).
    type: bool
    default: false
  scratch_database:
    description: Name of the scratch database for O(restore_check). Must not exist; dropped afterwards.
    type: str
  pg_restore:
    description: The pg_restore executable (its major version must be at least the dump's).
    type: path
    default: pg_restore
attributes:
  check_mode:
    support: full
    details: The restore check is skipped in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - psycopg2, when O(database_url) is set
  - pg_restore on the host
extends_documentation_fragment:
  - prismaguard.migrate.database
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Verify the backup before any change is made.
  prismaguard.migrate.pg_backup_verify:
    path: /var/backups/backend/backup_20251204_101500.dump
    database_url: "{{ app_env.DATABASE_URL }}"
    restore_check: true
  no_log: true
"""

RETURN = r"""
size:
  description: Size of the dump in bytes.
  returned: when the file exists
  type: int
sha256:
  description: The dump's sha256, as computed here.
  returned: when the file is not empty
  type: str
tables_in_dump:
  description: Tables (schema.table) with a TABLE DATA entry.
  returned: when the table of contents was read
  type: list
  elements: str
missing_tables:
  description: Live tables without TABLE DATA in the dump.
  returned: when O(database_url) is set
  type: list
  elements: str
row_counts:
  description: Rows per table in the restored copy and in the live database.
  returned: when the restore check ran
  type: dict
  sample: {public.customers: {restored: 200, live: 200}}
checks:
  description: Each check with whether it held and what was found.
  returned: always
  type: list
  elements: dict
  sample: [{name: full_read, ok: true, detail: pg_restore read the whole archive}]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, psycopg2
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_dump_archive import (
    LIVE_TABLES_QUERY,
    missing_from_dump,
    read_checksum_file,
    sha256_file,
    toc_tables,
)
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_migrations import redact

if psycopg2 is not None:
    from psycopg2 import sql


class Verifier:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.checks = []
        self.result = dict(changed=False, checks=self.checks)
        self.db = Database(module, self.p["database_url"], "pg_backup_verify") if self.p["database_url"] else None
        self.conn_params = self.db.params if self.db else None
        self.secrets = self.db.secrets if self.db else []

    def ok(self, name, detail):
        self.checks.append(dict(name=name, ok=True, detail=detail))

    def fail(self, name, detail, remedy):
        self.checks.append(dict(name=name, ok=False, detail=detail))
        self.module.fail_json(
            msg="Backup %s failed check %s: %s. %s" % (self.p["path"], name, redact(detail, self.secrets), remedy),
            **self.result,
        )

    def live_tables(self):
        conn = self.db.connect(readonly=True)
        try:
            with conn.cursor() as cur:
                cur.execute(LIVE_TABLES_QUERY)
                return ["%s.%s" % row for row in cur.fetchall()]
        finally:
            conn.close()

    def run(self):
        path = self.p["path"]
        if not os.path.isfile(path):
            self.fail("exists", "no file at %s" % path, "Run the backup again; nothing was written.")
        size = os.path.getsize(path)
        self.result["size"] = size
        if size == 0:
            self.fail(
                "not_empty",
                "the file is empty",
                "pg_dump most likely could not connect: read its error and run the backup again.",
            )
        self.ok("not_empty", "%d bytes" % size)

        with open(path, "rb") as handle:
            magic = handle.read(5)
        if magic != b"PGDMP":
            self.fail(
                "format", "the file does not start with PGDMP", "Take the backup with pg_dump -Fc (custom format)."
            )
        self.ok("format", "custom-format archive")

        digest = sha256_file(path)
        self.result["sha256"] = digest
        checksum_path = self.p["checksum_path"] or path + ".sha256"
        if not os.path.isfile(checksum_path):
            self.fail(
                "checksum",
                "no checksum file at %s" % checksum_path,
                "Write one right after pg_dump (sha256sum DUMP > DUMP.sha256).",
            )
        with open(checksum_path) as handle:
            expected = read_checksum_file(handle.read())
        if expected != digest:
            self.fail(
                "checksum",
                "sha256 is %s, the checksum file says %s" % (digest, expected),
                "The file changed after it was written (copy error, disk fault, tampering): take a new backup.",
            )
        self.ok("checksum", "sha256 %s matches %s" % (digest, os.path.basename(checksum_path)))

        rc, listing, err = self.module.run_command([self.p["pg_restore"], "--list", path])
        if rc != 0:
            self.fail("toc", "pg_restore --list failed: %s" % err.strip(), "The archive is damaged: take a new backup.")
        dumped = toc_tables(listing)
        self.result["tables_in_dump"] = sorted(dumped)
        self.ok("toc", "%d tables with TABLE DATA" % len(dumped))

        live = None
        if self.conn_params is not None:
            live = self.live_tables()
            missing = missing_from_dump(live, dumped, self.p["exclude_tables"])
            self.result["missing_tables"] = missing
            if missing:
                self.fail(
                    "tables",
                    "live tables with no data in the dump: %s" % ", ".join(missing),
                    "The dump is partial (a -t/-T filter, or a table created after the dump started):"
                    " take a new backup.",
                )
            self.ok("tables", "every live table of %s is in the dump" % self.db.target)

        rc, _unused, err = self.module.run_command([self.p["pg_restore"], "--file", os.devnull, path])
        if rc != 0:
            self.fail(
                "full_read",
                "pg_restore could not read the whole archive: %s" % err.strip()[-500:],
                "The archive is truncated or corrupt even though its table of contents reads: take a new backup.",
            )
        self.ok("full_read", "pg_restore read the whole archive")

        if self.p["restore_check"]:
            if self.module.check_mode:
                self.checks.append(dict(name="restore", ok=None, detail="skipped in check mode"))
            elif self.conn_params is None:
                self.module.fail_json(msg="pg_backup_verify: restore_check needs database_url.", **self.result)
            else:
                self.restore_check(path, live)
        self.module.exit_json(**self.result)

    def restore_check(self, path, live):
        scratch = self.p["scratch_database"] or "%s_verify_%d" % (self.conn_params.get("dbname", "db"), time.time())
        admin = self.db.connect()
        try:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
            try:
                rc, _unused, err = self.module.run_command(
                    [self.p["pg_restore"], "--exit-on-error", "--no-owner", "--no-acl", "--dbname", scratch, path],
                    environ_update=self.db.libpq_env(scratch),
                )
                if rc != 0:
                    self.fail(
                        "restore",
                        "pg_restore into %s failed: %s" % (scratch, err.strip()[-500:]),
                        "The backup cannot be restored: take a new one.",
                    )
                counts = {}
                restored = self.db.connect(scratch, readonly=True)
                source = self.db.connect(readonly=True)
                try:
                    for table in live:
                        schema, name = table.split(".", 1)
                        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
                        counts[table] = {}
                        for label, conn in (("restored", restored), ("live", source)):
                            with conn.cursor() as cur:
                                cur.execute(query)
                                counts[table][label] = cur.fetchone()[0]
                finally:
                    restored.close()
                    source.close()
                self.result["row_counts"] = counts
                differ = {t: c for t, c in counts.items() if c["restored"] != c["live"]}
                if differ:
                    self.fail(
                        "row_counts",
                        "restored row counts differ from live: %s" % differ,
                        "Rows were written after the dump began, or the dump lost rows:"
                        " take the backup while writes are stopped.",
                    )
                self.ok("restore", "restored into %s, row counts equal for %d tables" % (scratch, len(counts)))
            finally:
                with admin.cursor() as cur:
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
        finally:
            admin.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            checksum_path=dict(type="path"),
            database_url=dict(type="str", no_log=True),
            exclude_tables=dict(type="list", elements="str", default=[]),
            restore_check=dict(type="bool", default=False),
            scratch_database=dict(type="str"),
            pg_restore=dict(type="path", default="pg_restore"),
        ),
        supports_check_mode=True,
    )
    verifier = Verifier(module)
    try:
        verifier.run()
    except psycopg2.Error as exc:
        verifier.db.fail("verify the backup against", exc, "Check that this host reaches the database.")


if __name__ == "__main__":
    main()
