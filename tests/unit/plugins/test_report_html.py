"""The run report's HTML page, opened in headless Chromium (Debian's): the timeline drawn, one bar per step,
each value escaped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "plugins" / "callback"))
from migration_report import render_html  # noqa: E402

REPORT = {
    "playbook": "migrate.yml",
    "outcome": "rolled back",
    "total_s": 96.4,
    "database": "backend@sandbox-db:5432/backend",
    "plan_fingerprint": "3f2a9c0d1e4b",
    "rehearsal": {"longest_exclusive_text": "none over 20 ms, the trace's resolution"},
    "migrations_applied": [],
    "backup": {"file": "/var/backups/prisma-migrate/backend-20261202.dump"},
    "failure": {"msg": "sandbox-pm2: health check <b>/api/health</b> answered 500"},
    "timeline": [
        {"step": "Preflight checks", "start_s": 0.0, "duration_s": 9.1, "status": "done"},
        {"step": "Backup database (and verify)", "start_s": 9.1, "duration_s": 6.3, "status": "done"},
        {"step": "Apply migrations", "start_s": 30.2, "duration_s": 11.5, "status": "done"},
        {"step": "Verify application health", "start_s": 60.0, "duration_s": 12.0, "status": "failed"},
        {"step": "Rollback: <previous> code", "start_s": 72.0, "duration_s": 0.0, "status": "skipped"},
    ],
}


def open_in_chromium(path) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: bin/bootstrap installs it")
    # --no-sandbox: Chromium's own sandbox refuses to run as root (CI's containers).
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_page_draws_a_bar_per_step_where_and_as_long_as_it_ran(tmp_path):
    page = tmp_path / "migration.html"
    page.write_text(render_html(REPORT))
    dom = open_in_chromium(page)
    # The page's own script counted the bars Chromium laid out with a size.
    assert 'data-drawn="5"' in dom and 'data-outcome="rolled back"' in dom
    bars = re.findall(r'<rect x="([\d.]+)" y="\d+" width="([\d.]+)"[^>]*fill="([^"]+)"', dom)
    assert len(bars) == 5
    (x0, w0, c0), (x1, _, _), _, (_, w3, c3), (_, w4, c4) = [(float(x), float(w), c) for x, w, c in bars]
    assert x1 == pytest.approx(x0 + w0, abs=0.2)  # the backup began where preflight ended
    assert w3 > w0 and c3 == "#c62828" and c0 == "#2e7d32"  # the failed gate, red, longer than preflight
    assert w4 == 1.0 and c4 == "#9e9e9e"  # a step that took no time is still seen
    # Values are text, never markup.
    assert "<b>/api/health</b>" not in dom and "&lt;b&gt;/api/health&lt;/b&gt;" in dom
    assert "Rollback: &lt;previous&gt; code" in dom
