"""The playbooks stay readable: run-state logic lives in Python (plugins/filter), not in long Jinja."""

from __future__ import annotations

import yaml
from conftest import ROOT

LONGEST_TEMPLATE = 400
MIGRATE_LINES = 220


def templates(node):
    """Every templated string in a YAML document."""
    if isinstance(node, dict):
        for value in node.values():
            yield from templates(value)
    elif isinstance(node, list):
        for value in node:
            yield from templates(value)
    elif isinstance(node, str) and ("{{" in node or "{%" in node):
        yield node


def test_no_templated_expression_in_playbooks_or_roles_is_over_400_characters():
    long = []
    for path in sorted([*(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "roles").rglob("*.yml")]):
        for text in templates(yaml.safe_load(path.read_text())):
            if len(text) > LONGEST_TEMPLATE:
                long.append(f"{path.relative_to(ROOT)}: {len(text)} characters: {text[:80]!r}")
    assert long == [], "\n".join(long)


def test_migrate_yml_reads_like_the_runbook_in_at_most_220_lines():
    lines = (ROOT / "playbooks" / "migrate.yml").read_text().count("\n")
    assert lines <= MIGRATE_LINES, f"playbooks/migrate.yml has {lines} lines"
