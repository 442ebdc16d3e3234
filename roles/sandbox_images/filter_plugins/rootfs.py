"""What is mounted under a folder, read from /proc/self/mountinfo.

debootstrap mounts /proc (and on some kernels fails to unmount it: "target is
busy"). A root filesystem with anything mounted under it must not be packed,
copied or deleted: tar reads the host's /proc, and a recursive delete walks
into whatever is mounted there.
"""

from __future__ import annotations

import os
import re

DOCUMENTATION = """
name: mounts_under
short_description: The mount points at or under a folder, deepest first.
description:
  - Parses the text of C(/proc/self/mountinfo) and returns every mount point
    equal to or below I(path), deepest (and, at one depth, latest mounted) first:
    the order in which they can be unmounted.
options:
  _input:
    description: The text of /proc/self/mountinfo.
    type: str
    required: true
  path:
    description: The folder (absolute path).
    type: str
    required: true
"""

_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as octal escapes.
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(mountinfo: str, path: str) -> list[str]:
    # mountinfo names resolved paths: resolve the folder the same way.
    root = os.path.realpath(path)
    found = []
    for order, line in enumerate(mountinfo.splitlines()):
        fields = line.split()
        if len(fields) < 5:
            continue
        target = os.path.normpath(_unescape(fields[4]))
        if target == root or target.startswith(root.rstrip("/") + "/"):
            found.append((target.count("/"), order, target))
    return [target for _, _, target in sorted(found, reverse=True)]


class FilterModule:
    def filters(self):
        return {"mounts_under": mounts_under}
