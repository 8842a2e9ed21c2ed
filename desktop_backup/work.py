"""The vocabulary of long work, shared by the core, the command line and the window.

Who does it (Actor), where and how (Site: the billing database as this console reads it,
and the clock that says what 'today' is), how far it has got (Progress) and how to stop it
(CancelFlag, Cancelled). These are words, not machinery: this module imports nothing of the
project but the error base class, so every floor can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from desktop_backup.errors import DesktopBackupError

if TYPE_CHECKING:  # types only: the engine and mapping are passed in, never built here
    from sqlalchemy.engine import Engine

    from desktop_backup.config import SchemaMapping

Clock = Callable[[], datetime]


def local_now() -> datetime:
    """The workstation's local time, aware: 'today' is the shop's date, not UTC's."""
    return datetime.now().astimezone()


class Cancelled(DesktopBackupError):
    """The user cancelled; nothing was replaced."""


@dataclass(frozen=True)
class Progress:
    """Where a long operation is, for a progress bar: table i of n, rows done of total (for
    a transfer off-site: file i of n, and bytes, as `unit` says)."""

    table: str
    table_index: int
    table_count: int
    rows_done: int
    rows_total: int
    waiting: str = ""  # set while the database is busy: what the person is waiting for
    unit: str = "rows"  # what rows_done counts: "rows", or "bytes" for a transfer


ProgressCallback = Callable[[Progress], None]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Actor:
    """Who started the operation, for the slot table and the audit; and, for a restore,
    what they hold (restore privileges): an actor whose role is not known holds nothing."""

    user_id: int
    username: str
    role: str = ""
    is_owner: bool = False

    @classmethod
    def of(cls, session) -> Actor:
        """The logged-in user of an auth.Session."""
        return cls(session.user_id, session.username, session.role, session.is_owner)


@dataclass(frozen=True)
class Site:
    """Where and how a job runs: the billing database, how this console maps its schema,
    and the clock that says what 'now' is. One value instead of the same three parameters
    on every function that reads or writes an organization."""

    engine: Engine
    mapping: SchemaMapping
    clock: Clock = local_now
