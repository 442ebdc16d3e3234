#!/usr/bin/python
"""Ansible module: write or remove the migration lock's record in one step."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_lock_record
short_description: Take the migration lock, renew its lease, or release it, in one call
description:
  - The migration lock is a directory on the database host, taken with C(mkdir) (atomic); its
    C(holder.json) says who holds it, until when (the lease), why it is kept, and what a run that
    takes it over must undo.
  - With O(state=present), reads the record, keeps what this call does not set (C(since), C(state),
    C(taken_over)), writes it back with a lease that runs from now, through a temporary file and a
    rename, so a reader never sees half a record. The directory must exist (the lock was taken).
  - With O(state=absent), removes the lock directory, only when its record names O(run_id); a lock
    another run holds, or took over, is left alone.
  - With O(state=taken), takes the lock. It makes the directory (C(mkdir) is atomic, so of two runs exactly
    one makes it) and writes the record, with a lease from now and C(since) now. When the directory already exists it
    changes nothing and returns the record found, for the caller to judge (another run, a stale lease, a lock
    kept after a failed rollback).
  - With O(log_path) and O(state=present) or O(state=absent), also appends O(log_entry) to the audit log
    there, as one JSON line (keys sorted), unless that exact line is there already. A missing log and its
    folder are made (C(0644), C(0755)). The run's end (the lock released or kept, and its line in the log)
    is then one call.
  - One module call where a read and a copy took three round trips over SSH; the run renews the lease
    as it goes.
options:
  path:
    description: The lock directory.
    type: path
    required: true
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
    description: The audit log, one JSON line per run. Without it nothing is logged.
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
author:
  - migration-automation team
"""

EXAMPLES = r"""
- name: Take the lock, or read who holds it.
  migration_lock_record:
    path: /var/lock/prisma-migrate
    run_id: "{{ preflight_run_id }}"
    holder: deploy@ci
    state: taken
  become: true
  register: lock

- name: Renew the lease, recording what to undo from here on.
  migration_lock_record:
    path: /var/lock/prisma-migrate
    run_id: "{{ preflight_run_id }}"
    holder: deploy@ci
    record_state: {stage: deploy, backup: /var/backups/prisma-migrate/backend_20261130.dump}
  become: true

- name: Release the lock if this run holds it.
  migration_lock_record:
    path: /var/lock/prisma-migrate
    run_id: "{{ preflight_run_id }}"
    state: absent
  become: true
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

RECORD = "holder.json"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def read_record(path):
    """The record in the lock directory, {} when there is none or it cannot be read as JSON."""
    try:
        with open(os.path.join(path, RECORD), encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


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


def write_record(path, record):
    """Write through a temporary file in the same directory and rename it over the record."""
    fd, tmp = tempfile.mkstemp(prefix=".holder.", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, os.path.join(path, RECORD))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append_line(path, entry):
    """Append the entry as one JSON line unless the file has that line; True when it was added."""
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


def log(module, result):
    """Log the run when asked (never in check mode), then exit with the result."""
    if module.params["log_path"]:
        result["logged"] = not module.check_mode
        if not module.check_mode:
            try:
                result["logged"] = append_line(module.params["log_path"], module.params["log_entry"])
            except OSError as exc:
                module.fail_json(
                    msg="migration_lock_record: cannot write the audit log %s: %s. Run it with become."
                    % (module.params["log_path"], exc),
                    **result,
                )
    module.exit_json(**result)


def take(module, path):
    """Make the lock directory and write the record; when it exists, hand back what it holds."""
    if module.check_mode:
        free = not os.path.isdir(path)
    else:
        try:
            os.mkdir(path, 0o755)
            free = True
        except FileExistsError:
            free = False
        except OSError as exc:
            module.fail_json(msg="migration_lock_record: cannot make %s: %s. Run it with become." % (path, exc))
    if not free:
        module.exit_json(changed=False, taken=False, record=read_record(path))  # read after mkdir lost
    record = renewed({}, module.params, datetime.now(timezone.utc))
    if not module.check_mode:
        os.chmod(path, 0o755)  # noqa: S103 -- as mkdir -m 0755 did: anyone may read who holds the lock
        write_record(path, record)
    module.exit_json(changed=True, taken=True, record=record)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
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
        supports_check_mode=True,
    )
    path = module.params["path"]
    old = read_record(path)

    if module.params["state"] == "absent":
        ours = os.path.isdir(path) and old.get("run_id") == module.params["run_id"]
        if ours and not module.check_mode:
            shutil.rmtree(path)
        log(module, dict(changed=ours, released=ours, record=old))

    if module.params["state"] == "taken":
        take(module, path)

    if not os.path.isdir(path):
        module.fail_json(
            msg="migration_lock_record: %s does not exist: the lock is not held (take it first), or another"
            " process removed it. Check for another migration run against this database." % path
        )
    record = renewed(old, module.params, datetime.now(timezone.utc))
    if not module.check_mode:
        try:
            write_record(path, record)
        except OSError as exc:
            module.fail_json(msg="migration_lock_record: cannot write %s: %s. Run it with become." % (path, exc))
    log(module, dict(changed=True, record=record))


if __name__ == "__main__":
    main()
