"""A real PostgreSQL for module tests, and a way to run our modules through Ansible."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from conftest import run

# What Prisma 6 creates (pg_dump of a database it migrated).
PRISMA_HISTORY_DDL = """
CREATE TABLE public._prisma_migrations (
    id character varying(36) NOT NULL PRIMARY KEY,
    checksum character varying(64) NOT NULL,
    finished_at timestamp with time zone,
    migration_name character varying(255) NOT NULL,
    logs text,
    rolled_back_at timestamp with time zone,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    applied_steps_count integer DEFAULT 0 NOT NULL
)"""


@pytest.fixture(scope="session")
def pg_server() -> dict:
    """The PostgreSQL that `pg_virtualenv` (bin/test) started for this run."""
    psycopg2 = pytest.importorskip("psycopg2")
    if "PGHOST" not in os.environ:
        pytest.fail("These tests need a real PostgreSQL: run them under `pg_virtualenv -t -v 15 pytest` (bin/test).")
    params = {k: os.environ[v] for k, v in {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER"}.items()}
    params["password"] = os.environ.get("PGPASSWORD", "")
    psycopg2.connect(dbname="postgres", **params).close()
    return params


@pytest.fixture
def database(pg_server):
    """A fresh, empty database; yields its DATABASE_URL-style URL and a connection."""
    import psycopg2

    name = "t_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = psycopg2.connect(dbname=name, **pg_server)
    conn.autocommit = True
    s = pg_server
    url = f"postgresql://{s['user']}:{s['password']}@{s['host']}:{s['port']}/{name}"
    yield url, conn
    conn.close()
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def run_module(name: str, args: dict, check: bool = False) -> dict:
    """Run one of our modules on localhost through the real ansible CLI; return its result."""
    cmd = ["ansible", "localhost", "-c", "local", "-m", "prismaguard.migrate." + name, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    result = run(
        cmd,
        env_extra={
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_PYTHON_INTERPRETER": str(__import__("sys").executable),
        },
    )
    try:
        out = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"ansible did not answer JSON:\n{result.stdout}\n{result.stderr}") from exc
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
