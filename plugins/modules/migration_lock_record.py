#!/usr/bin/python
"""Ansible module: write or remove the migration lock's record in one step."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_lock_record
short_description: Renew the migration lock's lease, or release the lock, in one call
description:
  - The migration lock is a directory on the database host, taken with C(mkdir) (atomic); its
    C(holder.json) says who holds it, until when (the lease), why it is kept, and what a run that
    takes it over must undo.
  - With O(state=present), reads the record, keeps what this call does not set (C(since), C(state),
    C(taken_over)), writes it back with a lease that runs from now, through a temporary file and a
    rename, so a reader never sees half a record. The directory must exist (the lock was taken).
  - With O(state=absent), removes the lock directory, only when its record names O(run_id); a lock
    another run holds, or took over, is left alone.
  - One module call where a read and a copy took three round trips over SSH; the lease is renewed at
    every play.
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
    description: V(present) writes the record with a fresh lease; V(absent) releases the lock this run holds.
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: Who runs it (user@controller), shown to anyone refused. Required with O(state=present).
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
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - migration-automation team
"""

EXAMPLES = r"""
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
  description: The record as written (O(state=present)), or as found (O(state=absent)).
  returned: always
  type: dict
  sample: {holder: deploy@ci, since: "2026-11-30T10:00:00Z", run_id: "20261130_100000",
           expires: "2026-11-30T12:00:00Z", reason: "", state: {}, taken_over: {}}
released:
  description: Whether the lock directory was removed.
  returned: when O(state=absent)
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            run_id=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            holder=dict(type="str"),
            lease_minutes=dict(type="int", default=120),
            since=dict(type="str"),
            reason=dict(type="str", default=""),
            record_state=dict(type="dict", default={}),
            taken_over=dict(type="dict", default={}),
        ),
        required_if=[("state", "present", ["holder"])],
        supports_check_mode=True,
    )
    path = module.params["path"]
    old = read_record(path)

    if module.params["state"] == "absent":
        ours = os.path.isdir(path) and old.get("run_id") == module.params["run_id"]
        if ours and not module.check_mode:
            shutil.rmtree(path)
        module.exit_json(changed=ours, released=ours, record=old)

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
    module.exit_json(changed=True, record=record)


if __name__ == "__main__":
    main()
