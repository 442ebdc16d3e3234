"""The database as DigitalOcean runs it (inventories/sandbox-do): no SSH, TLS only, a pool, no superuser; and
the tool's preflight on what goes wrong there (a migration URL missing, a CA that does not verify the server).
"""

from __future__ import annotations

import contextlib

import psycopg2
import pytest

from .conftest import HTTP, MANAGED, NO_REHEARSAL, SSH, TARGET, db, db_server, health, playbook, ssh

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not MANAGED, reason="the managed database's own checks (inventories/sandbox-do)"),
]

PRODUCTION = ("-e", "migration_plan_approve=true")


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
        result = playbook("migrate.yml", *NO_REHEARSAL, *PRODUCTION, expect_rc=2)
    said = out(result)
    assert "preflight: /srv/backend/.env lacks DIRECT_URL" in said, said[-3000:]
    assert "sandbox-db-password" not in said


def test_a_ca_file_that_does_not_verify_the_server_is_named_in_preflight():
    # The system's bundle instead of the cluster's CA: the server's certificate is not signed by any of it.
    with env_edited("s|sslrootcert=[^&]*|sslrootcert=/etc/ssl/certs/ca-certificates.crt|g"):
        result = playbook("migrate.yml", *NO_REHEARSAL, *PRODUCTION, expect_rc=2)
    said = out(result)
    assert "certificate verify failed" in said and "check the URL's sslrootcert" in said, said[-3000:]
    assert "sandbox-db-password" not in said
    assert f"cannot reach {TARGET}" in said
