"""The connection option our database modules share, documented once."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  database_url:
    description:
      - The database, as a PostgreSQL URL the way Prisma takes it (the app's C(DATABASE_URL), or its direct URL).
      - Read by libpq's own parser, so its parameters keep their meaning (C(sslmode), C(sslrootcert), several
        hosts, a socket folder as C(host)); Prisma's own (C(schema), C(pgbouncer), C(connection_limit)) are
        understood and not handed to libpq.
      - "Holds the password: pass it with C(no_log)."
    type: str
"""
