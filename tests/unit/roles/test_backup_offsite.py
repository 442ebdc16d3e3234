"""The backup role's off-site copy, run by Ansible on the controller against a real S3 API on loopback (moto's
server mode, as DigitalOcean Spaces is reached: an endpoint URL and a key pair): uploaded, read back and
checksummed, pruned to the newest dumps, and a clear failure, with no secret printed, when the bucket is wrong."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import subprocess
import time

import boto3
import pytest
from conftest import VENV_BIN, run_role

ACCESS, SECRET = "spaces-access-key", "spaces-secret-key-never-printed"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free loopback port; yields (endpoint, client)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS, aws_secret_access_key=SECRET
    )
    try:
        for _ in range(100):
            with contextlib.suppress(Exception):
                client.list_buckets()
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"moto_server did not answer on {endpoint}")
        yield endpoint, client
    finally:
        server.terminate()
        server.wait(timeout=10)


def dump(tmp_path, name="backup_20261202_061500.dump"):
    """A controller's copy of a dump and its .sha256, as the backup role's fetch leaves them."""
    data = b"PGDMP" + bytes(range(256)) * 4096
    (tmp_path / name).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / (name + ".sha256")).write_text(f"{digest}  {name}\n")
    return name, digest


def play(tmp_path, endpoint, bucket, name, digest, **extra):
    args = {
        "backup_file": f"/var/backups/prisma-migrate/{name}", "backup_fetch": True, "backup_fetch_dir": str(tmp_path),
        "__backup_offsite_sha256": digest, "backup_offsite_bucket": bucket, "backup_offsite_endpoint": endpoint,
        "backup_offsite_access_key": ACCESS, "backup_offsite_secret_key": SECRET,
        "backup_offsite_prefix": "prisma-migrate/db-1/", **extra,
    }  # fmt: skip
    env = {"PRISMA_MIGRATE_DATA_DIR": str(tmp_path / "data")}
    return run_role(tmp_path, "backup", args, tasks_from="offsite", env_extra=env)


def keys(client, bucket):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_verified_dump_is_sent_read_back_and_the_oldest_are_pruned(tmp_path, s3):
    endpoint, client = s3
    client.create_bucket(Bucket="backups")
    # Three earlier runs' dumps and something of someone else's under the same prefix.
    for old in ("20261120_010000", "20261125_010000", "20261130_010000"):
        client.put_object(Bucket="backups", Key=f"prisma-migrate/db-1/backup_{old}.dump", Body=b"old")
        client.put_object(Bucket="backups", Key=f"prisma-migrate/db-1/backup_{old}.dump.sha256", Body=b"old")
    client.put_object(Bucket="backups", Key="prisma-migrate/db-1/notes.txt", Body=b"keep me")
    name, digest = dump(tmp_path)

    result = play(tmp_path, endpoint, "backups", name, digest, backup_offsite_keep=2)

    assert result.returncode == 0, result.stdout[-3000:]
    assert keys(client, "backups") == [
        "prisma-migrate/db-1/backup_20261130_010000.dump",
        "prisma-migrate/db-1/backup_20261130_010000.dump.sha256",
        f"prisma-migrate/db-1/{name}",
        f"prisma-migrate/db-1/{name}.sha256",
        "prisma-migrate/db-1/notes.txt",
    ]
    sent = client.get_object(Bucket="backups", Key=f"prisma-migrate/db-1/{name}")
    assert hashlib.sha256(sent["Body"].read()).hexdigest() == digest and sent["Metadata"] == {"sha256": digest}
    assert "Download the copy just uploaded" in result.stdout
    assert "Assert the bucket holds the same dump" in result.stdout
    assert "[DEPRECATION WARNING]" not in result.stdout + result.stderr
    assert SECRET not in result.stdout
    # The run's report went to the persistent data folder, not beside the playbook.
    assert len(list((tmp_path / "data" / "reports").glob("migration-*.html"))) == 1


def test_a_bucket_that_is_not_there_fails_naming_it_and_changes_nothing(tmp_path, s3):
    endpoint, client = s3
    name, digest = dump(tmp_path)

    result = play(tmp_path, endpoint, "no-such-space", name, digest)

    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert f"localhost: backup: uploading {name} to no-such-space/prisma-migrate/db-1/ failed" in text, text[-3000:]
    assert "nothing was changed yet" in text and SECRET not in result.stdout
    assert "no-such-space" not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_no_controller_copy_is_refused_before_anything_is_sent(tmp_path, s3):
    endpoint, _ = s3
    name, digest = dump(tmp_path)
    result = play(tmp_path, endpoint, "backups", name, digest, backup_fetch=False)
    assert result.returncode != 0
    assert "backup_fetch is off" in " ".join(result.stdout.split())
