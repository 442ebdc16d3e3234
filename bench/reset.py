"""Reset: production as it was before any run, provisioned from scratch against started from snapshots.

    .venv/bin/python bench/reset.py      (uses the sandbox: leaves it at release 1)

Every sandbox test module and Molecule scenario starts from release 1. Two ways to get there, side by
side in one run, each repeated: the way the suite took until 2026-12 (droplets from the bare images, then
release 1 provisioned over SSH: `sandbox_provision.yml`), and the way it takes now (the droplets started
from their release-1 snapshots: `sandbox_reset.yml`). Both end with every app answering its health check.
Bounded: 15 minutes per step.
"""

from __future__ import annotations

import statistics
import sys

from common import play, save, table

REPEAT = 3
# sandbox_up.yml with the snapshots' images swapped for the bare ones, then the provisioning itself.
BARE = ["-e", "sandbox_up_bare=true"]


def provisioned() -> float:
    play("playbooks/sandbox_down.yml")
    up, _ = play("playbooks/sandbox_up.yml", *BARE, timeout=900)
    provision, _ = play("playbooks/sandbox_provision.yml", timeout=900)
    return up + provision


def from_snapshots() -> float:
    wall, _ = play("playbooks/sandbox_reset.yml", timeout=900)
    return wall


def main() -> int:
    play("playbooks/sandbox_up.yml", timeout=1800)  # builds what is missing, snapshots included, before timing
    cases = {"provisioned from scratch": provisioned, "started from snapshots": from_snapshots}
    results = {}
    for label, how in cases.items():
        walls = [round(how(), 1) for _ in range(REPEAT)]
        results[label] = {"wall_s": walls, "median_s": statistics.median(walls)}
    from_snapshots()  # leave the sandbox as the snapshots have it
    slow, fast = (results[k]["median_s"] for k in cases)
    rows = [[label, f"{r['median_s']} s", ", ".join(f"{w} s" for w in r["wall_s"])] for label, r in results.items()]
    markdown = table(["Reset to release 1", "Median", f"Each of {REPEAT} runs"], rows) + (
        f"\n\nStarting the droplets from their snapshots is {slow / fast:.1f}x faster. Both include removing "
        "the droplets and waiting until every app answers `/api/health`. The snapshots themselves are made "
        "once per fingerprint of what release 1 is made from (`roles/sandbox_snapshot`), in about the time "
        "of one provisioning plus a `podman commit` of each droplet."
    )
    save("reset", "Reset: release 1 provisioned from scratch against started from snapshots", {"cases": results},
         markdown)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
