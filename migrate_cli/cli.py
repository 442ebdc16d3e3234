"""prisma-migrate: the project's playbooks run through ansible-runner (the engine AWX runs them with).

Every command is one playbook; the CLI adds progress and the report, never logic:

    prisma-migrate plan prod          ansible-playbook playbooks/migrate.yml -i inventories/prod --check
    prisma-migrate migrate prod       ansible-playbook playbooks/migrate.yml -i inventories/prod
    prisma-migrate rollback prod      ansible-playbook playbooks/rollback.yml -i inventories/prod
    prisma-migrate status prod        ansible-playbook playbooks/status.yml -i inventories/prod
    prisma-migrate sandbox up|down    ansible-playbook playbooks/sandbox_{up,down}.yml -i inventories/sandbox

Options after the environment go to ansible-playbook as they are (-e approve=..., --vault-password-file ...,
--limit ...); --ask-vault-pass asks here and hands the answer to ansible-runner, which has no terminal. The exit
code is 0 only when the playbook succeeded.

Runner's artifacts (job events, stdout) are kept, the newest 20 runs, under <data>/runner/artifacts; backups and
reports go under <data>/backups and <data>/reports. <data> is $PRISMA_MIGRATE_DATA_DIR, else the project folder.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
import time
from pathlib import Path

COMMANDS = {
    "plan": ("migrate.yml", ["--check"]),
    "migrate": ("migrate.yml", []),
    "rollback": ("rollback.yml", []),
    "status": ("status.yml", []),
}


def project_dir() -> Path:
    """The project folder: $PRISMA_MIGRATE_PROJECT, else the current folder or this package's parent."""
    for candidate in (os.environ.get("PRISMA_MIGRATE_PROJECT"), os.getcwd(), Path(__file__).resolve().parent.parent):
        if candidate and (Path(candidate) / "playbooks" / "migrate.yml").is_file():
            return Path(candidate).resolve()
    sys.exit("prisma-migrate: no playbooks/migrate.yml here; run from the project folder or set PRISMA_MIGRATE_PROJECT")


def data_dir(project: Path) -> Path:
    """Where backups, reports and runner's artifacts go: $PRISMA_MIGRATE_DATA_DIR (persistent storage under AWX),
    else the project folder."""
    return Path(os.environ.get("PRISMA_MIGRATE_DATA_DIR") or project)


def report_dir(project: Path) -> Path:
    """The report callback's folder: $MIGRATION_REPORT_DIR, relative to the data folder, else <data>/reports."""
    return data_dir(project) / os.environ.get("MIGRATION_REPORT_DIR", "reports")


VAULT_ASK = ("--ask-vault-pass", "--ask-vault-password", "-J")


def vault_password(extra: list[str]) -> dict:
    """Runner's answers (prompt regex to answer): with --ask-vault-pass, the password asked here (from the terminal,
    or a line of stdin when there is none), for runner to answer ansible-playbook's prompt with: runner's process
    has no terminal to ask on."""
    if not any(a in VAULT_ASK for a in extra):
        return {}
    if sys.stdin.isatty():
        password = getpass.getpass("Vault password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    return {r"^Vault password:\s*?$": password}


class Progress:
    """Prints which step runs on which host, with the time since the start; failures with their message."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.started = time.monotonic()
        self.failed = []
        self.running = {}

    def say(self, text):
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {text}", file=self.out, flush=True)

    def __call__(self, event):
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.say(f"== {data.get('play', '')}")
        elif kind == "runner_on_start":
            self.running[data.get("host")] = (data.get("task", ""), time.monotonic())
        elif kind == "runner_on_async_poll" and data.get("host") in self.running:
            # The poll's own task is async_status: the host's task is the one it last started.
            task, begun = self.running[data["host"]]
            self.say(f"   {data['host']}: {task} still running, {int(time.monotonic() - begun)} s")
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            host, task, res = data.get("host", "?"), data.get("task", ""), data.get("res") or {}
            ignored = data.get("ignore_errors")
            if kind == "runner_on_ok":
                if res.get("changed"):
                    self.say(f"   {host}: {task} (changed)")
                if data.get("task_action") in ("debug", "ansible.builtin.debug") and "msg" in res:
                    message = res["msg"]
                    for line in message if isinstance(message, list) else str(message).splitlines():
                        print(f"          {line}", file=self.out, flush=True)
            elif not ignored:
                message = res.get("msg") or res.get("stderr") or "failed"
                self.failed.append((host, task, message))
                self.say(f"   {host}: {task} FAILED: {message}")
        return True


def run(playbook: str, inventory: str, extra: list[str], project: Path) -> int:
    import ansible_runner

    passwords = vault_password(extra)
    progress = Progress()
    started = time.time()
    private = data_dir(project) / "runner"
    private.mkdir(parents=True, exist_ok=True)
    env = {"ANSIBLE_CONFIG": str(project / "ansible.cfg")}
    runner = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(project),
        playbook=str(project / "playbooks" / playbook),
        inventory=str(project / "inventories" / inventory),
        cmdline=" ".join(_quote(a) for a in extra) or None,
        envvars=env,
        passwords=passwords,
        event_handler=progress,
        rotate_artifacts=20,
        quiet=True,
    )
    for report in sorted(report_dir(project).glob("migration-*.md")):
        if report.stat().st_mtime >= started:
            print("\n" + report.read_text(), end="")
    for host, task, message in progress.failed:
        print(f"Failed on {host}, {task}: {message}")
    ok = runner.status == "successful" and runner.rc == 0
    verdict = "succeeded" if ok else "FAILED"
    print(f"prisma-migrate: {playbook} {verdict} ({runner.status}, rc {runner.rc})")
    print(f"prisma-migrate: runner's artifacts: {runner.config.artifact_dir}")
    return 0 if ok else (runner.rc or 1)


def _quote(arg: str) -> str:
    return shlex.quote(arg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="prisma-migrate",
        description="Guarded Prisma migrations: the project's playbooks, with progress and the report.",
        epilog="Anything after the environment goes to ansible-playbook, e.g. -e approve=3f2a9c0d1e4b.",
    )
    parser.add_argument("command", choices=[*COMMANDS, "sandbox"])
    parser.add_argument("env", help="the inventory under inventories/ (prod, sandbox), or up|down for sandbox")
    args, extra = parser.parse_known_args(argv)
    project = project_dir()
    if args.command == "sandbox":
        if args.env not in ("up", "down"):
            parser.error("sandbox takes up or down")
        return run(f"sandbox_{args.env}.yml", "sandbox", extra, project)
    if not (project / "inventories" / args.env).is_dir():
        known = sorted(p.name for p in (project / "inventories").iterdir() if p.is_dir())
        parser.error(f"no inventory {args.env!r} under inventories/ (there are: {', '.join(known)})")
    playbook, flags = COMMANDS[args.command]
    return run(playbook, args.env, flags + extra, project)


if __name__ == "__main__":
    sys.exit(main())
