"""Compare declared schema expectations with what pg_catalog says."""

from __future__ import annotations

import re

TABLES_QUERY = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')"""

COLUMNS_QUERY = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"""

INDEXES_QUERY = """
SELECT tbl.relname, idx.relname, ix.indisunique, array_agg(att.attname ORDER BY k.ord)
FROM pg_index ix
JOIN pg_class idx ON idx.oid = ix.indexrelid
JOIN pg_class tbl ON tbl.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = tbl.relnamespace
CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute att ON att.attrelid = tbl.oid AND att.attnum = k.attnum
WHERE n.nspname = %(schema)s
GROUP BY 1, 2, 3"""

FOREIGN_KEYS_QUERY = """
SELECT tbl.relname, con.conname, ref.relname,
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint con
JOIN pg_class tbl ON tbl.oid = con.conrelid
JOIN pg_class ref ON ref.oid = con.confrelid
JOIN pg_namespace n ON n.oid = tbl.relnamespace
WHERE con.contype = 'f' AND n.nspname = %(schema)s"""

# Spellings people write, to the one format_type() prints.
SYNONYMS = {
    "int": "integer",
    "int4": "integer",
    "serial": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "float8": "double precision",
    "float": "double precision",
    "float4": "real",
    "varchar": "character varying",
    "char": "character",
    "decimal": "numeric",
    "timestamptz": "timestamp with time zone",
    "timetz": "time with time zone",
}


def normalize_type(name):
    """One spelling per type: 'TIMESTAMP(3)' -> 'timestamp(3) without time zone', 'int4' -> 'integer'.
    An enum named in mixed case compares as written, quoted or not: format_type() prints '"EnvelopeType"'."""
    text = re.sub(r"\s+", " ", name.strip().replace('"', "").lower())
    match = re.match(r"^([a-z0-9_ ]+?)\s*(\([0-9, ]+\))?\s*((?:with|without) time zone)?(\[\])?$", text)
    if not match:
        return text
    base, mods, zone, array = match.groups()
    base = SYNONYMS.get(base, base)
    if base.endswith(" with time zone") or base.endswith(" without time zone"):
        base, zone = base.split(" with", 1)[0], "with" + base.split(" with", 1)[1]
    mods = mods.replace(" ", "") if mods else ""
    if base in ("timestamp", "time"):
        zone = zone or "without time zone"
    return "%s%s%s%s" % (base, mods, " " + zone if zone else "", array or "")


def parse_reference(text):
    """'customers(id)' or 'customers' -> ('customers', ['id'] or None)."""
    match = re.match(r"^\s*([A-Za-z0-9_]+)\s*(?:\(([^)]*)\))?\s*$", text)
    if not match:
        raise ValueError("foreign key reference %r: write table or table(column, ...)" % text)
    cols = [c.strip() for c in match.group(2).split(",")] if match.group(2) else None
    return match.group(1), cols


def compare(expect, actual):
    """Differences between declared expectations and the catalog, each a dict and a diff line.

    expect: {tables: {name: {columns: {col: type | {type, nullable}}, indexes: [name | {columns, unique}],
             foreign_keys: [name | {columns, references: 'table(cols)'}]}}}
    actual: {tables: set, columns: {table: {col: (type, nullable)}}, indexes: {table: [(name, unique, cols)]},
             foreign_keys: {table: [(name, ref_table, cols, ref_cols)]}}
    """
    found = []

    def miss(table, kind, name, expected, actual_value, line):
        found.append(dict(table=table, kind=kind, name=name, expected=expected, actual=actual_value, line=line))

    for table, spec in sorted((expect.get("tables") or {}).items()):
        spec = spec or {}
        if table not in actual["tables"]:
            miss(table, "table", table, "present", "missing", "- table %s: missing" % table)
            continue
        columns = actual["columns"].get(table, {})
        for col, want in sorted((spec.get("columns") or {}).items()):
            want = want if isinstance(want, dict) else {"type": want}
            if col not in columns:
                miss(
                    table,
                    "column",
                    col,
                    want.get("type") or "present",
                    "missing",
                    "- column %s.%s: missing" % (table, col),
                )
                continue
            have_type, have_nullable = columns[col]
            if want.get("type") and normalize_type(want["type"]) != normalize_type(have_type):
                miss(
                    table,
                    "column_type",
                    col,
                    normalize_type(want["type"]),
                    have_type,
                    "~ column %s.%s: expected %s, found %s" % (table, col, normalize_type(want["type"]), have_type),
                )
            if "nullable" in want and bool(want["nullable"]) != have_nullable:
                miss(
                    table,
                    "column_nullable",
                    col,
                    bool(want["nullable"]),
                    have_nullable,
                    "~ column %s.%s: expected %s, found %s"
                    % (table, col, "NULL" if want["nullable"] else "NOT NULL", "NULL" if have_nullable else "NOT NULL"),
                )
        indexes = actual["indexes"].get(table, [])
        for want in spec.get("indexes") or []:
            if isinstance(want, str):
                ok = any(name == want for name, _unused, _unused in indexes)
                label = want
            else:
                cols = list(want["columns"])
                ok = any(c == cols and (not want.get("unique") or u) for _unused, u, c in indexes)
                label = "%s(%s)%s" % ("unique " if want.get("unique") else "", ", ".join(cols), "")
            if not ok:
                miss(table, "index", label, "present", "missing", "- index on %s: %s missing" % (table, label))
        fks = actual["foreign_keys"].get(table, [])
        for want in spec.get("foreign_keys") or []:
            if isinstance(want, str):
                ok = any(name == want for name, _unused, _unused, _unused in fks)
                label = want
            else:
                ref_table, ref_cols = parse_reference(want["references"])
                cols = list(want["columns"])
                ok = any(
                    c == cols and r == ref_table and (ref_cols is None or rc == ref_cols) for _unused, r, c, rc in fks
                )
                label = "(%s) -> %s" % (", ".join(cols), want["references"])
            if not ok:
                miss(
                    table,
                    "foreign_key",
                    label,
                    "present",
                    "missing",
                    "- foreign key on %s: %s missing" % (table, label),
                )
    return found
