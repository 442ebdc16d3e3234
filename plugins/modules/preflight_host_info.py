#!/usr/bin/python
"""Ansible module: read in one call what preflight checks on a host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_host_info
short_description: Read in one call what preflight checks on an app or database host
description:
  - With O(app_dir), reads the app's side of a host. Whether O(app_dir) is a git checkout. The text of its
    C(.env), or null when it is missing or unreadable. The tracked files changed in it (a deploy would refuse
    to overwrite them). The commit it runs, and the commit O(version) names at O(repo) now.
  - O(version) is resolved as C(ansible.builtin.git) resolves it for a checkout. A branch of O(repo) first,
    then a tag (an annotated tag's commit), then a commit the checkout already has. A string of 7 to 40 hex
    digits it cannot find is returned as it is, since git cannot ask a remote for a bare commit.
  - With O(sources=true), also reads the Prisma migrations of the commit O(version) names, without changing
    the checkout. The repository is fetched into a scratch repository that borrows the checkout's objects
    (git alternates), so the checkout, its refs and its objects stay byte for byte as they were.
  - Reads which variables Prisma takes its URLs from (RV(datasource)), as Prisma finds them. The datasource of
    C(prisma.config.ts), else C(url) and C(directUrl) in C(schema.prisma)'s datasource block.
  - With O(database=true), also reads the database the C(.env) gives migrations (the direct URL when the
    schema names one, else C(DATABASE_URL)), which proves this host reaches it. The migration state of the
    code as it is checked out (its migration folders compared
    with C(_prisma_migrations), as M(prismaguard.migrate.prisma_migrate_info) does without Prisma). The
    database's size, and each table with the planner's row estimate and whether it holds any row.
  - With O(backup_dir), reads the free bytes on the filesystem that folder is on, or would be made on (the
    nearest existing parent), so preflight needs to create nothing.
  - One call instead of one per check. Each module call costs a round trip over SSH, and preflight runs on
    every host before anything changes.
  - The module changes nothing.
options:
  app_dir:
    description: The app's git checkout. Without it the app's side is not read.
    type: path
  repo:
    description: The repository the deploy fetches from. Empty means the checkout's C(origin).
    type: str
    default: ""
  version:
    description: The branch, tag or commit the run deploys. Required with O(app_dir).
    type: str
  env_file:
    description: The app's settings file, relative to O(app_dir).
    type: str
    default: .env
  migrations_path:
    description: The migrations folder, relative to O(app_dir).
    type: str
    default: prisma/migrations
  sources:
    description: Read the migrations of the commit O(version) names (returned as RV(sources)).
    type: bool
    default: false
  database:
    description:
      - Read the database, returned as RV(migration_state) and RV(database), or RV(database_error).
      - Needs C(psycopg2) on the host, and that URL in the C(.env); without one nothing is read.
    type: bool
    default: false
  backup_dir:
    description: Where backups are written. Without it free space is not read.
    type: path
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - The returned C(dotenv) holds the app's secrets. Register the result with C(no_log).
requirements:
  - git (with O(app_dir))
  - psycopg2 (with O(database=true))
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Read the host's checkout, .env and free space for backups.
  prismaguard.migrate.preflight_host_info:
    app_dir: /srv/backend
    repo: git@github.com:example/backend.git
    version: main
    sources: true
    database: true
  become: true
  become_user: deploy
  register: preflight_read
  no_log: true
"""

RETURN = r"""
checkout:
  description: Whether O(app_dir) holds a git checkout (a C(.git) folder).
  returned: with O(app_dir)
  type: bool
dotenv:
  description: The text of the C(.env), or null when it is missing or unreadable. It holds secrets.
  returned: with O(app_dir)
  type: str
local_changes:
  description: Tracked files changed in the checkout (C(git status --porcelain), untracked files left out).
  returned: with O(app_dir), when it is a checkout
  type: list
  elements: str
before:
  description: The commit the checkout runs.
  returned: with O(app_dir), when it is a checkout
  type: str
after:
  description: The commit O(version) names now, or O(version) itself when it looks like a commit not found.
  returned: with O(app_dir), when it is a checkout
  type: str
sources:
  description:
    - The commit read (C(revision)), every file under O(migrations_path) at it (C(paths)), and each migration
      folder in the order Prisma applies them with its C(migration.sql), null when absent (C(migrations)).
  returned: with O(sources=true), when O(app_dir) is a checkout
  type: dict
  sample: {revision: 9f2c1e0d4b7a, paths: [prisma/migrations/20240115093000_baseline/migration.sql],
           migrations: [{name: 20240115093000_baseline, sql: "CREATE TABLE ..."}]}
datasource:
  description:
    - The variables Prisma reads its URLs from. C(url) is the app's (null for a URL written in the file),
      C(direct_url) is the one migrations use (null without one), and C(source) is the file that says so.
  returned: with O(app_dir), when it is a checkout
  type: dict
  sample: {url: DATABASE_URL, direct_url: DIRECT_URL, source: prisma/schema.prisma}
migration_state:
  description:
    - The checkout's migration state, keyed as M(prismaguard.migrate.prisma_migrate_info) returns it (C(applied),
      C(pending), C(failed_migrations), C(up_to_date), C(problems), ...).
  returned: with O(database=true), when O(app_dir) is a checkout whose C(.env) names a database it reached
  type: dict
database:
  description:
    - The database's size in C(bytes), and its C(tables), each with C(name), C(rows), C(has_rows), C(columns)
      (each column's type as PostgreSQL names it) and C(indexes) (each index's C(unique), its C(columns), and
      C(covered_by), the other unique indexes, the primary key's among them, with the same columns).
  returned: with O(database=true), when O(app_dir) is a checkout whose C(.env) names a database it reached
  type: dict
  sample:
    bytes: 9216003
    tables:
      - {name: users, rows: 1200, has_rows: true, columns: {id: text, email: character varying(255)},
         indexes: {users_pkey: {unique: true, columns: [id], covered_by: null}}}
database_error:
  description: Why the database could not be read (its password left out).
  returned: with O(database=true), when the read failed
  type: str
backup_free:
  description: Free bytes where O(backup_dir) is, or would be made.
  returned: with O(backup_dir)
  type: int
"""

import os
import re
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.dotenv_file import dotenv
from ansible_collections.prismaguard.migrate.plugins.module_utils.git_sources import read_migrations
from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_database import Database, psycopg2
from ansible_collections.prismaguard.migrate.plugins.module_utils.prisma_datasource import (
    read_datasource,
    url_variables,
)


def unpassworded(text):
    """A URL's user:password@ hidden, as git's errors and a repository URL may carry a token."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1********@", text)


def git(module, args, cwd, fail=True):
    # Every call here only reads. Without GIT_OPTIONAL_LOCKS=0, `git status` rewrites .git/index when the
    # files' inodes or times no longer match its cache (a droplet restored from a snapshot, a copied checkout).
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"),
    )
    if proc.returncode != 0 and fail:
        module.fail_json(
            msg="preflight_host_info: git %s failed in %s: %s. Check app_repo and that this user can reach it."
            % (args[0], cwd, unpassworded(proc.stderr.strip()))
        )
    return proc


def resolve(module, app_dir, repo, version):
    """The commit `version` names: a branch of repo, else a tag (peeled), else a commit the checkout has."""
    if version == "HEAD":
        refs = ["HEAD"]
    else:
        refs = ["refs/heads/" + version, "refs/tags/" + version + "^{}", "refs/tags/" + version]
    listed = {}
    for line in git(module, ["ls-remote", repo or "origin", *refs], app_dir).stdout.splitlines():
        sha, _unused, ref = line.partition("\t")
        listed[ref] = sha
    for ref in refs:
        if ref in listed:
            return listed[ref]
    local = git(module, ["rev-parse", "--verify", "--quiet", version + "^{commit}"], app_dir, fail=False)
    if local.returncode == 0:
        return local.stdout.strip()
    if re.fullmatch(r"[0-9a-fA-F]{7,40}", version):
        return version
    module.fail_json(
        msg="preflight_host_info: %s names no branch, tag or commit of %s. Check app_version."
        % (version, unpassworded(repo or "origin"))
    )


def read_app(module, app_dir):
    result = {"checkout": os.path.isdir(os.path.join(app_dir, ".git")), "dotenv": None}
    try:
        with open(os.path.join(app_dir, module.params["env_file"]), encoding="utf-8") as handle:
            result["dotenv"] = handle.read()
    except (OSError, UnicodeDecodeError):
        pass
    if not result["checkout"]:
        return result
    status = git(module, ["status", "--porcelain", "--untracked-files=no"], app_dir).stdout
    result["local_changes"] = [line[3:] for line in status.splitlines() if line.strip()]
    result["before"] = git(module, ["rev-parse", "HEAD"], app_dir).stdout.strip()
    result["after"] = resolve(module, app_dir, module.params["repo"], module.params["version"])
    if module.params["sources"]:
        result["sources"] = read_sources(module, app_dir, result["after"])
    # The variables Prisma takes its URLs from; the database is read on the one migrations use.
    result["datasource"] = read_datasource(app_dir)
    env = dotenv(result["dotenv"] or "")
    url = env.get(url_variables(result["datasource"])[0]) if module.params["database"] else None
    if url:
        result.update(read_database(module, app_dir, url))
    return result


def read_sources(module, app_dir, revision):
    def fail(message):
        module.fail_json(msg="preflight_host_info: reading the migrations of %s in %s: %s. Check app_version."
                         % (revision[:12], app_dir, unpassworded(message)))  # fmt: skip

    url = module.params["repo"] or git(module, ["remote", "get-url", "origin"], app_dir).stdout.strip()
    return read_migrations(app_dir, url, revision, module.params["migrations_path"], fail)


def read_database(module, app_dir, url):
    """The checkout's migration state and the database's size and tables, or the error that stopped the read."""
    db = Database(module, url, "preflight_host_info")
    folder = os.path.join(app_dir, module.params["migrations_path"])
    if not os.path.isdir(folder):
        return {"database_error": "no migrations folder at %s: check app_dir, and that the code is checked out"
                % folder}  # fmt: skip
    try:
        return {"database": db.measure(), "migration_state": db.migration_state(folder)}
    except psycopg2.Error as exc:
        return {"database_error": "cannot reach %s: %s" % (db.target, db.said(exc))}


def free_bytes(path):
    path = os.path.abspath(path)  # dirname of a relative name ends at "", which never exists
    while not os.path.exists(path):
        path = os.path.dirname(path)
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_dir=dict(type="path"),
            repo=dict(type="str", default=""),
            version=dict(type="str"),
            env_file=dict(type="str", default=".env"),
            migrations_path=dict(type="str", default="prisma/migrations"),
            sources=dict(type="bool", default=False),
            database=dict(type="bool", default=False),
            backup_dir=dict(type="path"),
        ),
        required_by={"app_dir": "version"},
        supports_check_mode=True,
    )
    result = {}
    if module.params["app_dir"]:
        result.update(read_app(module, module.params["app_dir"]))
    if module.params["backup_dir"]:
        result["backup_free"] = free_bytes(module.params["backup_dir"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
