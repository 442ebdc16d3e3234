"""Real migration histories through the tool: other projects' Prisma migrations, replayed on the sandbox.

    .venv/bin/python bench/corpus.py umami=PATH hoppscotch=PATH ...   (bin/sandbox up first)

Each NAME is a project of bench/corpus.yml and PATH its checkout (a work tree or a bare git directory).
Per project, from release 1 (the sandbox reset): release A (the sample app with the project's first
`prefix` migrations added) through migrate.yml; rows added to every table A made (25 each, values
consistent across foreign keys, so later NOT NULL, unique and foreign-key statements meet real rows);
release B (all migrations) through migrate.yml, its blocking migrations allowed by name as bench/corpus.yml
lists them; then rollback.yml with the backup B's run took, and A's code: the database must be A's
again, row for row. The lint also runs over every statement of the history from an empty database (the
run's own tables exempt) and over B's migrations against A (what the run's plan sees). Writes
bench/results/corpus.json and the figures' section of docs/corpus.md. Bounded: each playbook has 15 min.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import yaml
from ansible_collections.prismaguard.migrate.plugins.module_utils.migration_lint import lint_migrations
from common import ROOT, play, read_report, save, table
from psycopg2 import sql

PROJECTS = yaml.safe_load((ROOT / "bench" / "corpus.yml").read_text())
ORIGIN = ROOT / ".sandbox" / "git" / "backend.git"
SECRETS = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/sandbox/secrets.yml").read_text())
DB = dict(host="127.0.0.1", port=55432, dbname="backend", user="backend", password=SECRETS["vault_db_password"])
GIT_ID = ("-c", "user.name=corpus", "-c", "user.email=corpus@example.com")
ROWS = 25
REPORTS = ROOT / "reports" / "corpus"
# The sandbox inventory expects release 2's schema and endpoints; the corpus's releases are the sample's
# release 1 plus another project's migrations: no table is expected beyond what the deploy proves, and the
# health gate asks what release 1 answers (its health, and a session, which reads users).
NO_EXPECTATIONS = {
    "schema_assert_expect": {"tables": {}},
    "health_gate_checks": [
        {"path": "/api/health", "token": ""},
        {"path": "/api/auth/validate-session", "token": "session"},
    ],
}


def git(*args, cwd=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def read_history(source: Path, folder: str, rename: dict) -> tuple[list[dict], str]:
    """The project's migrations in order ({name, sql}) and the commit read, from a work tree or a git directory."""
    with tempfile.TemporaryDirectory() as tmp:
        commit = git("-C", str(source), "rev-parse", "HEAD").strip()
        archive = subprocess.run(["git", "-C", str(source), "archive", "HEAD", folder], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        root = Path(tmp) / folder
        migrations = []
        for sql in sorted(root.glob("*/migration.sql"), key=lambda p: p.parent.name):
            text = sql.read_text()
            for old, new in rename.items():
                # Quoted or not, and as the prefix of its keys' and indexes' names (subscriptions_pkey).
                text = re.sub(rf"(?<![A-Za-z0-9_])(\"?){re.escape(old)}(?![A-Za-z0-9])", rf"\g<1>{new}", text)
            migrations.append({"name": sql.parent.name, "sql": text})
    return migrations, commit


def push_release(branch: str, migrations: list[dict]) -> None:
    """The sample app's release 1 with these migrations added to its folder, pushed to the origin as `branch`."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        git("clone", "-q", "--branch", "v1", str(ORIGIN), str(work))
        for item in migrations:
            folder = work / "prisma" / "migrations" / item["name"]
            folder.mkdir()
            (folder / "migration.sql").write_text(item["sql"])
        git(*GIT_ID, "add", "-A", cwd=work)
        git(*GIT_ID, "commit", "-qm", branch, cwd=work)
        git("push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}", cwd=work)


def run(playbook: str, *args: str, name: str) -> dict:
    """A playbook against the sandbox; its outcome, time and report (the report's failure, if any)."""
    folder = REPORTS / name
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    try:
        elapsed, proc = play(playbook, *args, check=False, extra_env={"MIGRATION_REPORT_DIR": str(folder)})
    except subprocess.TimeoutExpired as exc:  # kept as a figure, the rest of the corpus still runs
        return {"rc": None, "wall_s": exc.timeout, "outcome": "timed out", "failure": str(exc)[-500:]}
    out = {"rc": proc.returncode, "wall_s": round(elapsed, 1)}
    try:
        report, rows = read_report(folder)
    except StopIteration:
        return dict(out, failure=(proc.stdout + proc.stderr)[-1500:])
    plan = report.get("plan") or {}
    return dict(
        out,
        outcome=report["outcome"],
        failure=report.get("failure"),
        rollback_failure=report.get("rollback_failure"),
        applied=len(report.get("migrations_applied") or []),
        blocking=sorted({f["migration"] for f in plan.get("findings") or () if f["level"] in ("block", "allowed")}),
        steps={step: row["duration_s"] for step, row in rows.items()},
    )


# Values by type: the same for row i of every table, so a foreign key's value names row i of its table.
def value(typname: str, typtype: str, category: str, labels, i: int):
    if category == "A":
        return "{}"
    if typtype == "e":
        return labels[i % len(labels)]
    if category == "N":
        return i
    if category == "S" or typname == "citext":
        return str(i)
    if typname == "uuid":
        return f"00000000-0000-4000-8000-{i:012d}"
    if typname == "bool":
        return i % 2 == 0
    if typname in ("timestamp", "timestamptz"):
        return dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i)
    if typname == "date":
        return dt.date(2024, 1, 1) + dt.timedelta(days=i)
    if typname in ("json", "jsonb"):
        return json.dumps({"n": i})
    if typname == "bytea":
        return b"\x00"
    if typname in ("inet", "cidr"):
        return "10.0.{}.{}".format(*divmod(i, 256))
    if typname == "interval":
        return "1 day"
    return None


COLUMNS = """
SELECT c.relname, a.attname, t.typname, t.typtype, t.typcategory, a.attnotnull,
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY (%s) ORDER BY c.relname, a.attnum
"""


FOREIGN_KEY_COLUMNS = """
SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) WHERE c.contype = 'f'
"""


def add_rows(tables: list[str]) -> dict:
    """ROWS rows in every table, in as many passes as foreign keys need; the tables no row fits are named.

    Where foreign keys make a cycle (rallly: users -> provider_calendars -> ... -> users), the tables left
    get their nullable foreign-key columns NULL; where even that fails on a unique key (a singleton table),
    one row."""
    conn = psycopg2.connect(**DB)
    conn.autocommit = False
    columns: dict[str, list] = {}
    with conn.cursor() as cur:
        cur.execute(COLUMNS, (tables,))
        for table, col, typname, typtype, category, notnull, labels in cur.fetchall():
            columns.setdefault(table, []).append((col, typname, typtype, category, notnull, labels))
        cur.execute(FOREIGN_KEY_COLUMNS)
        references = {(table.strip('"'), col) for table, col in cur.fetchall()}
    pending, errors, filled, rows_added = set(columns), {}, [], 0
    for nullify, count in ((False, ROWS), (True, ROWS), (True, 1)):
        progress = True
        while pending and progress:
            progress = False
            for table in sorted(pending):
                cols = [c for c in columns[table] if value(c[1], c[2], c[3], c[5], 1) is not None or c[4]]
                names = sql.SQL(", ").join(sql.Identifier(c[0]) for c in cols)

                def cell(c, i, table=table, nullify=nullify):
                    return None if nullify and not c[4] and (table, c[0]) in references else value(*c[1:4], c[5], i)

                rows = [tuple(cell(c, i) for c in cols) for i in range(1, count + 1)]
                marks = "(" + ", ".join(["%s"] * len(cols)) + ")"
                with conn.cursor() as cur:
                    cur.execute("SAVEPOINT add_rows")
                    try:
                        values = sql.SQL(", ").join(sql.SQL(cur.mogrify(marks, row).decode()) for row in rows)
                        insert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES {}")
                        cur.execute(insert.format(sql.Identifier(table), names, values))
                    except psycopg2.Error as exc:
                        cur.execute("ROLLBACK TO SAVEPOINT add_rows")
                        errors[table] = (exc.pgcode, str(exc).splitlines()[0])
                        continue
                pending.discard(table)
                errors.pop(table, None)
                filled.append(table)
                rows_added += count
                progress = True
    conn.commit()
    conn.close()
    return {"tables": len(columns), "filled": len(filled), "rows": rows_added, "not_filled": errors}


def state(tables: list[str] | None = None) -> dict:
    """Every public table's rows (count and digest) and the applied history: what a restore must give back."""
    conn = psycopg2.connect(**DB)
    conn.autocommit = True
    out = {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND relkind = 'r' AND relname <> '_prisma_migrations' ORDER BY 1"
        )
        for (name,) in cur.fetchall():
            if tables is None or name in tables:
                digest = sql.SQL("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t")
                cur.execute(digest.format(sql.Identifier(name)))
                out[name] = list(cur.fetchone())
        cur.execute(
            "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
            " ORDER BY 1"
        )
        out["_prisma_migrations"] = [r[0] for r in cur.fetchall()]
    conn.close()
    return out


def lint_figures(migrations: list[dict], prefix: int, tables: dict) -> dict:
    """The lint over every statement: from an empty database, and B's migrations against A's live tables."""
    started = time.monotonic()
    empty = lint_migrations(migrations, tables={})
    against_a = lint_migrations(migrations[prefix:], tables=tables)
    statements = sum(len(m["statements"]) for m in empty["migrations"])
    return {
        "statements": statements,
        "seconds": round(time.monotonic() - started, 1),
        "parse_errors": [f["migration"] for f in empty["findings"] if f["rule"] == "parse-error"],
        "blocking_from_empty": sorted({f["migration"] for f in empty["blocking"]}),
        "warnings_from_empty": len(empty["advisories"]),
        "blocking_b": sorted({f["migration"] for f in against_a["blocking"]}),
        "blocking_b_findings": [
            {"migration": f["migration"], "line": f["line"], "rule": f["rule"], "message": f["message"]}
            for f in against_a["blocking"]
        ],
    }


def live_tables() -> dict:
    """The live database's tables as the plan's lint gets them (preflight's query)."""
    # The module_utils file imports Ansible's package path: its query is read from the source instead.
    source = ast.parse((ROOT / "plugins" / "module_utils" / "pg_database.py").read_text())
    query = next(n.value.value for n in source.body if isinstance(n, ast.Assign) and n.targets[0].id == "MEASURE_QUERY")
    conn = psycopg2.connect(**DB)
    with conn.cursor() as cur:
        cur.execute(query)
        tables = cur.fetchone()[1]
    conn.close()
    return {t["name"]: t for t in tables}


def replay(name: str, source: Path) -> dict:
    project = PROJECTS[name]
    migrations, commit = read_history(source, project["migrations"], project.get("rename") or {})
    prefix, allow = project["prefix"], sorted(project.get("allow") or {})
    print(f"{name}: {len(migrations)} migrations at {commit[:12]}, release A = the first {prefix}", flush=True)
    result = {"repo": project["repo"], "commit": commit, "migrations": len(migrations), "prefix": prefix}
    play("playbooks/sandbox_reset.yml")
    release_1 = state()
    branch_a, branch_b = f"corpus-{name}-a", f"corpus-{name}-b"
    push_release(branch_a, migrations[:prefix])
    push_release(branch_b, migrations)
    result["run_a"] = run(
        "playbooks/migrate.yml", "-e", f"app_version={branch_a}", "-e", json.dumps(NO_EXPECTATIONS), name=f"{name}-a"
    )
    # Tables the project's production must have held empty at A (a later migration adds a NOT NULL column
    # without a default to them): left empty, as corpus.yml says why.
    made = sorted(set(state()) - set(release_1) - set(project.get("empty") or {}))
    result["rows"] = add_rows(made)
    result["lint"] = lint_figures(migrations, prefix, live_tables())
    before_b = state()
    # Allowed migrations are not additive: the tool runs them only in a maintenance window.
    extra = json.dumps({"migration_plan_allow": allow, "maintenance_window": bool(allow), **NO_EXPECTATIONS})
    result["run_b"] = run("playbooks/migrate.yml", "-e", f"app_version={branch_b}", "-e", extra, name=f"{name}-b")
    after_b = state()
    result["b_applied_all"] = after_b["_prisma_migrations"] == sorted(
        set(release_1["_prisma_migrations"]) | {m["name"] for m in migrations}
    )
    if result["run_b"]["rc"] != 0:  # a failed run rolled back by itself (or changed nothing)
        result["rollback"] = {"rc": None, "wall_s": 0, "outcome": "not run"}
        result["restored_a"] = after_b == before_b
        print(json.dumps(result, indent=1, default=str), flush=True)
        return result
    result["rollback"] = run(
        "playbooks/rollback.yml", "-e", "rollback_backup=latest", "-e", f"rollback_app_version={branch_a}",
        name=f"{name}-rollback",
    )  # fmt: skip
    after = state()
    result["restored_a"] = after == before_b
    if not result["restored_a"]:
        result["restore_differs"] = sorted(k for k in set(after) | set(before_b) if after.get(k) != before_b.get(k))
    print(json.dumps(result, indent=1, default=str), flush=True)
    return result


def main() -> None:
    sources = dict(arg.split("=", 1) for arg in sys.argv[1:])
    unknown = sorted(set(sources) - set(PROJECTS))
    if not sources or unknown:
        raise SystemExit(f"usage: corpus.py NAME=PATH ... with NAME one of {sorted(PROJECTS)} (unknown: {unknown})")
    results = {name: replay(name, Path(path)) for name, path in sources.items()}
    rows = []
    for name, r in results.items():
        a, b, back = r["run_a"], r["run_b"], r["rollback"]
        rows.append([
            f"{name} ({r['repo']} @ {r['commit'][:8]})", f"{r['migrations']} ({r['prefix']} in A)",
            r["lint"]["statements"], len(r["lint"]["parse_errors"]), len(r["lint"]["blocking_from_empty"]),
            len(r["lint"]["blocking_b"]), f"{r['rows']['rows']} in {r['rows']['filled']} of {r['rows']['tables']}",
            f"{a.get('outcome', a['rc'])}, {a.get('applied', 0)} applied, {a['wall_s']} s",
            f"{b.get('outcome', b['rc'])}, {b.get('applied', 0)} applied, {b['wall_s']} s",
            f"{back.get('outcome', back['rc'])}, {back['wall_s']} s", "yes" if r["restored_a"] else "NO",
        ])  # fmt: skip
    headers = ["project", "migrations", "statements", "parse errors", "blocked from empty", "blocked in B",
               "rows added (tables)", "release A", "release B (allowed, window)", "rollback.yml",
               "A restored"]  # fmt: skip
    save("corpus", "Real migration histories", {"projects": results}, table(headers, rows), doc="corpus")


if __name__ == "__main__":
    main()
