"""Lint pending Prisma migrations: pglast (the real PostgreSQL parser) for what each statement does,
squawk-cli for its rules. Controller-side: the migration_lint module runs on the controller.

A finding is blocking (``block``) when the statement can lose or rewrite data, or a warning (``warn``)
when it can hold locks longer than it should. A migration allowed by name keeps its findings, at level
``allowed``, and blocks nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

BLOCK, WARN, ALLOWED = "block", "warn", "allowed"

# Squawk rules that say what the parser-based rules below already say (kept out to avoid two findings per
# statement), and style advice that fits no Prisma migration (Prisma writes the SQL; it runs once).
SQUAWK_EXCLUDE_DEFAULT = (
    "ban-drop-table",
    "ban-drop-column",
    "ban-drop-constraint",
    "ban-drop-type",
    "ban-drop-database",
    "ban-truncate-cascade",
    "changing-column-type",
    "adding-not-nullable-field",
    "adding-required-field",
    "renaming-column",
    "renaming-table",
    "require-concurrent-index-deletion",
    "prefer-robust-stmts",
    "require-statement-timeout",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-text-field",
    "prefer-timestamp-tz",
)

# Locks on a table this run creates hold up nothing: it is empty and nothing uses it yet.
SQUAWK_NEW_TABLE_EXEMPT = (
    "require-lock-timeout",
    "require-concurrent-index-creation",
    "constraint-missing-not-valid",
    "adding-foreign-key-constraint",
    "disallowed-unique-constraint",
)

SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}

# What a migration may drop and make again under the same name without losing rows (a table's or a
# sequence's drop loses its rows or values, whatever is made after it).
REPLACEABLE = {"index", "function", "view", "materialized view", "type", "trigger"}


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


# Statements that end or begin a transaction, or cannot run inside one: a migration with one is not one
# transaction, and a failure part-way leaves part of it applied.
NOT_IN_TRANSACTION = ("TransactionStmt", "VacuumStmt", "ReindexStmt", "CreatedbStmt", "DropdbStmt", "AlterSystemStmt")


# Statements whose effect the catalog does not show: a migration with one cannot be proven undone by
# looking up what it creates.
NOT_IN_CATALOG = ("InsertStmt", "UpdateStmt", "DeleteStmt", "CopyStmt", "TruncateStmt", "DoStmt", "SelectStmt",
                  "CallStmt", "ExecuteStmt")  # fmt: skip


def one_transaction(raws):
    """Whether a migration's statements run as one transaction when sent as one query, as Prisma sends them:
    then a statement that fails (a lock timeout) undoes the whole migration."""
    for raw in raws:
        kind = type(raw.stmt).__name__
        if kind in NOT_IN_TRANSACTION or getattr(raw.stmt, "concurrent", False):
            return False
    return True


def lock_mode(node):
    """The strongest table lock a statement of this kind takes on the tables it names (PostgreSQL's
    documentation, "Explicit Locking"), or None; every lock is held until the migration's transaction ends."""
    from pglast.enums import AlterTableType, ConstrType

    kind = type(node).__name__
    if kind == "AlterTableStmt":
        subtypes = {AlterTableType(cmd.subtype) for cmd in node.cmds or ()}
        if subtypes <= {AlterTableType.AT_ValidateConstraint, AlterTableType.AT_SetStatistics}:
            return "SHARE UPDATE EXCLUSIVE"
        foreign = all(
            AlterTableType(cmd.subtype) == AlterTableType.AT_AddConstraint
            and getattr(cmd.def_, "contype", None) == ConstrType.CONSTR_FOREIGN
            for cmd in node.cmds or ()
        )
        return "SHARE ROW EXCLUSIVE" if foreign else "ACCESS EXCLUSIVE"
    if kind == "IndexStmt":
        return "SHARE UPDATE EXCLUSIVE" if node.concurrent else "SHARE"
    if kind in ("DropStmt", "RenameStmt", "TruncateStmt"):
        return "ACCESS EXCLUSIVE"
    if kind == "CreateTrigStmt":
        return "SHARE ROW EXCLUSIVE"
    if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt"):
        return "ROW EXCLUSIVE"
    return None


def statement_start(text, offset):
    """Where a statement's own text begins: after the blank lines and comments (Prisma's "-- CreateTable") before it."""
    while True:
        while offset < len(text) and text[offset].isspace():
            offset += 1
        if text.startswith("--", offset):
            end = text.find("\n", offset)
            offset = len(text) if end < 0 else end
        elif text.startswith("/*", offset):
            end = text.find("*/", offset)
            offset = len(text) if end < 0 else end + 2
        else:
            return offset


def _name(node):
    return getattr(node, "relname", None) or ".".join(part.sval for part in node)


def _quote(name):
    return '"%s"' % name.replace('"', '""')


def _object_name(obj):
    """A dropped object's name as SQL: a relation or qualified name, a type, or a function with its arguments."""
    from pglast.stream import RawStream

    if isinstance(obj, tuple):
        return _name(obj)
    if getattr(obj, "names", None):  # a TypeName
        return _name(obj.names)
    if type(obj).__name__ == "ObjectWithArgs":  # DROP FUNCTION f(int, text): f(integer, text)
        return RawStream()(obj).replace(" (", "(", 1)
    return getattr(obj, "sval", None) or RawStream()(obj)


def _key_name(obj):
    """The bare name an object is matched by across statements (no schema, no arguments)."""
    if type(obj).__name__ == "ObjectWithArgs":
        return obj.objname[-1].sval
    return _object_name(obj).split("(")[0].split(".")[-1].strip('"')


def created_keys(node):
    """What a statement creates, as keys a later drop is matched against: (kind, name) or (constraint, table, name)."""
    from pglast.enums import AlterTableType

    kind = type(node).__name__
    keys = set()
    if getattr(node, "if_not_exists", False):
        return keys  # it may make nothing: the table (and its keys) can be there already, and hold rows
    if kind == "CreateStmt":
        table = node.relation.relname
        keys.add(("table", table))
        for elt in node.tableElts or ():
            if type(elt).__name__ == "ColumnDef":
                if elt.typeName and elt.typeName.names[-1].sval.lower() in SERIAL_TYPES:
                    keys.add(("sequence", "%s_%s_seq" % (table, elt.colname)))
                for con in elt.constraints or ():
                    if con.conname:
                        keys.add(("constraint", table, con.conname))
            elif type(elt).__name__ == "Constraint" and elt.conname:
                keys.add(("constraint", table, elt.conname))
    elif kind == "CreateTableAsStmt" and node.into is not None:
        keys.add(("table", node.into.rel.relname))
    elif kind == "IndexStmt" and node.idxname:
        keys.add(("index", node.idxname))
    elif kind == "AlterTableStmt":
        for cmd in node.cmds or ():
            if cmd.subtype == AlterTableType.AT_AddConstraint and cmd.def_.conname:
                keys.add(("constraint", node.relation.relname, cmd.def_.conname))
    elif kind == "CreateFunctionStmt":
        keys.add(("function", node.funcname[-1].sval))
    elif kind == "CreateSeqStmt":
        keys.add(("sequence", node.sequence.relname))
    elif kind == "CreateEnumStmt":
        keys.add(("type", node.typeName[-1].sval))
    elif kind == "ViewStmt":
        keys.add(("view", node.view.relname))
    elif kind == "RenameStmt":
        # Only a type renamed into a name makes it again (Prisma's enum swap): a table or an index renamed
        # into the name of one dropped is another object, and the drop loses what the old one held.
        old = renamed_key(node)
        if old is not None and old[0] == "type":
            keys.add(("type", node.newname))
    return keys


def dropped_tables(node):
    """The tables a DROP TABLE statement drops (Prisma drops a table's foreign keys first, then the table)."""
    from pglast.enums import ObjectType

    if type(node).__name__ != "DropStmt" or node.removeType != ObjectType.OBJECT_TABLE:
        return set()
    return {_key_name(obj) for obj in node.objects or ()}


# What RENAME names, as created_keys names it; None for what no drop is matched against (columns).
_RENAMED = {"OBJECT_TABLE": "table", "OBJECT_INDEX": "index", "OBJECT_TYPE": "type", "OBJECT_SEQUENCE": "sequence",
            "OBJECT_VIEW": "view", "OBJECT_FUNCTION": "function"}  # fmt: skip


def renamed_key(node):
    """The key of what a RenameStmt renames, before the rename: (kind, name) or (constraint, table, name)."""
    from pglast.enums import ObjectType

    what = ObjectType(node.renameType).name
    if what == "OBJECT_TABCONSTRAINT":
        return ("constraint", node.relation.relname, node.subname)
    if what not in _RENAMED:
        return None
    if node.relation is not None:
        return (_RENAMED[what], node.relation.relname)
    return (_RENAMED[what], _key_name(node.object))


# Type names as format_type() and as the parser spell them, to one name each.
_TYPE_ALIASES = {
    "character varying": "varchar", "character": "bpchar", "char": "bpchar", "integer": "int4", "int": "int4",
    "smallint": "int2", "bigint": "int8", "double precision": "float8", "real": "float4", "decimal": "numeric",
    "boolean": "bool", "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
    "time without time zone": "time", "time with time zone": "timetz",
}  # fmt: skip
# Conversions every value survives (old base: new bases), precision aside.
_WIDENS = {
    "int2": {"int4", "int8", "numeric"}, "int4": {"int8", "numeric"}, "int8": {"numeric"}, "float4": {"float8"},
    "varchar": {"text", "citext"}, "text": {"citext"}, "timestamp": {"timestamptz"},
}  # fmt: skip


def canonical_type(text):
    """(base, modifiers, is_array) of a type as format_type() or type_sql() writes it."""
    import re

    text = text.strip()
    array = text.endswith("[]")
    text = text[:-2] if array else text
    match = re.match(r"^(.*?)\s*(?:\(([\d,\s]+)\))?(\s+with(?:out)? time zone)?$", text)
    base, mods, zone = match.group(1), match.group(2), match.group(3) or ""
    base = (base + zone).strip().strip('"')
    base = _TYPE_ALIASES.get(base.lower(), base if base != base.lower() else base.lower())
    if base.startswith("pg_catalog."):
        base = base[len("pg_catalog.") :]
    return base, tuple(int(m) for m in mods.split(",")) if mods else (), array


def type_sql(type_name):
    """A parser TypeName as SQL: varchar(100), timestamptz(3), "Role"[]."""
    names = [part.sval for part in type_name.names]
    if names[0] == "pg_catalog" and len(names) > 1:
        names = names[1:]
    mods = [str(getattr(m.val, "ival", "")) for m in type_name.typmods or () if type(m).__name__ == "A_Const"]
    text = ".".join(names) + ("(%s)" % ",".join(mods) if mods else "")
    return text + ("[]" if type_name.arrayBounds else "")


def plain_using(expr, column, old, new):
    """Whether a USING converts the column as a plain change of type would: None if not, else words to add.

    Nothing, the column itself, a cast of it to the new type, and (timestamp to timestamptz) the column read AT
    TIME ZONE a named zone (hoppscotch's 26 columns, `USING "x" AT TIME ZONE 'UTC'`: exact, whatever the session's).
    """

    def is_column(node):
        return type(node).__name__ == "ColumnRef" and getattr(node.fields[-1], "sval", None) == column

    if expr is None or is_column(expr):
        return ""
    kind = type(expr).__name__
    if kind == "TypeCast" and is_column(expr.arg) and canonical_type(type_sql(expr.typeName)) == canonical_type(new):
        return ""
    if (
        kind == "FuncCall"
        and [n.sval for n in expr.funcname][-1] == "timezone"
        and len(expr.args) == 2
        and type(expr.args[0]).__name__ == "A_Const"
        and isinstance(getattr(expr.args[0].val, "sval", None), str)
        and is_column(expr.args[1])
        and old
        and (canonical_type(old)[0], canonical_type(new)[0]) == ("timestamp", "timestamptz")
    ):
        return " (values read as %s time, as USING says)" % expr.args[0].val.sval
    return None


def widens(old, new):
    """Whether every value of type `old` converts to `new` unchanged (a wider or equal type)."""
    (ob, om, oa), (nb, nm, na) = canonical_type(old), canonical_type(new)
    if oa != na:
        return False
    if nb != ob and nb not in _WIDENS.get(ob, ()):
        return False
    if nb in ("text", "citext") or (nb == ob and nm == om):
        return True
    if nb == "numeric":
        if ob != "numeric":
            return not nm  # an integer into an unbounded numeric
        if not nm:
            return True
        if not om:
            return False  # unbounded to bounded
        (op, os_), (np_, ns) = (om + (0,))[:2], (nm + (0,))[:2]
        return ns >= os_ and np_ - ns >= op - os_
    if nb in ("varchar", "timestamp", "timestamptz", "time", "timetz"):
        # A length or a precision: none is the widest.
        return not nm or bool(om) and nm[0] >= om[0]
    return not nm and not om  # int4 to int8, float4 to float8: no modifiers at all


class Migration:
    """One migration.sql, its statements classified against what the database and the earlier migrations hold."""

    def __init__(self, name, sql_text, path):
        self.name = name
        self.sql = sql_text
        self.path = path
        self.statements = []
        self.findings = []
        self.one_transaction = False  # known once it parses
        self.ddl_only = False

    def finding(self, stmt, rule, level, message, source="pglast"):
        entry = {
            "migration": self.name,
            "file": self.path,
            "line": stmt["line"] if stmt else 1,
            "statement": stmt["sql"] if stmt else "",
            "rule": rule,
            "level": level,
            "message": message,
            "source": source,
        }
        self.findings.append(entry)
        if stmt is not None:
            stmt["findings"].append(rule)
        return entry


class Linter:
    """Classifies the statements of pending migrations, in order, keeping track of what the run creates."""

    def __init__(self, tables, large_table_rows=100000, lock_budget=False):
        self.lock_budget = lock_budget
        # tables: the live database's tables, {name: {"rows": estimate, "has_rows": bool}}.
        self.tables = tables or {}
        self.large_table_rows = large_table_rows
        self.new_tables = set()
        self.new_columns = set()
        # Per migration: the tables created by the end of it (this run's, so empty and unused).
        self.new_tables_after = {}
        # What this run has created so far (created_keys), the table of each index it made, and what the
        # migration being linted creates from the statement being classified on.
        self.new_objects = set()
        self.index_tables = {}
        self.created_later = set()
        self.dropped_later = set()
        # Unique indexes made further on in the migration being linted, and the indexes the run drops.
        self.unique_later = set()
        self.dropped_indexes = set()
        # Objects renamed away by a migration that makes their name again (replaced): dropping them loses nothing.
        self.replaced_away = set()
        # The live names of tables ({new: old}) and columns ({(table, new): old}) this run renames.
        self.live_names = {}
        # Statements that fail on data an existing table holds, with the query that finds it (data_check).
        self.data_checks = []

    def live_index(self, name):
        for info in self.tables.values():
            index = (info.get("indexes") or {}).get(name)
            if index is not None:
                return index
        return None

    def harmless_index_drop(self, name):
        """An index the live database holds whose drop loses no rule: not unique, or another unique index with
        its columns (the primary key's, say) stays."""
        index = self.live_index(name)
        if index is None:
            return False
        if not index.get("unique", True):
            return True
        return any(other not in self.dropped_indexes for other in index.get("covered_by") or ())

    def loses_unique(self, name):
        """A unique index (by the live database) dropped to be made again without UNIQUE further on."""
        index = self.live_index(name)
        return bool(index and index.get("unique")) and name not in self.unique_later

    def unique_on(self, table, column):
        """Whether a unique index of the live table includes the column (unknown columns: assume one does)."""
        for index in ((self.tables.get(table) or {}).get("indexes") or {}).values():
            if index.get("unique") and column in (index.get("columns") or [column]):
                return True
        return False

    def has_rows(self, table):
        if table in self.new_tables:
            return False
        info = self.tables.get(table)
        # A table the statistics do not show may still hold rows: assume it does.
        return True if info is None else bool(info.get("has_rows", True))

    def is_large(self, table):
        if table in self.new_tables:
            return False
        return int((self.tables.get(table) or {}).get("rows", 0)) >= self.large_table_rows

    def lint(self, name, sql_text, path):
        from pglast import parse_sql
        from pglast.parser import ParseError

        migration = Migration(name, sql_text, path)
        try:
            raws = parse_sql(sql_text)
        except ParseError as exc:
            message, offset = (exc.args + (0,))[:2]
            stmt = {"line": line_of(sql_text, offset or 0), "sql": "", "findings": []}
            migration.finding(
                stmt,
                "parse-error",
                BLOCK,
                "PostgreSQL cannot parse this file: %s; nothing in it was classified." % message,
            )
            return migration
        # A migration's objects are the net effect of its statements in order: dropped, then created again
        # further on, is replaced (a lock concern), not lost.
        migration.one_transaction = one_transaction(raws)
        migration.ddl_only = not any(type(raw.stmt).__name__ in NOT_IN_CATALOG for raw in raws)
        later = [created_keys(raw.stmt) for raw in raws]
        drops = [dropped_tables(raw.stmt) for raw in raws]
        unique = [
            raw.stmt.idxname if type(raw.stmt).__name__ == "IndexStmt" and raw.stmt.unique else None for raw in raws
        ]
        for number, raw in enumerate(raws):
            self.created_later = set().union(*later[number + 1 :])
            self.dropped_later = set().union(*drops[number + 1 :])
            self.unique_later = {name for name in unique[number + 1 :] if name}
            length = raw.stmt_len or len(sql_text) - raw.stmt_location
            start = statement_start(sql_text, raw.stmt_location)
            stmt = {
                "line": line_of(sql_text, start),
                "sql": sql_text[start : raw.stmt_location + length].strip(),
                "summary": "",
                "additive": True,
                "tables": [],
                "findings": [],
            }
            self._classify(migration, raw.stmt, stmt)
            mode = lock_mode(raw.stmt)
            # Locks on live tables only: one this run makes is empty and unused until the run ends.
            stmt["locks"] = [{"table": t, "mode": mode} for t in stmt["tables"] if mode and t not in self.new_tables]
            if type(raw.stmt).__name__ != "RenameStmt":  # a rename of the run's own adds its new name itself
                self.new_objects |= later[number]
            if type(raw.stmt).__name__ == "IndexStmt" and raw.stmt.idxname:
                self.index_tables[raw.stmt.idxname] = raw.stmt.relation.relname
            migration.statements.append(stmt)
        return migration

    def _classify(self, migration, node, stmt):
        from pglast.enums import AlterTableType, ConstrType, DropBehavior, ObjectType

        kind = type(node).__name__

        def block(rule, message):
            stmt["additive"] = False
            migration.finding(stmt, rule, BLOCK, message)

        if kind == "CreateStmt":
            table = node.relation.relname
            stmt.update(summary="create table %s" % table, tables=[table])
            if not (node.if_not_exists and table in self.tables):  # IF NOT EXISTS over a live table makes nothing
                self.new_tables.add(table)
        elif kind == "CreateTableAsStmt" and node.into is not None:
            # langfuse's CREATE TEMPORARY TABLE ... AS, dropped further on: this run's own, like any table it makes.
            table = node.into.rel.relname
            stmt.update(summary="create table %s as select" % table, tables=[table], additive=False)
            if not (node.if_not_exists and table in self.tables):
                self.new_tables.add(table)
        elif kind == "IndexStmt":
            table = node.relation.relname
            if node.unique and table not in self.new_tables:
                columns = [e.name for e in node.indexParams or () if getattr(e, "name", None)]
                if len(columns) == len(node.indexParams or ()):
                    self.data_check(migration, stmt, "unique", table, columns)
            stmt.update(
                summary="create %sindex %s on %s%s"
                % (
                    "unique " if node.unique else "",
                    node.idxname or "",
                    table,
                    " concurrently" if node.concurrent else "",
                ),
                tables=[table],
            )
        elif kind in (
            "CreateEnumStmt",
            "CompositeTypeStmt",
            "CreateSeqStmt",
            "CreateFunctionStmt",
            "ViewStmt",
            "CreateExtensionStmt",
            "CreateSchemaStmt",
            "CreateDomainStmt",
            "CreateTrigStmt",
        ):
            stmt["summary"] = (
                "create " + kind[len("Create") :].replace("Stmt", "").lower()
                if kind.startswith("Create")
                else kind.replace("Stmt", "").lower()
            )
            if kind == "CreateFunctionStmt" and node.replace:
                stmt.update(summary="create or replace function", additive=False)
            if kind == "ViewStmt" and node.replace:
                stmt.update(summary="create or replace view", additive=False)
        elif kind == "AlterEnumStmt":
            type_name = _name(node.typeName)
            if node.oldVal:
                block(
                    "rename",
                    "Renames value %s of enum %s: rows and code using the old value break." % (node.oldVal, type_name),
                )
                stmt["summary"] = "rename value of enum %s" % type_name
            else:
                stmt["summary"] = "add value %s to enum %s" % (node.newVal, type_name)
        elif kind == "VariableSetStmt":
            stmt["summary"] = "set %s" % node.name
            if self.lock_budget and node.name in ("lock_timeout", "statement_timeout") and not node.is_local:
                migration.finding(
                    stmt,
                    "session-timeout-setting",
                    WARN,
                    "SET %s outlives this migration in Prisma's session and replaces the deploy's lock budget for"
                    " the migrations after it: write SET LOCAL %s (this migration's transaction only)."
                    % (node.name, node.name),
                )
        elif kind in ("CommentStmt", "TransactionStmt"):
            stmt["summary"] = "comment" if kind == "CommentStmt" else "transaction control"
        elif kind == "DropStmt":
            what = ObjectType(node.removeType).name.replace("OBJECT_", "").lower().replace("_", " ")
            names = [_object_name(obj) for obj in node.objects or ()]
            keys = [(what, _key_name(obj)) for obj in node.objects or ()]
            stmt.update(summary="drop %s %s" % (what, ", ".join(names)), tables=names if what == "table" else [])
            cascade = node.behavior == DropBehavior.DROP_CASCADE  # its dependents go too
            if what == "index":
                self.dropped_indexes.update(key[1] for key in keys)
            if (
                keys
                and not cascade
                and what in REPLACEABLE
                and all(key in self.created_later for key in keys)
                and not (what == "index" and any(self.loses_unique(key[1]) for key in keys))
            ):
                self.replaced(migration, stmt, "%s %s" % (what, ", ".join(names)))
            elif keys and not cascade and all(self.made_by_run(key) or key in self.replaced_away for key in keys):
                stmt["additive"] = False  # Dropping what this run created, or renamed away to replace, loses nothing.
            elif what == "index" and not cascade and all(self.harmless_index_drop(key[1]) for key in keys):
                stmt["additive"] = False
                migration.finding(
                    stmt,
                    "drop-index",
                    WARN,
                    "Drops index %s: no data and no rule is lost (not unique, or another unique index or the "
                    "primary key has the same columns); queries that used it may be slower." % ", ".join(names),
                )
            elif what in ("table", "index", "type", "sequence", "view", "materialized view", "schema", "function"):
                block(
                    "drop-" + what.replace(" ", "-"),
                    "Drops %s %s: what it holds or does is gone, and the app's "
                    "previous release may still use it." % (what, ", ".join(names)),
                )
            else:
                stmt["additive"] = False
        elif kind == "AlterTableStmt":
            table = node.relation.relname
            stmt["tables"] = [table]
            parts = []
            for cmd in node.cmds or ():
                sub = AlterTableType(cmd.subtype)
                column = cmd.name
                if sub == AlterTableType.AT_AddColumn:
                    coldef = cmd.def_
                    parts.append("add column %s" % coldef.colname)
                    self.new_columns.add((table, coldef.colname))
                    types = {c.contype for c in coldef.constraints or ()}
                    type_name = coldef.typeName.names[-1].sval.lower() if coldef.typeName else ""
                    has_default = (
                        types & {ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED}
                        or type_name in SERIAL_TYPES
                    )
                    if (ConstrType.CONSTR_NOTNULL in types or ConstrType.CONSTR_PRIMARY in types) and not has_default:
                        if self.has_rows(table):
                            block(
                                "add-column-not-null-without-default",
                                "Adds NOT NULL column %s.%s without a default to a table with rows: the statement "
                                "fails on real data. Add a default, or add it nullable, backfill, then set NOT NULL."
                                % (table, coldef.colname),
                            )
                elif sub == AlterTableType.AT_DropColumn:
                    parts.append("drop column %s" % column)
                    if table in self.new_tables or (table, column) in self.new_columns:
                        stmt["additive"] = False  # a column of this run's own: it holds nothing yet
                        continue
                    block(
                        "drop-column",
                        "Drops column %s.%s and its data; the previous release may still read it." % (table, column),
                    )
                elif sub == AlterTableType.AT_AlterColumnType:
                    parts.append("alter column %s type" % column)
                    if table not in self.new_tables and (table, column) not in self.new_columns:
                        old = ((self.tables.get(table) or {}).get("columns") or {}).get(column)
                        new = type_sql(cmd.def_.typeName)
                        change = "%s.%s%s" % (table, column, " from %s to %s" % (old, new) if old else "")
                        using = plain_using(cmd.def_.raw_default, column, old, new)
                        folds_case = canonical_type(new)[0] == "citext" and self.unique_on(table, column)
                        if old and using is not None and widens(old, new) and not folds_case:
                            to_zone = (canonical_type(old)[0], canonical_type(new)[0]) == ("timestamp", "timestamptz")
                            note = using or (
                                " (values are read in the session's TimeZone: Prisma writes UTC)" if to_zone else ""
                            )
                            stmt["additive"] = False
                            migration.finding(
                                stmt,
                                "alter-column-type",
                                WARN,
                                "Changes the type of %s: every value fits, nothing is lost%s, but the table may be "
                                "rewritten under an ACCESS EXCLUSIVE lock." % (change, note),
                            )
                        else:
                            block(
                                "alter-column-type",
                                "Changes the type of %s: rewrites the table under an ACCESS "
                                "EXCLUSIVE lock and can fail or truncate values." % change,
                            )
                elif sub == AlterTableType.AT_SetNotNull:
                    parts.append("set not null on %s" % column)
                    if table not in self.new_tables and (table, column) not in self.new_columns:
                        self.data_check(migration, stmt, "not_null", table, [column])
                        block(
                            "set-not-null",
                            "Sets NOT NULL on existing column %s.%s: fails if any row holds NULL, "
                            "and scans the table under an ACCESS EXCLUSIVE lock." % (table, column),
                        )
                elif sub == AlterTableType.AT_DropConstraint:
                    parts.append("drop constraint %s" % column)
                    key = ("constraint", table, column)
                    if key in self.created_later:
                        self.replaced(migration, stmt, "constraint %s on %s" % (column, table))
                    elif table in self.new_tables or key in self.new_objects:
                        stmt["additive"] = False  # a constraint of this run's own (empty) table
                    elif table in self.dropped_later:
                        stmt["additive"] = False  # its table is dropped further on: that drop is the finding
                    else:
                        block(
                            "drop-constraint",
                            "Drops constraint %s on %s: data the app relies on being valid may no "
                            "longer be." % (column, table),
                        )
                elif sub == AlterTableType.AT_AddConstraint:
                    con = cmd.def_
                    what = ConstrType(con.contype).name.replace("CONSTR_", "").lower()
                    parts.append(
                        "add %s %s"
                        % ({"foreign": "foreign key", "primary": "primary key"}.get(what, what), con.conname or "")
                    )
                elif sub == AlterTableType.AT_DropNotNull:
                    parts.append("drop not null on %s" % column)
                    stmt["additive"] = False
                elif sub in (AlterTableType.AT_ColumnDefault, AlterTableType.AT_CookedColumnDefault):
                    parts.append("set default on %s" % column)
                    stmt["additive"] = False
                else:
                    parts.append(sub.name.replace("AT_", "").lower())
                    stmt["additive"] = False
            stmt["summary"] = "alter table %s: %s" % (table, ", ".join(parts))
        elif kind == "RenameStmt":
            what = ObjectType(node.renameType).name.replace("OBJECT_", "").lower()
            what = "constraint" if what == "tabconstraint" else what
            key = renamed_key(node)
            if node.relation is not None:
                target, sub = node.relation.relname, node.subname
            elif node.object is not None:
                target, sub = _object_name(node.object), node.subname
            else:  # a schema, a database, a role: named by subname
                target, sub = node.subname or "", None
            on_table = target if what in ("table", "column", "constraint") else None
            old_name = "%s.%s" % (target, sub) if sub else target
            stmt.update(
                summary="rename %s %s to %s" % (what, old_name, node.newname), tables=[on_table] if on_table else []
            )
            if (
                on_table in self.new_tables
                or (what == "column" and (target, sub) in self.new_columns)
                or (key is not None and len(key) == 2 and self.made_by_run(key))
            ):
                # This run's own object: nothing uses it yet. It is the run's under its new name too.
                stmt["additive"] = False
                if key is not None:
                    self.new_objects.add(key[:-1] + (node.newname,))
                if what == "index" and target in self.index_tables:
                    self.index_tables[node.newname] = self.index_tables[target]
                if what == "table":
                    self.new_tables.add(node.newname)
                    self.new_columns |= {(node.newname, c) for t, c in self.new_columns if t == target}
                    self.index_tables.update({i: node.newname for i, t in self.index_tables.items() if t == target})
                elif what == "column":
                    self.new_columns.add((target, node.newname))
                return
            # The live database still knows it by its old name (the plan's data checks count there).
            if what == "table":
                self.live_names[node.newname] = self.live_names.get(target, target)
                self.live_names.update(
                    {(node.newname, k[1]): v for k, v in list(self.live_names.items()) if k[:1] == (target,)}
                )
            elif what == "column":
                self.live_names[(target, node.newname)] = self.live_names.get((target, sub), sub)
            if key is not None and key[0] == "type" and key in self.created_later:
                # Renamed away, and the name taken again further on: Prisma's enum swap (the column's
                # conversion is where data can fail, and it is classified on its own).
                self.replaced(migration, stmt, "%s %s" % (what, old_name), verb="Renames")
                self.replaced_away.add(key[:-1] + (node.newname,))
            elif what not in ("index", "constraint"):  # the app never names an index or a constraint
                block(
                    "rename",
                    "Renames %s %s to %s: the previous release, still running until its restart, uses the old name."
                    % (what, old_name, node.newname),
                )
        elif kind == "TruncateStmt":
            names = [r.relname for r in node.relations]
            stmt.update(summary="truncate %s" % ", ".join(names), tables=names)
            block("truncate", "Truncates %s: every row is gone." % ", ".join(names))
        elif kind in ("DeleteStmt", "UpdateStmt"):
            table = node.relation.relname
            verb = "delete from" if kind == "DeleteStmt" else "update"
            stmt.update(
                summary="%s %s%s" % (verb, table, "" if node.whereClause is None else " where ..."),
                tables=[table],
                additive=False,
            )
            if node.whereClause is None and table not in self.new_tables:
                block(
                    verb.split()[0] + "-without-where",
                    "%s every row of %s (no WHERE)." % ("Deletes" if kind == "DeleteStmt" else "Rewrites", table),
                )
            elif kind == "DeleteStmt" and self.has_rows(table):
                # A backfill's UPDATE ... WHERE fills in; a DELETE's rows are gone (rallly deletes duplicate
                # invites before a unique index), and no undo of the migration brings them back.
                block(
                    "delete",
                    "Deletes the rows of %s its WHERE selects: they are gone, and undoing the migration does not "
                    "bring them back." % table,
                )
        elif kind == "InsertStmt":
            stmt.update(
                summary="insert into %s" % node.relation.relname, tables=[node.relation.relname], additive=False
            )
        else:
            stmt.update(summary=kind.replace("Stmt", "").lower(), additive=False)

    def data_check(self, migration, stmt, kind, table, columns):
        """Note a statement that fails on data the table already holds, and the bounded query that counts it."""
        # The live database knows the table and columns by the names they have before this run's renames.
        live = self.live_names.get(table, table)
        columns_live = [self.live_names.get((table, c), c) for c in columns]
        # Identifiers only, each quoted by _quote: nothing of the migration's text reaches the query otherwise.
        where = " AND ".join("%s IS NOT NULL" % _quote(c) for c in columns_live)
        if kind == "not_null":
            query = "SELECT count(*) FROM %s WHERE %s IS NULL" % (_quote(live), _quote(columns_live[0]))  # noqa: S608
        else:
            query = "SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s GROUP BY %s HAVING count(*) > 1) AS d" % (  # noqa: S608
                _quote(live),
                where,
                ", ".join(_quote(c) for c in columns_live),
            )
        self.data_checks.append(
            {
                "migration": migration.name,
                "file": migration.path,
                "line": stmt["line"],
                "kind": kind,
                "table": table,
                "columns": columns,
                "query": query,
            }
        )

    def made_by_run(self, key):
        """Whether this run made the object (or it belongs to a table this run made): dropping it loses nothing."""
        what, name = key
        if key in self.new_objects or (what == "table" and name in self.new_tables):
            return True
        if what == "index":
            return self.index_tables.get(name) in self.new_tables
        if what == "sequence":  # SERIAL's own: <table>_<column>_seq
            return any(name.startswith(table + "_") and name.endswith("_seq") for table in self.new_tables)
        return False

    def replaced(self, migration, stmt, what, verb="Drops"):
        """A drop (or rename) the same migration undoes further on: nothing is lost, but it is missing meanwhile."""
        stmt["additive"] = False
        migration.finding(
            stmt,
            "replaced",
            WARN,
            "%s %s and creates it again further on in this migration: replaced, nothing lost; run as one"
            " transaction (Prisma's), nothing sees it missing, but the table is locked meanwhile." % (verb, what),
        )

    def squawk_filter(self, migration, finding):
        """Place a squawk finding on its statement; keep it unless it only concerns tables this run creates."""
        line = finding["line"]
        stmt = None
        for candidate in migration.statements:
            if candidate["line"] <= line:
                stmt = candidate
        if stmt is None:
            stmt = migration.statements[0] if migration.statements else None
        rule = finding["rule"]
        if stmt is not None and stmt["tables"] and rule in SQUAWK_NEW_TABLE_EXEMPT:
            if all(t in self.new_tables_after.get(migration.name, set()) for t in stmt["tables"]):
                return None
            if rule == "require-concurrent-index-creation" and not any(self.is_large(t) for t in stmt["tables"]):
                return None
        return stmt


def find_squawk(path=None):
    """The squawk executable: the one given, the one beside this Python (a venv), or the one on PATH."""
    if path:
        return path
    beside = os.path.join(os.path.dirname(sys.executable), "squawk")
    return beside if os.access(beside, os.X_OK) else shutil.which("squawk")


def run_squawk(squawk, files, exclude, pg_version=None):
    """Squawk's findings for {label: sql}, as {label: [{line (1-based), rule, message, help}]}."""
    found = {label: [] for label in files}
    scratch = tempfile.mkdtemp(prefix="migration-lint-")
    try:
        paths = {}
        for index, (label, text) in enumerate(files.items()):
            path = os.path.join(scratch, "%04d.sql" % index)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            paths[path] = label
        cmd = [squawk, "--reporter", "json", "--no-assume-in-transaction"]
        if exclude:
            cmd.append("--exclude=" + ",".join(exclude))
        if pg_version:
            cmd.append("--pg-version=" + pg_version)
        proc = subprocess.run(cmd + sorted(paths), capture_output=True, text=True, check=False)
        try:
            report = json.loads(proc.stdout or "[]")
        except ValueError as exc:
            raise RuntimeError("squawk gave no JSON (rc %s): %s" % (proc.returncode, proc.stderr.strip())) from exc
        for item in report:
            label = paths.get(item.get("file")) or paths.get(
                os.path.join(scratch, os.path.basename(item.get("file", "")))
            )
            if label is None:
                continue
            found[label].append(
                {
                    "line": int(item.get("line", 0)) + 1,  # squawk counts lines from 0
                    "rule": item.get("rule_name", ""),
                    "message": item.get("message", ""),
                    "help": item.get("help") or "",
                }
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return found


def lint_migrations(
    migrations,
    tables=None,
    allow=(),
    large_table_rows=100000,
    squawk=None,
    squawk_exclude=SQUAWK_EXCLUDE_DEFAULT,
    migrations_path="prisma/migrations",
    pg_version=None,
    lock_budget=False,
):
    """Lint [{name, sql}] in order; the report the migration_lint module returns."""
    linter = Linter(tables, large_table_rows, lock_budget)
    if lock_budget:  # the deploy sets it on Prisma's connection
        squawk_exclude = tuple(squawk_exclude) + ("require-lock-timeout",)
    results = []
    for item in migrations:
        migration = linter.lint(
            item["name"], item["sql"] or "", "%s/%s/migration.sql" % (migrations_path, item["name"])
        )
        linter.new_tables_after[item["name"]] = set(linter.new_tables)
        results.append(migration)
    executable = find_squawk(squawk)
    if executable is None:
        raise RuntimeError("squawk is not installed (pip install squawk-cli, a dependency of this project)")
    squawk_found = run_squawk(executable, {m.name: m.sql for m in results if m.sql}, squawk_exclude, pg_version)
    for migration in results:
        parse_failed = any(f["rule"] == "parse-error" for f in migration.findings)
        for finding in squawk_found.get(migration.name, []):
            if parse_failed or finding["rule"] == "syntax-error":
                continue
            stmt = linter.squawk_filter(migration, finding)
            if stmt is None and migration.statements:
                continue
            migration.finding(
                stmt,
                finding["rule"],
                WARN,
                (finding["message"].rstrip(".") + (". " + finding["help"] if finding["help"] else "")).strip(),
                source="squawk",
            )
    allowed = set(allow or ())
    report = {"migrations": [], "findings": [], "blocking": [], "advisories": [], "data_checks": []}
    for migration in results:
        for finding in migration.findings:
            if migration.name in allowed and finding["level"] == BLOCK:
                finding["level"] = ALLOWED
        migration.findings.sort(key=lambda f: (f["line"], f["level"] != BLOCK, f["rule"]))
        report["findings"].extend(migration.findings)
        report["migrations"].append(
            {
                "name": migration.name,
                "file": migration.path,
                "sha256": hashlib.sha256((migration.sql or "").encode("utf-8")).hexdigest(),
                "allowed": migration.name in allowed,
                "one_transaction": migration.one_transaction,
                # A lock timeout leaves nothing of it once the catalog shows none of what it creates, whether the
                # engine sent it as one transaction or a driver adapter ran its statements one by one.
                "lock_retry": migration.one_transaction and migration.ddl_only,
                "additive": all(s["additive"] for s in migration.statements)
                and not any(f["rule"] == "parse-error" for f in migration.findings),
                "statements": [
                    {
                        k: s.get(k, []) if k == "locks" else s[k]
                        for k in ("line", "summary", "additive", "findings", "locks")
                    }
                    for s in migration.statements
                ],
            }
        )
    report["data_checks"] = linter.data_checks
    report["blocking"] = [f for f in report["findings"] if f["level"] == BLOCK]
    report["advisories"] = [f for f in report["findings"] if f["level"] == WARN]
    return report


# The module's options; the action plugin of the same name validates against them too.
ARGUMENT_SPEC = dict(
    migrations=dict(type="list", elements="dict", required=True),
    tables=dict(type="list", elements="dict", default=[]),
    allow=dict(type="list", elements="str", default=[]),
    large_table_rows=dict(type="int", default=100000),
    squawk_path=dict(type="path"),
    squawk_exclude=dict(type="list", elements="str"),
    pg_version=dict(type="str"),
    migrations_path=dict(type="str", default="prisma/migrations"),
    lock_budget=dict(type="bool", default=False),
)


def lint_params(p):
    """The report for the module's validated options; a ValueError says what went wrong, prefixed."""
    for item in p["migrations"]:
        if "name" not in item:
            raise ValueError("migration_lint: every migration needs a name (got %s)" % sorted(item))
    try:
        return lint_migrations(
            p["migrations"],
            tables={t["name"]: t for t in p["tables"] if "name" in t},
            allow=p["allow"],
            large_table_rows=p["large_table_rows"],
            squawk=p["squawk_path"],
            squawk_exclude=SQUAWK_EXCLUDE_DEFAULT if p["squawk_exclude"] is None else p["squawk_exclude"],
            migrations_path=p["migrations_path"],
            pg_version=p["pg_version"],
            lock_budget=p["lock_budget"],
        )
    except ImportError as exc:
        raise ValueError("migration_lint: pglast is not installed on the controller (%s)" % exc) from exc
    except (RuntimeError, OSError) as exc:
        raise ValueError("migration_lint: %s" % exc) from exc
