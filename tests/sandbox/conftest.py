"""Every sandbox test module starts from production as it was before any run.

Hosts, ports, container names and the known_hosts file come from the sandbox's inventory
(SANDBOX_INVENTORY, inventories/sandbox by default), so the same tests run against either sandbox.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import psycopg2
import pytest
import yaml
from conftest import ROOT, SANDBOX_INVENTORY, run

from .writes import Writer

# For runs whose test is not about it: no rehearsal. The end-to-end test and the fault matrix keep the defaults.
NO_REHEARSAL = ("-e", "rehearsal_enabled=false")

# Seconds spent in each playbook over the session: where the suite's time goes (printed at its end).
SPENT: dict[str, list[float]] = defaultdict(list)


def playbook(name: str, *args: str, expect_rc: int = 0) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = run(["ansible-playbook", "-i", str(SANDBOX_INVENTORY), f"playbooks/{name}", *args])
    SPENT[name].append(time.monotonic() - started)
    assert result.returncode == expect_rc, (
        f"{name} rc {result.returncode}:\n{result.stdout[-5000:]}\n{result.stderr[-2000:]}"
    )
    return result


def pytest_terminal_summary(terminalreporter):
    if WRITES:
        terminalreporter.section("writes during the runs (acknowledged, lost)")
        for stats in WRITES:
            terminalreporter.write_line(json.dumps(stats))
    if PROBES:
        terminalreporter.section("app queries on a table a migration alters (longest wait, failed)")
        for stats in PROBES:
            terminalreporter.write_line(json.dumps(stats))
    if SPENT:
        terminalreporter.section("seconds spent per playbook")
        for name, runs in sorted(SPENT.items(), key=lambda item: -sum(item[1])):
            terminalreporter.write_line(f"{name}: {len(runs)} run(s), {sum(runs):.0f} s")


_BUILT: list[bool] = []


def reset() -> None:
    """Production as it was before any run: the droplets started again from their release-1 snapshots.

    The first reset of the session builds what they are made from (cached: images, key pair, git origin,
    snapshots); the later ones skip that, nothing having changed it since.
    """
    playbook("sandbox_reset.yml", *(("-e", "sandbox_up_build=false") if _BUILT else ()))
    _BUILT.append(True)


@pytest.fixture(scope="module", autouse=True)
def fresh_sandbox():
    reset()


def _inventory() -> tuple[dict, dict]:
    """The inventory's `all` vars and its hosts with their variables (hosts.yml)."""
    data = yaml.safe_load((SANDBOX_INVENTORY / "hosts.yml").read_text())["all"]
    hosts: dict[str, dict] = {}

    def walk(group: dict) -> None:
        for name, hostvars in (group.get("hosts") or {}).items():
            hosts.setdefault(name, {}).update(hostvars or {})
        for sub in (group.get("children") or {}).values():
            walk(sub or {})

    walk(data)
    return data.get("vars") or {}, hosts


INVENTORY_VARS, HOSTS = _inventory()
LANE = SANDBOX_INVENTORY.name  # "sandbox" or "sandbox-do": names what is kept apart per sandbox
SSH_DIR = ROOT / ".sandbox" / "ssh"
KNOWN_HOSTS = SSH_DIR / ("known_hosts" if LANE == "sandbox" else "known_hosts-" + LANE.split("-", 1)[1])
BACKUPS = ROOT / "backups" / ("" if LANE == "sandbox" else LANE)
# The databases group's droplet: where the tool backs up from and keeps the backups.
DB_SSH = HOSTS["sandbox-db"]["ansible_port"]
# The database server: the same droplet (self-hosted), or a managed one without SSH (inventories/sandbox-do),
# PostgreSQL's port published on 127.0.0.1 for the tests.
DB_SERVER = next(host for host, hostvars in HOSTS.items() if "sandbox_pg_port" in hostvars)
DB_PORT = HOSTS[DB_SERVER]["sandbox_pg_port"]
MANAGED = HOSTS[DB_SERVER].get("sandbox_ssh") is False
DATABASE = yaml.safe_load((SANDBOX_INVENTORY / "group_vars" / "sandbox" / "database.yml").read_text())
# The server's own database, where the tool keeps the migration lock and the audit log.
MAINTENANCE_DB = DATABASE.get("db_maintenance_db", "postgres")
# The database as the tool names it, without its password (user@host:port/dbname).
TARGET = "{db_user}@{db_host}:{db_port}/{db_name}".format(**DATABASE)
# psql as the server's superuser, on its local socket (what only the sandbox, never the tool, can do).
SUPERUSER_PSQL = f"psql -p {HOSTS[DB_SERVER].get('sandbox_pg_container_port', 5432)}"


def container(host: str) -> str:
    """The podman container of an inventory host."""
    return INVENTORY_VARS.get("sandbox_hosts_container_prefix", "") + host


def db_server(*argv: str) -> subprocess.CompletedProcess:
    """Run a command as root on the database server, through podman (a managed one has no SSH)."""
    return subprocess.run(["podman", "exec", container(DB_SERVER), *argv], capture_output=True, text=True,
                          check=False, timeout=120)  # fmt: skip


def as_postgres(command: str) -> subprocess.CompletedProcess:
    """A shell command as the database server's superuser (psql: SUPERUSER_PSQL)."""
    return db_server("su", "postgres", "-c", command)


def ssh(port: int, command: str, known_hosts=None, strict: str = "yes") -> subprocess.CompletedProcess:
    """Run a command on a droplet over real SSH as deploy, host key checked."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", str(port), "-i", str(SSH_DIR / "id_ed25519"),
         "-o", f"UserKnownHostsFile={known_hosts or KNOWN_HOSTS}",
         "-o", f"StrictHostKeyChecking={strict}", "-o", "BatchMode=yes",
         "deploy@127.0.0.1", command],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def get(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    """GET a path of the backend on a published port; status and JSON body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.load(response)


def health(port: int) -> dict:
    status, body = get(port, "/api/health")
    assert status == 200
    return body


SECRETS = yaml.safe_load((SANDBOX_INVENTORY / "group_vars" / "sandbox" / "secrets.yml").read_text())
APP_HOSTS = ("sandbox-pm2", "sandbox-systemd", "sandbox-docker")
HTTP = {host: HOSTS[host]["sandbox_http_port"] for host in APP_HOSTS}
# Release 1's tables and columns: what must survive the migration unchanged.
FINGERPRINT = {
    "customers": "id, email, company_name, phone, status, created_at",
    "users": "id, customer_id, email, name, role, password_hash",
    "properties": "id, customer_id, name, address, city",
    "payments": "id, customer_id, amount, currency, status, reference",
    "subscriptions": "id, customer_id, plan, status, current_period_end",
    "documents": "id, customer_id, property_id, file_name, spaces_key",
}


# Rows production writes during a run (tests/sandbox/writes.py): not release 1's, left out of its fingerprint.
WRITTEN = {"payments": "id LIKE 'w-%'"}


def db(**params):
    """The app's database as the app's role, over TLS verified against the sandbox's CA where the server is managed."""
    tls = {"sslmode": "verify-full", "sslrootcert": str(ROOT / ".sandbox" / "tls" / "ca.crt")} if MANAGED else {}
    conn = psycopg2.connect(**{"host": "127.0.0.1", "port": DB_PORT, "dbname": "backend", "user": DATABASE["db_user"],
                               "password": SECRETS["vault_db_password"], **tls, **params})  # fmt: skip
    conn.autocommit = True
    return conn


def _lock_query(query: str, args: tuple = ()) -> list[tuple]:
    with db(dbname=MAINTENANCE_DB) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT to_regclass('prisma_migrate_lock') IS NOT NULL AND to_regclass('prisma_migrate_audit') IS NOT NULL"
        )
        if not cur.fetchone()[0]:
            return []
        cur.execute(query, args)
        return cur.fetchall() if cur.description else []


def lock_record() -> dict | None:
    """The migration lock's record in the server's maintenance database; None when the lock is free."""
    rows = _lock_query("SELECT record FROM prisma_migrate_lock WHERE database = 'backend'")
    return rows[0][0] if rows else None


def hold_lock(record: dict) -> None:
    """Hold the lock as another run would (a person's run elsewhere, say)."""
    assert lock_record() is None, "the lock is held already"
    with db(dbname=MAINTENANCE_DB) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS prisma_migrate_lock (database text PRIMARY KEY, record jsonb NOT NULL,"
            " taken_at timestamptz NOT NULL DEFAULT now());"
            " CREATE TABLE IF NOT EXISTS prisma_migrate_audit (id bigserial PRIMARY KEY, database text NOT NULL,"
            " at timestamptz NOT NULL DEFAULT now(), entry jsonb NOT NULL)"
        )
        cur.execute("INSERT INTO prisma_migrate_lock (database, record) VALUES ('backend', %s)", (json.dumps(record),))


def break_lock() -> None:
    """A person's call: the lock removed by hand."""
    _lock_query("DELETE FROM prisma_migrate_lock WHERE database = 'backend'")


def audit_lines() -> list[dict]:
    """The audit log's entries for the app's database, oldest first."""
    return [
        row[0] for row in _lock_query("SELECT entry FROM prisma_migrate_audit WHERE database = 'backend' ORDER BY id")
    ]


def fingerprint() -> dict:
    with db() as conn, conn.cursor() as cur:
        out = {}
        for table, cols in FINGERPRINT.items():
            where = f" WHERE NOT ({WRITTEN[table]})" if table in WRITTEN else ""
            cur.execute(f"SELECT count(*), md5(string_agg(row({cols})::text, '|' ORDER BY id)) FROM {table}{where}")
            out[table] = cur.fetchone()
        return out


SSH = {host: HOSTS[host]["ansible_port"] for host in APP_HOSTS}


def started_at(host: str) -> list[str] | str:
    """When the host's app started: each instance's start, read on its own port, where instances stand
    behind nginx (app_instances; which one answers the app's port varies), else the app's port's answer."""
    instances = HOSTS[host].get("app_instances")
    if not instances:
        return get(HTTP[host], "/api/health")[1]["startedAt"]
    ports = " ".join(str(instance["port"]) for instance in instances)
    out = ssh(SSH[host], f"for p in {ports}; do curl -fsS 127.0.0.1:$p/api/health; echo; done").stdout
    return [json.loads(line)["startedAt"] for line in out.splitlines() if line.strip()]


def production_state() -> dict:
    """Everything a plan must leave as it was: data, history, databases, files, processes, lock, audit log."""
    state = {"data": fingerprint()}
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name")
        state["history"] = cur.fetchall()
        cur.execute("SELECT datname FROM pg_database ORDER BY datname")
        state["databases"] = cur.fetchall()
    digest = (
        "cd /srv/backend && find . -path ./node_modules -prune -o -type f -print0 | sort -z | xargs -0 sha256sum"
        " | sha256sum && stat -c '%Y %s' node_modules/.package-lock.json"
    )
    for host, port in SSH.items():
        state[host] = ssh(port, digest).stdout
        state[host + " started"] = started_at(host)
    # PM2 runs two workers in cluster mode: each answers with its own start time.
    state["sandbox-pm2 started"] = sorted(
        (p["pm_id"], p["pm2_env"]["pm_uptime"], p["pm2_env"]["restart_time"])
        for p in json.loads(ssh(SSH["sandbox-pm2"], "pm2 jlist").stdout)
    )
    state["db host"] = ssh(DB_SSH, "ls -la /var/backups/prisma-migrate").stdout
    state["lock"], state["audit log"] = lock_record(), audit_lines()
    return state


@contextlib.contextmanager
def writing(rate: float = 25.0, max_seconds: float = 600.0):
    """Production's write traffic on every app host while the block runs; after it, every write the apps
    acknowledged must be in the live database (the Writer's stats and `lost` say how many and which)."""
    writer = Writer(HTTP.values(), SECRETS["vault_app_session_token"], rate=rate, max_seconds=max_seconds).start()
    try:
        yield writer
    finally:
        writer.stats = writer.stop()


def assert_no_write_lost(writer: Writer, fault: str, minimum_rate: float = 20.0) -> dict:
    """Every acknowledged write is in production, and the writes came at the rate the fault matrix states."""
    with db() as conn, conn.cursor() as cur:
        lost = writer.lost(cur)
    stats = dict(writer.stats, fault=fault, lost=len(lost))
    assert lost == [], f"{len(lost)} of {len(writer.acknowledged)} acknowledged writes are not in production: {stats}"
    assert writer.stats["attempted_per_s"] >= minimum_rate, stats
    assert writer.stats["acknowledged"] > 0, stats
    WRITES.append(stats)
    return stats


# Write counts per test, printed at the session's end (docs/fault-matrix.md takes them from there).
WRITES: list[dict] = []
# The app's queries during a lock test (bench/blocking.py's Prober), printed the same way.
PROBES: list[dict] = []


def assert_the_report_of_a_succeeded_run(stem: Path) -> dict:
    """The report migrate.yml's callback saved (stem.json, .md, .html) for release 2 applied on this sandbox:
    the timeline drawn step by step, the 27 migrations, each host's restart, no secret."""
    report = json.loads(stem.with_name(stem.name + ".json").read_text())
    # The page as tests/unit/plugins/test_report_html.py opens it in Chromium.
    page = stem.with_name(stem.name + ".html").read_text()
    assert page.count('<g class="step"') == len(report["timeline"]) and 'data-outcome="succeeded"' in page
    assert report["outcome"] == "succeeded"
    assert len(report["migrations_applied"]) == 27
    assert report["database"] == TARGET
    assert {h: r["strategy"] for h, r in report["restarts"].items()} == {
        "sandbox-pm2": "pm2",
        "sandbox-systemd": "systemd",
        "sandbox-docker": "docker",
    }
    # Each sandbox's Docker droplet restarts with the Compose its inventory chose (2 on sandbox-do, else 1).
    assert report["restarts"]["sandbox-docker"]["compose"] == int(HOSTS["sandbox-docker"].get("app_compose_version", 1))
    steps = [step["step"] for step in report["timeline"]]
    for step in ("Take migration lock", "Backup database (and verify)", "Apply migrations", "Restart application",
                 "Verify application health", "Release migration lock"):  # fmt: skip
        assert step in steps, (step, steps)
    text = json.dumps(report) + page + stem.with_name(stem.name + ".md").read_text()
    assert not [name for name, value in SECRETS.items() if value in text]
    return report
