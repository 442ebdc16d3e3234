"""Which variables Prisma's CLI takes the database URL from, found where Prisma finds them.

A database behind a connection pool (DigitalOcean's PgBouncer on port 25061, in transaction mode) has two
URLs: the app's, through the pool, and the one migrations must use, straight to the server
(`prisma migrate deploy` through a transaction pool fails on its prepared statements and advisory lock).
Prisma 6 names the second in schema.prisma's datasource, `directUrl = env("DIRECT_URL")`; Prisma 7 in
prisma.config.ts, `datasource: { url: env('DIRECT_URL') }`. Only the variable names are read: the values
are in the .env.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import parse_qsl, urlsplit

# Where Prisma 7 looks for its config, in its order.
CONFIG_FILES = ("prisma.config.ts", "prisma.config.mts", "prisma.config.cts", "prisma.config.js",
                "prisma.config.mjs", "prisma.config.cjs", ".config/prisma.ts")  # fmt: skip
# env("X"), env('X'), process.env.X, process.env["X"]: the forms a datasource names a variable in.
ENV_REFERENCE = re.compile(
    r"""^\s*(?:env\(\s*["'](\w+)["']\s*\)|process\.env\.(\w+)|process\.env\[\s*["'](\w+)["']\s*\])"""
)
# Ports a PgBouncer pool listens on: DigitalOcean's pools, PgBouncer's default.
POOL_PORTS = (25061, 6432)


def _env_name(expression):
    found = ENV_REFERENCE.match(expression or "")
    return next((name for name in found.groups() if name), None) if found else None


def _uncommented(text):
    """Text without // comments (a URL's :// is kept: its // follows no space)."""
    return re.sub(r"(?m)(^|\s)//.*$", r"\1", text)


def _schema_files(app_dir):
    """The schema file(s) Prisma reads: package.json's prisma.schema, else prisma/schema.prisma (a folder of
    .prisma files for a multi-file schema)."""
    schema = os.path.join("prisma", "schema.prisma")
    try:
        with open(os.path.join(app_dir, "package.json"), encoding="utf-8") as handle:
            schema = (json.load(handle).get("prisma") or {}).get("schema") or schema
    except (OSError, ValueError, AttributeError):
        pass
    path = os.path.join(app_dir, schema)
    if not os.path.exists(path) and os.path.isdir(os.path.join(app_dir, "prisma", "schema")):
        path = os.path.join(app_dir, "prisma", "schema")
    if os.path.isdir(path):
        return sorted(os.path.join(path, name) for name in os.listdir(path) if name.endswith(".prisma"))
    return [path]


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def read_datasource(app_dir):
    """The variables Prisma reads its URLs from: {"url": name, "direct_url": name or None, "source": file}.

    prisma.config.ts's datasource (Prisma 7) comes first, then schema.prisma's datasource block. A URL written
    into the file itself, or a datasource not found, gives DATABASE_URL, Prisma's own default name.
    """
    for name in CONFIG_FILES:
        text = _read(os.path.join(app_dir, name))
        block = re.search(r"\bdatasource\s*:\s*\{([^}]*)\}", _uncommented(text or ""))
        if block:
            url = re.search(r"\burl\s*:\s*([^,\n}]+)", block.group(1))
            return {"url": _env_name(url.group(1)) if url else None, "direct_url": None, "source": name}
    for path in _schema_files(app_dir):
        text = _read(path)
        block = re.search(r"(?ms)^\s*datasource\s+\w+\s*\{(.*?)^\s*\}", _uncommented(text or ""))
        if block:
            url = re.search(r"(?m)^\s*url\s*=\s*(.+)$", block.group(1))
            direct = re.search(r"(?m)^\s*directUrl\s*=\s*(.+)$", block.group(1))
            return {
                "url": _env_name(url.group(1)) if url else None,
                "direct_url": _env_name(direct.group(1)) if direct else None,
                "source": os.path.relpath(path, app_dir),
            }
    return {"url": None, "direct_url": None, "source": None}


def url_variables(datasource):
    """The variables the CLI reads, the one migrations use first: [directUrl's, url's] (no repeats)."""
    names = [datasource.get("direct_url"), datasource.get("url") or "DATABASE_URL"]
    return [name for i, name in enumerate(names) if name and name not in names[:i]]


def pooled(url):
    """Why a URL goes through a PgBouncer pool (its pgbouncer=true, its port), or None."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return None
    if any(key == "pgbouncer" and value.lower() == "true" for key, value in parse_qsl(parts.query)):
        return "pgbouncer=true"
    if port in POOL_PORTS:
        return "port %d, a PgBouncer pool's" % port
    return None


def pool_problem(env, datasource):
    """Why migrations cannot run on the URL this app's schema gives them, with the fix; or None."""
    migrate = url_variables(datasource)[0]
    why = pooled(env.get(migrate))
    if not why:
        return None
    if datasource.get("direct_url") or (datasource.get("source") or "").startswith(("prisma.config", ".config")):
        return (
            "%s, which migrations run on (%s), goes through a connection pool (%s): prisma migrate deploy"
            " fails through a transaction pool. Point %s at the database server itself (DigitalOcean: port"
            " 25060, not the pool's 25061)." % (migrate, datasource["source"], why, migrate)
        )
    return (
        "%s goes through a connection pool (%s) and the schema names no direct URL for migrations:"
        ' prisma migrate deploy fails through a transaction pool. Add directUrl = env("DIRECT_URL") to the'
        " datasource in %s (Prisma 7: the datasource url in prisma.config.ts) and DIRECT_URL, the database"
        " server's own URL (DigitalOcean: port 25060), to the .env."
        % (migrate, why, datasource.get("source") or "prisma/schema.prisma")
    )
