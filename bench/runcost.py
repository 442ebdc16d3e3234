"""Run cost: the CPU one migrate.yml run spends, on the controller and in each droplet, and a task's floor.

    .venv/bin/python bench/runcost.py      (uses the DigitalOcean-like sandbox: leaves it at release 1)

On two cores the suite is CPU-bound (docs/testbed-notes.md, "Learned pricing a run"): what shortens it is less
CPU per run, not shorter waits. Side by side in one run, each repeated from a reset: migrate.yml as the
end-to-end test and the fault matrix run it (the rehearsal on) and as the other sandbox tests do
(`rehearsal_enabled=false`). CPU is user + system of ansible-playbook and everything it started (the
controller), and each droplet's cgroup (`cpuacct.usage` under cgroup v1, `cpu.stat` under v2). Then the floor
of one task: 20 `ping` module calls in a loop against 20 SSH commands, on one droplet. Bounded: 15 minutes per
playbook run.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

from common import ROOT, children_cpu_s, env, play, save, table

INVENTORY = "inventories/sandbox-do"
REPEAT = 2
CASES = {
    "rehearsal on (end to end, fault matrix)": (),
    "rehearsal off (the other tests)": ("-e", "rehearsal_enabled=false"),
}
CALLS = 20
FLOOR_HOST = "sandbox-systemd"


def containers() -> dict[str, str]:
    out = subprocess.run(["podman", "ps", "--no-trunc", "--format", "{{.Names}} {{.ID}}"], env=env(),
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines() if line.strip())


def cpu_s(container_id: str) -> float | None:
    """A container's CPU seconds so far, from its cgroup (podman's cgroupfs manager: libpod_parent)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/libpod_parent/libpod-{container_id}/cpuacct.usage")
    v2 = Path(f"/sys/fs/cgroup/libpod_parent/libpod-{container_id}/cpu.stat")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    if v2.exists():
        return int(re.search(r"usage_usec (\d+)", v2.read_text()).group(1)) / 1e6
    return None


def droplets_cpu() -> dict[str, float | None]:
    return {name: cpu_s(cid) for name, cid in containers().items()}


def reset() -> None:
    """Production before any run: the droplets started again from their release-1 snapshots."""
    play("playbooks/sandbox_reset.yml", "-e", "sandbox_up_build=false", inventory=INVENTORY, timeout=900)


def priced(playbook: str, *args: str, extra_env: dict | None = None) -> dict:
    """Wall, controller and droplet CPU seconds of one playbook run, and its tasks by outcome."""
    droplets, controller = droplets_cpu(), children_cpu_s()
    wall, proc = play(playbook, *args, inventory=INVENTORY, timeout=900, extra_env=extra_env)
    after = droplets_cpu()
    spent = {name: round(after[name] - droplets[name], 2) for name in after
             if after[name] is not None and droplets.get(name) is not None}  # fmt: skip
    outcomes = re.findall(r"^(ok|changed|skipping|included):", proc.stdout, re.M)
    return {
        "wall_s": round(wall, 1),
        "controller_cpu_s": round(children_cpu_s() - controller, 2),
        "droplets_cpu_s": round(sum(spent.values()), 2),
        "per_droplet_cpu_s": spent,
        "tasks": len(re.findall(r"^TASK \[", proc.stdout, re.M)),
        "outcomes": {kind: outcomes.count(kind) for kind in ("ok", "changed", "skipping", "included")},
    }


def floor() -> dict:
    """One droplet's CPU for CALLS module calls (ping, one loop) and for CALLS plain SSH commands."""
    with tempfile.TemporaryDirectory() as tmp:
        loop = Path(tmp) / "ping.yml"
        loop.write_text(f"- hosts: {FLOOR_HOST}\n  gather_facts: false\n  tasks:\n"
                        f"    - ansible.builtin.ping:\n      loop: \"{{{{ range({CALLS}) | list }}}}\"\n")  # fmt: skip
        cid = next(cid for name, cid in containers().items() if name.endswith(FLOOR_HOST))
        play(str(loop), inventory=INVENTORY)  # the SSH control master up first
        before = cpu_s(cid)
        play(str(loop), inventory=INVENTORY)
        module = cpu_s(cid) - before
        before = cpu_s(cid)
        argv = ["ansible", "-i", INVENTORY, FLOOR_HOST, "-m", "raw", "-a", "true"]
        for _ in range(CALLS):
            subprocess.run(argv, cwd=ROOT, env=env(), check=True, capture_output=True, timeout=60)
        raw = cpu_s(cid) - before
    return {
        "calls": CALLS,
        "module_ms_per_call": round(module * 1000 / CALLS),
        "ssh_ms_per_call": round(raw * 1000 / CALLS),
    }


def main() -> None:
    play("playbooks/sandbox_up.yml", inventory=INVENTORY, timeout=1800)
    runs: dict[str, list[dict]] = {label: [] for label in CASES}
    for _ in range(REPEAT):
        for label, args in CASES.items():
            reset()
            with tempfile.TemporaryDirectory() as reports:
                runs[label].append(priced("playbooks/migrate.yml", *args, extra_env={"MIGRATION_REPORT_DIR": reports}))
    base = floor()
    reset()

    def mean(values):
        return round(sum(values) / len(values), 1)

    rows, summary = [], {}
    for label, each in runs.items():
        summary[label] = {key: mean([r[key] for r in each]) for key in ("wall_s", "controller_cpu_s", "droplets_cpu_s")}
        rows.append([label, *summary[label].values(), each[0]["tasks"], json.dumps(each[0]["outcomes"])])
    headers = ["migrate.yml, 27 pending", "wall s", "controller CPU s", "droplets CPU s", "tasks", "outcomes"]
    markdown = table(headers, rows)
    markdown += (
        f"\n\nOne task's floor on {FLOOR_HOST}: a module call {base['module_ms_per_call']} ms of the droplet's CPU, "
        f"an SSH command {base['ssh_ms_per_call']} ms ({base['calls']} of each)."
    )
    save("runcost", "What one migrate.yml run costs", {"repeat": REPEAT, "summary": summary, "runs": runs,
                                                      "floor": base}, markdown)  # fmt: skip


if __name__ == "__main__":
    main()
