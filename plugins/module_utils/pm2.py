"""Reading `pm2 jlist` without ever passing on the environment it carries."""

from __future__ import annotations

import json
import re

# jlist prints a coloured "[PM2] ..." banner first when it had to start the
# daemon; the process list is the line that is a JSON array.
JSON_LINE = re.compile(r"^\[(\{|\])")


def parse_jlist(stdout):
    """The process list from `pm2 jlist` output, banner lines skipped."""
    lines = [line for line in stdout.splitlines() if JSON_LINE.match(line.strip())]
    if not lines:
        raise ValueError("pm2 jlist printed no process list")
    return json.loads(lines[-1].strip())


def instances(processes, name):
    """Status of each instance of one app: id, status, pid, restarts. Nothing else (no env)."""
    found = []
    for proc in processes:
        if proc.get("name") != name:
            continue
        env = proc.get("pm2_env") or {}
        found.append(
            {
                "pm_id": proc.get("pm_id"),
                "status": env.get("status"),
                "pid": proc.get("pid"),
                "restarts": env.get("restart_time", 0),
                "exec_mode": env.get("exec_mode"),
            }
        )
    return found


# The arguments every PM2 module takes (doc fragment prismaguard.migrate.pm2).
ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    chdir=dict(type="path"),
    executable=dict(type="path", default="pm2"),
)


def read(module, name):
    """One app's instances as `pm2 jlist` shows them, run by the module's user; fails the module naming why."""
    rc, out, err = module.run_command([module.params["executable"], "jlist"], cwd=module.params["chdir"])
    if rc != 0:
        module.fail_json(msg="pm2 jlist failed (rc %d): %s" % (rc, err.strip()[-300:]))
    try:
        return instances(parse_jlist(out), name)
    except ValueError as exc:
        module.fail_json(msg="%s" % exc)


def all_online(found):
    return bool(found) and all(i["status"] == "online" for i in found)


def all_stopped(found):
    return all(i["status"] == "stopped" for i in found)


def summary(found):
    """What the PM2 modules return about an app: its instances, and whether all are online or stopped."""
    return dict(instances=found, online=all_online(found), stopped=all_stopped(found))
