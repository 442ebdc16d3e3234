#!/usr/bin/env python3
"""Remove the host's CNI port-forwarding rules whose container is gone, for the given host ports.

podman's CNI portmap plugin adds a DNAT rule per container to CNI-HOSTPORT-DNAT and removes it when the
container's network is torn down. A teardown that did not run leaves the rule: it still sends the port to the
old container's address, ahead of the new container's rule, so connecting gets "No route to host" (seen: every
Molecule scenario of a run timed out on one instance's SSH port). Prints each rule removed; changes nothing
else (rules of running containers, other ports).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

RULE = re.compile(
    r'^-A CNI-HOSTPORT-DNAT .*id: \\"(?P<id>[0-9a-f]+)\\".*--dports (?P<ports>[0-9,:]+) -j (?P<chain>\S+)$'
)


def stale(rules: str, alive: set[str], ports: set[str]) -> list[tuple[str, str, str]]:
    """The rules (line, container id, chain) of `iptables -S` output that forward one of `ports` to a container
    not in `alive`."""
    found = []
    for line in rules.splitlines():
        match = RULE.match(line)
        if match and match["id"] not in alive and ports & set(match["ports"].split(",")):
            found.append((line, match["id"], match["chain"]))
    return found


def main(ports: set[str]) -> int:
    rules = subprocess.run(["iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT"], capture_output=True, text=True)
    if rules.returncode != 0:
        return 0  # no CNI rules on this host (netavark, or nothing published yet)
    alive = set(subprocess.run(["podman", "ps", "-aq", "--no-trunc"], capture_output=True, text=True,
                               check=True).stdout.split())  # fmt: skip
    for line, container, chain in stale(rules.stdout, alive, ports):
        # The rule as iptables printed it, quotes and all: split as a shell would.
        subprocess.run(["iptables", "-t", "nat", "-D", *shlex.split(line)[1:]], check=True)
        subprocess.run(["iptables", "-t", "nat", "-F", chain], check=False)
        subprocess.run(["iptables", "-t", "nat", "-X", chain], check=False)
        print(f"removed a stale port rule of gone container {container[:12]}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(set(sys.argv[1:])))
