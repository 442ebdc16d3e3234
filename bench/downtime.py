"""Downtime per restart strategy: a bounded load on /api/health while the restart step runs.

    .venv/bin/python bench/downtime.py            (the sandbox must be up: bin/sandbox up)

For each strategy, 100 requests/s from 4 threads on loopback start 2 s before the restart step
(bench/restart.yml: migrate.yml's restart and health gate alone) and stop 3 s after it: failed
requests, the longest time without a successful answer, p50 and p99 latency. Bounded: at most
3 minutes per case. The sandbox is migrated to release 2 first (migrate.yml; nothing to do if it is
already there): at release 1 the admin endpoint the health gate checks answers 500, the tables it
reads not existing yet. The last case is a rolling restart (one host at a time, each gated on its
health) of the PM2 host (plain restart) and the systemd host behind nginx on a droplet of its own
(bench/lb.yml), which is removed at the end.
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
CASES = [
    ("PM2 reload (cluster mode, 2 workers)", "sandbox-pm2", 3031, ["-e", "app_restart_pm2_action=reload"]),
    ("PM2 restart", "sandbox-pm2", 3031, ["-e", "app_restart_pm2_action=restart"]),
    ("systemd restart", "sandbox-systemd", 3032, []),
    ("Docker compose restart", "sandbox-docker", 3033, []),
    (
        "Rolling restart of 2 hosts behind nginx (PM2 restart, then systemd)",
        "sandbox-pm2,sandbox-systemd",
        LB_PORT,
        ["-e", "app_restart_pm2_action=restart"],
    ),
]


def measure(host: str, port: int, args: list[str], reports: dict) -> dict:
    with Load(f"http://127.0.0.1:{port}/api/health", rate=100, threads=4, limit=180) as load:
        time.sleep(2)
        began = time.monotonic()
        wall, _ = play("bench/restart.yml", "-l", host, *args, extra_env=reports)
        ended = time.monotonic()
        time.sleep(3)
    return {"restart_step_s": round(wall, 1), **load.summary((began - 2, ended + 3))}


def main() -> int:
    results = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-downtime-") as tmp:
        reports = {"MIGRATION_REPORT_DIR": tmp}
        play("playbooks/migrate.yml", "-e", "rehearsal_enabled=false", extra_env=reports)
        play("bench/lb.yml", "-e", f"bench_lb_port={LB_PORT}")
        try:
            for label, host, port, args in CASES:
                results[label] = {"host": host, **measure(host, port, args, reports)}
        finally:
            play("bench/lb.yml", "-e", "bench_lb_state=absent")
    for label, figures in results.items():
        rows.append([label, figures["requests"], figures["failed"], f"{figures['longest_gap_s']} s",
                     f"{figures['p99_ms']} ms", f"{figures['restart_step_s']} s"])  # fmt: skip
    headers = ["Strategy", "Requests", "Failed", "Longest gap without a success", "p99", "Restart and health gate"]
    markdown = table(headers, rows) + "\n\n" + NOTE
    save("downtime", "Downtime per restart strategy", {"cases": results}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
