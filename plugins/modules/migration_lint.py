#!/usr/bin/python
"""Ansible module: lint pending Prisma migrations for statements that lose data or hold long locks."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_lint
short_description: Classify pending Prisma migrations' statements as additive or not, blocking the destructive ones
description:
  - Parses every pending C(migration.sql) with pglast (the real PostgreSQL parser) and says, per statement, what it
    creates, drops or changes, and whether it is additive.
  - Blocking findings, by default - DROP TABLE/COLUMN/INDEX/CONSTRAINT/TYPE, ALTER COLUMN TYPE, SET NOT NULL on
    an existing column, RENAME, TRUNCATE, DELETE/UPDATE without WHERE, ADD COLUMN NOT NULL without a default on a
    table with rows, and SQL that does not parse.
  - Warnings come from squawk-cli's rules (missing C(lock_timeout), CREATE INDEX without CONCURRENTLY, a
    constraint without NOT VALID, ...), kept only where they matter - a table this run creates is empty and
    unused, and an index is only slow to build on a large table.
  - A migration allowed by name keeps its findings at level C(allowed) and blocks nothing.
  - Runs on the controller, where pglast and squawk-cli are installed with this project, in Ansible's own
    process (an action plugin of the same name), so no module is shipped and started for it. It reads no
    database itself (table sizes come in O(tables)).
options:
  migrations:
    description: The pending migrations in the order they apply, each with C(name) and C(sql) (null when absent).
    type: list
    elements: dict
    required: true
  tables:
    description:
      - The live database's tables, each with C(name), C(rows) (the planner's estimate) and C(has_rows),
        and optionally C(columns) (name to type, as C(format_type) names it) and C(indexes) (name to
        C(unique), C(columns) and C(covered_by)), as M(prismaguard.migrate.preflight_host_info) returns them.
      - A table not listed is assumed to hold rows. A column type change or an index drop the database does not
        describe blocks as if it could lose data.
    type: list
    elements: dict
    default: []
  allow:
    description: Names of migrations whose blocking findings a person reviewed and accepted.
    type: list
    elements: str
    default: []
  large_table_rows:
    description: From how many rows a table is large (CREATE INDEX without CONCURRENTLY warns only there).
    type: int
    default: 100000
  squawk_path:
    description: The squawk executable; by default the one beside the controller's Python, else on PATH.
    type: path
  squawk_exclude:
    description:
      - Squawk rules left out. The default leaves out rules the parser's blocking rules already cover, and
        style advice that does not fit migrations Prisma writes.
    type: list
    elements: str
  lock_budget:
    description:
      - The deploy sets C(lock_timeout) on Prisma's connection (the C(migrate_deploy) role's lock budget). Squawk's
        C(require-lock-timeout) is then left out, and a plain C(SET lock_timeout) or C(SET statement_timeout) in a
        migration warns, as it outlives the migration in Prisma's session and replaces the budget for those after
        it (C(SET LOCAL) does not).
    type: bool
    default: false
  pg_version:
    description: The server's PostgreSQL version, for squawk (e.g. C(16.4)).
    type: str
  migrations_path:
    description: The migrations folder, to name files in findings.
    type: str
    default: prisma/migrations
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - pglast
  - squawk-cli
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Lint the pending migrations.
  prismaguard.migrate.migration_lint:
    migrations: "{{ sources.migrations | selectattr('name', 'in', pending) }}"
    tables: "{{ table_stats }}"
    allow: [20251204_drop_legacy_kyc]
  delegate_to: localhost
  register: lint
"""

RETURN = r"""
migrations:
  description: Per migration, the sha256 of its SQL, whether it is additive and allowed, and its statements summarised.
  returned: always
  type: list
  elements: dict
  sample:
    - name: 20251002100000_create_sessions
      file: prisma/migrations/20251002100000_create_sessions/migration.sql
      sha256: 5d41402abc4b2a76b9719d911017c592ae1b1e1f4c9d6f0b8a2b3c4d5e6f7a8b
      additive: true
      allowed: false
      statements: [{line: 2, summary: create table sessions, additive: true, findings: []}]
findings:
  description:
    - Every finding, each naming C(migration), C(file), C(line), C(statement), C(rule), C(level), C(message)
      and C(source) (pglast or squawk).
  returned: always
  type: list
  elements: dict
blocking:
  description: The findings at level C(block) (migrations not allowed).
  returned: always
  type: list
  elements: dict
advisories:
  description: The findings at level C(warn).
  returned: always
  type: list
  elements: dict
data_checks:
  description:
    - Statements that fail on data an existing table already holds (C(SET NOT NULL) over NULLs, a unique index
      over duplicates), each with C(migration), C(file), C(line), C(kind) (not_null or unique), C(table),
      C(columns) and the C(query) that counts the rows in the way, for the plan to run on the live database.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.migration_lint import ARGUMENT_SPEC, lint_params


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        report = lint_params(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
