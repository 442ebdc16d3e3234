"""Backup cost against database size: pg_dump custom vs directory format, and our verification.

    .venv/bin/python bench/backup.py [--sizes 100 1000]      (the sandbox must be up: bin/sandbox up)

For each size (MB) a database is generated on the sandbox's database host and dumped to /dev/null
(the baseline), in custom format (what the backup step writes) and in directory format with 2 jobs;
then verified by pg_backup_verify, first without (table of contents, checksum, full read) and then
with a restore into a scratch database. Throughput is backup + verification against the baseline.
Everything it makes is dropped afterwards. Bounded: 15 minutes per size.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import RESULTS, play, save, table

OUT = RESULTS / ".backup-raw.json"
NOTE = (
    "The generated data is one large table and an index, as an app's biggest table often dominates its "
    "database: directory format with 2 jobs gains nothing on it, pg_dump's jobs working a table each. "
    "The verification the backup step always does (checksum, table of contents, every live table's data "
    "in it, a full read) costs a fraction of the dump; the restore check (restore into a scratch "
    "database and compare row counts) costs more than the dump itself: it is off by default "
    "(`backup_restore_check`), the rehearsal restoring the same dump anyway."
)


def seconds(delta: str | float) -> float:
    if isinstance(delta, (int, float)):
        return float(delta)
    h, m, s = delta.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="database sizes in MB")
    args = parser.parse_args()
    results, rows = {}, []
    for mb in args.sizes:
        RESULTS.mkdir(parents=True, exist_ok=True)
        OUT.unlink(missing_ok=True)
        play("bench/backup.yml", "-e", f"bench_mb={mb}", "-e", f"bench_out={OUT}", timeout=900)
        raw = json.loads(OUT.read_text())
        OUT.unlink()
        sizes = {line.split()[1].split(".")[-1]: int(line.split()[0]) for line in raw["sizes"]}
        figures = {
            "database_mb": round(int(raw["database_bytes"]) / 2**20),
            "dump_devnull_s": seconds(raw["dump_devnull_s"]),
            "dump_custom_s": seconds(raw["dump_custom_s"]),
            "dump_directory_j2_s": seconds(raw["dump_directory_j2_s"]),
            "custom_mb": round(sizes["dump"] / 2**20, 1),
            "directory_mb": round(sizes["dir"] / 2**20, 1),
            "sha256_s": seconds(raw["sha256_and_size_s"]),
            "verify_toc_s": float(raw["verify_toc_s"]),
            "verify_restore_s": float(raw["verify_restore_s"]),
        }
        ours = figures["dump_custom_s"] + figures["sha256_s"] + figures["verify_toc_s"]
        figures["backup_verify_vs_devnull"] = round(figures["dump_devnull_s"] / ours, 2)
        figures["with_restore_vs_devnull"] = round(figures["dump_devnull_s"] / (ours + figures["verify_restore_s"]), 2)
        results[f"{mb}MB"] = figures
        rows.append([
            f"{figures['database_mb']} MB",
            f"{figures['dump_devnull_s']:.1f} s",
            f"{figures['dump_custom_s']:.1f} s ({figures['custom_mb']} MB)",
            f"{figures['dump_directory_j2_s']:.1f} s ({figures['directory_mb']} MB)",
            f"{figures['verify_toc_s']:.1f} s",
            f"{figures['verify_restore_s']:.1f} s",
            f"{figures['backup_verify_vs_devnull']:.0%}",
            f"{figures['with_restore_vs_devnull']:.0%}",
        ])  # fmt: skip
    markdown = table(
        ["Database", "pg_dump -Fc > /dev/null", "pg_dump -Fc (file)", "pg_dump -Fd -j 2", "Verify (TOC, full read)",
         "Verify with restore", "Backup+verify throughput vs /dev/null", "…with restore check"],
        rows,
    )  # fmt: skip
    markdown += "\n\n" + NOTE
    save("backup", "Backup cost against database size", {"sizes": results}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
