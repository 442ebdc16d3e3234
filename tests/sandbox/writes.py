"""Production's writes during a run: a bounded writer on loopback that records every write the app acknowledged.

Each write is a POST /api/payments with its own Idempotency-Key to one of the app hosts in turn, as a client
behind a load balancer would; a 2xx answer is an acknowledged write, which must be in the live database after
the run, whatever happened during it. Bounded in rate, count and time (the test bed's rule for load).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid


class Writer:
    """Writes at `rate` per second from `workers` threads (a slow answer does not hold the others up)."""

    def __init__(self, ports, token, rate=25.0, max_seconds=600.0, max_writes=20000, workers=4):
        self.ports, self.token = list(ports), token
        self.interval, self.max_seconds, self.max_writes = 1.0 / rate, max_seconds, max_writes
        self.acknowledged, self.refused, self.unanswered, self.timed_out = [], 0, 0, 0
        self.started_at = self.stopped_at = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]

    def start(self):
        self.started_at = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def write(self, port):
        """One POST: the row's id when acknowledged, False when answered otherwise, None when not answered."""
        key = uuid.uuid4().hex
        # As a client behind a load balancer waits: 5 s, not less, on a two-core machine running three lanes.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request(
                "POST",
                "/api/payments",
                body=json.dumps({"amount": 12.5}),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Idempotency-Key": key,
                    "Content-Type": "application/json",
                },
            )
            status = conn.getresponse().status
        except TimeoutError:
            return TimeoutError  # answered too late: not acknowledged either, but said apart from a refusal
        except OSError:
            return None  # refused or reset: the client knows it was not acknowledged
        finally:
            conn.close()
        return "w-" + key if 200 <= status < 300 else False

    def _count(self, outcome):
        if outcome is TimeoutError:
            self.unanswered += 1
            self.timed_out += 1
        elif outcome is None:
            self.unanswered += 1
        elif outcome is False:
            self.refused += 1
        else:
            self.acknowledged.append(outcome)

    def _work(self):
        while not self._stop_event.is_set():
            with self._lock:
                n, self._next = self._next, self._next + 1
            if n >= self.max_writes or time.monotonic() - self.started_at > self.max_seconds:
                return
            delay = self.started_at + n * self.interval - time.monotonic()
            if delay > 0 and self._stop_event.wait(delay):
                return
            ok = self.write(self.ports[n % len(self.ports)])
            with self._lock:
                self._count(ok)

    def stop(self) -> dict:
        self._stop_event.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.stopped_at = time.monotonic()
        seconds = self.stopped_at - self.started_at
        return {
            "acknowledged": len(self.acknowledged),
            "refused": self.refused,
            "unanswered": self.unanswered,
            "timed_out": self.timed_out,
            "seconds": round(seconds, 1),
            "attempted_per_s": round((len(self.acknowledged) + self.refused + self.unanswered) / seconds, 1)
            if seconds
            else 0.0,
        }

    def lost(self, cur) -> list:
        """The acknowledged writes the live database does not hold."""
        cur.execute("SELECT id FROM payments WHERE id = ANY(%s)", (self.acknowledged,))
        present = {row[0] for row in cur.fetchall()}
        return [key for key in self.acknowledged if key not in present]
