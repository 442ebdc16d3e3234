"""Overhead: migrate.yml end to end against the runbook's commands typed by hand, on the same sandbox and data.

    .venv/bin/python bench/overhead.py      (resets the sandbox to release 1 before each run: bin/sandbox up first)

By hand: one SSH session per host (the runbook's order: pg_dump on the database host, then on each app
host git fetch + checkout, npm ci, prisma migrate deploy once, the restart, a health check). By the
tool: migrate.yml with its defaults (plan, lint, lock, backup verified and copied, rehearsal, status,
deploy, schema assertion, rolling restarts, health gates, audit, report), then again with the rehearsal
off, with SSH pipelining off, and with ControlPersist off. Overhead = tool minus hand. Bounded:
each run has a 15-minute limit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, env, play, read_report, restart_phase_s, save, table

SSH_KEY = ROOT / ".sandbox" / "ssh" / "id_ed25519"
KNOWN = ROOT / ".sandbox" / "ssh" / "known_hosts"
SECRETS = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/sandbox/secrets.yml").read_text())
URL = f"postgresql://backend:{SECRETS['vault_db_password']}@sandbox-db:5432/backend"
APP = "cd /srv/backend && git fetch -q origin && git checkout -q origin/main && npm ci --no-audit --no-fund -s"
DUMP = "hand.dump"  # in the deploy user's home, as the runbook has it: /var/backups is root's
CA = "export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt; "
HAND = [
    (2230, f"pg_dump -Fc -b -f {DUMP} '{URL}' && sha256sum {DUMP}"),
    (2231, f"{APP} && set -a && . ./.env && set +a && npx prisma migrate deploy && pm2 reload backend && sleep 2"
           " && curl -fsS localhost:3000/api/health"),
    (2232, f"{APP} && sudo systemctl restart contrezz-backend && sleep 2 && curl -fsS localhost:3000/api/health"),
    (2233, f"{APP} && docker-compose restart backend && sleep 3 && curl -fsS localhost:3000/api/health"),
]  # fmt: skip


def reset():
    play("playbooks/sandbox_reset.yml")


def by_hand() -> float:
    started = time.monotonic()
    for port, command in HAND:
        proc = subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", str(port), "-i", str(SSH_KEY), "-o", f"UserKnownHostsFile={KNOWN}",
             "-o", "BatchMode=yes", "deploy@127.0.0.1", CA + command],
            capture_output=True, text=True, timeout=900, env=env(),
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"by hand, port {port}: {proc.stderr[-2000:]}")
    return time.monotonic() - started


VARIANTS = [
    ("migrate.yml, defaults", []),
    ("migrate.yml, rehearsal off", ["-e", "rehearsal_enabled=false"]),
]
ENV_VARIANTS = [
    ("migrate.yml, rehearsal off, no pipelining", {"ANSIBLE_PIPELINING": "False"}),
    ("migrate.yml, rehearsal off, no ControlPersist", {"ANSIBLE_SSH_ARGS": "-o ServerAliveInterval=15"}),
]


# The tool's steps that are neither the runbook's commands nor waiting on them.
OWN_STEPS = ["Preflight checks", "Plan, lint and approval", "Take migration lock", "Verify schema",
             "Release migration lock"]  # fmt: skip


def own_overhead(report_dir: Path) -> dict:
    """From the run's report: the time in the steps that do the work, and the rest (the tool's own overhead).

    The status step (the runbook's `migrate status`) counts as overhead, as the issue defines it (all but
    pg_dump, migrate deploy, npm and restarts), and is also given apart: the runbook runs it too.
    """
    report, rows = read_report(report_dir)
    work = {
        "backup (pg_dump, verify, copy)": rows["Backup database (and verify)"]["duration_s"],
        "code (git, npm ci)": rows["Pull code and install"]["duration_s"],
        "migrate deploy": rows["Apply migrations"]["duration_s"],
        "rehearsal": rows.get("Rehearse on a copy of production", {}).get("duration_s", 0.0),
        "restarts and health gates": restart_phase_s(rows),
    }
    own = round(report["total_s"] - sum(work.values()), 1)
    status = rows["Check migration status"]["duration_s"]
    without_status = round(own - status, 1)
    steps = {name: rows[name]["duration_s"] for name in OWN_STEPS if name in rows}
    return {"total_s": report["total_s"], "work_s": work, "own_overhead_s": own, "migrate_status_s": status,
            "own_overhead_without_status_s": without_status, "own_steps_s": steps,
            "between_steps_s": round(without_status - sum(steps.values()), 1)}  # fmt: skip


def render(results: dict) -> str:
    """The table (and its reading) of the runs in `results`, by hand first."""
    hand = results["by hand"]["wall_s"]
    runs = {label: run for label, run in results.items() if label != "by hand"}
    rows = [["The runbook's commands by hand (one SSH session per host)", f"{hand:.1f} s", "—", "—", "—"]]
    for label, run in runs.items():
        less_status = run.get("own_overhead_without_status_s")
        rows.append([label, f"{run['wall_s']:.1f} s", f"{run['wall_s'] - hand:+.1f} s ({run['wall_s'] / hand:.2f}×)",
                     f"{run['own_overhead_s']} s", "—" if less_status is None else f"{less_status} s"])  # fmt: skip
    markdown = table(["Run", "Wall time", "Against by hand", "Own overhead (all but backup, code, deploy, "
                      "rehearsal, restarts)", "…less the status step"], rows)  # fmt: skip
    default = runs["migrate.yml, defaults"]
    verdict = "met" if default["own_overhead_s"] < 15 else "not met"
    steps = ", ".join(f"{name.lower()} {seconds} s" for name, seconds in default.get("own_steps_s", {}).items())
    return markdown + (
        f"\n\nTarget: the tool's own overhead under 15 s per run: **{verdict}** ({default['own_overhead_s']} s "
        f"with the defaults). Of it, the status step (the runbook's `migrate status`, read from the migration "
        "folders and `_prisma_migrations`; Prisma's own CLI, 4 to 20 s to start, only with "
        f"`migration_status_prisma: true`) takes {default['migrate_status_s']} s, the tool's own steps take {steps}, "
        f"and {default.get('between_steps_s', '—')} s pass between steps (play starts, the plays and tasks that "
        "find nothing to do, such as the rollback, one skipped include; each role's include and argument check; "
        "the lock's record written when the deploy begins). The lock's release includes the run's audit line. "
        "No play gathers facts (every play says `gather_facts: false`), so fact caching changes nothing; "
        "pipelining and ControlPersist are on in `ansible.cfg` and the last two rows turn each off. "
        "The commands by hand are pg_dump, git, npm ci, migrate deploy, the restart and one curl per host; "
        "they leave out the runbook's `migrate status` (twice), its table check and two of its three curls."
    )


def main() -> int:
    results = {}
    reset()
    results["by hand"] = {"wall_s": round(by_hand(), 1)}
    runs = [(label, args, {}) for label, args in VARIANTS]
    runs += [(label, ["-e", "rehearsal_enabled=false"], extra) for label, extra in ENV_VARIANTS]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for n, (label, args, extra) in enumerate(runs):
            reset()
            reports = Path(tmp) / str(n)
            wall, _ = play("playbooks/migrate.yml", *args, timeout=900,
                           extra_env={**extra, "MIGRATION_REPORT_DIR": str(reports)})  # fmt: skip
            results[label] = {"wall_s": round(wall, 1), **own_overhead(reports)}
    reset()
    save("overhead", "Overhead: the tool against the runbook's commands by hand", {"runs": results}, render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
