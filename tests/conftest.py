"""Shared helpers: where the project is, and how to reach the sandbox."""

from __future__ import annotations

import json
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


def run_role(
    tmp_path: Path,
    role: str,
    extra: dict,
    tasks_from: str = "main",
    role_vars: dict | None = None,
    env_extra: dict | None = None,
) -> subprocess.CompletedProcess:
    """One of the collection's roles (an entry point of it) run by ansible-playbook on the controller, as a run's
    `delegate_to: localhost` reaches it (the controller's own Python); `extra` as extra vars."""
    include = {"name": f"prismaguard.migrate.{role}", "tasks_from": tasks_from}
    task = {"ansible.builtin.include_role": include, **({"vars": role_vars} if role_vars else {})}
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}, "tasks": [task]}]  # fmt: skip
    path = tmp_path / f"{role}-{tasks_from}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return run(["ansible-playbook", "-i", "localhost,", str(path), "-e", json.dumps(extra)], env_extra=env_extra)


def install_collection(work: Path) -> tuple[Path, Path]:
    """The collection built from this tree into `work` and installed under work/collections (--force: the
    repository's own link would otherwise count as installed); returns (tarball, collections path)."""
    built = run(["ansible-galaxy", "collection", "build", str(ROOT), "--output-path", str(work)])
    assert built.returncode == 0, built.stdout + built.stderr
    [tarball] = work.glob("prismaguard-migrate-*.tar.gz")
    collections = work / "collections"
    installed = run(["ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", str(collections),
                     str(tarball)])  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return tarball, collections


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
