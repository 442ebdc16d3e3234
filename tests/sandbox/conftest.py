"""Every sandbox test module starts from production as it was before any run."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from conftest import ROOT, run


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


SSH_DIR = ROOT / ".sandbox" / "ssh"


def ssh(port: int, command: str, known_hosts=None, strict: str = "yes") -> subprocess.CompletedProcess:
    """Run a command on a droplet over real SSH as deploy, host key checked."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", str(port), "-i", str(SSH_DIR / "id_ed25519"),
         "-o", f"UserKnownHostsFile={known_hosts or SSH_DIR / 'known_hosts'}",
         "-o", f"StrictHostKeyChecking={strict}", "-o", "BatchMode=yes",
         "deploy@127.0.0.1", command],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def get(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    """GET a path of the backend on a published port; status and JSON body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.load(response)


def health(port: int) -> dict:
    status, body = get(port, "/api/health")
    assert status == 200
    return body
