"""The table locks a deploy takes, traced from another session while it runs (on the rehearsal's copy).

Prisma runs each migration as one transaction, so a lock it takes is held until that migration ends. A
second connection samples `pg_locks` every few milliseconds for the other sessions on the database and the
migration under way (`_prisma_migrations`' row that has started and not finished), and keeps, per
migration, table and mode, when the lock was first and last seen. A hold shorter than one sample may be
missed; every hold is known to within one sample (the `resolution_ms` returned).
"""

from __future__ import annotations

import threading
import time

SAMPLE_QUERY = """
SELECT c.relname, l.mode,
       (SELECT migration_name FROM {history} WHERE finished_at IS NULL AND rolled_back_at IS NULL
        ORDER BY started_at DESC LIMIT 1)
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND c.relkind IN ('r', 'p', 'm') AND c.relname <> '_prisma_migrations'
  AND c.relnamespace <> 'pg_catalog'::regnamespace
"""

# pg_locks' names, as PostgreSQL's documentation and its errors name them.
MODES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
# The modes that hold up the app's reads or writes of the table (SHARE and above conflict with writes).
BLOCKING = ("ACCESS EXCLUSIVE", "EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE")


def summarise(samples, interval):
    """Holds from samples [(seconds, [(table, pg_locks mode, migration)])]: one entry per migration, table and
    mode, with the milliseconds of its longest span (first seen to last seen, plus one sample), longest first.
    A span ends at a sample that does not see it: a migration tried again after a lock timeout takes its
    locks anew, and the wait between is no hold."""
    open_spans, longest_ms = {}, {}
    for at, rows in samples:
        seen = set()
        for table, mode, migration in rows:
            if migration is None:
                continue  # between migrations: Prisma's own reads of its history
            key = (migration, table, MODES.get(mode, mode))
            seen.add(key)
            first = open_spans.setdefault(key, at)
            longest_ms[key] = max(longest_ms.get(key, 0), int(round((at - first + interval) * 1000)))
        for key in set(open_spans) - seen:
            del open_spans[key]
    holds = [{"migration": m, "table": t, "mode": mode, "held_ms": ms} for (m, t, mode), ms in longest_ms.items()]
    holds.sort(key=lambda h: (-h["held_ms"], h["migration"], h["table"], h["mode"]))
    return holds


def longest(holds, mode="ACCESS EXCLUSIVE"):
    """Each migration's longest hold in `mode`, longest first: [{migration, table, mode, held_ms}]."""
    best = {}
    for hold in holds:
        if hold["mode"] == mode and hold["held_ms"] > best.get(hold["migration"], {}).get("held_ms", -1):
            best[hold["migration"]] = hold
    return sorted(best.values(), key=lambda h: (-h["held_ms"], h["migration"]))


def untraced(locks):
    """Why the rehearsal's locks are not known ('' when they are): no trace, or one that failed or saw nothing."""
    if not locks:
        return "not traced (migrate_deploy_trace_locks is off)"
    if locks.get("error"):
        return "not traced: %s" % locks["error"]
    if not locks.get("samples"):
        return "not traced: no sample was taken"
    return ""


def describe_longest(locks):
    """The longest ACCESS EXCLUSIVE hold traced, as the rehearsal and the report say it."""
    if untraced(locks):
        return untraced(locks)
    held = longest(locks.get("holds", []))
    if not held:
        return "none over %s ms, the trace's resolution" % locks.get("resolution_ms", 20)
    return "%s ms, %s on %s" % (held[0]["held_ms"], held[0]["migration"], held[0]["table"])


class LockTrace:
    """Samples the database's locks from its own connection while a deploy runs: start(), then stop()."""

    def __init__(self, connect, history_table, interval=0.02):
        self.connect, self.history, self.interval = connect, history_table, interval
        self.samples, self.error = [], None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        try:
            conn = self.connect()
        except Exception as exc:  # the trace is a forecast: its failure is said, not fatal
            self.error = str(exc)
            return
        try:
            with conn.cursor() as cur:
                query = SAMPLE_QUERY.format(history=self.history)
                while not self._stop.is_set():
                    try:
                        cur.execute(query)
                        self.samples.append((time.monotonic(), cur.fetchall()))
                    except Exception as exc:  # _prisma_migrations not made yet: Prisma makes it first
                        if "_prisma_migrations" not in str(exc):
                            self.error = str(exc)
                            return
                    self._stop.wait(self.interval)
        finally:
            conn.close()

    def stop(self):
        """The holds seen, longest first, and the trace's resolution and error (None when it ran)."""
        self._stop.set()
        self._thread.join(timeout=10)
        return {
            "holds": summarise(self.samples, self.interval),
            "samples": len(self.samples),
            "resolution_ms": int(self.interval * 1000),
            "error": self.error,
        }
