"""The Prisma migrations of a git revision, read without changing the app's checkout.

The app's origin is fetched into a scratch repository that borrows the checkout's
objects (git alternates); the checkout, its refs and its objects stay byte for byte
as they were, so a plan (--check) can read the release it would deploy. The scratch
repository is removed before returning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile


def _git(args, cwd, fail):
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    if proc.returncode != 0:
        fail("git %s failed: %s" % (args[0], proc.stderr.decode("utf-8", "replace").strip()))
    return proc.stdout


def read_migrations(app_dir, url, revision, folder, fail):
    """{revision, paths, migrations} of `revision` (a commit of `url` or of the checkout) under `folder`.

    `fail(message)` must not return. Migrations come in the order Prisma applies them, each with its
    migration.sql (`sql`) and the down.sql supplied beside it (`down`), None where the folder has none.
    """
    folder = folder.strip("/")
    git_dir = _git(["rev-parse", "--absolute-git-dir"], app_dir, fail).decode().strip()
    scratch = tempfile.mkdtemp(prefix="prisma-sources-")
    try:
        _git(["init", "--quiet", "--bare", scratch], scratch, fail)
        with open(os.path.join(scratch, "objects", "info", "alternates"), "w") as handle:
            handle.write(os.path.join(git_dir, "objects") + "\n")
        # The same refspec code_update's fetch uses, so origin/main means the same thing.
        _git(["fetch", "--quiet", "--tags", url, "+refs/heads/*:refs/remotes/origin/*"], scratch, fail)
        listing = _git(["ls-tree", "-r", "-z", "--name-only", revision, folder + "/"], scratch, fail)
        paths = sorted(p for p in listing.decode("utf-8", "surrogateescape").split("\0") if p)
        names = sorted({p[len(folder) + 1 :].split("/")[0] for p in paths if p.count("/") > folder.count("/") + 1})
        migrations = []
        for name in names:
            texts = {}
            for key, file in (("sql", "migration.sql"), ("down", "down.sql")):
                path = "%s/%s/%s" % (folder, name, file)
                texts[key] = None
                if path in paths:
                    texts[key] = _git(["cat-file", "blob", "%s:%s" % (revision, path)], scratch, fail).decode("utf-8")
            migrations.append({"name": name, **texts})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"revision": revision, "paths": paths, "migrations": migrations}
