"""A claim on an organization's backup that dies with the process holding it.

Two workstations must never both make an organization's backup, and a backup that was killed
(kill -9, a power cut) must block nothing. A row in a table cannot tell a crashed run from a
slow one, so the claim is a lock the database itself drops when its holder goes away:
MariaDB/MySQL ``GET_LOCK`` and PostgreSQL ``pg_try_advisory_lock`` on a connection of its
own, and for SQLite (which has no sessions) an OS lock on a small file beside the database
file, which the OS releases when the process ends. Every attempt is non-blocking: a second
claimant learns at once that a live run holds the organization.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.db import friendly_error
from desktop_backup.errors import DesktopBackupError


class ClaimLost(DesktopBackupError):
    """The connection holding the backup's claim went away mid-run."""


class RunLock:
    """The organization's backup lock: acquire() once, release() always (also on failure)."""

    def acquire(self) -> bool:
        """Take the lock if no live process holds it; never waits."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise ClaimLost when the lock can no longer be trusted (its connection died)."""

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def run_lock(engine: Engine, org_id: int) -> RunLock:
    """The lock for backups of `org_id` in the database `engine` points at."""
    name = engine.dialect.name
    if name == "sqlite":
        return _FileLock(lock_file_for(engine, org_id))
    if name == "mysql":
        return _ServerLock(engine, "SELECT GET_LOCK(:key, 0)", "SELECT RELEASE_LOCK(:key)",
                           _mysql_key(engine, org_id))
    if name == "postgresql":
        return _ServerLock(engine, "SELECT pg_try_advisory_lock(:key)",
                           "SELECT pg_advisory_unlock(:key)", _pg_key(org_id))
    raise DesktopBackupError(f"Backups of '{name}' databases are not supported.")


def lock_file_for(engine: Engine, org_id: int) -> Path:
    """Beside the SQLite file, named like SQLite's own ``-journal``: every workstation that
    opens the database file (also over a share) sees the same lock file."""
    database = Path(engine.url.database or "")
    return database.with_name(f"{database.name}-desktop-backup-{org_id}.lock")


def _mysql_key(engine: Engine, org_id: int) -> str:
    # GET_LOCK names are server-wide and at most 64 characters: name the database by a hash.
    database = hashlib.sha256((engine.url.database or "").encode()).hexdigest()[:16]
    return f"desktop_backup:{database}:{org_id}"


def _pg_key(org_id: int) -> int:
    # Advisory locks are per database already; one signed 64-bit key per organization.
    digest = hashlib.sha256(f"desktop_backup:{org_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _ServerLock(RunLock):
    """A session lock on a connection used for nothing else, so no query of the backup
    (nor the pool) can end the session that holds it."""

    def __init__(self, engine: Engine, take: str, give: str, key: str | int) -> None:
        self.engine, self.take, self.give, self.key = engine, take, give, key
        self.conn: Connection | None = None

    def acquire(self) -> bool:
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise friendly_error(exc, self.engine.url) from exc
        try:
            won = bool(conn.execute(text(self.take), {"key": self.key}).scalar())
            conn.commit()
        except SQLAlchemyError as exc:
            conn.invalidate()
            conn.close()
            raise friendly_error(exc, self.engine.url) from exc
        if not won:
            conn.close()
            return False
        self.conn = conn
        return True

    def check(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(text("SELECT 1"))
            self.conn.commit()
        except SQLAlchemyError as exc:
            raise ClaimLost("The connection to the database was lost during the backup; "
                            "try again. The previous copy was kept.") from exc

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.execute(text(self.give), {"key": self.key})
            conn.commit()
        except SQLAlchemyError:
            conn.invalidate()  # closing the session is what frees the lock then
        finally:
            conn.close()


class _FileLock(RunLock):
    """An exclusive OS lock on a file: flock on POSIX (per open file, so two connections in
    one process exclude each other too), msvcrt.locking on Windows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DesktopBackupError(
                f"The lock file {self.path} beside the database cannot be created "
                f"({exc.strerror}); check that its folder can be written to.") from exc
        if not _try_lock(fd):
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            _unlock(fd)
            os.close(fd)


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
