"""The sandbox image build packs and removes a root filesystem with things still mounted under it.

debootstrap can leave /proc mounted in its target (seen with kernel 6.18.44-fc-v669): packing it then reads
the host's /proc, and deleting it walks into whatever is mounted. Real mounts here (tmpfs, proc), real tar.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest
from conftest import ROOT, run

sys.path.insert(0, str(ROOT / "roles" / "sandbox_images" / "filter_plugins"))
from rootfs import mounts_under  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root (as bin/test runs)")

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: sandbox_images
        tasks_from: rootfs_pack
      vars:
        sandbox_images_rootfs: {rootfs}
        sandbox_images_rootfs_tar: {tar}
"""


def mounted_under(path) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        return mounts_under(mountinfo.read(), str(path))


@pytest.fixture
def rootfs(tmp_path):
    """A scratch root filesystem: a file, a proc mounted on /proc, a tmpfs with a tmpfs inside it."""
    root = tmp_path / "rootfs"
    for folder in ("etc", "proc", "srv/outer"):
        (root / folder).mkdir(parents=True)
    (root / "etc" / "hostname").write_text("droplet\n")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "srv" / "outer")], check=True)
    (root / "srv" / "outer" / "inner").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "srv" / "outer" / "inner")], check=True)
    (root / "srv" / "outer" / "inner" / "keep.txt").write_text("on a mounted file system\n")
    yield root
    for target in mounted_under(tmp_path):
        subprocess.run(["umount", "--lazy", target], check=False)


def pack(tmp_path, rootfs, env_extra=None):
    playbook = tmp_path / "pack.yml"
    tar = tmp_path / "rootfs.tar"
    playbook.write_text(PLAYBOOK.format(rootfs=rootfs, tar=tar))
    result = run(
        ["ansible-playbook", "-i", "localhost,", str(playbook)],
        env_extra={"ANSIBLE_PYTHON_INTERPRETER": sys.executable, **(env_extra or {})},
    )
    return result, tar


def test_mount_points_are_listed_deepest_first_with_escaped_names():
    mountinfo = (
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "30 22 0:5 / /b/rootfs/proc rw - proc proc rw\n"
        "31 22 0:6 / /b/rootfs/srv/a\\040b rw - tmpfs tmpfs rw\n"
        "32 31 0:7 / /b/rootfs/srv/a\\040b/inner rw - tmpfs tmpfs rw\n"
        "33 22 0:8 / /b/rootfs2 rw - tmpfs tmpfs rw\n"
        "34 22 0:9 / /b/rootfs rw - tmpfs tmpfs rw\n"
    )
    assert mounts_under(mountinfo, "/b/rootfs") == [
        "/b/rootfs/srv/a b/inner",
        "/b/rootfs/srv/a b",
        "/b/rootfs/proc",
        "/b/rootfs",
    ]


def test_a_root_filesystem_with_proc_and_tmpfs_mounted_is_packed_as_one_file_system_and_removed(tmp_path, rootfs):
    assert len(mounted_under(rootfs)) == 3
    result, tar = pack(tmp_path, rootfs)
    assert result.returncode == 0, result.stdout[-3000:]
    with tarfile.open(tar) as archive:
        names = archive.getnames()
    assert "./etc/hostname" in names and "./proc" in names
    assert not [n for n in names if n.startswith("./proc/") or n.startswith("./srv/outer/")], names
    assert not rootfs.exists()
    assert mounted_under(tmp_path) == []


def test_a_mount_that_cannot_be_undone_stops_the_build_naming_it_and_deletes_nothing(tmp_path, rootfs):
    # A kernel that refuses every unmount, lazy ones too.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "umount").write_text('#!/bin/sh\necho "umount: $1: target is busy." >&2\nexit 32\n')
    (shim / "umount").chmod(0o755)
    result, tar = pack(tmp_path, rootfs, {"PATH": f"{shim}:{os.environ['PATH']}"})
    assert result.returncode == 2
    out = " ".join(result.stdout.split())
    assert f"{rootfs}/srv/outer/inner, {rootfs}/srv/outer, {rootfs}/proc is still mounted under {rootfs}" in out
    assert "Unmount it by hand (umount --lazy PATH) and build again" in out
    assert (rootfs / "srv" / "outer" / "inner" / "keep.txt").read_text() == "on a mounted file system\n"
    assert (rootfs / "etc" / "hostname").exists() and not tar.exists()
