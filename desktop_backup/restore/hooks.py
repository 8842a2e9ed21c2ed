"""Where a test or a benchmark watches, or steers, a restore's transaction without patching it.

:func:`desktop_backup.restore.apply_restore` takes a :class:`RestoreHooks` (``hooks=``); the
transaction and the inserters call it at the moments worth seeing. The defaults do nothing and
change nothing, so a restore without hooks is the restore. A caller subclasses it and
overrides what it wants to see; what a method returns is used only where it says so.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection

UNCHECKED_MIN_ROWS = 20_000  # new rows worth starting SQLite's transaction again for


class RestoreHooks:
    """The moments of one restore's transaction, in the order they happen."""

    def __init__(self, unchecked_min_rows: int = UNCHECKED_MIN_ROWS) -> None:
        # SQLite starts its transaction again without foreign keys only for this many new
        # rows or more (a test lowers it, to take that path with the small demo).
        self.unchecked_min_rows = unchecked_min_rows

    def started(self) -> None:
        """The transaction is about to open the archive and connect."""

    def connected(self, conn: Connection) -> None:
        """The restore's one connection is open; nothing has been set or written yet."""

    def keys_compared(self, conn: Connection) -> None:
        """The organization's keys were matched with the backup's, inside the transaction
        (again each time the transaction starts over)."""

    def sqlite_unchecked(self, decided: bool) -> bool:
        """SQLite: whether to restore without enforcing foreign keys (`decided`, by the
        rules of transaction.sqlite_without_foreign_keys). Returns the answer to use."""
        return decided

    def foreign_key_checks_skipped(self, skipped: bool) -> None:
        """PostgreSQL: whether the new rows go in without the per-row foreign key triggers."""

    def loading(self, file: Path) -> None:
        """MySQL/MariaDB: a group of rows is about to be loaded from `file` (LOAD DATA)."""

    def loaded(self, file: Path, arrived: bool) -> None:
        """The load from `file` ended; `arrived`: its rows arrived whole and unbent (if not,
        they were rolled back to the savepoint and go in as INSERTs)."""

    def committed(self) -> None:
        """The transaction committed."""
