"""The database as DigitalOcean runs it (inventories/sandbox-do): no SSH, TLS only, a pool, no superuser; and
the tool's preflight on what goes wrong there (a migration URL missing, a CA that does not verify the server).
"""

from __future__ import annotations

import contextlib

import psycopg2
import pytest

from .conftest import (
    HTTP,
    MANAGED,
    NO_REHEARSAL,
    SSH,
    TARGET,
    audit_lines,
    db,
    db_server,
    fingerprint,
    health,
    playbook,
    ssh,
)

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not MANAGED, reason="the managed database's own checks (inventories/sandbox-do)"),
]


def out(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


@contextlib.contextmanager
def env_edited(sed: str):
    """Every app host's .env edited by a sed script while the block runs, then put back as it was."""
    for port in SSH.values():
        assert ssh(port, f"cp -p /srv/backend/.env /tmp/env.kept && sed -i '{sed}' /srv/backend/.env").returncode == 0
    try:
        yield
    finally:
        for port in SSH.values():
            ssh(port, "mv /tmp/env.kept /srv/backend/.env")


def test_the_server_has_no_ssh_and_refuses_connections_without_tls():
    published = db_server("ss", "-Htln").stdout
    assert ":22 " not in published and ":25060 " in published and ":25061 " in published, published
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        db(sslmode="disable")
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        db(sslrootcert="/etc/ssl/certs/ca-certificates.crt")


def test_the_admin_role_is_no_superuser_and_owns_the_app_database():
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, pg_get_userbyid(datdba) FROM pg_roles, pg_database"
            " WHERE rolname = current_user AND datname = 'backend'"
        )
        assert cur.fetchone() == (False, True, True, "doadmin")


def test_the_apps_reach_the_database_only_through_the_pool():
    for port in HTTP.values():
        assert health(port)["database"] == "up"
    with db() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity"
            " WHERE datname = 'backend' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        # PgBouncer runs beside the server: its server connections come from 127.0.0.1, the apps' would not.
        assert [row[0] for row in cur.fetchall()] == ["127.0.0.1"]


def test_a_schema_whose_direct_url_is_not_in_the_env_is_stopped_in_preflight():
    with env_edited("/^DIRECT_URL=/d"):
        result = playbook("migrate.yml", *NO_REHEARSAL, expect_rc=2)
    said = out(result)
    assert "preflight: /srv/backend/.env lacks DIRECT_URL" in said, said[-3000:]
    assert "sandbox-db-password" not in said


def test_a_ca_file_that_does_not_verify_the_server_is_named_in_preflight():
    # The system's bundle instead of the cluster's CA: the server's certificate is not signed by any of it.
    with env_edited("s|sslrootcert=[^&]*|sslrootcert=/etc/ssl/certs/ca-certificates.crt|g"):
        result = playbook("migrate.yml", *NO_REHEARSAL, expect_rc=2)
    said = out(result)
    assert "certificate verify failed" in said and "check the URL's sslrootcert" in said, said[-3000:]
    assert "sandbox-db-password" not in said
    assert f"cannot reach {TARGET}" in said


def pool_sessions(cur) -> dict[str, int]:
    """The pool's server connections (from 127.0.0.1) per database."""
    cur.execute(
        "SELECT datname, count(*) FROM pg_stat_activity WHERE host(client_addr) = '127.0.0.1'"
        " AND backend_type = 'client backend' GROUP BY datname"
    )
    return dict(cur.fetchall())


def test_rollback_yml_swaps_a_backup_in_behind_the_pools_server_connections():
    release_1 = fingerprint()
    playbook("migrate.yml", *NO_REHEARSAL)
    for port in HTTP.values():
        assert health(port)["version"] == "2.0.0"
    with db() as conn, conn.cursor() as cur:
        assert pool_sessions(cur).get("backend", 0) > 0, "PgBouncer holds server connections to the live database"
    result = playbook("rollback.yml", "-e", "rollback_backup=latest", "-e", "rollback_app_version=v1")
    assert "Restored /var/backups/prisma-migrate/" in out(result)
    assert fingerprint() == release_1
    for port in HTTP.values():  # through the pool, on the restored database
        assert health(port) | {"pid": 0, "startedAt": ""} == {
            "status": "ok",
            "database": "up",
            "version": "1.0.0",
            "pid": 0,
            "startedAt": "",
        }
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL")
        assert cur.fetchall() == [("20240115093000_baseline",)]
        sessions = pool_sessions(cur)
        # No server connection of the pool was left on the database renamed away (writes would go there).
        assert {name for name in sessions if name != "backend"} == set(), sessions
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'backend\\_before\\_rollback\\_%'")
        assert len(cur.fetchall()) == 1
    assert audit_lines()[-1]["outcome"] == "rolled back"
