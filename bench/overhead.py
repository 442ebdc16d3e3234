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
    (2231, f"{APP} && DATABASE_URL='{URL}' npx prisma migrate deploy && pm2 reload backend && sleep 2"
           " && curl -fsS localhost:3000/api/health"),
    (2232, f"{APP} && sudo systemctl restart contrezz-backend && sleep 2 && curl -fsS localhost:3000/api/health"),
    (2233, f"{APP} && docker-compose restart backend && sleep 3 && curl -fsS localhost:3000/api/health"),
]  # fmt: skip


def reset():
    play("playbooks/sandbox_down.yml")
    play("playbooks/sandbox_up.yml")


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


def own_overhead(report_dir: Path) -> dict:
    """From the run's report: the time in the steps that do the work, and the rest (the tool's own overhead)."""
    report, rows = read_report(report_dir)
    work = {
        "backup (pg_dump, verify, copy)": rows["Backup database (and verify)"]["duration_s"],
        "code (git, npm ci)": rows["Pull code and install"]["duration_s"],
        "migrate deploy": rows["Apply migrations"]["duration_s"],
        "rehearsal": rows.get("Rehearse on a copy of production", {}).get("duration_s", 0.0),
        "restarts and health gates": restart_phase_s(rows),
    }
    own = round(report["total_s"] - sum(work.values()), 1)
    return {"total_s": report["total_s"], "work_s": work, "own_overhead_s": own}


def main() -> int:
    results, rows = {}, []
    reset()
    hand = by_hand()
    results["by hand"] = {"wall_s": round(hand, 1)}
    rows.append(["The runbook's commands by hand (one SSH session per host)", f"{hand:.1f} s", "—", "—"])
    runs = [(label, args, {}) for label, args in VARIANTS]
    runs += [(label, ["-e", "rehearsal_enabled=false"], extra) for label, extra in ENV_VARIANTS]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for n, (label, args, extra) in enumerate(runs):
            reset()
            reports = Path(tmp) / str(n)
            wall, _ = play("playbooks/migrate.yml", *args, timeout=900,
                           extra_env={**extra, "MIGRATION_REPORT_DIR": str(reports)})  # fmt: skip
            figures = own_overhead(reports)
            results[label] = {"wall_s": round(wall, 1), **figures}
            rows.append([label, f"{wall:.1f} s", f"{wall - hand:+.1f} s ({wall / hand:.2f}×)",
                         f"{figures['own_overhead_s']} s"])  # fmt: skip
    reset()
    markdown = table(["Run", "Wall time", "Against by hand", "Own overhead (all but backup, code, deploy, "
                      "rehearsal, restarts)"], rows)  # fmt: skip
    markdown += (
        "\n\nNo play gathers facts (every play says `gather_facts: false`), so fact caching changes nothing; "
        "pipelining and ControlPersist are on in `ansible.cfg` and the last two rows turn each off."
    )
    save("overhead", "Overhead: the tool against the runbook's commands by hand", {"runs": results}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
