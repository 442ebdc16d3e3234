"""The options the PM2 modules share (which app, where, which pm2), documented once."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  name:
    description: The app's name in PM2.
    type: str
    required: true
  chdir:
    description: Directory to run PM2 in.
    type: path
  executable:
    description: The pm2 executable.
    type: path
    default: pm2
"""
