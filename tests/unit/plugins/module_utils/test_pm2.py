"""Reading pm2 jlist: the banner skipped, the environment never passed on."""

from __future__ import annotations

import json

import pytest
from ansible_collections.prismaguard.migrate.plugins.module_utils import pm2

PROCESS = {
    "name": "backend",
    "pm_id": 0,
    "pid": 4242,
    "pm2_env": {
        "status": "online",
        "restart_time": 3,
        "exec_mode": "cluster_mode",
        "DATABASE_URL": "postgresql://x:secret@h/db",
    },
}


def test_the_banner_pm2_prints_when_starting_its_daemon_is_skipped():
    out = "\x1b[32m[PM2]\x1b[39m Spawning PM2 daemon\n[PM2] PM2 Successfully daemonized\n" + json.dumps([PROCESS])
    assert pm2.parse_jlist(out)[0]["pid"] == 4242


def test_an_empty_process_list_is_a_list():
    assert pm2.parse_jlist("[]\n") == []


def test_output_without_a_process_list_is_an_error():
    with pytest.raises(ValueError, match="no process list"):
        pm2.parse_jlist("[PM2] Spawning PM2 daemon\n")


def test_only_status_fields_are_kept_never_the_environment():
    other = dict(PROCESS, name="worker")
    found = pm2.instances([PROCESS, other], "backend")
    assert found == [{"pm_id": 0, "status": "online", "pid": 4242, "restarts": 3, "exec_mode": "cluster_mode"}]
    assert "secret" not in json.dumps(found)
