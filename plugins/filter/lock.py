"""Filters for the migration lock's messages: who holds it and what to do about it."""

from __future__ import annotations


def lock_held_msg(info):
    """Why a run is refused beside another that holds the lock: holder, since, run, lease, and the way on."""
    info = info or {}
    lease = ", lease until %s" % info["expires"] if info.get("expires") else ""
    held = "another migration holds the lock: %s since %s (run %s%s)." % (
        info.get("holder") or "(holder unknown)",
        info.get("since") or "(unknown)",
        info.get("run_id") or "?",
        lease,
    )
    if info.get("reason"):
        return "%s It is kept because the %s. Check the database and the apps, then run again with" \
            " -e migration_lock_break=true." % (held, info["reason"])  # fmt: skip
    return "%s Wait for it to finish. If that run is gone, wait for its lease to end or run again with" \
        " -e migration_lock_break=true." % held  # fmt: skip


class FilterModule:
    def filters(self):
        return {"lock_held_msg": lock_held_msg}
