"""Callback plugin: the runbook's migration timeline, printed and written as JSON, Markdown and HTML."""

from __future__ import annotations

DOCUMENTATION = r"""
name: migration_report
type: aggregate
short_description: Print and save the migration timeline (step, duration, status) and what the run did
description:
  - Times each runbook step of C(migrate.yml) (preflight, lock, backup, code update, status, deploy,
    schema assertion, restart, health gate) from the roles' tasks, and at the end prints the runbook's
    timeline table.
  - Writes the same as JSON and Markdown into the reports folder, with the migrations applied, the backup
    file and its checksum, the code revisions and how each host was restarted; and as one HTML page with the
    timeline drawn (one bar per step, placed by when it began and as long as it took), which needs no network.
  - Reads only the facts the roles publish for it; never a task's arguments, so no secret reaches a report.
  - Writes nothing for playbooks that run none of these steps.
options:
  report_dir:
    description:
      - Folder for the reports. Relative paths are taken from E(PRISMA_MIGRATE_DATA_DIR) when it is set
        (persistent storage under AWX, where the project folder is short-lived), else from the project folder
        (above C(playbooks/)).
    default: reports
    env:
      - name: MIGRATION_REPORT_DIR
    ini:
      - section: migration_report
        key: report_dir
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
"""

import html
import json
import os
import time
from datetime import UTC, datetime

from ansible.plugins.callback import CallbackBase

# Role -> the runbook step it carries out, in runbook order.
STEPS = {
    "preflight": "Preflight checks",
    "migration_plan": "Plan, lint and approval",
    "migration_lock": "Take migration lock",
    "app_restart/stop": "Maintenance window: stop application",
    "backup": "Backup database (and verify)",
    "code_update": "Pull code and install",
    "migration_status": "Check migration status",
    "rehearsal": "Rehearse on a copy of production",
    "migrate_deploy": "Apply migrations",
    "schema_assert": "Verify schema",
    "app_restart": "Restart application",
    "health_gate": "Verify application health",
    "migration_lock/release": "Release migration lock",
    "migration_lock/hold": "Keep migration lock (rollback failed)",
}
# The rollback play reuses roles; its steps are reported on their own rows.
ROLLBACK_PLAY = ("Roll back", "Recover")
ROLLBACK_STEPS = {
    "app_restart/stop": "Rollback: stop application",
    "migration_undo": "Rollback: undo migrations",
    "db_restore": "Rollback: restore database",
    "code_update": "Rollback: previous code",
    "app_restart": "Rollback: restart application",
    "health_gate": "Rollback: verify application health",
}
ROLLBACK_KEEPS = ("code_update_result", "app_restart_result")
# Facts the roles publish for the report (none holds a secret).
FACTS = (
    "backup_result",
    "code_update_result",
    "migrate_deploy_applied",
    "migrate_deploy_lock_waits",
    "preflight_db_target",
    "app_restart_result",
    "migrate_run",
    "migration_plan_result",
    "migration_plan_fingerprint",
    "rehearsal_result",
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "migration_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.steps = {}
        self.facts = {}
        self.started = time.time()
        self.base_dir = os.getcwd()
        self.task_start = {}
        self.running = {}
        self.in_rollback = False

    def v2_playbook_on_start(self, playbook):
        # The project folder: the playbook's own, or its parent for playbooks/*.yml.
        folder = os.path.dirname(os.path.abspath(playbook._file_name))
        self.base_dir = os.path.dirname(folder) if os.path.basename(folder) == "playbooks" else folder
        self.playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        self.in_rollback = (play.get_name() or "").startswith(ROLLBACK_PLAY)

    @staticmethod
    def _included_by(task):
        """The roles that included this task's role (include_role), innermost first."""
        names, node = [], task._parent
        while node is not None:
            role = getattr(node, "_role", None)
            if role is not None:
                names.append(role.get_name(include_role_fqcn=False))
            node = getattr(node, "_parent", None)
        return names

    def _step(self, task):
        role = task._role.get_name(include_role_fqcn=False) if task._role else None
        if role and "rehearsal" in self._included_by(task):
            role = "rehearsal"  # the copy's deploy and assertion are the rehearsal's, not production's
        # Entry points (tasks_from) that are steps of their own, argument validation included.
        entry = (getattr(task._role, "_from_files", None) or {}).get("tasks") if role else None
        if (role, entry) == ("migration_lock", "renew"):
            return None  # the lease renewed at each play: not a step of its own
        if (role, entry) in (("migration_lock", "release"), ("migration_lock", "hold"), ("app_restart", "stop")):
            role = "%s/%s" % (role, entry)
        return (ROLLBACK_STEPS if self.in_rollback else STEPS).get(role)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task_start[task._uuid] = time.time()

    def v2_runner_on_start(self, host, task):
        self.running[host.get_name()] = (task.get_name(), time.time())

    def v2_runner_on_async_poll(self, result):
        # The stdout callback says only that a long step (async) has not finished: say for how long it has run.
        # The poll's own task is async_status: the host's task is the one it last started.
        host = result._host.get_name()
        if host in self.running:
            name, started = self.running[host]
            self._display.display("%s: %s still running, %d s" % (host, name, time.time() - started))

    def _record(self, result, status):
        host = result._host.get_name()
        facts = result._result.get("ansible_facts") or {}
        for name in FACTS:
            if name in facts:
                seen = self.facts.setdefault(name, {})
                # The rollback reruns code_update and app_restart: the report keeps what the run did.
                if not (self.in_rollback and name in ROLLBACK_KEEPS and host in seen):
                    seen[host] = facts[name]
        step = self._step(result._task)
        if step is None:
            return
        now = time.time()
        entry = self.steps.setdefault(step, {"start": now, "end": now, "statuses": set(), "hosts": set()})
        entry["start"] = min(entry["start"], self.task_start.get(result._task._uuid, now))
        entry["end"] = max(entry["end"], now)
        entry["statuses"].add(status)
        entry["hosts"].add(host)
        if status == "failed":
            msg = str(result._result.get("msg", ""))
            entry["error"] = msg if msg.startswith(host + ":") else "%s: %s" % (host, msg)

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ok" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "failed")

    def _rows(self):
        rows = []
        # In the order the steps began: a rollback's rows come before the lock's release.
        for step, entry in sorted(self.steps.items(), key=lambda item: item[1]["start"]):
            statuses = entry["statuses"]
            status = (
                "failed" if "failed" in statuses
                else "done" if statuses & {"ok", "changed"}
                else "skipped"
            )  # fmt: skip
            rows.append(
                {
                    "step": step,
                    "start_s": round(entry["start"] - self.started, 1),
                    "duration_s": round(entry["end"] - entry["start"], 1),
                    "status": status,
                    "hosts": sorted(entry["hosts"]),
                    "error": entry.get("error"),
                }
            )
        return rows

    def v2_playbook_on_stats(self, stats):
        if not self.steps:
            return
        rows = self._rows()
        # The playbook's own verdict when it got to say it; else what the steps show.
        result = (next(iter(self.facts.get("migrate_run", {}).values()), None) or {}).get("result") or {}
        failed = any(r["status"] == "failed" for r in rows) or stats.failures or stats.dark
        outcome = result.get("outcome") or ("failed" if failed else "succeeded")
        total = round(time.time() - self.started, 1)
        report = {
            "playbook": self.playbook,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "outcome": outcome,
            "total_s": total,
            "timeline": rows,
            "database": next(iter(self.facts.get("preflight_db_target", {}).values()), None),
            "migrations_applied": next(iter(self.facts.get("migrate_deploy_applied", {}).values()), []),
            "lock_waits": next(iter(self.facts.get("migrate_deploy_lock_waits", {}).values()), []),
            "backup": next(iter(self.facts.get("backup_result", {}).values()), None),
            "code": self.facts.get("code_update_result", {}),
            "restarts": self.facts.get("app_restart_result", {}),
            "plan_fingerprint": next(iter(self.facts.get("migration_plan_fingerprint", {}).values()), None),
            "plan": next(iter(self.facts.get("migration_plan_result", {}).values()), None),
            "rehearsal": next(iter(self.facts.get("rehearsal_result", {}).values()), None),
            "failure": result.get("failure") or None,
            "rollback_failure": result.get("rollback_failure") or None,
        }
        markdown = self._markdown(report)
        self._display.display("\n" + markdown)
        folder = self.get_option("report_dir")
        if not os.path.isabs(folder):
            folder = os.path.join(os.environ.get("PRISMA_MIGRATE_DATA_DIR") or self.base_dir, folder)
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, "migration-%s" % datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
        with open(stem + ".json", "w") as handle:
            json.dump(report, handle, indent=2, default=str)
        with open(stem + ".md", "w") as handle:
            handle.write(markdown)
        with open(stem + ".html", "w") as handle:
            handle.write(render_html(report))
        self._display.display("Report written to %s.{json,md,html}" % stem)

    @staticmethod
    def _markdown(report):
        lines = [
            "## Migration timeline (%s, %s in %ss)" % (report["playbook"], report["outcome"], report["total_s"]),
            "",
            "| Step | Duration | Status |",
            "| --- | --- | --- |",
        ]
        for row in report["timeline"]:
            lines.append("| %s | %ss | %s |" % (row["step"], row["duration_s"], row["status"]))
        lines.append("")
        if report["database"]:
            lines.append("- Database: %s" % report["database"])
        if report.get("plan_fingerprint"):
            plan = report.get("plan") or {}
            findings = plan.get("findings", [])
            lines.append(
                "- Plan %s: %d migration(s) pending, lint %d blocking / %d warning(s)"
                % (report["plan_fingerprint"], len(plan.get("pending", [])),
                   sum(f["level"] == "block" for f in findings), sum(f["level"] == "warn" for f in findings))
            )  # fmt: skip
        if report.get("rehearsal"):
            lines.append(
                "- Rehearsal: deploy took %ss on a copy (forecast for production); copy restored in %ss"
                % (report["rehearsal"].get("deploy_seconds"), report["rehearsal"].get("restore_seconds"))
            )
            if report["rehearsal"].get("longest_exclusive_text"):
                lines.append(
                    "- Longest ACCESS EXCLUSIVE hold on the copy (forecast): %s"
                    % report["rehearsal"]["longest_exclusive_text"]
                )
        for wait in report.get("lock_waits") or []:
            lines.append(
                "- Lock timeout: %s gave up waiting for its lock (attempt %s), tried again %ss later"
                % (wait["migration"], wait["attempt"], wait["delay"])
            )
        applied = report["migrations_applied"]
        lines.append("- Migrations applied: %d%s" % (len(applied), "".join("\n  - %s" % m for m in applied)))
        if report["backup"]:
            lines.append("- Backup: %s (sha256 %s)" % (report["backup"].get("file"), report["backup"].get("sha256")))
        for host, code in sorted(report["code"].items()):
            lines.append("- Code on %s: %s -> %s" % (host, str(code.get("before"))[:12], str(code.get("after"))[:12]))
        for host, restart in sorted(report["restarts"].items()):
            compose = " (Compose %s)" % restart["compose"] if restart.get("compose") else ""
            lines.append("- Restarted %s with %s%s" % (host, restart.get("strategy"), compose))
        for row in report["timeline"]:
            if row["error"]:
                lines.append("- Failed at %s: %s" % (row["step"], row["error"]))
        if report.get("failure"):
            lines.append("- Root cause: %s" % report["failure"].get("msg"))
            lines.append(
                "- Rollback: %s"
                % ("FAILED: %s" % report["rollback_failure"] if report.get("rollback_failure") else "done")
            )
        return "\n".join(lines) + "\n"


COLOURS = {"done": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e"}


def render_html(report, width=720, row=22):
    """The report as one page: the timeline drawn as bars (SVG, placed by start and duration), the table and
    the run's facts. Every value escaped; no script or style from elsewhere. Its own script marks each bar
    the browser laid out (data-drawn), for a test in a real browser to read."""
    rows = report["timeline"]
    total = max([report.get("total_s") or 0] + [r["start_s"] + r["duration_s"] for r in rows]) or 1
    label_w, scale = 240, (width - 240 - 10) / total
    bars = []
    for n, r in enumerate(rows):
        y = n * row
        bars.append(
            '<g class="step" data-step="%s" data-status="%s"><text x="0" y="%d">%s</text>'
            '<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %ss, %s</title></rect></g>'
            % (html.escape(r["step"], quote=True), r["status"], y + row - 7, html.escape(r["step"]),
               label_w + r["start_s"] * scale, y + 4, max(r["duration_s"] * scale, 1.0), row - 8,
               COLOURS.get(r["status"], "#555"), html.escape(r["step"]), r["duration_s"], r["status"])
        )  # fmt: skip
    facts = [
        ("Outcome", report["outcome"]),
        ("Total", "%ss" % report["total_s"]),
        ("Database", report.get("database")),
        ("Plan", report.get("plan_fingerprint")),
        ("Rehearsal", (report.get("rehearsal") or {}).get("longest_exclusive_text")),
        ("Migrations applied", len(report.get("migrations_applied") or [])),
        ("Backup", (report.get("backup") or {}).get("file")),
        ("Root cause", (report.get("failure") or {}).get("msg")),
    ]
    table = "".join(
        "<tr><td>%s</td><td>%ss</td><td>%ss</td><td>%s</td></tr>"
        % (html.escape(r["step"]), r["start_s"], r["duration_s"], html.escape(r["status"]))
        for r in rows
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Migration %s: %s</title>'
        "<style>body{font:14px sans-serif;margin:2em}svg text{font:12px sans-serif}"
        "td,th{padding:2px 10px;text-align:left}</style></head>"
        '<body data-outcome="%s"><h1>Migration timeline (%s, %s in %ss)</h1>'
        '<svg id="timeline" width="%d" height="%d" role="img" aria-label="timeline">%s</svg>'
        "<dl>%s</dl><table><tr><th>Step</th><th>Began</th><th>Duration</th><th>Status</th></tr>%s</table>"
        "<script>document.body.dataset.drawn = Array.from(document.querySelectorAll('#timeline rect'))"
        ".filter(function (r) { var b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0 }).length"
        "</script></body></html>\n"
        % (
            html.escape(report["outcome"]), html.escape(str(report.get("database") or "")),
            html.escape(report["outcome"], quote=True), html.escape(report["playbook"]), html.escape(report["outcome"]),
            report["total_s"], width, max(len(rows), 1) * row, "".join(bars),
            "".join("<dt>%s</dt><dd>%s</dd>" % (k, html.escape(str(v))) for k, v in facts if v not in (None, "")),
            table,
        )
    )  # fmt: skip
