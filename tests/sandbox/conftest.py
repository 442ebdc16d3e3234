"""Every sandbox test module starts from production as it was before any run."""

from __future__ import annotations

import subprocess

import pytest
from conftest import run


def playbook(name: str, *args: str, expect_rc: int = 0) -> subprocess.CompletedProcess:
    result = run(["ansible-playbook", "-i", "inventories/sandbox", f"playbooks/{name}", *args])
    assert result.returncode == expect_rc, (
        f"{name} rc {result.returncode}:\n{result.stdout[-5000:]}\n{result.stderr[-2000:]}"
    )
    return result


@pytest.fixture(scope="module", autouse=True)
def fresh_sandbox():
    playbook("sandbox_down.yml")
    playbook("sandbox_up.yml")
