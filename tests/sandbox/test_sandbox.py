"""The sandbox, end to end: droplets over real SSH, the sample backend under
each restart strategy, and Prisma's view of the database before a migration.

Each module starts from a fresh sandbox (down, then up), as production is
before any run.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import psycopg2
import pytest
import yaml
from conftest import SANDBOX_INVENTORY, run

from .conftest import health, playbook, ssh

pytestmark = pytest.mark.sandbox

APP_HOSTS = {"pm2": "sandbox-pm2", "systemd": "sandbox-systemd", "docker": "sandbox-docker"}
RESTART = {
    "pm2": "pm2 reload backend",
    "systemd": "sudo systemctl restart contrezz-backend",
    "docker": "docker-compose restart backend",
}
RUNNING = {
    "pm2": "pm2 jlist",
    "systemd": "systemctl is-active contrezz-backend",
    "docker": "docker-compose ps --services --filter status=running",
}


def in_app(port: int, command: str) -> subprocess.CompletedProcess:
    return ssh(port, f"cd /srv/backend && {command}")


def wait_for_health(http_port: int, started_after: str, deadline_s: float = 60) -> dict:
    end = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < end:
        try:
            last = health(http_port)
            if last["startedAt"] > started_after:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"no restarted backend on port {http_port} within {deadline_s}s (last: {last})")


def test_every_droplet_answers_ansible_over_ssh(sandbox_hosts):
    result = run(["ansible", "all", "-i", str(SANDBOX_INVENTORY), "-m", "ansible.builtin.ping"])
    assert result.returncode == 0, result.stdout + result.stderr
    for host in sandbox_hosts:
        assert re.search(rf"^{host} \| SUCCESS", result.stdout, re.M), result.stdout


def test_host_keys_are_checked_not_trusted_blindly(sandbox_hosts, tmp_path):
    port = sandbox_hosts["sandbox-db"]["ansible_port"]
    assert ssh(port, "true").returncode == 0
    empty = tmp_path / "known_hosts"
    empty.touch()
    refused = ssh(port, "true", known_hosts=empty)
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr


def test_the_deploy_user_has_passwordless_sudo_and_no_password_login(sandbox_hosts):
    port = sandbox_hosts["sandbox-pm2"]["ansible_port"]
    assert ssh(port, "sudo -n true").returncode == 0
    sshd = ssh(port, "sudo sshd -T")
    assert "passwordauthentication no" in sshd.stdout


@pytest.mark.parametrize("strategy", sorted(APP_HOSTS))
def test_each_app_host_serves_the_backend_under_its_own_strategy(strategy, sandbox_hosts):
    host = sandbox_hosts[APP_HOSTS[strategy]]
    assert host["app_restart_strategy"] == strategy
    body = health(host["sandbox_http_port"])
    assert body["status"] == "ok" and body["database"] == "up" and body["version"] == "1.0.0"
    running = in_app(host["ansible_port"], RUNNING[strategy])
    assert running.returncode == 0, running.stderr
    if strategy == "pm2":
        apps = json.loads(next(line for line in running.stdout.splitlines() if line.startswith("[{")))
        online = [a for a in apps if a["name"] == "backend" and a["pm2_env"]["status"] == "online"]
        assert len(online) == 2  # cluster mode: two workers, for reloads without downtime
    else:
        assert running.stdout.split() == {"systemd": ["active"], "docker": ["backend"]}[strategy]


@pytest.mark.parametrize("strategy", sorted(APP_HOSTS))
def test_the_runbook_restart_command_really_restarts_the_backend(strategy, sandbox_hosts):
    host = sandbox_hosts[APP_HOSTS[strategy]]
    before = health(host["sandbox_http_port"])
    restarted = in_app(host["ansible_port"], RESTART[strategy])
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    after = wait_for_health(host["sandbox_http_port"], started_after=before["startedAt"])
    assert after["database"] == "up"


def test_prisma_reports_release_2s_27_migrations_as_pending(sandbox_hosts):
    port = sandbox_hosts["sandbox-pm2"]["ansible_port"]
    env = "set -a && . /srv/backend/.env && set +a"
    current = in_app(port, f"{env} && npx prisma migrate status")
    assert current.returncode == 0, current.stdout + current.stderr
    assert "Database schema is up to date!" in current.stdout
    # Release 2 as `git pull origin main` would bring it, without touching the checkout.
    release2 = ssh(
        port,
        f"""set -e; {env}; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
        git -C /srv/backend fetch -q origin
        git -C /srv/backend archive origin/main | tar -x -C "$d"
        ln -s /srv/backend/node_modules "$d/node_modules"
        cd "$d" && npx prisma migrate status""",
    )
    assert release2.returncode == 1, release2.stdout + release2.stderr
    assert "28 migrations found in prisma/migrations" in release2.stdout
    assert "Following migrations have not yet been applied:" in release2.stdout
    pending = re.findall(r"^(\d{8,14}_\w+)$", release2.stdout, re.M)
    assert len(pending) == 27
    assert pending[-1] == "20251204_consolidate_verification_service"


def test_the_database_host_holds_release_1_with_rows(sandbox_hosts):
    db = sandbox_hosts["sandbox-db"]
    secrets = yaml.safe_load((SANDBOX_INVENTORY / "group_vars" / "sandbox" / "secrets.yml").read_text())
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=db["sandbox_pg_port"],
        dbname="backend",
        user="backend",
        password=secrets["vault_db_password"],
    )
    with conn, conn.cursor() as cur:
        cur.execute("SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL")
        assert [r[0] for r in cur.fetchall()] == ["20240115093000_baseline"]
        cur.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM users),"
            " (SELECT count(*) FROM payments), to_regclass('verification_requests')"
        )
        assert cur.fetchone() == (200, 400, 1000, None)


def test_starting_the_sandbox_again_changes_nothing():
    result = playbook("sandbox_up.yml")
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.M)
    assert recap, result.stdout[-2000:]
    assert {host: int(changed) for host, changed in recap if int(changed)} == {}


def test_prisma_migrate_info_reads_the_real_prisma_and_database_over_ssh():
    result = run(
        [
            "ansible",
            "sandbox-pm2",
            "-i",
            str(SANDBOX_INVENTORY),
            "-m",
            "prismaguard.migrate.prisma_migrate_info",
            "-a",
            "app_dir=/srv/backend database_url={{ app_env.DATABASE_URL }}",
        ],
        env_extra={"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    info = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["sandbox-pm2"]
    assert info["status"] == "up_to_date" and info["prisma"]["rc"] == 0
    assert info["up_to_date"] is True and info["applied"] == ["20240115093000_baseline"]
    assert info["target"] == "backend@sandbox-db:5432/backend"
    assert "sandbox-db-password" not in result.stdout
