"""One backup file at a time: check it, save a copy elsewhere, delete it; each leaves
its audit line."""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.audit import audit_entry, write_audit
from desktop_backup.authenticity import read_key
from desktop_backup.db import friendly_error
from desktop_backup.encryption import is_age_file
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import WEEKDAYS, backup_with_sha256, ensure_tables
from desktop_backup.offsite import file_sha256
from desktop_backup.opening import VerifyReport, verify_archive
from desktop_backup.usecases.on_disk import file_now
from desktop_backup.usecases.session import ActingUser
from desktop_backup.work import Site


def copy_name(source: Path, made: date) -> str:
    """A copy's suggested name: the day's date instead of the weekday
    (org_MEDP_2026-12-01_backup.zip), so weekly copies to one stick never overwrite."""
    day = made.strftime("%Y-%m-%d")
    name, count = re.subn(r"_(monday|tuesday|wednesday|thursday|friday|saturday|sunday)_",
                          f"_{day}_", source.name, count=1, flags=re.IGNORECASE)
    return name if count else f"{source.stem}_{day}{source.suffix}"


def _owner_only(path: Path) -> None:
    try:
        os.chmod(path, 0o600)  # a stale .partial with wider permissions, reused
    except OSError:
        pass  # a file system without permissions


def save_copy(site: Site, actor: ActingUser, source: Path, destination: Path) -> Path:
    """Copy a backup somewhere else (a USB stick, say), completely or not at all."""
    source, destination = Path(source), Path(destination)
    started = time.monotonic()
    if source.resolve() == destination.resolve():
        raise DesktopBackupError("That is the backup itself; choose another place for the copy.")
    tmp = destination.with_name(f".{destination.name}.partial")
    try:
        # As private as the backup itself: owner-only from the first byte (where the OS
        # allows; a USB stick's FAT has no owners and ignores it).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(src, handle, 1024 * 1024)
            handle.flush()
            os.fsync(handle.fileno())
        _owner_only(tmp)
        os.replace(tmp, destination)
    except FileNotFoundError as exc:
        tmp.unlink(missing_ok=True)
        missing = source if not source.exists() else destination.parent
        raise DesktopBackupError(f"{missing} is not there any more; nothing was copied.") from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DesktopBackupError(
            f"The copy to {destination} failed ({exc.strerror or exc}); nothing was copied."
        ) from exc
    size = destination.stat().st_size
    write_audit(site.engine, audit_entry(
        "save_copy", actor.organization_id, actor, trigger="manual",
        day_of_week=_weekday_in_name(source), file=str(destination), bytes=size,
        duration_ms=int((time.monotonic() - started) * 1000),
        message=f"Copy of {source.name} saved.", backup_id=_identity(destination)),
        site.clock())
    return destination


def delete_backup(site: Site, actor: ActingUser, path: Path) -> None:
    """Delete one backup file, and say so in the audit."""
    path = Path(path)
    size = path.stat().st_size if path.is_file() else None
    backup_id = _identity(path)
    try:
        path.unlink()
    except FileNotFoundError:
        raise DesktopBackupError(f"{path.name} was already gone.") from None
    except OSError as exc:
        raise DesktopBackupError(
            f"{path.name} could not be deleted ({exc.strerror or exc}).") from exc
    write_audit(site.engine, audit_entry(
        "delete", actor.organization_id, actor, trigger="manual",
        day_of_week=_weekday_in_name(path), file=str(path), bytes=size,
        message=f"{path.name} deleted.", backup_id=backup_id), site.clock())


def _identity(path: Path) -> str | None:
    """The backup id a file holds (None without one), recorded with what is done to it."""
    now = file_now(path, datetime.now())
    return now.backup_id or None if now else None


def database_key(engine: Engine) -> bytes | None:
    """The key this database's console seals its backups with (None before the first
    backup): with it, a check also says whether a file was changed since it was written."""
    try:
        with engine.connect() as conn:
            return read_key(conn)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def written_as(engine: Engine, path: Path) -> str | None:
    """When the database's history recorded a backup whose file had exactly this file's
    SHA-256 ("on 2026-12-02 14:11, Wednesday's backup"), for an encrypted file no key here
    opens; None for any other file, or when the history cannot be read."""
    if not is_age_file(path):
        return None
    try:
        _slots, audit = ensure_tables(engine)
        entry = backup_with_sha256(engine, audit, file_sha256(path))
    except (SQLAlchemyError, OSError):
        return None
    if entry is None or entry.occurred_at is None:
        return None
    day = f", {entry.day_of_week.capitalize()}'s backup" if entry.day_of_week else ""
    return f"on {entry.occurred_at:%Y-%m-%d %H:%M}{day}"


def verify(site: Site, actor: ActingUser, path: Path) -> VerifyReport:
    """Read every byte of a backup and record the verdict."""
    started = time.monotonic()
    try:
        key = database_key(site.engine)
    except DesktopBackupError:
        key = None  # the file is still checked; only whether it changed stays open
    report = verify_archive(Path(path), key, [actor.organization_id],
                            lambda: written_as(site.engine, Path(path)))
    write_audit(site.engine, audit_entry(
        "verify", actor.organization_id, actor, trigger="manual",
        outcome="success" if report.ok else "failed", day_of_week=_weekday_in_name(Path(path)),
        file=str(path), rows=report.rows if report.ok else None,
        bytes=Path(path).stat().st_size if Path(path).is_file() else None,
        duration_ms=int((time.monotonic() - started) * 1000), message=report.message,
        backup_id=report.backup_id or None), site.clock())
    return report


def _weekday_in_name(path: Path) -> str | None:
    for day in WEEKDAYS:
        if f"_{day}_" in path.name:
            return day
    return None
