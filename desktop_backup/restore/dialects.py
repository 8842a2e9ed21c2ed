"""Each dialect's session settings for a restore, set before the first row and put back after.

MySQL/MariaDB: NO_AUTO_VALUE_ON_ZERO (so id 0 stays 0), the time zone the backup's TIMESTAMPs
were read in, the largest statement the server takes, and the private folder LOAD DATA reads
from. PostgreSQL: deferred constraints and ISO dates. SQLite: BEGIN IMMEDIATE, a bigger page
cache, and foreign keys switched only outside a transaction. The connection never returns to
the pool with these settings.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.archive import Manifest
from desktop_backup.errors import DesktopBackupError
from desktop_backup.scratch import ScratchFolder

log = logging.getLogger(__name__)
SQLITE_CACHE_KB = 8 * 1024
# How a server is told to insert a table's rows without checking their foreign keys, and to
# check them again (the transaction decides for which tables); both run in order with the inserts.
UNCHECKED_SWITCH = {
    "mysql": ("SET SESSION foreign_key_checks = 0", "SET SESSION foreign_key_checks = 1"),
    "postgresql": ("SET LOCAL session_replication_role = replica",
                   "SET LOCAL session_replication_role = origin"),
}
_TIME_ZONE = re.compile(r"[+-]\d{2}:\d{2}")


class SessionSettings:
    """The dialect's settings for the transaction, and putting them back afterwards."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.restore: list[tuple[str, tuple]] = []  # statements that put the session back
        self.table = ""  # the table being written, for error messages
        self.committing = False
        self.mysql_literals = False  # MySQL parses JSON-escaped text as its own string literals
        self.max_statement = 1024 * 1024
        # MySQL/MariaDB on a connection that may LOAD DATA LOCAL (_connect): the private
        # folder its batches pass through (inserters.LoadData)
        self.load_folder: Path | None = None
        self.scratch: ScratchFolder | None = None
        self.load_refused = False  # the server refused one LOAD DATA: INSERTs for the rest

    def begin(self, manifest: Manifest, may_load: bool = False) -> None:
        conn = self.conn
        dialect = conn.dialect.name
        if dialect == "sqlite":
            # A bigger page cache for this transaction (the default is 2 MB): index pages
            # stay in memory while a million rows go in. Put back afterwards. 8 MB, not more:
            # the cache fills and counts in the restore's RSS (32 MB took a wide restore to
            # 158 MB, over the 150 MB target, and was no faster than 8 on 300k wide rows).
            cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            self.restore.append((f"PRAGMA cache_size = {int(cache)}", ()))
            conn.exec_driver_sql(f"PRAGMA cache_size = {-SQLITE_CACHE_KB}")
            self.begin_sqlite()
        elif dialect == "mysql":
            saved = tuple(conn.exec_driver_sql(
                "SELECT @@SESSION.sql_mode, @@SESSION.time_zone, "
                "@@SESSION.foreign_key_checks").one())
            self.restore.append(("SET SESSION sql_mode = %s, time_zone = %s, "
                                 "foreign_key_checks = %s", saved))
            conn.exec_driver_sql("SET SESSION sql_mode = CONCAT_WS(',', NULLIF("
                                 "@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')")
            zone = str(manifest.source.get("session_time_zone") or "")
            if manifest.kind == "native" and _TIME_ZONE.fullmatch(zone):
                conn.exec_driver_sql(f"SET time_zone = '{zone}'")  # as TIMESTAMPs were read
            modes = set(str(saved[0] or "").upper().split(","))
            self.mysql_literals = not modes & {"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES"}
            packet = conn.exec_driver_sql("SELECT @@SESSION.max_allowed_packet").scalar()
            self.max_statement = max(64 * 1024, min(int(packet or 0) // 2, 8 * 1024 * 1024))
            if may_load and self.mysql_literals:
                self.load_folder = self._scratch_folder()
        elif dialect == "postgresql":
            conn.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")  # those that can be
            # Dates read back as the backup holds them (ISO); the input order is kept.
            conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")

    def begin_reading(self, manifest: Manifest) -> None:
        """Only what reading live values as the backup holds them needs (the check's
        comparison): MySQL's time zone as the backup's TIMESTAMPs were read, PostgreSQL's
        ISO dates. No lock is taken; `end` puts the session back."""
        conn = self.conn
        if conn.dialect.name == "mysql":
            zone = str(manifest.source.get("session_time_zone") or "")
            if manifest.kind == "native" and _TIME_ZONE.fullmatch(zone):
                saved = conn.exec_driver_sql("SELECT @@SESSION.time_zone").scalar()
                self.restore.append(("SET SESSION time_zone = %s", (saved,)))
                conn.exec_driver_sql(f"SET time_zone = '{zone}'")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")

    def begin_sqlite(self, foreign_keys: bool = True) -> None:
        """BEGIN IMMEDIATE: the write lock now, not halfway. SQLite switches foreign keys
        only outside a transaction, so doing without them means starting again."""
        conn = self.conn
        switched = ("PRAGMA foreign_keys = ON", ())
        if not foreign_keys and switched not in self.restore:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            self.restore.append(switched)
        elif foreign_keys and switched in self.restore:
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            self.restore.remove(switched)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT

    def _scratch_folder(self) -> Path | None:
        """A locked folder in the console's private scratch parent, which the next start
        sweeps if this process is killed; None (rows go through INSERTs) if none can be made."""
        try:
            self.scratch = ScratchFolder()
        except (OSError, DesktopBackupError) as exc:
            log.warning("No private folder for LOAD DATA (%s); inserting rows instead", exc)
            return None
        return self.scratch.path

    def end(self) -> None:
        if self.scratch is not None:
            self.scratch.remove()  # the last batch's rows
            self.scratch, self.load_folder = None, None
        if not self.restore:
            return
        try:
            self.conn.rollback()  # nothing is left open: these run outside a transaction
            for statement, params in self.restore:
                self.conn.exec_driver_sql(statement, params)
            self.conn.rollback()
        except SQLAlchemyError:
            self.conn.invalidate()  # never hand a connection with our settings to the pool
