"""Waiting for a database that another program holds locked: briefly, visibly, cancellably.

The billing program locks its database while it writes (SQLite's ``BEGIN EXCLUSIVE``, a
row or table lock on a server). A backup that meets such a lock does not fail at once: it
says "The billing program is busy; waiting…" through its progress callback and tries again
every second, up to a bound (two minutes by default, injectable so tests use seconds), then
ends with a sentence a shop owner can act on. A cancel ends the wait at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import Engine

from desktop_backup.db import describe
from desktop_backup.errors import DatabaseUnavailable
from desktop_backup.work import CancelFlag, Cancelled, Progress, ProgressCallback

T = TypeVar("T")
BUSY_WAIT_S = 120.0
WAITING = "The billing program is busy; waiting…"
# MySQL/MariaDB: lock wait timeout, deadlock. PostgreSQL: lock_not_available, deadlock.
_MYSQL_BUSY = {1205, 1213}
_PG_BUSY = {"55P03", "40P01"}


class DatabaseBusy(DatabaseUnavailable):
    """The database stayed locked by another program for longer than the backup waits."""


def is_busy(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is a lock held by someone else, worth a wait."""
    seen = 0
    while exc is not None and seen < 8:
        orig = getattr(exc, "orig", None) or exc
        message = str(orig).lower()
        if isinstance(orig, sqlite3.OperationalError) and (
                "database is locked" in message or "database table is locked" in message
                or "database is busy" in message):
            return True
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int) and args[0] in _MYSQL_BUSY:
            return True
        if getattr(orig, "sqlstate", None) in _PG_BUSY:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


@dataclass
class BusyWait:
    """One operation's patience: every step run through it shares the same bound."""

    limit_s: float = BUSY_WAIT_S
    progress: ProgressCallback | None = None
    cancel: CancelFlag | None = None
    poll_s: float = 1.0
    cancelled: str = ("The backup was cancelled while it waited for the billing program; "
                      "nothing was changed.")
    _since: float | None = None

    def run(self, engine: Engine, step: Callable[[], T]) -> T:
        """`step()`, tried again while the database is busy, until the bound is passed."""
        while True:
            tried = time.monotonic()  # a server statement may have waited for the lock itself
            try:
                return step()
            except Exception as exc:
                if not is_busy(exc):
                    raise
                self._wait(engine, exc, tried)

    def _wait(self, engine: Engine, exc: BaseException, tried: float) -> None:
        now = time.monotonic()
        if self._since is None:
            self._since = tried
        if now - self._since >= self.limit_s:
            raise DatabaseBusy(
                f"{describe(engine.url)[:1].upper()}{describe(engine.url)[1:]} stayed busy "
                f"(locked by another program, probably the billing program) for "
                f"{_duration(self.limit_s)}; let it finish what it is doing, or close it, and "
                "try again. Nothing was changed.") from exc
        if self.progress is not None:
            self.progress(Progress("", 0, 0, 0, 0, waiting=WAITING))
        deadline = time.monotonic() + self.poll_s
        while time.monotonic() < deadline:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled(self.cancelled) from exc
            time.sleep(min(0.1, self.poll_s))


def probe_sqlite(engine: Engine) -> None:
    """Raise at once (sqlite3's 'database is locked') when another program holds the SQLite
    file's write lock, so the wait shows from the first second, not after a busy timeout."""
    if engine.dialect.name != "sqlite":
        return
    conn = sqlite3.connect(engine.url.database, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
    finally:
        conn.close()


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"
