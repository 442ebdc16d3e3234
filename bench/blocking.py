"""How long the app's queries wait on a table while a migration alters it, with a long transaction open on it.

`Holder` opens a transaction that reads the table (ACCESS SHARE, as a report or a slow request holds it) and
keeps it open for a bounded time. `Prober` is the app: a read and a write of one row of the table, in turns,
each on its own connection, every `interval` seconds; the longest any of them took is the longest an app query
was blocked. Both connect with the keyword arguments given (psycopg2); bounded in count and time.
"""

from __future__ import annotations

import threading
import time

import psycopg2


class Holder:
    """A transaction holding a read of `table` open, from start() or, given `when` (a callable), from the first
    time it answers true (asked every 50 ms, for at most 5 minutes). It closes `seconds` after it opened or, given
    `since` (a callable), `seconds` after `since` first answers true: opened early, it is sure to be there first."""

    def __init__(self, connect: dict, table: str, seconds: float, when=None, since=None):
        self.connect, self.table, self.seconds, self.when, self.since = connect, table, seconds, when, since
        self.opened_at = self.closed_at = None
        self.errors: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _ready(self, condition=None) -> bool:
        condition = condition or self.when
        try:
            return condition is None or bool(condition())
        except psycopg2.Error as exc:  # a loaded server refusing a connection is no answer yet: ask again
            self.errors.append(str(exc).strip())
            return False

    def _hold(self):
        deadline = time.monotonic() + 300
        while not self._ready():
            if time.monotonic() > deadline or self._done.wait(0.05):
                return
        conn = psycopg2.connect(**self.connect)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT 1 FROM {self.table} LIMIT 1")  # noqa: S608 - the test's own table name
                self.opened_at = time.monotonic()
                if self.since is not None:
                    while not self._ready(self.since):
                        if time.monotonic() > deadline or self._done.wait(0.05):
                            break
                self._done.wait(self.seconds)
            conn.rollback()
            self.closed_at = time.monotonic()
        finally:
            conn.close()

    @property
    def held_s(self) -> float:
        return round((self.closed_at or time.monotonic()) - (self.opened_at or time.monotonic()), 1)

    def stop(self):
        self._done.set()
        self._thread.join(timeout=30)


class Prober:
    """The app's reads and writes of one row of `table`: the longest wait and the failures."""

    def __init__(self, connect: dict, table: str, row_id: str, interval: float = 0.05, limit: float = 600):
        self.connect, self.table, self.row_id = connect, table, row_id
        self.interval, self.limit = interval, limit
        self.durations: list[float] = []
        self.failed, self.errors = 0, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._probe, args=(kind,), daemon=True) for kind in ("read", "write")]

    def __enter__(self):
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _probe(self, kind):
        # A write that changes nothing: it takes the row's lock and the table's ROW EXCLUSIVE, as an update does.
        query = (
            f"SELECT status FROM {self.table} WHERE id = %s"  # noqa: S608
            if kind == "read"
            else f"UPDATE {self.table} SET status = status WHERE id = %s"  # noqa: S608
        )
        conn = None
        while not self._stop.is_set() and time.monotonic() - self.started < self.limit:
            began = time.monotonic()
            try:
                if conn is None:
                    conn = psycopg2.connect(**self.connect)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(query, (self.row_id,))
                self.durations.append(time.monotonic() - began)
            except psycopg2.Error as exc:
                self.failed += 1
                self.errors.append(str(exc).strip()[:200])
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def summary(self) -> dict:
        ordered = sorted(self.durations)
        return {
            "queries": len(ordered) + self.failed,
            "failed": self.failed,
            "max_blocked_ms": round(ordered[-1] * 1000) if ordered else None,
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000) if ordered else None,
            "errors": self.errors[:3],
        }
