"""pg_backup_verify against real pg_dump archives of a real PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from ..conftest import run_module

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE payments (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(12,2));
CREATE TABLE audit_logs (id serial PRIMARY KEY, data jsonb);
INSERT INTO customers (email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 500) i;
INSERT INTO payments (customer_id, amount) SELECT 1 + i % 500, i * 1.5 FROM generate_series(1, 5000) i;
INSERT INTO audit_logs (data)
  SELECT jsonb_build_object('i', i, 'pad', repeat('x', 200)) FROM generate_series(1, 2000) i;
"""


@pytest.fixture
def live(database):
    url, conn = database
    conn.cursor().execute(SCHEMA)
    return url, conn


def dump(url, path, *extra):
    subprocess.run(["pg_dump", "-Fc", "-b", "-f", str(path), *extra, url], check=True, capture_output=True)
    write_checksum(path)
    return path


def write_checksum(path):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def verify(path, url=None, **extra):
    args = {"path": str(path), **extra}
    if url:
        args["database_url"] = url
    return run_module("pg_backup_verify", args, check=extra.pop("_check", False))


def failed_check(result):
    assert result.get("failed") is True, result
    return [c for c in result["checks"] if c["ok"] is False][0]["name"]


def test_a_good_dump_passes_every_check(live, tmp_path):
    url, _ = live
    result = verify(dump(url, tmp_path / "ok.dump"), url)
    assert not result.get("failed"), result.get("msg")
    assert [c["name"] for c in result["checks"]] == ["not_empty", "format", "checksum", "toc", "tables", "full_read"]
    assert result["tables_in_dump"] == ["public.audit_logs", "public.customers", "public.payments"]
    assert result["changed"] is False


def test_the_empty_file_a_failed_pg_dump_leaves_is_refused(tmp_path):
    empty = tmp_path / "empty.dump"
    bad = subprocess.run(["pg_dump", "-Fc", "-f", str(empty), "postgresql://nobody@127.0.0.1:1/x"], capture_output=True)
    assert bad.returncode == 1 and empty.stat().st_size == 0  # what TESTBED says pg_dump does
    write_checksum(empty)
    result = verify(empty)
    assert failed_check(result) == "not_empty"
    assert "could not connect" in result["msg"]


def test_a_dump_cut_in_half_passes_pg_restore_list_but_not_the_full_read(live, tmp_path):
    url, _ = live
    path = dump(url, tmp_path / "half.dump")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    write_checksum(path)  # as if the checksum was taken of the truncated file
    assert subprocess.run(["pg_restore", "--list", str(path)], capture_output=True).returncode == 0
    result = verify(path, url)
    assert failed_check(result) == "full_read"
    assert [c["name"] for c in result["checks"] if c["ok"]] == ["not_empty", "format", "checksum", "toc", "tables"]


def test_bytes_overwritten_after_writing_fail_the_checksum(live, tmp_path):
    url, _ = live
    path = dump(url, tmp_path / "flipped.dump")
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    path.write_bytes(bytes(data))
    assert failed_check(verify(path, url)) == "checksum"


def test_bytes_overwritten_before_the_checksum_fail_the_full_read(live, tmp_path):
    url, _ = live
    path = dump(url, tmp_path / "corrupt.dump")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    write_checksum(path)
    assert failed_check(verify(path, url)) == "full_read"


def test_a_dump_missing_a_live_table_is_refused_unless_excluded(live, tmp_path):
    url, _ = live
    path = dump(url, tmp_path / "partial.dump", "-T", "audit_logs")
    result = verify(path, url)
    assert failed_check(result) == "tables"
    assert result["missing_tables"] == ["public.audit_logs"]
    assert not verify(path, url, exclude_tables=["audit_logs"]).get("failed")


def test_a_missing_checksum_file_is_refused(live, tmp_path):
    url, _ = live
    path = dump(url, tmp_path / "nosum.dump")
    path.with_name(path.name + ".sha256").unlink()
    assert failed_check(verify(path, url)) == "checksum"


def test_the_restore_check_restores_counts_and_drops_the_scratch_database(live, tmp_path):
    url, conn = live
    path = dump(url, tmp_path / "ok.dump")
    result = verify(path, url, restore_check=True, scratch_database="verify_scratch")
    assert not result.get("failed"), result.get("msg")
    assert result["row_counts"]["public.payments"] == {"restored": 5000, "live": 5000}
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = 'verify_scratch'")
        assert cur.fetchone()[0] == 0


def test_rows_written_after_the_dump_show_as_a_row_count_difference(live, tmp_path):
    url, conn = live
    path = dump(url, tmp_path / "ok.dump")
    conn.cursor().execute("INSERT INTO customers (email) VALUES ('late@example.com')")
    result = verify(path, url, restore_check=True)
    assert failed_check(result) == "row_counts"
    assert "public.customers" in result["msg"]


def test_check_mode_runs_the_read_only_checks_and_skips_the_restore(live, tmp_path):
    url, _ = live
    path = dump(url, tmp_path / "ok.dump")
    result = run_module("pg_backup_verify", {"path": str(path), "database_url": url, "restore_check": True}, check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["checks"][-1] == {"name": "restore", "ok": None, "detail": "skipped in check mode"}
