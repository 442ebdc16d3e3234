"""prisma-migrate through ansible-runner, on a project of its own: a vaulted inventory opened with --ask-vault-pass
(asked by the CLI, answered to runner's prompt), runner's artifacts kept under the data folder."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import ROOT, VENV_BIN, run

PASSWORD = "correct-horse-battery"  # noqa: S105 (the test vault's own)
STATUS = """
- name: "Status: the vault, opened."
  hosts: all
  gather_facts: false
  tasks:
    - name: Say whether the vaulted token was read.
      ansible.builtin.debug:
        msg: "vaulted token read: {{ health_token | length }} characters"

    - name: Take a while, as pg_dump does.
      ansible.builtin.command: sleep 4
      async: 60
      poll: 1
      changed_when: false
      when: slow | default(false) | bool
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "migrate.yml").write_text("[]\n")
    (tmp_path / "playbooks" / "status.yml").write_text(STATUS)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nstdout_callback = default\n")
    group_vars = tmp_path / "inventories" / "t" / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (tmp_path / "inventories" / "t" / "hosts.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: " + str(VENV_BIN / "python") + "\n"
    )
    secret = tmp_path / "pass"
    secret.write_text(PASSWORD)
    vaulted = subprocess.run(
        [str(VENV_BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(secret),
         "s3cr3t-health-token", "--name", "health_token"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    (group_vars / "vault.yml").write_text(vaulted)
    secret.unlink()
    return tmp_path


def cli(project, *args, password):
    env = {"PRISMA_MIGRATE_PROJECT": str(project), "PRISMA_MIGRATE_DATA_DIR": str(project / "data")}
    return run([str(VENV_BIN / "prisma-migrate"), *args], env_extra=env, input=password + "\n", timeout=180)


def test_ask_vault_pass_is_asked_by_the_cli_and_runner_keeps_its_artifacts(project):
    result = cli(project, "status", "t", "--ask-vault-pass", password=PASSWORD)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "vaulted token read: 19 characters" in result.stdout
    assert PASSWORD not in result.stdout and "s3cr3t-health-token" not in result.stdout
    [artifacts] = (project / "data" / "runner" / "artifacts").iterdir()
    assert f"prisma-migrate: runner's artifacts: {artifacts}" in result.stdout
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
    assert any(e.get("event") == "playbook_on_stats" for e in events)
    assert (artifacts / "rc").read_text().strip() == "0"


def test_a_wrong_vault_password_fails_at_once_instead_of_waiting(project):
    result = cli(project, "status", "t", "--ask-vault-pass", password="not-the-pass-0451")  # noqa: S106
    assert result.returncode != 0
    assert "prisma-migrate: status.yml FAILED" in result.stdout
    assert "Failed on localhost" in result.stdout and "Decryption failed" in result.stdout
    assert "not-the-pass-0451" not in result.stdout


def test_a_long_step_says_how_long_it_has_run_in_the_cli_and_in_ansible_playbook(project):
    result = cli(project, "status", "t", "--ask-vault-pass", "-e", "slow=true", password=PASSWORD)
    assert result.returncode == 0, result.stdout[-3000:]
    said = r"localhost: Take a while, as pg_dump does. still running, \d+ s$"
    assert re.search(r"^\[00:\d\d\]    " + said, result.stdout, re.M)
    # ansible-playbook with the project's own settings: the report callback says it.
    direct = run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(project / "inventories" / "t"), "--ask-vault-pass",
         "-e", "slow=true", str(project / "playbooks" / "status.yml")],
        env_extra={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, input=PASSWORD + "\n", timeout=180,
    )  # fmt: skip
    assert direct.returncode == 0, direct.stdout[-3000:]
    assert re.search("^" + said, direct.stdout, re.M)
