"""What the window depends on, passed in as one value rather than looked up.

Folders, settings, the clock, the login throttle's clock, the backup and restore functions
and the dialogs are all here, so a test builds an Env with a temporary folder, a fixed date and
answering prompts, and drives the real widgets against a real database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from desktop_backup.auth import LoginThrottle
from desktop_backup.awake import kept_awake
from desktop_backup.backup import BackupResult, run_backup
from desktop_backup.config import (
    AppPaths,
    Settings,
    load_settings,
    prepare_own_folders,
    save_settings,
)
from desktop_backup.restore import RestoreResult, apply_restore
from desktop_backup.ui.prompts import Prompts
from desktop_backup.work import Clock, local_now

BackupRunner = Callable[..., BackupResult]
RestoreRunner = Callable[..., RestoreResult]


def backup_kept_awake(*args, **kwargs) -> BackupResult:
    """``run_backup`` with App Nap held off on macOS (a scheduled run happens while hidden)."""
    with kept_awake("Desktop Backup is backing up"):
        return run_backup(*args, **kwargs)


@dataclass
class Env:
    paths: AppPaths
    settings: Settings
    clock: Clock = local_now
    throttle_clock: Callable[[], float] = time.time
    backup_runner: BackupRunner = backup_kept_awake
    restore_runner: RestoreRunner = apply_restore
    prompts: Prompts = field(default_factory=Prompts)

    @classmethod
    def load(cls, paths: AppPaths | None = None, **kwargs) -> Env:
        paths = paths or AppPaths.default()
        return cls(paths=paths, settings=load_settings(paths), **kwargs)

    def throttle(self) -> LoginThrottle:
        return LoginThrottle(self.paths.login_throttle_file, clock=self.throttle_clock)

    def save(self) -> None:
        save_settings(self.paths, self.settings)

    @property
    def backup_folder(self) -> Path:
        return self.settings.backup_folder(self.paths)

    def prepare_default_folder(self) -> None:
        """Create the console's own folders (config.prepare_own_folders): the default backup
        folder on a fresh install; a folder the person chose is left to the core's check."""
        prepare_own_folders(self.paths, self.settings)
