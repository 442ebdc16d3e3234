"""Shared by the benchmarks: the machine a figure ran on, running playbooks, and writing results."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The collection (prismaguard.migrate) in place, for the benchmarks that read its module_utils.
sys.path.insert(0, str(ROOT / "collections"))
RESULTS = ROOT / "bench" / "results"


def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "podman": subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip(),
    }


def children_cpu_s() -> float:
    """User + system CPU seconds of every finished child process so far (a playbook run and all it started)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def env() -> dict:
    venv = ROOT / ".venv" / "bin"
    return dict(
        os.environ,
        PATH=f"{venv}:/usr/local/sbin:/usr/sbin:/sbin:{os.environ.get('PATH', '')}",
        CONTAINERS_CONF=str(ROOT / "sandbox" / "containers.conf"),
    )


def play(playbook: str, *args: str, check: bool = True, timeout: int = 900, inventory: str = "inventories/sandbox",
         extra_env: dict | None = None):  # fmt: skip
    """Run a playbook against the sandbox (or another inventory); its wall time in seconds and the process."""
    started = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", "-i", inventory, playbook, *args],
        cwd=ROOT, env={**env(), **(extra_env or {})}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if check and proc.returncode != 0:
        raise SystemExit(f"{playbook} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def read_report(folder: Path) -> tuple[dict, dict]:
    """The migration report a run wrote into `folder` (MIGRATION_REPORT_DIR), and its timeline rows by step."""
    report = json.loads(next(folder.glob("migration-*.json")).read_text())
    return report, {row["step"]: row for row in report["timeline"]}


def restart_phase_s(rows: dict) -> float:
    """From the first restart to the end of the last health gate: the rolling restart, batches and all."""
    restart, health = rows["Restart application"], rows["Verify application health"]
    return round(health["start_s"] + health["duration_s"] - restart["start_s"], 1)


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, title: str, results: dict, markdown: str, doc: str = "benchmarks") -> None:
    """Write bench/results/<name>.json and the section <name> of docs/<doc>.md; print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"benchmark": name, "at": stamp, "machine": machine(), **results}
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    m = record["machine"]
    section = (
        f"<!-- {name} -->\n## {title}\n\n{markdown}\n\n"
        f"Measured {stamp} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}, "
        f"{m['podman']}; raw figures in `bench/results/{name}.json`.\n<!-- /{name} -->"
    )
    path = ROOT / "docs" / f"{doc}.md"
    text = path.read_text() if path.exists() else f"# {title}\n\nProduced by the scripts in `bench/`, never by tests.\n"
    pattern = re.compile(rf"<!-- {name} -->.*?<!-- /{name} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"\n{title}\n\n{markdown}\n")
