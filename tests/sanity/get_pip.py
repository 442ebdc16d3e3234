"""Stands in for the get-pip.py that ansible-test downloads from ci-files.testing.ansible.com (not reachable
here): pip from the interpreter's own ensurepip, then `pip install` with ansible-test's arguments, from PyPI."""

import ensurepip
import os
import runpy
import sys

config = os.environ.get("PIP_CONFIG_FILE")
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for itself: the install below reads the machine's pip settings.
if config is None:
    os.environ.pop("PIP_CONFIG_FILE", None)
else:
    os.environ["PIP_CONFIG_FILE"] = config
# --no-setuptools and --no-wheel are get-pip's own options (leave those out), not pip install's.
sys.argv = ["pip", "install", *(a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel"))]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
