"""Whether a code change changes the app's npm dependencies, read from git's copies of both revisions.

A release bumps its own version in package.json and in package-lock.json's root entry; that is no reason
to reinstall node_modules. What node_modules holds follows from the lockfile's packages (and, without a
lockfile, from package.json's dependency fields).
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: npm_dependencies_changed
short_description: Whether two revisions' package.json and package-lock.json differ in what they install.
description:
  - Reads the output of C(git cat-file --batch) asked for, in this order, C(OLD:package.json),
    C(NEW:package.json), C(OLD:package-lock.json), C(NEW:package-lock.json).
  - True when the dependency fields of package.json differ, when the lockfiles' packages differ (the root
    package's own name and version left out), or when a lockfile is in one revision only.
options:
  _input:
    description: The text C(git cat-file --batch) printed.
    type: str
    required: true
"""

# What package.json says about node_modules; name, version, scripts and the rest do not change it.
MANIFEST_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "overrides",
    "workspaces",
)


def _objects(batch: str) -> list:
    """The JSON documents git printed, None for one it reported missing."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while at < len(batch):
        header, _unused, rest = batch[at:].partition("\n")
        at += len(header) + 1
        if not header.strip():
            continue
        if header.endswith(" missing"):
            found.append(None)
            continue
        if " blob " not in header:
            raise AnsibleFilterError("npm_dependencies_changed: unexpected git cat-file line %r" % header[:80])
        try:
            document, end = decoder.raw_decode(rest)
        except ValueError as exc:
            raise AnsibleFilterError("npm_dependencies_changed: a file is not JSON: %s" % exc) from exc
        found.append(document)
        at += end
    return found


def _manifest(document):
    return None if document is None else {k: document[k] for k in MANIFEST_FIELDS if k in document}


def _tree(document):
    if document is None:
        return None
    packages = dict(document.get("packages") or {})
    if "" in packages:
        packages[""] = {k: v for k, v in packages[""].items() if k not in ("name", "version")}
    # lockfileVersion 1 has no "packages": its "dependencies" hold the tree.
    return {"packages": packages, "dependencies": document.get("dependencies") if not packages else None}


def npm_dependencies_changed(batch: str) -> bool:
    objects = _objects(batch)
    if len(objects) != 4:
        raise AnsibleFilterError("npm_dependencies_changed: expected 4 files from git cat-file, got %d" % len(objects))
    old_manifest, new_manifest, old_lock, new_lock = objects
    return _manifest(old_manifest) != _manifest(new_manifest) or _tree(old_lock) != _tree(new_lock)


class FilterModule:
    def filters(self):
        return {"npm_dependencies_changed": npm_dependencies_changed}
