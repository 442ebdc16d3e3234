"""Every module of ours renders in ansible-doc and documents exactly its arguments."""

from __future__ import annotations

import importlib.util
import json
from unittest import mock

import pytest
import yaml
from ansible.module_utils import basic
from conftest import ROOT, run

MODULES = sorted(p for p in (ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py")


def load(path):
    # Its module_utils import by the collection's name (tests/conftest.py puts the collection on the path).
    spec = importlib.util.spec_from_file_location(f"_doc_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def argument_spec(module) -> dict:
    """Capture the spec main() hands to AnsibleModule, without running the module."""
    captured = {}

    class Captured(Exception):
        pass

    def fake_init(self, argument_spec, **kwargs):
        captured.update(argument_spec)
        raise Captured

    with mock.patch.object(basic.AnsibleModule, "__init__", fake_init), pytest.raises(Captured):
        module.main()
    return captured


def test_there_are_modules_to_check():
    assert MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_ansible_doc_renders_the_module(path):
    result = run(["ansible-doc", "-M", str(path.parent), path.stem])
    assert result.returncode == 0, result.stderr
    assert "OPTIONS" in result.stdout and "EXAMPLES" in result.stdout and "RETURN VALUES" in result.stdout


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_documented_options_match_the_argument_spec(path):
    module = load(path)
    # As ansible-doc renders it: the doc fragments' options merged in.
    rendered = run(["ansible-doc", "--json", f"prismaguard.migrate.{path.stem}"])
    assert rendered.returncode == 0, rendered.stderr
    documented = json.loads(rendered.stdout)[f"prismaguard.migrate.{path.stem}"]["doc"]["options"]
    spec = argument_spec(module)
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert doc.get("type", "str") == option.get("type", "str"), name
        assert bool(doc.get("required")) == bool(option.get("required")), name
        if "default" in option:
            assert doc.get("default") == option["default"], name
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_secret_options_are_never_logged(path):
    spec = argument_spec(load(path))
    for name, option in spec.items():
        if any(word in name for word in ("password", "url", "token", "secret")):
            assert option.get("no_log") is True, f"{path.stem}: {name} must be no_log"
