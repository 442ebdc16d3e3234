#!/usr/bin/python
"""Ansible module: read a git revision's Prisma migrations without touching the checkout."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prisma_migration_sources
short_description: Read the Prisma migrations of a git revision without changing the app's checkout
description:
  - Fetches the app's C(origin) into a scratch repository that borrows the checkout's objects (git alternates),
    resolves O(version) there, and reads every file under O(migrations_path) at that revision. The app's
    checkout, its refs and its objects are left byte for byte as they were, so a plan (C(--check)) can read
    the release it would deploy.
  - The scratch repository is removed before the module returns.
options:
  app_dir:
    description: The app's git checkout.
    type: path
    required: true
  version:
    description: The branch, tag or commit to read, as C(ansible.builtin.git) takes it (C(main), C(v2.3.1), a sha).
    type: str
    required: true
  migrations_path:
    description: The migrations folder, relative to the repository's root.
    type: str
    default: prisma/migrations
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
requirements:
  - git
author:
  - migration-automation team
"""

EXAMPLES = r"""
- name: Read the release's migrations.
  prisma_migration_sources:
    app_dir: /srv/backend
    version: origin/main
  become: true
  become_user: deploy
  register: sources
"""

RETURN = r"""
revision:
  description: The commit O(version) resolved to.
  returned: always
  type: str
  sample: 9f2c1e0d4b7a8c6e5f3a2b1c0d9e8f7a6b5c4d3e
paths:
  description: Every file under O(migrations_path) at that revision, relative to the repository's root.
  returned: always
  type: list
  elements: str
migrations:
  description: Each migration folder, in the order Prisma applies them, with its C(migration.sql) (null when absent).
  returned: always
  type: list
  elements: dict
  sample: [{name: 20240115093000_baseline, sql: "CREATE TABLE ..."}]
"""

import os
import shutil
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule


def git(module, args, cwd):
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    if proc.returncode != 0:
        module.fail_json(
            msg="prisma_migration_sources: git %s failed in %s: %s"
            % (args[0], module.params["app_dir"], proc.stderr.decode("utf-8", "replace").strip())
        )
    return proc.stdout


def resolve(module, repo, version):
    """The commit a version names, read as ansible.builtin.git reads it: origin's branch, a tag, or a sha."""
    for candidate in ("refs/remotes/origin/" + version, "refs/tags/" + version, version):
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", candidate + "^{commit}"], cwd=repo, capture_output=True
        )
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    module.fail_json(
        msg="prisma_migration_sources: %s names no branch, tag or commit of origin (read from %s). Check app_version."
        % (version, module.params["app_dir"])
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_dir=dict(type="path", required=True),
            version=dict(type="str", required=True),
            migrations_path=dict(type="str", default="prisma/migrations"),
        ),
        supports_check_mode=True,
    )
    app_dir = module.params["app_dir"]
    folder = module.params["migrations_path"].strip("/")
    objects = os.path.join(git(module, ["rev-parse", "--absolute-git-dir"], app_dir).decode().strip(), "objects")
    url = git(module, ["remote", "get-url", "origin"], app_dir).decode().strip()
    scratch = tempfile.mkdtemp(prefix="prisma-sources-")
    try:
        git(module, ["init", "--quiet", "--bare", scratch], scratch)
        with open(os.path.join(scratch, "objects", "info", "alternates"), "w") as handle:
            handle.write(objects + "\n")
        # The same refspec code_update's fetch uses, so origin/main means the same thing.
        git(module, ["fetch", "--quiet", "--tags", url, "+refs/heads/*:refs/remotes/origin/*"], scratch)
        revision = resolve(module, scratch, module.params["version"])
        listing = git(module, ["ls-tree", "-r", "-z", "--name-only", revision, folder + "/"], scratch)
        paths = sorted(p for p in listing.decode("utf-8", "surrogateescape").split("\0") if p)
        names = sorted({p[len(folder) + 1 :].split("/")[0] for p in paths if p.count("/") > folder.count("/") + 1})
        migrations = []
        for name in names:
            path = "%s/%s/migration.sql" % (folder, name)
            text = None
            if path in paths:
                text = git(module, ["cat-file", "blob", "%s:%s" % (revision, path)], scratch).decode("utf-8")
            migrations.append({"name": name, "sql": text})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    module.exit_json(changed=False, revision=revision, paths=paths, migrations=migrations)


if __name__ == "__main__":
    main()
