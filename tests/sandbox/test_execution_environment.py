"""As AWX runs it: the execution environment built by ansible-builder (bin/ee-build, execution-environment.yml),
and migrate.yml run in it by ansible-runner with process isolation, against the sandbox.

The playbook is the installed collection's (prismaguard.migrate.migrate): nothing of this repository is in the
container but a copy of the inventory (as AWX writes a job's) and the sandbox's known_hosts. The SSH key comes
as AWX's machine credential does, through runner's ssh_key (an ssh-agent in the container), and backups and
reports go to the persistent path the image names (PRISMA_MIGRATE_DATA_DIR), mounted from the host.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import SANDBOX_INVENTORY, run

from .conftest import (
    KNOWN_HOSTS,
    NO_REHEARSAL,
    SECRETS,
    SSH_DIR,
    assert_the_report_of_a_succeeded_run,
    playbook,
)

pytestmark = pytest.mark.sandbox

IMAGE = "localhost/prismaguard-migrate-ee:test"
DATA = "/var/lib/prisma-migrate"  # where the image's PRISMA_MIGRATE_DATA_DIR points
FINGERPRINT = re.compile(r"Fingerprint: ([0-9a-f]{12})")


@pytest.fixture(scope="module")
def image() -> str:
    built = run(["bin/ee-build", "--tag", IMAGE], timeout=1200)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return IMAGE


def runner(work: Path, image: str, *extra: str):
    """ansible-runner as AWX's job runs it: a private data folder, the image, the key as a credential; returns
    (the result, runner's artifacts folder for the run, the folder mounted as the persistent path)."""
    private, data = work / "runner", work / "data"
    (private / "env").mkdir(parents=True)
    data.mkdir()
    # The inventory as AWX hands it to a job (private/inventory); its hosts' known_hosts, mounted where the
    # inventory looks for it (SANDBOX_DIR).
    shutil.copytree(SANDBOX_INVENTORY, private / "inventory")
    (private / "env" / "ssh_key").write_text((SSH_DIR / "id_ed25519").read_text())
    # Long steps are asked every second whether they finished, as bin/test asks outside the image; plain text.
    envvars = {"SANDBOX_DIR": str(SSH_DIR.parent), "ANSIBLE_POLL_INTERVAL": "1", "ANSIBLE_NOCOLOR": "1"}
    (private / "env" / "envvars").write_text(json.dumps(envvars))
    result = run(
        ["ansible-runner", "run", str(private), "--playbook", "prismaguard.migrate.migrate",
         "--cmdline", " ".join(extra),
         "--process-isolation", "--process-isolation-executable", "podman", "--container-image", image,
         "--container-volume-mount", f"{KNOWN_HOSTS}:{KNOWN_HOSTS}:ro",
         "--container-volume-mount", f"{data}:{DATA}",
         # The droplets' SSH ports are published on the host's loopback. The image runs as uid 1000; with
         # rootful podman, as here, the private data folder is root's (rootless podman maps the user instead).
         "--container-option=--network=host", "--container-option=--user=0"],
        timeout=900,
    )  # fmt: skip
    [artifacts] = (private / "artifacts").iterdir()
    return result, artifacts, data


def test_migrate_yml_runs_in_the_execution_environment_under_ansible_runner_with_the_same_plan_and_report(
    image, tmp_path
):
    # The plan, asked first the short way on production as it is (release 1): the run in the image must plan
    # the same fingerprint.
    ours = FINGERPRINT.search(playbook("migrate.yml", "--check", *NO_REHEARSAL).stdout)[1]
    docs = run(["podman", "run", "--rm", image, "ansible-doc", "prismaguard.migrate.prisma_migrate_deploy"])
    assert "/usr/share/ansible/collections/ansible_collections/prismaguard/migrate" in docs.stdout, docs.stderr
    # No terminal: a plan that needs approval and has none stops at once, saying how to pass it.
    refused, artifacts, kept = runner(tmp_path / "unapproved", image, *NO_REHEARSAL,
                                       "-e", "migration_plan_require_approval=true")  # fmt: skip
    said = " ".join((artifacts / "stdout").read_text().split())
    assert refused.returncode != 0 and f"-e approve={ours}" in said, said[-3000:]
    assert not list(kept.glob("backups/*/*.dump")), "refused before any backup"
    result, artifacts, data = runner(tmp_path / "approved", image, *NO_REHEARSAL)
    out = (artifacts / "stdout").read_text()
    assert result.returncode == 0, out[-5000:] + result.stderr[-2000:]
    assert (artifacts / "status").read_text() == "successful" and (artifacts / "rc").read_text() == "0"
    assert "Skipping callback plugin" not in out
    assert FINGERPRINT.search(out)[1] == ours, "the same plan, however it is called"
    # The report, written by the callback the image enables, to the persistent path, and the same report
    # as the short way's (tests/sandbox/test_migrate.py).
    saved = re.search(r"Report written to (\S+)\.\{json,md,html\}", out)[1]
    assert saved.startswith(f"{DATA}/reports/migration-"), saved
    assert_the_report_of_a_succeeded_run(data / "reports" / Path(saved).name)
    # The verified backup, copied to the controller's persistent path; runner's events, kept.
    assert list((data / "backups" / "sandbox-db").glob("backup_*.dump"))
    events = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
    assert any(event.get("event") == "playbook_on_stats" for event in events)
    assert not [name for name, value in SECRETS.items() if value in out]
