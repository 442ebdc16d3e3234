"""Action plugin: migration_lint runs in Ansible's own process on the controller.

The lint needs nothing from a host, and pglast and squawk-cli are installed on the
controller with this project: shipping the module to localhost and starting a
Python for it cost a second a run for nothing. The module file keeps the
documentation and the same code for a run without this plugin.
"""

from __future__ import annotations

import json

from ansible.plugins.action import ActionBase
from ansible_collections.prismaguard.migrate.plugins.module_utils import migration_lint


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, params = self.validate_argument_spec(argument_spec=migration_lint.ARGUMENT_SPEC)
        # Plain types, as a module gets them: Ansible tags its strings, and pglast parses only str.
        params = json.loads(json.dumps(params))
        try:
            result.update(migration_lint.lint_params(params))
        except ValueError as exc:
            result.update(failed=True, msg=str(exc))
        result["changed"] = False
        return result
