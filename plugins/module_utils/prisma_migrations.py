"""What Prisma's migration state is, read from the files and from the database.

`prisma migrate status` stops at the first problem and reports "up to date"
when the database has a migration missing locally or a migration.sql was
edited after it was applied, so the tool reads `_prisma_migrations` itself and
compares it with the migration folders. Pure functions here; the modules do
the I/O.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

# Prisma's own URL arguments, which libpq does not take (libpq refuses a URL with one). Its `sslcert`
# is the CA's certificate (libpq's `sslrootcert`); `sslidentity`/`sslpassword` are a PKCS#12 client
# identity, which libpq cannot read.
PRISMA_ONLY = frozenset(
    {
        "schema",
        "connection_limit",
        "pool_timeout",
        "socket_timeout",
        "pgbouncer",
        "statement_cache_size",
        "sslaccept",
        "sslidentity",
        "sslpassword",
        "max_connection_lifetime",
        "max_idle_connection_lifetime",
        "single_use_connections",
    }
)
UNKNOWN_PARAMETER = re.compile(r'invalid URI query parameter: "([^"]+)"')

MIGRATION_NAME = re.compile(r"^(\d+)_(.+)$")

HISTORY_QUERY = (
    "SELECT migration_name, checksum, started_at, finished_at, rolled_back_at,"
    " applied_steps_count, logs FROM {table} ORDER BY started_at, migration_name"
)


def connection_params(database_url):
    """Turn a Prisma DATABASE_URL into psycopg2 keyword arguments and its schema, as libpq reads it.

    libpq's own parser (psycopg2's parse_dsn) reads the URL, Prisma's arguments taken out first: several
    hosts (`h1:5432,h2:5433`), `host=/var/run/postgresql` (a socket), `channel_binding`, `gssencmode` and
    every other libpq keyword keep their meaning. An argument neither knows is dropped, as Prisma drops it.

    >>> connection_params("postgresql://u:p%40ss@h:6543/db?schema=app&sslmode=require&connection_limit=5")
    ({'host': 'h', 'port': 6543, 'user': 'u', 'password': 'p@ss', 'dbname': 'db', 'sslmode': 'require'}, 'app')
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("DATABASE_URL must start with postgresql:// (got %s://)" % (parts.scheme or "nothing"))
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), "public") or "public"
    kept = [("sslrootcert" if key == "sslcert" else key, value) for key, value in query if key not in PRISMA_ONLY]
    try:
        from psycopg2.extensions import parse_dsn
    except ImportError:  # a host without psycopg2 fails later, naming it; read what can be read without it
        parse_dsn = None
    if parse_dsn is None:
        params = _url_params(parts)
        params.update((key, value) for key, value in kept if key not in ("host", "port"))
        return params, schema
    # User and password as a URL parser reads them (at the last "@", as Prisma does; libpq splits at the
    # first), the hosts, ports, database and arguments by libpq.
    userinfo, _unused, hosts = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    while True:
        query = urlencode(kept, quote_via=quote)
        url = "%s://%s%s%s" % (parts.scheme, hosts, parts.path, "?" + query if query else "")  # "//" even hostless
        try:
            found = parse_dsn(url)
            break
        except Exception as exc:  # psycopg2.ProgrammingError: what libpq said
            unknown = UNKNOWN_PARAMETER.search(str(exc))
            if not unknown or unknown.group(1) not in {key for key, _unused in kept}:
                said = str(exc).strip()
                if password:  # libpq quotes the token it could not read: it may be the password
                    said = said.replace(password, "********")
                raise ValueError("DATABASE_URL is not a URL libpq can read: %s" % said) from None
            kept = [(key, value) for key, value in kept if key != unknown.group(1)]
    found.pop("user", None)
    found.pop("password", None)
    if user:
        found["user"] = unquote(user)
    if has_password:
        found["password"] = unquote(password)
    if any(not port.isdigit() for port in str(found.get("port", "0")).split(",")):
        raise ValueError("DATABASE_URL's port is not a number (got %s)" % found["port"])
    order = ("host", "port", "user", "password", "dbname")
    params = {key: found[key] for key in order if key in found}
    params.update((key, value) for key, value in found.items() if key not in order)
    if str(params.get("port", "")).isdigit():
        params["port"] = int(params["port"])
    return params, schema


def _url_params(parts):
    """Host, port, user, password and database of a URL, without libpq."""
    params = {}
    if parts.hostname:
        params["host"] = parts.hostname
    if parts.port:
        params["port"] = parts.port
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password is not None:
        params["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        params["dbname"] = unquote(parts.path.strip("/"))
    return params


def describe_target(params):
    """A secret-free name for a database: user@host:port/dbname."""
    return "%s@%s:%s/%s" % (
        params.get("user", "?"),
        params.get("host", "localhost"),
        params.get("port", 5432),
        params.get("dbname", "?"),
    )


def scan_migrations(migrations_dir):
    """The migration folders in the order Prisma applies them (by name)."""
    found = []
    for name in sorted(os.listdir(migrations_dir)):
        folder = os.path.join(migrations_dir, name)
        if not os.path.isdir(folder):
            continue  # migration_lock.toml and friends
        sql = os.path.join(folder, "migration.sql")
        entry = {"name": name, "has_sql": os.path.isfile(sql), "checksum": None}
        if entry["has_sql"]:
            with open(sql, "rb") as handle:
                entry["checksum"] = hashlib.sha256(handle.read()).hexdigest()
        found.append(entry)
    return found


def near_duplicates(names, contents=None):
    """Groups of migration names that differ only in their timestamp prefix: one change committed twice.

    With `contents` ({name: its SQL, or its checksum; None when it has none}), a group is kept only when two of
    its migrations hold the same SQL (whitespace aside) or one holds none (the runbook's case): migrations that
    differ are two changes (hoppscotch's two fix_order_index, months apart), and the rehearsal runs both.

    >>> near_duplicates(["20251204_consolidate", "20251204175644_consolidate", "20250101_init"])
    [['20251204175644_consolidate', '20251204_consolidate']]
    >>> near_duplicates(["1_fix", "2_fix"], {"1_fix": "UPDATE a SET x = 1;", "2_fix": "UPDATE b SET x = 1;"})
    []
    """
    by_suffix = {}
    for name in names:
        match = MIGRATION_NAME.match(name)
        if match:
            by_suffix.setdefault(match.group(2), []).append(name)
    groups = [sorted(group) for _unused, group in sorted(by_suffix.items()) if len(group) > 1]
    if contents is None:
        return groups

    def same(group):
        texts = [contents.get(name) for name in group]
        if any(text is None for text in texts):
            return True
        normal = {" ".join(text.split()) for text in texts}
        return len(normal) < len(texts)

    return [group for group in groups if same(group)]


def tree_problems(paths, migrations_dir="prisma/migrations", allow_near_duplicates=(), migrations=None):
    """Known issues in a revision's migration folders, from its file list (`git ls-tree -r --name-only`).

    Folders without migration.sql (P3015 on deploy) and near-duplicate names, as sentences with the fix;
    near-duplicates named in allow_near_duplicates are accepted. `migrations` ([{name, sql}], as
    preflight_host_info reads the revision) tells a change committed twice from two changes of one name.
    """
    prefix = migrations_dir.rstrip("/") + "/"
    folders = {}
    for path in paths:
        if path.startswith(prefix) and "/" in path[len(prefix) :]:
            folder, rest = path[len(prefix) :].split("/", 1)
            folders.setdefault(folder, set()).add(rest)
    state = {
        "failed_migrations": [],
        "empty_folders": sorted(f for f, files in folders.items() if "migration.sql" not in files),
        "near_duplicates": [
            group
            for group in near_duplicates(
                sorted(folders), None if migrations is None else {m["name"]: m.get("sql") for m in migrations}
            )
            if not set(group) <= set(allow_near_duplicates)
        ],
        "missing_locally": [],
        "checksum_mismatches": [],
    }
    return problems(state)


def classify(local, rows):
    """Compare the migration folders with the rows of _prisma_migrations.

    A row is applied when it finished and was not rolled back, failed when it
    neither finished nor was rolled back (what Prisma's P3009 refers to), and
    rolled back otherwise (Prisma will apply that migration again).
    """
    local_by_name = {m["name"]: m for m in local}
    latest = {}
    for row in rows:  # a rolled-back migration can have several rows; the last counts
        latest[row["migration_name"]] = row
    applied = [n for n, r in latest.items() if r["finished_at"] is not None and r["rolled_back_at"] is None]
    failed = [  # not named "failed" in results: Ansible reserves that key
        {"name": n, "started_at": _iso(r["started_at"]), "logs": r.get("logs") or ""}
        for n, r in latest.items()
        if r["finished_at"] is None and r["rolled_back_at"] is None
    ]
    failed_names = {f["name"] for f in failed}
    rolled_back = sorted(n for n, r in latest.items() if r["rolled_back_at"] is not None)
    pending = [m["name"] for m in local if m["has_sql"] and m["name"] not in applied and m["name"] not in failed_names]
    missing_locally = sorted(n for n in applied if n not in local_by_name)
    mismatches = [
        {"name": n, "local": local_by_name[n]["checksum"], "database": latest[n]["checksum"]}
        for n in sorted(applied)
        if n in local_by_name and local_by_name[n]["has_sql"] and local_by_name[n]["checksum"] != latest[n]["checksum"]
    ]
    empty = [m["name"] for m in local if not m["has_sql"]]
    result = {
        "applied": sorted(applied),
        "pending": pending,
        "failed_migrations": failed,
        "rolled_back": rolled_back,
        "missing_locally": missing_locally,
        "checksum_mismatches": mismatches,
        "empty_folders": empty,
        "near_duplicates": near_duplicates(
            [m["name"] for m in local], {m["name"]: m["checksum"] if m["has_sql"] else None for m in local}
        ),
    }
    result["problems"] = problems(result)
    result["up_to_date"] = not (pending or failed or missing_locally or mismatches or empty)
    return result


def problems(state):
    """Each blocking finding as a sentence that says what to do."""
    found = []
    for item in state["failed_migrations"]:
        found.append(
            "Migration %s failed (started %s) and blocks every deploy (Prisma P3009). Either fix the database by"
            " hand and mark it applied (prisma migrate resolve --applied %s), or undo what it changed and mark it"
            " rolled back (prisma migrate resolve --rolled-back %s), then deploy again."
            % (item["name"], item["started_at"], item["name"], item["name"])
        )
    for name in state["empty_folders"]:
        found.append(
            "Migration folder %s has no migration.sql: prisma migrate deploy fails on it (P3015) and"
            " migrate resolve cannot mark it (P3017). Delete the folder or restore its migration.sql." % name
        )
    for group in state["near_duplicates"]:
        found.append(
            "Migrations %s share one name under different timestamps: check they are not the same change"
            " committed twice before deploying." % ", ".join(group)
        )
    for name in state["missing_locally"]:
        found.append(
            "Migration %s is applied in the database but missing from prisma/migrations: the code is older than"
            " the database or the folder was deleted. Deploy a revision that has it." % name
        )
    for item in state["checksum_mismatches"]:
        found.append(
            "Migration %s was edited after it was applied (checksum %s in the database, %s on disk): restore the"
            " applied migration.sql and put the change in a new migration."
            % (item["name"], item["database"][:12], item["local"][:12])
        )
    return found


def parse_status(rc, stdout, stderr):
    """Classify `prisma migrate status` output the way real Prisma 6 words it."""
    text = "%s\n%s" % (stdout, stderr)
    if "Can't reach database server" in text or "P1001" in text:
        return "unreachable"
    if re.search(r"Following migrations? ha(ve|s) failed", text):
        return "failed"
    if re.search(r"Following migrations? ha(ve|s) not yet been applied", text):
        return "pending"
    if "are different" in text or "not found locally" in text:
        return "diverged"
    if rc == 0 and "Database schema is up to date" in text:
        return "up_to_date"
    return "unknown"


def redact(text, secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


# libpq's environment variable for each connection parameter pg_dump and pg_restore may need.
LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
    "passfile": "PGPASSFILE", "service": "PGSERVICE", "options": "PGOPTIONS", "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI", "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION", "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS", "requirepeer": "PGREQUIREPEER",
}  # fmt: skip


def libpq_env(params):
    """Connection parameters as libpq's PG* environment variables (those libpq has one for)."""
    return {var: str(params[key]) for key, var in LIBPQ_ENV.items() if key in params}


# What libpq says when the server's certificate cannot be verified, or the CA file cannot be read.
TLS_FAILURE = re.compile(r"certificate verify failed|root certificate file|server certificate for|SSL error", re.I)


def tls_hint(message):
    """A connection error, with the CA setting to check when it is a TLS verification failure."""
    if not TLS_FAILURE.search(message or ""):
        return message
    return (
        "%s (the server's TLS certificate could not be verified: check the URL's sslrootcert, Prisma's sslcert,"
        " names the CA file of this cluster, e.g. DigitalOcean's ca-certificate.crt, present on this host, and"
        " that the URL's host is the name the certificate was issued for)" % message.rstrip(". ")
    )


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def deploy_outcome(before, after):
    """What one `prisma migrate deploy` did, from the rows of _prisma_migrations before and after it.

    applied: migrations finished by this deploy, in the order Prisma applied them (a name can have an
    older, rolled-back row: only a new finished row counts). failed: migrations this deploy left
    failed (started, neither finished nor rolled back), each with the log Prisma wrote in its row.
    """
    seen = {(r["migration_name"], _iso(r["started_at"])) for r in before}
    new = [r for r in after if (r["migration_name"], _iso(r["started_at"])) not in seen]
    new.sort(key=lambda r: (_iso(r["started_at"]) or "", r["migration_name"]))
    applied = [r["migration_name"] for r in new if r["finished_at"] is not None and r["rolled_back_at"] is None]
    failed = [
        {"name": r["migration_name"], "logs": r.get("logs") or ""}
        for r in new
        if r["finished_at"] is None and r["rolled_back_at"] is None
    ]
    return {"applied": applied, "failed_migrations": failed}


def migration_under_way(text):
    """The last migration Prisma printed as starting (it prints each one as it starts it), or None."""
    started = re.findall(r"Applying migration `([^`]+)`", text or "")
    return started[-1] if started else None


DATABASE_ERROR = re.compile(
    r"(?:Database error code: (?P<code>\w+)\s*)?"
    r"(?:Database error:\s*\n|Error querying the database:\s*)(?P<message>(?:ERROR|FATAL)?[^\n]*)"
    r"(?P<detail>(?:\n(?:DETAIL|HINT)[^\n]*)*)"
)


BACKTRACE = re.compile(r"\s+(?:\d+: |with |at )")


def database_error(text):
    """The database's own error in Prisma's output or a migration's log: SQLSTATE, message, DETAIL and HINT.

    Falls back to a driver adapter's cause, then Prisma's last `Error:` line, then the last line that is not
    the engine's backtrace, when no database error is quoted.
    """
    found = DATABASE_ERROR.search(text or "")
    if found and found.group("message").strip():
        message = found.group("message").strip()
        if found.group("code"):
            message = "%s (SQLSTATE %s)" % (message, found.group("code"))
        detail = " ".join(line.strip() for line in found.group("detail").splitlines() if line.strip())
        return ("%s %s" % (message, detail)).strip()
    # The schema engine's backtrace (numbered frames, "with ...", "at file:line") says where, not why.
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not BACKTRACE.match(line)]
    # A driver adapter (prisma.config.ts) reports "external connector error" and the cause on the next line.
    for number, line in enumerate(lines[:-1]):
        if line.endswith("external connector error"):
            return "%s: %s" % (line, lines[number + 1])
    errors = [line for line in lines if re.match(r"(?:Error: )?(?:ERROR|Error)[: ]", line)]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "Prisma printed nothing"


def with_session_settings(url, settings):
    """The URL with `-c name=value` for each setting added to its `options` startup parameter.

    PostgreSQL applies a connection's startup options before the session's first statement, whatever the
    client: libpq, Prisma's native engine (quaint hands `options` to tokio-postgres, Prisma 3.8 and later) and
    node-postgres (Prisma's driver adapters) all send it. Options the URL has already are kept, ours after
    them (the later `-c` wins). Spaces are written %20: libpq does not read `+` as a space.

    >>> with_session_settings("postgresql://u@h/db?sslmode=require", {"lock_timeout": "2000ms"})
    'postgresql://u@h/db?sslmode=require&options=-c%20lock_timeout%3D2000ms'
    """
    if not settings:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [value for key, value in query if key == "options"]
    ours = " ".join("-c %s=%s" % (name, value) for name, value in settings.items())
    query = [(key, value) for key, value in query if key != "options"]
    query.append(("options", " ".join(given + [ours])))
    return parts._replace(query=urlencode(query, quote_via=quote)).geturl()


# What PostgreSQL says when lock_timeout ends a statement's wait (SQLSTATE lock_not_available).
LOCK_TIMEOUT = re.compile(r"\b55P03\b|canceling statement due to lock timeout", re.I)


def lock_timed_out(text):
    """Whether a deploy's output, or a migration's log, says a statement gave up waiting for its lock."""
    return bool(LOCK_TIMEOUT.search(text or ""))


def jitter():
    """A factor in [0.5, 1.5) for a retry's wait, so that runs which met the same lock do not come back at once."""
    return random.uniform(0.5, 1.5)  # noqa: S311 - spreading retries, not a secret


def retry_delay(attempt, base, cap, jitter):
    """Seconds to wait before lock attempt `attempt` + 1: doubling from `base`, at most `cap`, times `jitter`
    (a number in [0.5, 1.5): runs that met the same lock do not all come back at once).

    >>> [retry_delay(n, 1.0, 8.0, 1.0) for n in (1, 2, 3, 4, 5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    """
    return round(min(cap, base * 2 ** (attempt - 1)) * jitter, 2)
