#!/usr/bin/python
"""Ansible module: read a PM2 app's instances (id, status, pid, restarts), never its environment."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pm2_app_info
short_description: Read a PM2 app's instances, never its environment
description:
  - Reads C(pm2 jlist) as the user the task runs as and returns each instance of one app with its id, status,
    pid and restart count.
  - C(pm2 jlist) carries each app's whole environment (C(DATABASE_URL) included); this module returns none of it.
  - M(prismaguard.migrate.pm2_app) starts, reloads, restarts and stops the app.
options: {}
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - prismaguard.migrate.pm2
  - ansible.builtin.action_common_attributes
author:
  - Prisma migrate automation maintainers (@prismaguard)
"""

EXAMPLES = r"""
- name: Wait until every instance of the backend is online.
  prismaguard.migrate.pm2_app_info:
    name: backend
  become: true
  become_user: deploy
  register: backend
  until: backend.online
  retries: 20
  delay: 1
"""

RETURN = r"""
instances:
  description: Each instance of the app; empty when PM2 does not know it.
  returned: always
  type: list
  elements: dict
  sample: [{pm_id: 0, status: online, pid: 4242, restarts: 1, exec_mode: cluster_mode}]
online:
  description: Whether every instance is online (and there is at least one).
  returned: always
  type: bool
stopped:
  description: Whether every instance is stopped.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prismaguard.migrate.plugins.module_utils.pm2 import ARGUMENT_SPEC, read, summary


def main():
    module = AnsibleModule(argument_spec=dict(ARGUMENT_SPEC), supports_check_mode=True)
    module.exit_json(changed=False, **summary(read(module, module.params["name"])))


if __name__ == "__main__":
    main()
