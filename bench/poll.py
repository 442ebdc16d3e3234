"""Poll: what ansible.cfg's internal_poll_interval costs the controller, 1 ms (Ansible's default) against 10 ms.

    .venv/bin/python bench/poll.py      (no sandbox: the controller alone, on this machine)

While a task runs, ansible-playbook's main process looks for its workers' results every internal_poll_interval.
Two playbooks on localhost, each run three times per interval, alternating: one task waiting 10 s (the CPU a
waiting run spends), and 40 quick tasks (what a longer look costs a run of short tasks in wall time). CPU is
user + system of ansible-playbook and everything it started. Bounded: each run has a 2-minute limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, children_cpu_s, save, table

INTERVALS = (0.001, 0.01)
ROUNDS = 3
WAIT_S = 10
QUICK_TASKS = 40


def run(folder: Path, interval: float, playbook: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ansible-playbook run with this internal_poll_interval."""
    (folder / "ansible.cfg").write_text(
        f"[defaults]\ninternal_poll_interval = {interval}\ninterpreter_python = {sys.executable}\n"
    )
    before = children_cpu_s()
    began = time.monotonic()
    subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", playbook],
        cwd=folder,
        env={**os.environ, "ANSIBLE_CONFIG": str(folder / "ansible.cfg")},
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    wall = time.monotonic() - began
    return wall, children_cpu_s() - before


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        play = "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        (folder / "wait.yml").write_text(play + f"    - ansible.builtin.command: sleep {WAIT_S}\n")
        (folder / "quick.yml").write_text(play + "    - ansible.builtin.command: 'true'\n" * QUICK_TASKS)
        runs = {interval: {"wait": [], "quick": []} for interval in INTERVALS}
        for _ in range(ROUNDS):
            for interval in INTERVALS:
                for kind in ("wait", "quick"):
                    wall, cpu = run(folder, interval, f"{kind}.yml")
                    runs[interval][kind].append({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)})

    def mean(values):
        return round(sum(values) / len(values), 2)

    rows, results = [], {"wait_s": WAIT_S, "quick_tasks": QUICK_TASKS, "rounds": ROUNDS, "runs": {}}
    for interval in INTERVALS:
        wait, quick = runs[interval]["wait"], runs[interval]["quick"]
        # In the table's column order.
        summary = {
            "wait_cpu_s": mean([r["cpu_s"] for r in wait]),
            "wait_wall_s": mean([r["wall_s"] for r in wait]),
            "quick_cpu_s": mean([r["cpu_s"] for r in quick]),
            "quick_wall_s": mean([r["wall_s"] for r in quick]),
        }
        results["runs"][str(interval)] = {**summary, "each": runs[interval]}
        rows.append([f"{interval * 1000:g} ms", *summary.values()])
    markdown = table(
        [
            "internal_poll_interval",
            f"CPU s, one task waiting {WAIT_S} s",
            "wall s",
            f"CPU s, {QUICK_TASKS} quick tasks",
            "wall s",
        ],
        rows,
    )
    save("poll", "The controller's internal poll interval", results, markdown)


if __name__ == "__main__":
    main()
