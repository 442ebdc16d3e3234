"""Build the execution environment (execution-environment.yml) with ansible-builder and podman, offline.

    bin/ee-build [--tag IMAGE] [--base IMAGE] [--rebuild]

ee/collections gets this collection built from the tree (ansible-galaxy collection build) and each of its
dependencies (galaxy.yml) copied from where the `ansible` package pyproject.toml pins installed it: no Galaxy
server is reachable. The base image defaults to the sandbox's Debian 12 base (bin/sandbox up builds it).
Unchanged layers (apt, ansible-core, ansible-runner) come from podman's cache. An image under the tag already
built from the same inputs (the label INPUTS: this collection's files as built, its dependencies' manifests, the
definition and the base image) is kept as it is, as the sandbox's snapshots are: a fresh clone of the same tree
costs no build (the tarball's timestamps would otherwise miss podman's cache from the galaxy stage on).
--rebuild builds anyway. Prints the image's name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "ee" / "collections"
BASE = "localhost/migsandbox-base:latest"
INPUTS = "io.prismaguard.ee.inputs"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, text=True, cwd=ROOT, **kwargs)


def installed(name: str) -> Path:
    """Where the `ansible` package installed a collection (not this repository's link, not ~/.ansible)."""
    import ansible_collections

    for root in map(Path, ansible_collections.__path__):
        path = root / name.replace(".", "/")
        if (path / "MANIFEST.json").is_file() and path.resolve() != ROOT:
            return path
    sys.exit(f"ee-build: the collection {name} is not installed with the ansible package: run bin/bootstrap")


def needed() -> list[str]:
    """The collection's dependencies (galaxy.yml), then theirs (each one's MANIFEST.json), each once."""
    names = list(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])
    for name in names:
        manifest = json.loads((installed(name) / "MANIFEST.json").read_text())
        names += [dep for dep in manifest["collection_info"]["dependencies"] if dep not in names]
    return names


def stage() -> None:
    """ee/collections as ee/requirements.yml names it."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    run(["ansible-galaxy", "collection", "build", str(ROOT), "--output-path", str(STAGE)], stdout=subprocess.DEVNULL)
    [tarball] = STAGE.glob("prismaguard-migrate-*.tar.gz")
    tarball.rename(STAGE / "prismaguard-migrate.tar.gz")
    for name in needed():
        shutil.copytree(installed(name), STAGE / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.rmtree(STAGE / name / "tests", ignore_errors=True)  # their own tests: not needed to run


def base_image(name: str) -> str:
    if subprocess.run(["podman", "image", "exists", name], check=False).returncode != 0:
        sys.exit(f"ee-build: no image {name}: build the sandbox first (bin/sandbox up), or pass --base")
    return name


def inputs(stage: Path, base_id: str) -> str:
    """What the image is built from, by content: the collection tarball's members (names, modes and bytes, not
    its timestamps), the staged dependencies' manifests, the definition, its requirements and the base image's id."""
    digest = hashlib.sha256()
    for path in (ROOT / "execution-environment.yml", ROOT / "ee" / "requirements.yml"):
        digest.update(path.read_bytes())
    digest.update(base_id.encode())
    with tarfile.open(stage / "prismaguard-migrate.tar.gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda member: member.name):
            digest.update(f"{member.name}\0{member.mode:o}\0".encode())
            if member.isfile():
                digest.update(tar.extractfile(member).read())
    for manifest in sorted(stage.glob("*/*/MANIFEST.json")):
        digest.update(manifest.read_bytes())
    return digest.hexdigest()[:16]


def image_id(name: str) -> str:
    return run(["podman", "image", "inspect", "--format", "{{.Id}}", name], capture_output=True).stdout.strip()


def built_from(tag: str) -> str | None:
    """The inputs label of the image under the tag, if there is one."""
    found = subprocess.run(["podman", "image", "inspect", "--format", f'{{{{index .Labels "{INPUTS}"}}}}', tag],
                           check=False, capture_output=True, text=True)  # fmt: skip
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def main() -> int:
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=f"localhost/prismaguard-migrate-ee:{version}")
    parser.add_argument("--base", default=BASE, help=f"the base image (default: {BASE})")
    parser.add_argument("--rebuild", action="store_true", help="build even if the image's inputs are unchanged")
    args = parser.parse_args()
    stage()
    base = base_image(args.base)
    wanted = inputs(STAGE, image_id(base))
    if not args.rebuild and built_from(args.tag) == wanted:
        print(f"ee-build: {args.tag} is built from these inputs ({wanted}): kept", file=sys.stderr)
    else:
        run(["ansible-builder", "build", "--file", "execution-environment.yml", "--context", "ee/context",
             "--container-runtime", "podman", "--tag", args.tag, "--build-arg", f"EE_BASE_IMAGE={base}",
             f"--extra-build-cli-args=--label={INPUTS}={wanted}", "--verbosity", "2"])  # fmt: skip
    print(args.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
