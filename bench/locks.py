"""How long the app's queries wait during a deploy, with a transaction held open on the table it alters.

    .venv/bin/python bench/locks.py      (uses the sandbox: resets it to release 1 before each case and after)

Release 2's first migration alters `customers`. In each case a transaction reads `customers` and stays open
30 s (a report, a slow request), opened as the deploy begins, while the app reads and writes one row of
`customers` (bench/blocking.py's Prober: a read and a no-op update, each every 50 ms, as the app role): the
longest any of those waited, and how many failed.

- by hand: the runbook's `npx prisma migrate deploy` on the PM2 host (code checked out and installed first,
  not timed); its ALTER TABLE queues behind the open transaction, and the app's queries queue behind it.
- migrate.yml: the tool (rehearsal off, the rest its defaults: lock_timeout 2 s, 5 retries).

Bounded: at most 5 minutes per case.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg2
import yaml
from blocking import Holder, Prober
from common import ROOT, env, play, save, table

SECRETS = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/sandbox/secrets.yml").read_text())
DB = {"host": "127.0.0.1", "port": 55432, "user": "backend", "password": SECRETS["vault_db_password"]}
HOLD_S = 30
TITLE = "Lock waits: a transaction held open on the table a migration alters"
KNOWN = ROOT / ".sandbox/ssh/known_hosts"
SSH = ["ssh", "-F", "/dev/null", "-p", "2231", "-i", str(ROOT / ".sandbox/ssh/id_ed25519"),
       "-o", f"UserKnownHostsFile={KNOWN}", "-o", "BatchMode=yes", "deploy@127.0.0.1"]  # fmt: skip
CHECKOUT = "cd /srv/backend && git fetch -q origin && git checkout -q origin/main && npm ci --no-audit --no-fund -s"
# The app's .env read into the shell first: with a prisma.config.ts, Prisma's CLI does not read .env itself.
DEPLOY = (
    "cd /srv/backend && set -a && . ./.env && set +a"
    " && NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npx prisma migrate deploy"
)


def on_app_host(command: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SSH, command], capture_output=True, text=True, timeout=300, env=env())
    if proc.returncode != 0:
        raise SystemExit(f"on sandbox-pm2: {command}: {proc.stderr[-2000:]}")
    return proc


def first_customer() -> str:
    with psycopg2.connect(dbname="backend", **DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM customers ORDER BY id LIMIT 1")
        return cur.fetchone()[0]


def deploy_began() -> bool:
    """The run has recorded in the lock that its deploy begins (Prisma starts next)."""
    with psycopg2.connect(dbname="postgres", **DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('prisma_migrate_lock') IS NOT NULL")
        if not cur.fetchone()[0]:
            return False
        cur.execute("SELECT record->'state'->>'stage' FROM prisma_migrate_lock WHERE database = 'backend'")
        row = cur.fetchone()
        return bool(row and row[0] == "deploy")


def case(run, when=None) -> dict:
    connect = dict(DB, dbname="backend")
    holder = Holder(connect, "customers", HOLD_S, when=when)
    with Prober(connect, "customers", first_customer(), limit=300) as prober:
        holder.start()
        if when is None:
            time.sleep(0.5)  # the transaction is open before the deploy starts
        began = time.monotonic()
        run()
        deploy_s = round(time.monotonic() - began, 1)
        time.sleep(1)
    holder.stop()
    return {"held_s": holder.held_s, "wall_s": deploy_s, **prober.summary()}


def main() -> int:
    results = {}
    play("playbooks/sandbox_reset.yml")
    on_app_host(CHECKOUT)
    results["by hand"] = case(lambda: on_app_host(DEPLOY))
    play("playbooks/sandbox_reset.yml")
    results["migrate.yml"] = case(
        lambda: play("playbooks/migrate.yml", "-e", "rehearsal_enabled=false", timeout=300), when=deploy_began
    )
    play("playbooks/sandbox_reset.yml")
    save("locks", TITLE, {"cases": results}, render(results))
    return 0


def render(results: dict) -> str:
    rows = [
        [label, f"{r['max_blocked_ms']} ms", r["failed"], r["queries"], f"{r['p99_ms']} ms", f"{r['wall_s']} s"]
        for label, r in results.items()
    ]
    headers = ["Deploy", "Longest an app query waited", "Failed", "App queries", "p99", "Wall time"]
    hand, tool = results["by hand"], results["migrate.yml"]
    verdict = "met" if tool["max_blocked_ms"] <= 2200 else "not met"
    return table(headers, rows) + (
        f"\n\nA transaction holding a read of `customers` open {HOLD_S} s from the moment the deploy begins. By hand,"
        " the first migration's ALTER TABLE waits for it, and every app query on `customers` waits behind the"
        " ALTER for as long. With migrate.yml, the ALTER gives up after lock_timeout (2 s, a startup option of"
        " Prisma's own connection), the app's queries go on, and the migration is tried again (jittered back-off)"
        " until the transaction has ended. Wall time is the deploy's by hand (`npx prisma migrate deploy`) and the"
        " whole run's with migrate.yml (preflight, backup, code, deploy, restarts). Target: app queries blocked"
        f" at most the lock budget (2 s) with migrate.yml, against 30 s or more by hand: **{verdict}** for"
        f" migrate.yml ({tool['max_blocked_ms']} ms); by hand the app waited out the transaction, all of it that"
        f" was left once Prisma's ALTER queued ({hand['max_blocked_ms']} ms of its {HOLD_S} s)."
    )


if __name__ == "__main__":
    sys.exit(main())
