"""What a migration.sql creates, read with pglast (the real PostgreSQL parser).

Controller-side only (filter plugins): pglast is a dependency of this project,
not of the droplets. Used to tell a migration applied by hand ("tables already
exist") from one that is pending, and to assert it before baselining it.
"""

from __future__ import annotations


def created_objects(sql_text):
    """Objects the statements create: tables (with column types), columns, indexes, constraints, enum types.
    One the same migration dropped before creating it again is marked replaced (it existed before).

    Raises ValueError when the SQL does not parse.
    """
    from pglast import parse_sql
    from pglast.enums import AlterTableType
    from pglast.parser import ParseError
    from pglast.stream import RawStream

    try:
        statements = parse_sql(sql_text)
    except ParseError as exc:
        raise ValueError("the SQL does not parse: %s" % exc) from exc
    objects, dropped = [], set()
    for raw in statements:
        stmt = raw.stmt
        kind = type(stmt).__name__
        before = len(objects)
        if kind == "DropStmt":
            from pglast.enums import ObjectType

            what = ObjectType(stmt.removeType).name.replace("OBJECT_", "").lower()
            for obj in stmt.objects or ():
                name = obj[-1].sval if isinstance(obj, tuple) else getattr(obj, "names", [None])[-1]
                dropped.add((what, getattr(name, "sval", name)))
        elif kind == "AlterTableStmt":
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_DropConstraint:
                    dropped.add(("constraint", stmt.relation.relname, cmd.name))
                elif cmd.subtype == AlterTableType.AT_DropColumn:
                    dropped.add(("column", stmt.relation.relname, cmd.name))
        if kind == "CreateStmt":
            table = {"kind": "table", "table": stmt.relation.relname, "columns": {}}
            objects.append(table)
            for element in stmt.tableElts or ():
                if type(element).__name__ == "ColumnDef":
                    table["columns"][element.colname] = RawStream()(element.typeName)
                elif getattr(element, "conname", None):
                    objects.append({"kind": "constraint", "table": table["table"], "name": element.conname})
        elif kind == "IndexStmt" and stmt.idxname:
            objects.append({"kind": "index", "table": stmt.relation.relname, "name": stmt.idxname})
        elif kind == "AlterTableStmt":
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_AddColumn:
                    objects.append(
                        {
                            "kind": "column",
                            "table": stmt.relation.relname,
                            "name": cmd.def_.colname,
                            "type": RawStream()(cmd.def_.typeName),
                        }
                    )
                elif cmd.subtype == AlterTableType.AT_AddConstraint and getattr(cmd.def_, "conname", None):
                    objects.append({"kind": "constraint", "table": stmt.relation.relname, "name": cmd.def_.conname})
        elif kind == "CreateEnumStmt":
            objects.append({"kind": "type", "name": stmt.typeName[-1].sval})
        # Dropped earlier in the same migration, then made again: it existed before the migration (an
        # onDelete change drops a foreign key and adds it back), so finding it proves nothing was applied.
        for obj in objects[before:]:
            key = (obj["kind"], obj["table"], obj["name"]) if obj["kind"] in ("constraint", "column") else None
            if key is None:
                key = (obj["kind"], obj.get("name") or obj.get("table"))
            if key in dropped:
                obj["replaced"] = True
    return objects


def expectation(objects):
    """The pg_schema_assert expectation that holds when every object exists as the migration makes it."""
    tables = {}
    for obj in objects:
        if obj["kind"] == "table":
            tables.setdefault(obj["table"], {}).setdefault("columns", {}).update(obj["columns"])
        elif obj["kind"] == "column":
            tables.setdefault(obj["table"], {}).setdefault("columns", {})[obj["name"]] = obj["type"]
        elif obj["kind"] == "index":
            tables.setdefault(obj["table"], {}).setdefault("indexes", []).append(obj["name"])
    return {"tables": tables}


def _quote(name):
    return '"%s"' % name.replace('"', '""')


def down_statements(objects, if_exists=False):
    """The statements that undo a migration which only created `objects`, in reverse order.

    A column added to a table the migration also created goes with the table; constraints and
    indexes of such a table too. With if_exists, each drops only what is there: the undo of a
    migration that failed part-way, whose first statements ran and the rest did not.
    """
    created_tables = {o["table"] for o in objects if o["kind"] == "table"}
    drop = "DROP %s IF EXISTS" if if_exists else "DROP %s"
    alter = "ALTER TABLE IF EXISTS %s " if if_exists else "ALTER TABLE %s "
    out = []
    for obj in reversed(objects):
        kind, table = obj["kind"], obj.get("table")
        if kind != "table" and kind != "type" and table in created_tables:
            continue
        if kind == "table":
            out.append("%s %s;" % (drop % "TABLE", _quote(table)))
        elif kind == "column":
            out.append(alter % _quote(table) + "%s %s;" % (drop % "COLUMN", _quote(obj["name"])))
        elif kind == "index":
            out.append("%s %s;" % (drop % "INDEX", _quote(obj["name"])))
        elif kind == "constraint":
            out.append(alter % _quote(table) + "%s %s;" % (drop % "CONSTRAINT", _quote(obj["name"])))
        elif kind == "type":
            out.append("%s %s;" % (drop % "TYPE", _quote(obj["name"])))
    return out


def not_invertible(sql_text):
    """Statements of a migration that down_statements cannot undo (data changes, drops, renames, type changes);
    a plain SELECT changes nothing and is not one."""
    from pglast import parse_sql
    from pglast.enums import AlterTableType

    creating = {"CreateStmt", "IndexStmt", "CreateEnumStmt"}
    adding = {AlterTableType.AT_AddColumn, AlterTableType.AT_AddConstraint}
    out = []
    for raw in parse_sql(sql_text):
        stmt = raw.stmt
        kind = type(stmt).__name__
        if kind in creating:
            continue
        if kind == "SelectStmt" and stmt.intoClause is None:
            continue  # reads (or calls) only: nothing of it to undo
        if kind == "AlterTableStmt" and all(cmd.subtype in adding for cmd in stmt.cmds or ()):
            continue
        out.append(sql_text[raw.stmt_location : raw.stmt_location + (raw.stmt_len or len(sql_text))].strip())
    return out


def dropped_data(sql_text):
    """Tables and columns a (down) SQL drops: what may hold data. [{kind: table|column, table, name}]"""
    from pglast import parse_sql
    from pglast.enums import AlterTableType, ObjectType

    out = []
    for raw in parse_sql(sql_text):
        stmt = raw.stmt
        kind = type(stmt).__name__
        if kind == "DropStmt" and stmt.removeType == ObjectType.OBJECT_TABLE:
            for names in stmt.objects:
                out.append({"kind": "table", "table": names[-1].sval})
        elif kind == "AlterTableStmt":
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_DropColumn:
                    out.append({"kind": "column", "table": stmt.relation.relname, "name": cmd.name})
        elif kind == "TruncateStmt":
            for rel in stmt.relations:
                out.append({"kind": "table", "table": rel.relname})
    return out
