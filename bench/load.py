"""A bounded load generator on loopback: GET a URL from a few threads at a fixed rate, timing each request."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request


class Load:
    """Requests at `rate` per second in total from `threads` threads, until stopped or `limit` seconds passed."""

    def __init__(self, url: str, rate: int = 100, threads: int = 4, limit: float = 180.0, timeout: float = 2.0):
        self.url, self.rate, self.threads, self.limit, self.timeout = url, rate, threads, limit, timeout
        self.samples: list[tuple[float, float, bool]] = []  # (start, latency, ok)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _work(self):
        interval = self.threads / self.rate
        began = time.monotonic()
        next_at = began
        while not self._stop.is_set() and time.monotonic() - began < self.limit:
            start = time.monotonic()
            ok = False
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310 (loopback)
                    response.read()
                    ok = response.status == 200
            except (urllib.error.URLError, OSError, TimeoutError):
                ok = False
            with self._lock:
                self.samples.append((start, time.monotonic() - start, ok))
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self):
        for _ in range(self.threads):
            worker = threading.Thread(target=self._work, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for worker in self._workers:
            worker.join()

    def summary(self, window: tuple[float, float] | None = None) -> dict:
        samples = sorted(self.samples)
        if window:
            samples = [s for s in samples if window[0] <= s[0] <= window[1]]
        ok_ends = sorted(s[0] + s[1] for s in samples if s[2])
        latencies = sorted(s[1] for s in samples if s[2])
        gap = 0.0
        if samples:
            edges = [samples[0][0], *ok_ends, samples[-1][0] + samples[-1][1]]
            gap = max(b - a for a, b in zip(edges, edges[1:], strict=False)) if len(edges) > 1 else 0.0
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None
        return {
            "requests": len(samples),
            "failed": sum(1 for s in samples if not s[2]),
            "longest_gap_s": round(gap, 3),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
            "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
        }
