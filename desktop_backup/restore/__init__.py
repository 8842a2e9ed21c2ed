"""Restoring an organization from a backup: the public API (the modules follow)."""

from desktop_backup.restore.flow import *  # noqa: F403 - interim: the package is being laid out
from desktop_backup.restore.flow import __all__  # noqa: F401
