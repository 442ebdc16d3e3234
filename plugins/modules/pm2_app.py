#!/usr/bin/python
"""Ansible module: start, reload or restart a PM2 app and wait until every instance is online."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pm2_app
short_description: Start, reload or restart a PM2 app and wait until every instance is online
description:
  - Runs C(pm2 start), C(pm2 reload) or C(pm2 restart) for one app as the user the task runs as,
    then reads C(pm2 jlist) until every instance of the app is C(online) or the timeout passes.
  - C(pm2 jlist) carries each app's whole environment (C(DATABASE_URL) included); this module
    returns only each instance's id, status, pid and restart count, never the environment.
  - C(reload) replaces cluster-mode instances one by one, without dropping requests.
options:
  name:
    description: The app's name in PM2.
    type: str
    required: true
  state:
    description:
      - C(started) starts the app from O(ecosystem) when PM2 does not know it, and changes nothing otherwise.
      - C(reloaded) and C(restarted) always act.
      - C(info) only reports.
    type: str
    choices: [started, reloaded, restarted, info]
    default: info
  ecosystem:
    description: The ecosystem file to start the app from, relative to O(chdir). Needed for O(state=started).
    type: str
  chdir:
    description: Directory to run PM2 in.
    type: path
  update_env:
    description: Pass C(--update-env) on reload and restart, so the app sees the current environment.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for every instance to be online.
    type: int
    default: 30
  executable:
    description: The pm2 executable.
    type: path
    default: pm2
attributes:
  check_mode:
    support: full
    details: Reports the change it would make without making it.
  diff_mode:
    support: none
author:
  - migration-automation team
"""

EXAMPLES = r"""
- name: Reload the backend without downtime.
  pm2_app:
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
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pm2 import instances, parse_jlist


def read(module, name):
    rc, out, err = module.run_command([module.params["executable"], "jlist"], cwd=module.params["chdir"])
    if rc != 0:
        module.fail_json(msg="pm2_app: pm2 jlist failed (rc %d): %s" % (rc, err.strip()[-300:]))
    try:
        return instances(parse_jlist(out), name)
    except ValueError as exc:
        module.fail_json(msg="pm2_app: %s" % exc)


def all_online(found):
    return bool(found) and all(i["status"] == "online" for i in found)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="info", choices=["started", "reloaded", "restarted", "info"]),
            ecosystem=dict(type="str"),
            chdir=dict(type="path"),
            update_env=dict(type="bool", default=True),
            timeout=dict(type="int", default=30),
            executable=dict(type="path", default="pm2"),
        ),
        required_if=[("state", "started", ["ecosystem"])],
        supports_check_mode=True,
    )
    p = module.params
    name, state = p["name"], p["state"]
    found = read(module, name)

    if state == "info":
        module.exit_json(changed=False, instances=found, online=all_online(found))
    if state == "started" and found:
        module.exit_json(changed=False, instances=found, online=all_online(found))
    if state != "started" and not found:
        module.fail_json(msg="pm2_app: PM2 has no app named %s to %s. Start it first." % (name, state[:-2]))
    if module.check_mode:
        module.exit_json(changed=True, instances=found, online=all_online(found))

    if state == "started":
        cmd = [p["executable"], "start", p["ecosystem"]]
    else:
        cmd = [p["executable"], "reload" if state == "reloaded" else "restart", name]
        if p["update_env"]:
            cmd.append("--update-env")
    rc, out, err = module.run_command(cmd, cwd=p["chdir"] or os.getcwd())
    if rc != 0:
        module.fail_json(msg="pm2_app: %s failed (rc %d): %s" % (" ".join(cmd[1:]), rc, err.strip()[-500:]))

    deadline = time.time() + p["timeout"]
    found = read(module, name)
    while not all_online(found) and time.time() < deadline:
        time.sleep(1)
        found = read(module, name)
    if not all_online(found):
        module.fail_json(
            msg="pm2_app: %s is not online %ds after %s: %s. Read `pm2 logs %s`."
            % (name, p["timeout"], " ".join(cmd[1:]), [i["status"] for i in found] or "no instances", name),
            changed=True,
            instances=found,
            online=False,
        )
    module.exit_json(changed=True, instances=found, online=True)


if __name__ == "__main__":
    main()
