"""The benchmark load generator's arithmetic: failures, the longest gap without a success, percentiles."""

from __future__ import annotations

import sys
import time

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from load import Load  # noqa: E402


def test_the_longest_gap_runs_from_the_last_success_to_the_next():
    load = Load("http://127.0.0.1:9/", rate=10, threads=1)
    # (start, latency, ok): a success ending at 1.1, failures until one ending at 3.05.
    load.samples = [(1.0, 0.1, True), (1.5, 2.0, False), (2.0, 0.5, False), (3.0, 0.05, True), (3.2, 0.01, True)]
    summary = load.summary()
    assert summary["requests"] == 5 and summary["failed"] == 2
    assert summary["longest_gap_s"] == 1.95
    assert summary["p50_ms"] == 50.0 and summary["p99_ms"] == 100.0


def test_a_window_keeps_only_the_requests_that_began_in_it():
    load = Load("http://127.0.0.1:9/", rate=10, threads=1)
    load.samples = [(0.0, 0.01, False), (5.0, 0.01, True), (6.0, 0.01, True), (9.0, 0.01, False)]
    summary = load.summary((4.0, 7.0))
    assert summary["requests"] == 2 and summary["failed"] == 0
    assert summary["longest_gap_s"] == 1.0


def test_it_stops_by_itself_at_its_time_limit_and_counts_refused_connections_as_failures():
    # Port 9 (discard) is closed on loopback: every request fails at once; 20/s for 0.3 s is about 6.
    with Load("http://127.0.0.1:9/", rate=20, threads=2, limit=0.3) as load:
        time.sleep(0.8)
    summary = load.summary()
    assert 2 <= summary["requests"] <= 10, summary
    assert summary["failed"] == summary["requests"]
    assert summary["p99_ms"] is None
