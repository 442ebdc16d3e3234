"""Shared helpers: where the project is, and how to reach the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The collection (prismaguard.migrate) in place: its plugins import their module_utils by the collection's name.
sys.path.insert(0, str(ROOT / "collections"))
VENV_BIN = ROOT / ".venv" / "bin"
# The sandbox the sandbox tests run against (bin/test runs some of them against inventories/sandbox-do).
SANDBOX_INVENTORY = ROOT / os.environ.get("SANDBOX_INVENTORY", "inventories/sandbox")


def run(cmd: list[str], env_extra: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command from the project root, capturing text output."""
    env = dict(os.environ, **(env_extra or {}))
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env.setdefault("CONTAINERS_CONF", str(ROOT / "sandbox" / "containers.conf"))
    env["ANSIBLE_FORCE_COLOR"] = "0"
    return subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, check=False, **kwargs)


@pytest.fixture(scope="session")
def sandbox_hosts() -> dict[str, dict]:
    """The sandbox inventory's hosts and their variables, read from hosts.yml."""
    data = yaml.safe_load((SANDBOX_INVENTORY / "hosts.yml").read_text())
    hosts: dict[str, dict] = {}

    def walk(group: dict, groups: list[str]) -> None:
        for name, hostvars in (group.get("hosts") or {}).items():
            hosts.setdefault(name, {"groups": []}).update(hostvars or {})
            hosts[name]["groups"] += groups
        for child, sub in (group.get("children") or {}).items():
            walk(sub or {}, groups + [child])

    walk(data["all"], [])
    return hosts
