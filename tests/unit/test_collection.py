"""The collection another team installs (prismaguard.migrate): built and installed with ansible-galaxy, then used
from a folder of its own, with none of this repository's settings: documentation, a filter, a module with its
module_utils, and the playbooks with their roles, all by FQCN."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib

import pytest
import yaml
from conftest import ROOT, VENV_BIN, install_collection


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The collection built from this tree and installed; yields (tarball, a runner in a folder of its own)."""
    work = tmp_path_factory.mktemp("collection")
    tarball, collections = install_collection(work)
    (work / "ansible.cfg").write_text("[defaults]\n")
    (work / "hosts.yml").write_text("app:\n  hosts: {web-1: {}}\ndatabases:\n  hosts: {db-1: {}}\n")
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(work), "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_FORCE_COLOR": "0"}  # fmt: skip

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / cmd[0]), *cmd[1:]], cwd=work, env=env, text=True, capture_output=True)

    return tarball, run


def test_the_tarball_holds_the_collection_and_not_this_repositorys_test_bed(installed):
    tarball, _run = installed
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"galaxy.yml", "MANIFEST.json", "meta/runtime.yml"} - names == {"galaxy.yml"}  # built into MANIFEST
    assert "plugins/modules/prisma_migrate_deploy.py" in names and "roles/backup/tasks/main.yml" in names
    assert "playbooks/migrate.yml" in names and "plugins/doc_fragments/database.py" in names
    assert not [n for n in names if n.startswith(("roles/sandbox_", "playbooks/sandbox_", "tests/unit", "inventories"))]


def test_modules_are_documented_by_fqcn_with_the_shared_connection_option(installed):
    _tarball, run = installed
    doc = run("ansible-doc", "prismaguard.migrate.prisma_migrate_deploy")
    assert doc.returncode == 0, doc.stderr
    text = " ".join(doc.stdout.split())
    assert "database_url" in text and "Read by libpq's own parser" in text


def test_a_filter_and_a_module_run_from_the_installed_collection(installed):
    _tarball, run = installed
    url = "postgresql://app:s3cret@db.internal:25060/backend"
    filtered = run("ansible", "localhost", "-c", "local", "-m", "ansible.builtin.debug",
                   "-a", "msg={{ '" + url + "' | prismaguard.migrate.pg_target }}")  # fmt: skip
    assert filtered.returncode == 0, filtered.stdout + filtered.stderr
    assert "app@db.internal:25060/backend" in filtered.stdout and "s3cret" not in filtered.stdout
    # The module and its module_utils shipped to the host and run: pm2 is /bin/false here, which it names.
    module = run("ansible", "localhost", "-c", "local", "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}",
                 "-m", "prismaguard.migrate.pm2_app_info", "-a", "name=backend executable=/bin/false")  # fmt: skip
    assert module.returncode != 0
    assert "pm2 jlist failed (rc 1)" in module.stdout, module.stdout + module.stderr


def test_the_playbooks_and_their_roles_resolve_from_the_installed_collection(installed):
    _tarball, run = installed
    for playbook in ("migrate", "rollback", "status"):
        result = run("ansible-playbook", "--syntax-check", "-i", "hosts.yml", f"prismaguard.migrate.{playbook}")
        assert result.returncode == 0, f"{playbook}: {result.stdout[-2000:]}{result.stderr[-2000:]}"


def pins(lines) -> dict[str, str]:
    return dict(line.split("==", 1) for line in (line.split("#")[0].strip() for line in lines) if "==" in line)


def test_the_collections_requirements_the_execution_environment_and_pyproject_agree():
    """What the collection declares it needs (galaxy.yml) is what AWX's project sync installs, what the execution
    environment holds, and its Python is pinned as this repository's tests run it."""
    root = ROOT
    galaxy = yaml.safe_load((root / "galaxy.yml").read_text())
    sync = yaml.safe_load((root / "collections" / "requirements.yml").read_text())["collections"]
    assert {c["name"]: c["version"] for c in sync} == galaxy["dependencies"]
    # The image holds the collection, its dependencies and theirs (community.docker's filtering library).
    sys.path.insert(0, str(root / "ee"))
    import ee_build

    ee_collections = yaml.safe_load((root / "ee" / "requirements.yml").read_text())["collections"]
    assert [c["name"] for c in ee_collections] == ["collections/prismaguard-migrate.tar.gz"] + [
        f"collections/{name}" for name in ee_build.needed()
    ]
    assert set(galaxy["dependencies"]) < set(ee_build.needed())
    project = pins(tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"])
    collection_ee = yaml.safe_load((root / "meta" / "execution-environment.yml").read_text())
    needs = pins((root / collection_ee["dependencies"]["python"]).read_text().splitlines())
    assert needs and {name: project[name] for name in needs} == needs
    ee = yaml.safe_load((root / "execution-environment.yml").read_text())["dependencies"]
    assert pins([ee["ansible_core"]["package_pip"], ee["ansible_runner"]["package_pip"]]) == {
        "ansible-core": project["ansible-core"],
        "ansible-runner": project["ansible-runner"],
    }


def test_the_execution_environments_inputs_are_its_contents_not_their_timestamps(tmp_path):
    """bin/ee-build keeps an image built from the same inputs: a fresh clone (new timestamps) is the same
    image, and a changed file, mode, dependency or base is another."""
    sys.path.insert(0, str(ROOT / "ee"))
    import ee_build

    source = tmp_path / "src"
    (source / "plugins").mkdir(parents=True)
    module = source / "plugins" / "m.py"
    module.write_text("x = 1\n")
    manifest = tmp_path / "stage" / "community" / "general" / "MANIFEST.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"version": "1"}')

    def digest(mtime: int, base: str = "sha256:base") -> str:
        os.utime(module, (mtime, mtime))
        with tarfile.open(tmp_path / "stage" / "prismaguard-migrate.tar.gz", "w:gz") as tar:
            tar.add(source, arcname="src")
        return ee_build.inputs(tmp_path / "stage", base)

    first = digest(1_000_000)
    assert digest(2_000_000) == first
    assert digest(1_000_000, base="sha256:other") != first
    module.chmod(0o755)
    assert digest(1_000_000) != first
    module.chmod(0o644)
    module.write_text("x = 2\n")
    assert digest(1_000_000) != first
    module.write_text("x = 1\n")
    assert digest(1_000_000) == first
    manifest.write_text('{"version": "2"}')
    assert digest(1_000_000) != first
