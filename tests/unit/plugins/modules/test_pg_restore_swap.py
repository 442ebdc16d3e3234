"""pg_restore_swap against a real PostgreSQL: the backup comes back whole, the old database is kept."""

from __future__ import annotations

import hashlib
import subprocess
import uuid

import pytest

from ..conftest import run_module

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE payments (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(12,2));
INSERT INTO customers (email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 300) i;
INSERT INTO payments (customer_id, amount) SELECT 1 + i % 300, i * 1.5 FROM generate_series(1, 3000) i;
"""
# What a failed migration leaves: a new table, a changed column, rows written meanwhile.
AFTER = """
CREATE TABLE verification_requests (id text PRIMARY KEY);
ALTER TABLE customers ADD COLUMN phone text;
INSERT INTO payments (customer_id, amount) VALUES (1, 9.99), (2, 19.99);
"""


def fingerprint(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c")
        customers = cur.fetchone()[0]
        cur.execute("SELECT md5(string_agg(p::text, ',' ORDER BY id)) FROM payments p")
        return customers, cur.fetchone()[0]


@pytest.fixture
def backed_up(database, tmp_path, pg_server):
    import psycopg2

    url, conn = database
    conn.cursor().execute(SCHEMA)
    conn.cursor().execute(f"ALTER DATABASE \"{conn.info.dbname}\" SET statement_timeout = '15s'")
    before = fingerprint(conn)
    path = tmp_path / "backup.dump"
    subprocess.run(["pg_dump", "-Fc", "-b", "-f", str(path), url], check=True, capture_output=True)
    conn.cursor().execute(AFTER)
    keep_as = "kept_" + uuid.uuid4().hex[:8]
    yield url, conn, path, before, keep_as
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{keep_as}" WITH (FORCE)')
    admin.close()


def reconnect(url):
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def test_the_backup_replaces_the_live_database_and_the_old_one_is_kept(backed_up):
    url, conn, path, before, keep_as = backed_up
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = run_module(
        "pg_restore_swap", {"path": str(path), "sha256": digest, "database_url": url, "keep_as": keep_as}
    )
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["kept_as"] == keep_as
    assert result["row_counts"] == {"public.customers": 300, "public.payments": 3000}
    # The rows written after the backup are reported, and kept, not lost.
    assert result["drift"] == {"public.payments": {"restored": 3000, "kept": 3002}}
    assert result["only_in_kept"] == ["public.verification_requests"]
    assert any("rows written after the backup" in w for w in result.get("warnings", []))

    live = reconnect(url)
    assert fingerprint(live) == before
    with live.cursor() as cur:
        cur.execute("SELECT to_regclass('verification_requests'), current_setting('statement_timeout')")
        assert cur.fetchone() == (None, "15s")  # the migration's table is gone; the setting carried over
        cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers'")
        assert cur.fetchone()[0] == 2
    live.close()
    kept = reconnect(url.rsplit("/", 1)[0] + "/" + keep_as)
    with kept.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments")
        assert cur.fetchone()[0] == 3002
    kept.close()


def test_a_wrong_checksum_changes_nothing(backed_up):
    url, conn, path, before, keep_as = backed_up
    result = run_module(
        "pg_restore_swap", {"path": str(path), "sha256": "0" * 64, "database_url": url, "keep_as": keep_as}
    )
    assert result["failed"] and "changed after it was written" in result["msg"]
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('verification_requests') IS NOT NULL")
        assert cur.fetchone()[0] is True


def test_a_corrupt_archive_leaves_the_live_database_untouched(backed_up):
    url, conn, path, before, keep_as = backed_up
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4000] = b"\0" * 4000
    path.write_bytes(bytes(data))
    result = run_module("pg_restore_swap", {"path": str(path), "database_url": url, "keep_as": keep_as})
    assert result["failed"] and "is untouched" in result["msg"], result.get("msg")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments")
        assert cur.fetchone()[0] == 3002
        cur.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", (conn.info.dbname + "_restoring",))
        assert cur.fetchone()[0] == 0


def test_check_mode_restores_nothing(backed_up):
    url, conn, path, before, keep_as = backed_up
    result = run_module("pg_restore_swap", {"path": str(path), "database_url": url, "keep_as": keep_as}, check=True)
    assert result["changed"] is True and not result.get("failed")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments")
        assert cur.fetchone()[0] == 3002


def test_the_password_never_appears_in_a_failure(backed_up):
    url, conn, path, before, keep_as = backed_up
    bad = url.replace("@", "x@", 1) if ":" in url.split("@")[0].split("//")[1] else url
    result = run_module("pg_restore_swap", {"path": str(path), "database_url": bad, "keep_as": keep_as})
    assert result["failed"]
    password = bad.split("//")[1].split("@")[0].split(":")[1]
    assert password and password not in result["msg"]


def test_without_swap_it_restores_into_a_new_database_and_leaves_the_live_one_alone(backed_up, pg_server):
    import psycopg2

    url, conn, path, before, keep_as = backed_up
    live_after = fingerprint(conn)
    result = run_module(
        "pg_restore_swap",
        {"path": str(path), "database_url": url, "swap": False, "restore_as": keep_as},
    )
    assert not result.get("failed"), result.get("msg")
    assert result["database"] == keep_as and "kept_as" not in result
    copy = reconnect(url.rsplit("/", 1)[0] + "/" + keep_as)
    try:
        assert fingerprint(copy) == before
        with copy.cursor() as cur:
            cur.execute("SHOW statement_timeout")  # the live database's settings came along
            assert cur.fetchone()[0] == "15s"
    finally:
        copy.close()
    assert fingerprint(reconnect(url)) == live_after
    args = {"path": str(path), "database_url": url, "swap": False, "restore_as": keep_as}
    again = run_module("pg_restore_swap", args)
    assert again.get("failed") and "exists already" in again["msg"]
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname = %s", (conn.info.dbname,))
        assert cur.fetchone(), "the live database keeps its name"
    admin.close()


def test_a_session_the_tool_may_not_end_is_waited_for_then_named_and_nothing_is_swapped(backed_up, pg_server):
    import threading

    import psycopg2

    url, conn, path, before, keep_as = backed_up
    role = "other_" + uuid.uuid4().hex[:6]
    conn.cursor().execute(
        f"CREATE ROLE {role} LOGIN PASSWORD 'pw'; GRANT CONNECT ON DATABASE \"{conn.info.dbname}\" TO {role}"
    )
    other = psycopg2.connect(
        dbname=conn.info.dbname,
        host=pg_server["host"],
        port=pg_server["port"],
        user=role,
        password="pw",  # noqa: S106 (a throwaway role)
    )
    try:
        # Another role's session (a managed database's admin may not end it): waited for, then named.
        result = run_module(
            "pg_restore_swap", {"path": str(path), "database_url": url, "keep_as": keep_as, "swap_wait": 2}
        )
        assert result["failed"] and f"Still connected after 2s: {role} (pid " in result["msg"]
        assert ", client backend)" in result["msg"], "its kind, where this role may see it"
        assert "the live database is unchanged" in result["msg"].lower()
        assert fingerprint(reconnect(url)) != before, "not swapped: the rows written since are still live"

        # Gone within the wait: the swap goes ahead.
        threading.Timer(2.0, other.close).start()
        result = run_module(
            "pg_restore_swap", {"path": str(path), "database_url": url, "keep_as": keep_as, "swap_wait": 30}
        )
        assert not result.get("failed"), result.get("msg")
        assert fingerprint(reconnect(url)) == before
    finally:
        other.close()
        admin = psycopg2.connect(dbname="postgres", **pg_server)
        admin.autocommit = True
        for name in (conn.info.dbname + "_restoring", keep_as):
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.cursor().execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        admin.close()
