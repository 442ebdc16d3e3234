"""Downtime per restart strategy: a bounded load on /api/health while the restart step runs.

    .venv/bin/python bench/downtime.py            (both sandboxes must be up: bin/sandbox up)

For each strategy, 100 requests/s from 4 threads on loopback start 2 s before the restart step
(bench/restart.yml: migrate.yml's restart and health gate alone) and stop 3 s after it: failed
requests, the longest time without a successful answer, p50 and p99 latency. Bounded: at most
3 minutes per case. The sandbox is migrated to release 2 first (migrate.yml; nothing to do if it is
already there): at release 1 the admin endpoint the health gate checks answers 500, the tables it
reads not existing yet. The last case is a rolling restart (one host at a time, each gated on its
health) of the PM2 host (plain restart) and the systemd host behind nginx on a droplet of its own
(bench/lb.yml), which is removed at the end.

The zero-downtime cases run on the DigitalOcean-like sandbox (inventories/sandbox-do), whose systemd and
Docker hosts each run two instances behind nginx on the app's port (`app_instances`), restarted one at a
time, each answering on its own port before the next stops; it is migrated to release 2 first too.
"""

from __future__ import annotations

import sys
import tempfile
import time

from common import play, save, table
from load import Load

LB_PORT = 3030
NOTE = (
    "One host restarting one process (systemd, Docker compose) refuses connections for as long as the "
    "process is down: that is the gap and the failed requests. PM2's reload in cluster mode replaces one "
    "worker at a time, and two hosts behind a load balancer, restarted one at a time with a health gate "
    "between them, hide the restart altogether."
)
SELF, DO = "inventories/sandbox", "inventories/sandbox-do"
# (label, strategy, one host's zero-downtime restart, inventory, hosts, port, extra vars)
CASES = [
    ("PM2 reload (cluster mode, 2 workers)", "pm2", True, SELF, "sandbox-pm2", 3031,
     ["-e", "app_restart_pm2_action=reload"]),
    ("PM2 restart", "pm2", False, SELF, "sandbox-pm2", 3031, ["-e", "app_restart_pm2_action=restart"]),
    ("systemd restart (one process)", "systemd", False, SELF, "sandbox-systemd", 3032, []),
    ("Docker compose restart (one service)", "docker", False, SELF, "sandbox-docker", 3033, []),
    ("Rolling restart of 2 hosts behind nginx (PM2 restart, then systemd)", "pm2, systemd", False, SELF,
     "sandbox-pm2,sandbox-systemd", LB_PORT, ["-e", "app_restart_pm2_action=restart"]),
    ("pm2: reload on one host (DigitalOcean-like sandbox)", "pm2", True, DO, "sandbox-pm2", 3071,
     ["-e", "app_restart_pm2_action=reload"]),
    ("systemd: 2 instances behind nginx on one host, one at a time", "systemd", True, DO, "sandbox-systemd", 3072, []),
    ("docker: 2 compose services behind nginx on one host, one at a time", "docker", True, DO, "sandbox-docker",
     3073, []),
]  # fmt: skip


def measure(inventory: str, host: str, port: int, args: list[str], reports: dict) -> dict:
    with Load(f"http://127.0.0.1:{port}/api/health", rate=100, threads=4, limit=180) as load:
        time.sleep(2)
        began = time.monotonic()
        wall, _ = play("bench/restart.yml", "-l", host, *args, inventory=inventory, extra_env=reports)
        ended = time.monotonic()
        time.sleep(3)
    return {"restart_step_s": round(wall, 1), **load.summary((began - 2, ended + 3))}


def main() -> int:
    results = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-downtime-") as tmp:
        reports = {"MIGRATION_REPORT_DIR": tmp}
        for inventory in (SELF, DO):
            play("playbooks/migrate.yml", "-e", "rehearsal_enabled=false", inventory=inventory, extra_env=reports)
        play("bench/lb.yml", "-e", f"bench_lb_port={LB_PORT}")
        try:
            for label, strategy, zero, inventory, host, port, args in CASES:
                figures = measure(inventory, host, port, args, reports)
                results[label] = {"host": host, "strategy": strategy, "zero_downtime": zero, "inventory": inventory,
                                  **figures}  # fmt: skip
        finally:
            play("bench/lb.yml", "-e", "bench_lb_state=absent")
    for label, figures in results.items():
        rows.append([label, figures["requests"], figures["failed"], f"{figures['longest_gap_s']} s",
                     f"{figures['p99_ms']} ms", f"{figures['restart_step_s']} s"])  # fmt: skip
    headers = ["Strategy", "Requests", "Failed", "Longest gap without a success", "p99", "Restart and health gate"]
    zero = [r for r in results.values() if r["inventory"] == DO]
    verdict = "met" if all(r["failed"] == 0 for r in zero) else "not met"
    failed = ", ".join(f"{r['strategy']}: {r['failed']}" for r in zero)
    markdown = (
        table(headers, rows)
        + "\n\n"
        + NOTE
        + (
            " On one droplet, two instances behind nginx restarted one at a time do the same for systemd and Docker."
            " Target: 0 failed requests for the pm2, systemd and docker strategies on one host:"
            f" **{verdict}** ({failed})."
        )
    )
    save("downtime", "Downtime per restart strategy", {"cases": results}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
