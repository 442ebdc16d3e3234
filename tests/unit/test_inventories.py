"""The sandbox inventory stands for production: same shape, same names."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest
from conftest import ROOT, run

STRATEGIES = {"pm2", "systemd", "docker", "app_platform"}


def inventory(env: str, *extra: str) -> dict:
    result = run(["ansible-inventory", "-i", f"inventories/{env}", "--list", *extra])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    # The example vault's password is documented in its header.
    password = tmp_path_factory.mktemp("vault") / "password"
    password.write_text("example-only")
    return inventory("prod", "--vault-password-file", str(password))


@pytest.fixture(scope="module")
def sandbox():
    return inventory("sandbox")


def app_hostvars(inv: dict) -> dict[str, dict]:
    return {h: inv["_meta"]["hostvars"][h] for h in inv["app"]["hosts"]}


def test_prod_secrets_are_vault_encrypted():
    vault = ROOT / "inventories" / "prod" / "group_vars" / "production" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")


@pytest.mark.parametrize("env", ["prod", "sandbox"])
def test_every_app_host_names_a_known_restart_strategy(env, prod, sandbox):
    hosts = app_hostvars({"prod": prod, "sandbox": sandbox}[env])
    assert hosts
    assert {h: v["app_restart_strategy"] for h, v in hosts.items() if v["app_restart_strategy"] not in STRATEGIES} == {}


@pytest.mark.parametrize("env", ["sandbox", "sandbox-do"])
def test_the_sandbox_gives_the_app_the_settings_production_requires(prod, env):
    prod_vars = next(iter(app_hostvars(prod).values()))
    sandbox_vars = next(iter(app_hostvars(inventory(env)).values()))
    # The .env's names: those preflight requires of production, each the sandbox's .env has (SPACES_* a pattern).
    required = {re.compile(fnmatch.translate(name)) for name in prod_vars["preflight_required_env"]}
    assert {r.pattern for r in required if not any(r.match(name) for name in sandbox_vars["app_env"])} == set()
    app_names = {k for k in prod_vars if k.startswith("app_")} - {"app_restart_strategy"}
    assert app_names <= set(sandbox_vars)


def test_every_variable_the_production_example_sets_is_read_by_a_play(prod):
    code = "\n".join(
        path.read_text()
        for folder in ("roles", "playbooks", "plugins")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".yml", ".py", ".j2") and "/sandbox_" not in str(path)
    )
    hostvars = next(iter(app_hostvars(prod).values()))
    names = {k for k in hostvars if not k.startswith(("ansible_", "inventory_", "group_names", "groups", "omit"))}
    unread = {name for name in names if not re.search(rf"\b{name}\b", code)}
    assert unread == set()


def test_the_sandbox_covers_every_restart_strategy_it_can_run(sandbox):
    strategies = {v["app_restart_strategy"] for v in app_hostvars(sandbox).values()}
    assert strategies == {"pm2", "systemd", "docker"}


def test_production_needs_an_approved_plan_and_the_sandbox_does_not(prod, sandbox):
    assert all(v["migration_plan_require_approval"] is True for v in app_hostvars(prod).values())
    assert all("migration_plan_require_approval" not in v for v in app_hostvars(sandbox).values())


def test_the_short_names_at_the_top_reach_the_playbooks_and_the_production_inventory():
    assert (ROOT / "prod").resolve() == (ROOT / "inventories" / "prod").resolve()
    for name in ("migrate", "rollback", "status"):
        result = run(["ansible-playbook", "--syntax-check", "-i", "inventories/sandbox", f"{name}.yml"])
        assert result.returncode == 0, result.stderr
        assert f"playbooks/{name}.yml" in (ROOT / f"{name}.yml").read_text()
