"""Scale: migrate.yml across 1, 3 and 6 app hosts, one at a time (the default) and in batches of 3.

    .venv/bin/python bench/scale.py      (needs the sandbox's images: bin/sandbox up once, or sandbox_build.yml)

Each run gets droplets of its own, apart from the sandbox's (bench-db and bench-app1..N, systemd
strategy, on network migbench, SSH on 127.0.0.1:2250-2256), set up at release 1 from scratch, then
migrate.yml with its defaults. From the run's report: wall time, how many times and on how many hosts
`migrate deploy` ran (once, whatever the host count), and the restart phase (first restart to last
health gate), so that the growth with host count can be read against it. Bounded: 15 minutes per
`sandbox up` and per run; the droplets are removed at the end, even after a failure.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml
from common import ROOT, play, read_report, restart_phase_s, save, table

CASES = [(1, 1), (3, 1), (6, 1), (3, 3), (6, 3)]  # (app hosts, batch size)
NETWORK = ["-e", "sandbox_hosts_network=migbench"]
NOTE = (
    "`migrate deploy` runs once, on one host, whatever the host count. What grows: the restart phase, "
    "host after host with batches of 1 and batch after batch with batches of 3; and the code step, because "
    "every droplet here shares the machine's two cores, so `npm ci` on six hosts at once takes six "
    "times the CPU (on real droplets, each with its own CPU, it would not). Everything else grows less"
)


def inventory(folder: Path, hosts: int) -> str:
    """A sandbox inventory with bench-db and `hosts` systemd app hosts, sharing the sandbox's group_vars."""
    app = {
        f"bench-app{i}": {"ansible_port": 2250 + i, "sandbox_image": "droplet", "app_restart_strategy": "systemd",
                          "db_host": "bench-db"}
        for i in range(1, hosts + 1)
    }  # fmt: skip
    doc = {"all": {"children": {"sandbox": {"children": {
        "databases": {"hosts": {"bench-db": {"ansible_port": 2250, "sandbox_image": "dbhost", "db_host": "bench-db"}}},
        "app": {"hosts": app},
    }}}}}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    link = folder / "group_vars"
    if not link.exists():
        link.symlink_to(ROOT / "inventories" / "sandbox" / "group_vars")
    return str(folder)


def run(folder: Path, hosts: int, batch: int) -> dict:
    inv = inventory(folder / f"n{hosts}", hosts)
    extra = {"SANDBOX_DIR": str(ROOT / ".sandbox"), "MIGRATION_REPORT_DIR": str(folder / f"reports-{hosts}-{batch}")}
    play("playbooks/sandbox_down.yml", *NETWORK, inventory=inv, extra_env=extra)
    try:
        play("playbooks/sandbox_up.yml", *NETWORK, inventory=inv, extra_env=extra, timeout=900)
        wall, _ = play("playbooks/migrate.yml", "-e", f"migrate_restart_batch={batch}", inventory=inv,
                       extra_env=extra, timeout=900)  # fmt: skip
    finally:
        play("playbooks/sandbox_down.yml", *NETWORK, inventory=inv, extra_env=extra, check=False)
    report, rows = read_report(Path(extra["MIGRATION_REPORT_DIR"]))
    deploy, phase, code = rows["Apply migrations"], restart_phase_s(rows), rows["Pull code and install"]["duration_s"]
    return {
        "outcome": report["outcome"],
        "wall_s": round(wall, 1),
        "report_total_s": report["total_s"],
        "deploy_hosts": deploy["hosts"],
        "deploy_s": deploy["duration_s"],
        "migrations_applied": len(report["migrations_applied"]),
        "restart_phase_s": phase,
        "code_s": code,
        "rest_s": round(report["total_s"] - phase - code, 1),
    }


def render(results: dict) -> str:
    """The table of the cases in `results`, and what it shows."""
    rows = [
        [case["hosts"], case["batch"], f"{case['wall_s']} s", f"{case['restart_phase_s']} s", f"{case['code_s']} s",
         f"{case['rest_s']} s", f"{len(case['deploy_hosts'])} host, {case['deploy_s']} s"]
        for case in results.values()
    ]  # fmt: skip
    headers = ["App hosts", "Batch", "Wall time", "Restart phase (restart + health gate)",
               "Code and npm ci (all hosts at once)", "Everything else", "migrate deploy ran on"]  # fmt: skip
    rest = sorted(case["rest_s"] for case in results.values())
    grows = f" ({rest[0]} s to {rest[-1]} s): preflight's checks run on every host, on the same two cores."
    return table(headers, rows) + "\n\n" + NOTE + grows


def main() -> int:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for hosts, batch in CASES:
            figures = run(Path(tmp), hosts, batch)
            if figures["outcome"] != "succeeded":
                raise SystemExit(f"{hosts} hosts, batches of {batch}: the run {figures['outcome']}")
            if len(figures["deploy_hosts"]) != 1:
                raise SystemExit(f"{hosts} hosts: migrate deploy ran on {figures['deploy_hosts']}, not once")
            results[f"{hosts} hosts, batch {batch}"] = {"hosts": hosts, "batch": batch, **figures}
            # Saved after each case: a long run cut short keeps what it measured.
            save("scale", "Scale: wall time against app host count", {"cases": results}, render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
