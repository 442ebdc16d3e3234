#!/usr/bin/python
"""Ansible module: write or remove the migration lock's record in one step."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_lock_record
short_description: Take the migration lock, renew its lease, or release it, in one call
description:
  - The migration lock is a row of the table C(prisma_migrate_lock) in the database server's maintenance database
    (O(database_url), O(maintenance_db); DigitalOcean's C(defaultdb)), keyed by the database migrated, and
    taken with C(INSERT ... ON CONFLICT DO NOTHING) (atomic). It lives with the database, so it survives a
    reboot of any host and every controller and inventory that migrates that database meets it. Its record
    says who holds it, until when (the lease), why it is kept, and what a run that takes it over must undo.
  - Without O(database_url), the lock is a directory on the host the module runs on (O(path)), taken with
    C(mkdir) (atomic), its record in C(holder.json). It excludes only runs that reach that host.
  - With O(state=present), reads the record, keeps what this call does not set (C(since), C(state),
    C(taken_over)), writes it back with a lease that runs from now, through a temporary file and a
    rename, so a reader never sees half a record. The directory must exist (the lock was taken).
  - With O(state=absent), removes the lock directory, only when its record names O(run_id); a lock
    another run holds, or took over, is left alone.
  - With O(state=taken), takes the lock. It makes the directory (C(mkdir) is atomic, so of two runs exactly
    one makes it) and writes the record, with a lease from now and C(since) now. When the directory already exists it
    changes nothing and returns the record found, for the caller to judge (another run, a stale lease, a lock
    kept after a failed rollback).
  - With O(log_entry) and O(state=present) or O(state=absent), also appends it to the audit log, unless that
    exact entry is there already. It goes to the table C(prisma_migrate_audit) beside the lock (one row per
    run, keyed by the database), or without O(database_url) to O(log_path) as one JSON line (keys sorted; a
    missing log and its folder are made, C(0644), C(0755)). The run's end (the lock released or kept, and
    its line in the log) is then one call.
  - The audit log in the database is read with one query, in the maintenance database
    C(SELECT at, entry FROM prisma_migrate_audit WHERE database = 'backend' ORDER BY id DESC LIMIT 20).
  - The tables are made on first use; the login needs C(CREATE) on the maintenance database's C(public)
    schema (DigitalOcean's C(doadmin) has it on C(defaultdb)).
  - One module call where a read and a copy took three round trips over SSH; the run renews the lease
    as it goes.
options:
  database_url:
    description:
      - The database migrated (a Prisma C(DATABASE_URL) is fine). Its server holds the lock and the audit log,
        keyed by its database name.
    type: str
  maintenance_db:
    description:
      - The database on that server the lock's tables are in.
      - DigitalOcean's managed databases call it C(defaultdb).
    type: str
    default: postgres
  path:
    description: The lock directory, when there is no O(database_url).
    type: path
  run_id:
    description: The run that holds the lock.
    type: str
    required: true
  state:
    description:
      - V(taken) takes the lock if it is free. V(present) writes the record of a lock taken, with a fresh lease.
        V(absent) releases the lock this run holds.
    type: str
    choices: [taken, present, absent]
    default: present
  holder:
    description: Who runs it (user@controller), shown to anyone refused. Required unless O(state=absent).
    type: str
  lease_minutes:
    description: How long the lease runs from now.
    type: int
    default: 120
  since:
    description: When the lock was taken (ISO 8601, UTC). Kept from the record when not given.
    type: str
  reason:
    description: Why the lock is kept after the run (empty while the run holds it).
    type: str
    default: ""
  record_state:
    description: What to undo if this run dies (stage, backup, revisions). Kept from the record when empty.
    type: dict
    default: {}
  taken_over:
    description: The record of a run whose lock this run took over. Kept from the record when empty.
    type: dict
    default: {}
  log_path:
    description: The audit log file, one JSON line per run, when there is no O(database_url).
    type: path
  log_entry:
    description: The run's line (who, when, revisions, migrations, backup, outcome; never a secret).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - prismaguard.migrate.database
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Take the lock, or read who holds it.
  prismaguard.migrate.migration_lock_record:
    database_url: "{{ preflight_database_url }}"
    maintenance_db: defaultdb
    run_id: "{{ preflight_run_id }}"
    holder: deploy@ci
    state: taken
  register: lock

- name: Renew the lease, recording what to undo from here on.
  prismaguard.migrate.migration_lock_record:
    database_url: "{{ preflight_database_url }}"
    maintenance_db: defaultdb
    run_id: "{{ preflight_run_id }}"
    holder: deploy@ci
    record_state: {stage: deploy, backup: /var/backups/prisma-migrate/backend_20261130.dump}

- name: Release the lock if this run holds it.
  prismaguard.migrate.migration_lock_record:
    database_url: "{{ preflight_database_url }}"
    maintenance_db: defaultdb
    run_id: "{{ preflight_run_id }}"
    state: absent
    log_entry: {run_id: "{{ preflight_run_id }}", outcome: succeeded}
"""

RETURN = r"""
record:
  description: >-
    The record as written (O(state=present), or O(state=taken) when the lock was free), or as found
    (O(state=absent), or O(state=taken) when the lock was held: {} when it had no readable record).
  returned: always
  type: dict
  sample: {holder: deploy@ci, since: "2026-11-30T10:00:00Z", run_id: "20261130_100000",
           expires: "2026-11-30T12:00:00Z", reason: "", state: {}, taken_over: {}}
taken:
  description: Whether this call made the lock directory (the lock was free).
  returned: when O(state=taken)
  type: bool
released:
  description: Whether the lock directory was removed.
  returned: when O(state=absent)
  type: bool
logged:
  description: >-
    Whether O(log_entry) was appended to O(log_path) (false when the log had that line already, or in check
    mode). Logging is a record of the run, not a change: it leaves C(changed) as the lock's state makes it.
  returned: with O(log_path), unless O(state=taken)
  type: bool
"""

import json
import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, psycopg2

RECORD = "holder.json"
STAMP = "%Y-%m-%dT%H:%M:%SZ"

# The lock and the audit log in the server's maintenance database, keyed by the database migrated.
TABLES = """
CREATE TABLE IF NOT EXISTS prisma_migrate_lock (
    database text PRIMARY KEY, record jsonb NOT NULL, taken_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS prisma_migrate_audit (
    id bigserial PRIMARY KEY, database text NOT NULL, at timestamptz NOT NULL DEFAULT now(), entry jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS prisma_migrate_audit_database ON prisma_migrate_audit (database, id);
"""


def renewed(old, params, now):
    """The record with a lease from `now`; since, state and taken_over kept from `old` unless given."""
    return {
        "holder": params["holder"],
        "since": params["since"] or old.get("since") or now.strftime(STAMP),
        "run_id": params["run_id"],
        "expires": (now + timedelta(minutes=params["lease_minutes"])).strftime(STAMP),
        "reason": params["reason"],
        "state": params["record_state"] or old.get("state") or {},
        "taken_over": params["taken_over"] or old.get("taken_over") or {},
    }


class FileLock:
    """The lock as a directory on this host (mkdir is atomic), its record in holder.json; the log a file."""

    def __init__(self, module):
        self.module = module
        self.path = module.params["path"]
        self.where = self.path

    def read(self):
        """The record, {} when there is none or it cannot be read as JSON; None when the lock is free."""
        if not os.path.isdir(self.path):
            return None
        try:
            with open(os.path.join(self.path, RECORD), encoding="utf-8") as handle:
                found = json.load(handle)
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def take(self, record):
        """Make the lock directory and write the record: False when it exists already."""
        try:
            os.mkdir(self.path, 0o755)
        except FileExistsError:
            return False
        os.chmod(self.path, 0o755)  # noqa: S103 -- as mkdir -m 0755 did: anyone may read who holds the lock
        self.write(record)
        return True

    def write(self, record):
        """Write through a temporary file in the same directory and rename it over the record."""
        fd, tmp = tempfile.mkstemp(prefix=".holder.", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            os.chmod(tmp, 0o644)
            os.rename(tmp, os.path.join(self.path, RECORD))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def release(self, run_id, record):
        """Remove the lock when its record (as just read) names run_id."""
        ours = (record or {}).get("run_id") == run_id
        if ours and not self.module.check_mode:
            shutil.rmtree(self.path)
        return ours

    def log(self, entry):
        """Append the entry as one JSON line unless the file has that line; True when it was added."""
        path = self.module.params["log_path"]
        if not path:
            return None
        line = json.dumps(entry, sort_keys=True)
        try:
            with open(path, encoding="utf-8") as handle:
                if any(existing.rstrip("\n") == line for existing in handle):
                    return False
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        os.chmod(path, 0o644)
        return True


class DatabaseLock:
    """The lock as a row of prisma_migrate_lock in the server's maintenance database; the log a table beside it."""

    def __init__(self, module, db):
        self.module = module
        self.db = db
        self.key = self.db.params.get("dbname", "")
        self.where = "%s (table prisma_migrate_lock of %s)" % (self.db.target, module.params["maintenance_db"])
        self.conn = self.db.connect(dbname=module.params["maintenance_db"])
        if module.check_mode:  # nothing is made in check mode: no table reads as a free lock
            return
        with self.conn.cursor() as cur:
            try:
                cur.execute(TABLES)
            except psycopg2.errors.UniqueViolation:  # two runs made the tables at once: one did
                pass

    def _one(self, query, args):
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchone()

    def read(self):
        query = "SELECT record FROM prisma_migrate_lock WHERE database = %s"
        try:
            row = self._one(query, (self.key,))
        except psycopg2.errors.UndefinedTable:  # check mode before the first run
            return None
        return None if row is None else (row[0] if isinstance(row[0], dict) else {})

    def take(self, record):
        query = "INSERT INTO prisma_migrate_lock (database, record) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1"
        return self._one(query, (self.key, json.dumps(record))) is not None

    def write(self, record):
        if self._one("UPDATE prisma_migrate_lock SET record = %s WHERE database = %s RETURNING 1",
                     (json.dumps(record), self.key)) is None:  # fmt: skip
            raise LookupError("the lock's row is gone")

    def release(self, run_id, record):
        """Delete the lock's row when it names run_id (checked in the DELETE itself, not on the record read)."""
        if self.module.check_mode:
            return (record or {}).get("run_id") == run_id
        query = "DELETE FROM prisma_migrate_lock WHERE database = %s AND record->>'run_id' = %s RETURNING 1"
        return self._one(query, (self.key, run_id)) is not None

    def log(self, entry):
        if not entry:
            return None
        query = (
            "INSERT INTO prisma_migrate_audit (database, entry) SELECT %s, %s::jsonb WHERE NOT EXISTS"
            " (SELECT 1 FROM prisma_migrate_audit WHERE database = %s AND entry = %s::jsonb) RETURNING 1"
        )
        return self._one(query, (self.key, json.dumps(entry), self.key, json.dumps(entry))) is not None


def finish(module, store, result):
    """Log the run when asked (never in check mode), then exit with the result."""
    if module.params["log_entry"] and (module.params["log_path"] or module.params["database_url"]):
        result["logged"] = not module.check_mode and bool(store.log(module.params["log_entry"]))
    module.exit_json(**result)


def run(module, store):
    params = module.params
    old = store.read()
    if params["state"] == "absent":
        ours = store.release(params["run_id"], old)
        finish(module, store, dict(changed=ours, released=ours, record=old or {}))
    if params["state"] == "taken":
        record = renewed({}, params, datetime.now(timezone.utc))
        if module.check_mode:
            taken = old is None
        else:
            taken = store.take(record)
        if not taken:
            module.exit_json(changed=False, taken=False, record=store.read() or {})  # read after the take lost
        module.exit_json(changed=True, taken=True, record=record)
    if old is None:
        module.fail_json(
            msg="migration_lock_record: no lock is held at %s: it was not taken (take it first), or another"
            " process removed it. Check for another migration run against this database." % store.where
        )
    record = renewed(old, params, datetime.now(timezone.utc))
    if not module.check_mode:
        store.write(record)
    finish(module, store, dict(changed=True, record=record))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database_url=dict(type="str", no_log=True),
            maintenance_db=dict(type="str", default="postgres"),
            path=dict(type="path"),
            run_id=dict(type="str", required=True),
            state=dict(type="str", choices=["taken", "present", "absent"], default="present"),
            holder=dict(type="str"),
            lease_minutes=dict(type="int", default=120),
            since=dict(type="str"),
            reason=dict(type="str", default=""),
            record_state=dict(type="dict", default={}),
            taken_over=dict(type="dict", default={}),
            log_path=dict(type="path"),
            log_entry=dict(type="dict", default={}),
        ),
        required_if=[("state", "present", ["holder"]), ("state", "taken", ["holder"])],
        required_one_of=[("database_url", "path")],
        mutually_exclusive=[("database_url", "path")],
        supports_check_mode=True,
    )
    if module.params["database_url"]:
        maintenance = module.params["maintenance_db"]
        db = Database(module, module.params["database_url"], "migration_lock_record")
        try:
            run(module, DatabaseLock(module, db))
        except (psycopg2.Error, LookupError) as exc:
            fix = (
                "Grant the login CREATE on the public schema of %s, or set migration_lock_maintenance_db." % maintenance
                if getattr(exc, "pgcode", None) == "42501"
                else "Check that this host reaches the server and that %s exists (migration_lock_maintenance_db)."
                % maintenance
            )
            module.fail_json(
                msg="migration_lock_record: cannot read or write the lock of %s in %s: %s. %s"
                % (db.target, maintenance, db.said(exc), fix)
            )
    store = FileLock(module)
    try:
        run(module, store)
    except OSError as exc:
        module.fail_json(msg="migration_lock_record: cannot write %s: %s. Run it with become." % (store.where, exc))


if __name__ == "__main__":
    main()
