"""Reading a pg_dump custom-format archive's table of contents; checksum files."""

from __future__ import annotations

import hashlib
import re

# pg_restore --list: "3380; 0 16390 TABLE DATA public customers backend"
TOC_TABLE_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ")

LIVE_TABLES_QUERY = (
    "SELECT schemaname, tablename FROM pg_tables"
    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
)


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checksum_file(text):
    """The hex digest of a sha256sum-style line ("<hex>  <name>"), or None."""
    match = re.match(r"^\s*([0-9a-fA-F]{64})\b", text)
    return match.group(1).lower() if match else None


def toc_tables(listing):
    """The schema.table names that have a TABLE DATA entry in a pg_restore --list output."""
    found = set()
    for line in listing.splitlines():
        match = TOC_TABLE_DATA.match(line)
        if match:
            found.add("%s.%s" % (match.group(1), match.group(2)))
    return found


def missing_from_dump(live, dumped, exclude=()):
    """Live tables with no TABLE DATA in the dump, in order; excluded names may be bare or schema-qualified."""
    excluded = set(exclude)
    return [t for t in live if t not in dumped and t not in excluded and t.split(".", 1)[1] not in excluded]
