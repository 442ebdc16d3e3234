"""Filters for the migration plan: the lines a person reviews, and the fingerprint they approve."""

from __future__ import annotations

import hashlib
import json

from ansible_collections.prismaguard.migrate.plugins.module_utils.pg_lock_trace import (
    BLOCKING,
    describe_longest,
    longest,
    untraced,
)


def _size(value):
    value = float(value or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (value, unit)
        value /= 1024
    return str(value)


def plan_fingerprint(plan):
    """What must not change between the plan a person reviewed and the run: database, migrations (by content),
    code revisions, restarts, allowances. Twelve hex digits: short enough to type, long enough not to collide."""
    stable = {
        "database": plan.get("database"),
        "pending": [[m["name"], m.get("sha256")] for m in plan.get("pending", [])],
        "code": plan.get("code", {}),
        "batches": plan.get("batches", []),
        "allow": sorted(plan.get("allow", [])),
        "rehearsal": bool(plan.get("rehearsal")),
        "maintenance_window": bool(plan.get("maintenance_window")),
    }
    if plan.get("lock_hold_allow"):  # an allowance a person approves, like `allow`
        stable["lock_hold_allow"] = sorted(plan["lock_hold_allow"])
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:12]


def plan_lines(plan):
    """The plan as lines of text, in the order a run does things."""
    lines = [
        "Database %s (%s; the backup needs up to that much on the database host)."
        % (plan["database"], _size(plan.get("database_bytes")))
    ]
    pending = plan.get("pending", [])
    lines.append("Migrations pending: %d%s" % (len(pending), "" if pending else " (the schema is up to date)."))
    for migration in pending:
        flags = "additive" if migration.get("additive") else "NOT additive"
        if migration.get("one_transaction") is False:
            flags += ", transaction control of its own: not retried after a lock timeout"
        if migration.get("allowed"):
            flags += ", allowed by name"
        lines.append("  %s (%s)" % (migration["name"], flags))
        for stmt in migration.get("statements", []):
            held = ", ".join(
                "%s on %s" % (lock["mode"], lock["table"]) for lock in stmt.get("locks", []) if lock["mode"] in BLOCKING
            )
            lines.append("    line %s: %s%s" % (stmt["line"], stmt["summary"], " [%s]" % held if held else ""))
    findings = plan.get("findings", [])
    lines.append(
        "Lint: %d blocking, %d warning(s), %d allowed."
        % tuple(sum(1 for f in findings if f["level"] == level) for level in ("block", "warn", "allowed"))
    )
    for finding in findings:
        lines.append(
            "  %s %s:%s %s: %s"
            % (finding["level"].upper(), finding["file"], finding["line"], finding["rule"], finding["message"])
        )
    data = plan.get("data") or []
    if data:
        lines.append("Data checks on the live database:")
        for item in data:
            lines.append("  " + _data_line(item))
    lines.append("Code:")
    for host, change in sorted(plan.get("code", {}).items()):
        before, after = change.get("before") or "?", change.get("after") or "?"
        lines.append(
            "  %s: %s"
            % (host, "stays at %s" % after[:12] if before == after else "%s -> %s" % (before[:12], after[:12]))
        )
    if plan.get("maintenance_window"):
        lines.append(
            "Maintenance window: every app stopped before the backup, so nothing is written after it, and started"
            " again on the new release; a deploy failing with one that is not additive applied or failed"
            " restores that backup."
        )
    locked = plan_locked_tables(pending)
    if locked:
        lines.append(
            "Locks on live tables, each held until its migration ends (the rehearsal measures how long): %s."
            % "; ".join("%s on %s" % (mode, ", ".join(tables)) for mode, tables in locked.items())
        )
    budget = plan.get("lock_budget")
    if budget and pending:
        lines.append(
            "Lock budget: each statement waits at most %s ms for its lock (lock_timeout), then its migration is"
            " tried again, up to %s time(s), and the run rolls back; a statement runs at most %s."
            % (
                budget["lock_timeout_ms"],
                budget["retries"],
                "%s ms" % budget["statement_timeout_ms"] if int(budget["statement_timeout_ms"]) else "without limit",
            )
        )
    if plan.get("rehearsal"):
        lines.append("Rehearsal: the fresh backup restored into a scratch database, migrated and asserted there first.")
        if budget:
            allowed = plan.get("lock_hold_allow") or []
            lines.append(
                "  Its locks traced: a migration holding ACCESS EXCLUSIVE on a table longer than %s ms there stops"
                " the run%s."
                % (budget["hold_budget_ms"], " (allowed by name: %s)" % ", ".join(allowed) if allowed else "")
            )
    lines.append("Restarts, %d host(s) at a time:" % plan.get("batch_size", 1))
    for number, batch in enumerate(plan.get("batches", []), 1):
        lines.append("  batch %d: %s" % (number, ", ".join("%s (%s)" % (h["host"], h["action"]) for h in batch)))
    lines.append("Fingerprint: %s" % plan_fingerprint(plan))
    return lines


def plan_locked_tables(pending):
    """{mode: [table, ...]} of the locks the pending migrations take on live tables that hold up the app's
    reads or writes, strongest mode first."""
    found = {}
    for migration in pending:
        for stmt in migration.get("statements", []):
            for lock in stmt.get("locks", []):
                if lock["mode"] in BLOCKING and lock["table"] not in found.setdefault(lock["mode"], []):
                    found[lock["mode"]].append(lock["table"])
    return {mode: sorted(found[mode]) for mode in BLOCKING if found.get(mode)}


def plan_restarts(hosts, strategies, new_code_hosts, schema_changes):
    """Each app host in inventory order with what the restart step does there."""
    restarts = []
    for host in hosts:
        if schema_changes or host in new_code_hosts:
            restarts.append({"host": host, "action": strategies.get(host) or "pm2"})
        else:
            restarts.append({"host": host, "action": "no restart: code and schema unchanged"})
    return restarts


def plan_blocking_msg(blocking):
    """Why the plan stops on lint findings that can lose or rewrite data, each named, and the two ways on."""
    found = " ".join(
        "[%s:%s %s] %s Statement: %s." % (f["file"], f["line"], f["rule"], f["message"], _truncate(f["statement"], 160))
        for f in blocking
    )
    allow = list(dict.fromkeys(f["migration"] for f in blocking))
    return (
        "%d statement(s) can lose or rewrite data, so nothing was backed up or changed. %s Rewrite the migration in"
        " additive steps (expand, then contract in a later release), or, once a person has checked it, allow it by"
        " name in the inventory: migration_plan_allow: %s." % (len(blocking), found, json.dumps(allow))
    )


def plan_data_results(checks, results):
    """Each data check of the lint with what the live database answered: rows in the way (None: unchecked,
    with the error, e.g. past its time limit)."""
    out = []
    for number, check in enumerate(checks):
        result = results[number] if number < len(results) else {}
        rows = None
        if not result.get("failed") and result.get("query_result"):
            rows = int(list(result["query_result"][0].values())[0])
        out.append(dict(check, rows=rows, error="" if rows is not None else (result.get("msg") or "no answer")))
    return out


def _data_line(item):
    what = "%s.%s" % (item["table"], ", ".join(item["columns"]))
    if item["rows"] is None:
        return "%s line %s: %s not checked (%s)" % (item["migration"], item["line"], what, item["error"][:120])
    if item["kind"] == "not_null":
        return "%s line %s: SET NOT NULL on %s: %d row(s) hold NULL" % (
            item["migration"],
            item["line"],
            what,
            item["rows"],
        )
    return "%s line %s: unique index on %s: %d value(s) held by more than one row" % (
        item["migration"],
        item["line"],
        what,
        item["rows"],
    )


def plan_data_failing(data, rehearsal=True):
    """The data checks that found rows in the way; those that could not run too when no rehearsal will run
    the statements on a copy first (with one, the rehearsal decides them)."""
    return [item for item in data if item["rows"] or (item["rows"] is None and not rehearsal)]


def plan_hand_applied(found, baseline=False):
    """The sentences of pending migrations applied by hand that stop the plan (prisma_migrate_info's
    hand_applied); with the baseline on, those whose objects are all there go on to the status step, which
    checks them against the migration and marks them applied."""
    return [state["problem"] for _unused, state in sorted(found.items()) if not (baseline and state["complete"])]


def plan_data_msg(data, rehearsal=True):
    """Why the plan stops on statements the live data would make fail, each named, and the way on."""
    failing = plan_data_failing(data, rehearsal)
    return (
        "%d statement(s) would fail on the data production holds, so nothing was backed up or changed: %s."
        " The deploy would stop there (SQLSTATE 23502 or 23505). Fix the data first (a backfill, or a"
        " de-duplication, in an earlier migration or this one before the statement), then plan again."
        % (len(failing), "; ".join(_data_line(item) for item in failing))
    )


def plan_window_msg(not_additive):
    """Why a plan with a migration that is not additive (allowed by name) needs a maintenance window."""
    return (
        "%s not additive (allowed by name): the running release may fail on the schema it leaves, and were"
        " it to fail part-way, only restoring the backup could undo it, which would discard every write made"
        " since the backup. Nothing was backed up or changed. Run it in a maintenance window, which the plan"
        " shows and its approval covers: -e maintenance_window=true (every app stopped from before the backup"
        " until the new release starts)." % (" and ".join(not_additive) + (" is" if len(not_additive) == 1 else " are"))
    )


def plan_approval_msg(given, fingerprint):
    """Why a plan needing approval does not run: a stale approval, or none."""
    why = (
        "the plan changed since %s was approved: it is now %s. Review the plan above again" % (given, fingerprint)
        if given
        else "this inventory needs the plan approved and none was given"
    )
    return (
        "%s. Nothing was changed. Review the plan (ansible-playbook playbooks/migrate.yml -i <inventory> --check),"
        " then run with -e approve=<its fingerprint>." % why
    )


def plan_lock_holds(locks):
    """Each migration's longest ACCESS EXCLUSIVE hold traced on the rehearsal, longest first."""
    return longest((locks or {}).get("holds", []))


def plan_lock_holds_over(locks, budget_ms, allow=()):
    """The migrations whose ACCESS EXCLUSIVE hold on the rehearsal exceeded the budget, those allowed aside."""
    return [h for h in plan_lock_holds(locks) if h["held_ms"] > int(budget_ms) and h["migration"] not in allow]


def plan_lock_hold_msg(over, budget_ms):
    """Why the run stops after the rehearsal: the holds over the budget, each named, and the ways on."""
    held = "; ".join(
        "%s held ACCESS EXCLUSIVE on %s for %d ms" % (h["migration"], h["table"], h["held_ms"]) for h in over
    )
    return (
        "rehearsal on a copy of production: %s (budget %s ms). On production, every query on that table would wait"
        " that long. Production was not touched. Split the migration (the slow statement in a migration of its own,"
        " or an index built CONCURRENTLY), or, once a person has accepted the wait, allow it by name:"
        " rehearsal_lock_hold_allow: %s." % (held, budget_ms, json.dumps([h["migration"] for h in over]))
    )


def _truncate(text, length):
    """As Jinja's truncate(length): cut at a word, end with '...', unless within 5 characters of length."""
    text = text or ""
    if len(text) <= length + 5:
        return text
    return text[: length - 3].rsplit(" ", 1)[0] + "..."


class FilterModule:
    def filters(self):
        return {
            "plan_fingerprint": plan_fingerprint,
            "plan_lines": plan_lines,
            "plan_window_msg": plan_window_msg,
            "plan_data_results": plan_data_results,
            "plan_data_msg": plan_data_msg,
            "plan_data_failing": plan_data_failing,
            "plan_hand_applied": plan_hand_applied,
            "plan_restarts": plan_restarts,
            "plan_blocking_msg": plan_blocking_msg,
            "plan_approval_msg": plan_approval_msg,
            "plan_lock_holds": plan_lock_holds,
            "plan_lock_holds_over": plan_lock_holds_over,
            "plan_lock_hold_msg": plan_lock_hold_msg,
            "plan_lock_longest": describe_longest,
            "plan_lock_untraced": untraced,
        }
