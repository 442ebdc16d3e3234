#!/usr/bin/python
"""Ansible module: start, reload, restart or stop a PM2 app and wait until it is online (or stopped)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pm2_app
short_description: Start, reload, restart or stop a PM2 app and wait until it is online (or stopped)
description:
  - Runs C(pm2 start), C(pm2 reload), C(pm2 restart) or C(pm2 stop) for one app as the user the task runs
    as, then reads C(pm2 jlist) until every instance of the app is C(online) (C(stopped) for O(state=stopped))
    or the timeout passes.
  - C(pm2 jlist) carries each app's whole environment (C(DATABASE_URL) included); this module
    returns only each instance's id, status, pid and restart count, never the environment.
  - C(reload) replaces cluster-mode instances one by one, without dropping requests.
options:
  state:
    description:
      - C(started) starts the app from O(ecosystem) when PM2 does not know it, and changes nothing otherwise.
      - C(reloaded) and C(restarted) always act; C(restarted) also starts instances that were stopped.
      - C(stopped) stops every instance, and changes nothing when all are stopped already (a rollback
        stops the app before it restores the database).
      - M(prismaguard.migrate.pm2_app_info) reads the instances without acting.
    type: str
    choices: [started, reloaded, restarted, stopped]
    required: true
  ecosystem:
    description: The ecosystem file to start the app from, relative to O(chdir). Needed for O(state=started).
    type: str
  update_env:
    description: Pass C(--update-env) on reload and restart, so the app sees the current environment.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for every instance to be online.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details: Reports the change it would make without making it.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - prismaguard.migrate.pm2
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Reload the backend without downtime.
  prismaguard.migrate.pm2_app:
    name: backend
    state: reloaded
    chdir: /srv/backend
  become: true
  become_user: deploy
"""

RETURN = r"""
instances:
  description: Each instance of the app after the action.
  returned: always
  type: list
  elements: dict
  sample: [{pm_id: 0, status: online, pid: 4242, restarts: 1, exec_mode: cluster_mode}]
online:
  description: Whether every instance is online (and there is at least one).
  returned: always
  type: bool
stopped:
  description: Whether every instance is stopped.
  returned: always
  type: bool
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pm2 import (
    ARGUMENT_SPEC,
    all_online,
    all_stopped,
    read,
    summary,
)


def done(module, changed, found):
    module.exit_json(changed=changed, **summary(found))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ARGUMENT_SPEC,
            state=dict(type="str", required=True, choices=["started", "reloaded", "restarted", "stopped"]),
            ecosystem=dict(type="str"),
            update_env=dict(type="bool", default=True),
            timeout=dict(type="int", default=30),
        ),
        required_if=[("state", "started", ["ecosystem"])],
        supports_check_mode=True,
    )
    p = module.params
    name, state = p["name"], p["state"]
    found = read(module, name)

    if (state == "started" and found) or (state == "stopped" and all_stopped(found)):
        done(module, False, found)
    if state != "started" and not found:
        module.fail_json(msg="pm2_app: PM2 has no app named %s to %s. Start it first." % (name, state[:-2]))
    if module.check_mode:
        done(module, True, found)

    if state == "started":
        cmd = [p["executable"], "start", p["ecosystem"]]
    elif state == "stopped":
        cmd = [p["executable"], "stop", name]
    else:
        cmd = [p["executable"], "reload" if state == "reloaded" else "restart", name]
        if p["update_env"]:
            cmd.append("--update-env")
    rc, out, err = module.run_command(cmd, cwd=p["chdir"] or os.getcwd())
    if rc != 0:
        module.fail_json(msg="pm2_app: %s failed (rc %d): %s" % (" ".join(cmd[1:]), rc, err.strip()[-500:]))

    reached = all_stopped if state == "stopped" else all_online
    deadline = time.time() + p["timeout"]
    found = read(module, name)
    while not reached(found) and time.time() < deadline:
        time.sleep(1)
        found = read(module, name)
    if not reached(found):
        module.fail_json(
            msg="pm2_app: %s is not %s %ds after %s: %s. Read `pm2 logs %s`."
            % (
                name,
                "stopped" if state == "stopped" else "online",
                p["timeout"],
                " ".join(cmd[1:]),
                [i["status"] for i in found] or "no instances",
                name,
            ),
            changed=True,
            **summary(found),
        )
    done(module, True, found)


if __name__ == "__main__":
    main()
