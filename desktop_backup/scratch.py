"""Temporary files that hold an organization's rows, and the sweep for those a killed run left.

A restore on MariaDB writes rows in clear text for LOAD DATA, and every archive is written to
a ``.partial`` file before it replaces its slot; a killed process removes neither. So each
such file says whether its process still lives: it is locked (flock on POSIX, a byte-range
lock on Windows) for as long as it is in use, and a sweep removes only what nobody holds.
Scratch folders live in one known parent private to this user (``<temp>/desktop-backup-<uid>``)
so the sweep knows where to look and never reads another user's files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from desktop_backup.errors import DesktopBackupError

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "run-"
LOCK_NAME = ".lock"
# A .partial may sit on a share that another workstation writes to, where our lock proves
# nothing; one that has not grown for this long is no live writer's.
PARTIAL_QUIET_SECONDS = 15 * 60
# A scratch folder is locked a moment after it is made; until then its age speaks for it.
UNLOCKED_GRACE_SECONDS = 60 * 60


def try_lock(fd: int) -> bool:
    """Take the lock on an open file without waiting; False when another process holds it."""
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold `path`'s lock while the body runs, so a sweep knows its writer is alive."""
    fd = os.open(path, os.O_RDWR)
    try:
        if not try_lock(fd):
            log.debug("Could not lock %s; it is guarded by its age only", path)
        yield
    finally:
        os.close(fd)


def scratch_parent() -> Path:
    """``<temp>/desktop-backup-<uid>``, created owner-only; refused if someone else owns it."""
    tag = os.getuid() if hasattr(os, "getuid") else _windows_user()
    parent = Path(tempfile.gettempdir()) / f"desktop-backup-{tag}"
    with contextlib.suppress(FileExistsError):
        parent.mkdir(mode=0o700)
    info = os.lstat(parent)
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise DesktopBackupError(
            f"The temporary folder {parent} is not this user's own; remove it and try again.")
    if hasattr(os, "getuid") and info.st_mode & 0o077:
        os.chmod(parent, 0o700)
    return parent


def _windows_user() -> str:
    name = os.environ.get("USERNAME") or "user"
    return "".join(c for c in name if c.isalnum() or c in "-_") or "user"


class ScratchFolder:
    """A private folder for one run's clear-text files, locked until :meth:`remove`."""

    def __init__(self, parent: Path | None = None) -> None:
        parent = parent or scratch_parent()
        self.path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent))
        self._fd: int | None = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try_lock(self._fd)

    def remove(self) -> None:
        """Delete the folder and what it holds (the lock goes first, for Windows' sake)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        shutil.rmtree(self.path, ignore_errors=True)


def _owner_gone(path: Path) -> bool:
    """Whether the process that locked `path` has ended (we can take its lock)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        return try_lock(fd)
    finally:
        os.close(fd)


def _quiet_for(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def sweep_scratch(parent: Path | None = None) -> int:
    """Remove the scratch folders of processes that have ended; returns how many."""
    try:
        parent = parent or scratch_parent()
        children = list(parent.iterdir())
    except (OSError, DesktopBackupError):
        return 0
    removed = 0
    for child in children:
        if not child.name.startswith(SCRATCH_PREFIX) or child.is_symlink() or not child.is_dir():
            continue
        lock = child / LOCK_NAME
        gone = _owner_gone(lock) if lock.exists() else _quiet_for(child, UNLOCKED_GRACE_SECONDS)
        if gone:
            shutil.rmtree(child, ignore_errors=True)
            removed += not child.exists()
    return removed


def sweep_partials(folder: Path) -> int:
    """Remove ``.partial`` archives in the backup folder and its subfolders (the restore
    points) that no live process is writing (unlocked, and quiet for a while); returns how
    many."""
    removed = 0
    for pattern in (".*.partial", "*/.*.partial"):
        try:
            leftovers = [p for p in Path(folder).glob(pattern) if not p.is_symlink()]
        except OSError:
            continue
        for path in leftovers:
            if (path.is_file() and _quiet_for(path, PARTIAL_QUIET_SECONDS)
                    and _owner_gone(path)):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
    return removed


def sweep_leftovers(backup_folder: Path | None) -> int:
    """Everything a killed run may have left: scratch folders, then the folder's partials.

    Called at start-up and after every backup and restore; never raises (a sweep that
    cannot run must not stop the work it follows)."""
    removed = sweep_scratch()
    if backup_folder is not None:
        removed += sweep_partials(backup_folder)
    if removed:
        log.info("Removed %d temporary file(s) or folder(s) left by interrupted runs", removed)
    return removed
