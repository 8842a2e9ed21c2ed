"""What the window and the command line ask of the core, as plain functions: one path for
both, so a login, an overview or a deleted file means the same wherever it was asked for.

Qt-free on purpose: each function here composes core calls (connect, log in, read the week
and the history, check, copy or delete a backup, change a setting, send copies off-site),
writes the audit line that says so (audit.py) and returns a dataclass, so it can be tested
without a display, run by the window on a worker thread (``TaskRunner``) and by cli.py in
line. No SQL is written here either; every statement lives in the core modules. The backup
itself is backup.run_backup and the restore desktop_backup.restore: both are called as they
are.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import inspect
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup import keystore, offsite_queue, wording
from desktop_backup.archive import (
    ArchiveError,
    VerifyReport,
    open_zip,
    read_manifest,
    verify_archive,
)
from desktop_backup.audit import audit_entry, write_audit, write_audit_quietly
from desktop_backup.auth import LoginThrottle, Session, authenticate, authorize
from desktop_backup.authenticity import read_key
from desktop_backup.backup import (
    BackupResult,
    archive_owner,
    daily_backup_due,
    settle_interrupted,
    slot_filename,
)
from desktop_backup.config import AppPaths, SchemaMapping, Settings
from desktop_backup.db import describe, friendly_error, open_engine, parse_url, reflect
from desktop_backup.errors import (
    DatabaseAuthRefused,
    DesktopBackupError,
    LockedOut,
    LoginRefused,
    UsageError,
)
from desktop_backup.history import (
    WEEKDAYS,
    AuditEntry,
    ensure_tables,
    recent,
    week_slots,
)
from desktop_backup.keystore import KeyringStatus, keyring_status
from desktop_backup.offsite import Rclone, Remote
from desktop_backup.organizations import (
    Organization,
    find_organization,
    list_organizations,
    set_auto_backup,
    set_auto_backup_tables,
)
from desktop_backup.profiles import Target, resolve_connection
from desktop_backup.restore import list_restore_points
from desktop_backup.tenancy import discover_scope
from desktop_backup.weekview import (
    DayState,
    LastBackup,
    backup_warnings,
    last_backup,
    week_states,
)
from desktop_backup.work import Actor, Site

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LoginResult:
    """An open engine and who logged in with it; the window owns the engine from now on."""

    engine: Engine
    session: Session
    profile: str | None = None  # the connection profile used, None for a --db address


class DatabasePasswordNeeded(DesktopBackupError):
    """A server connection whose password is neither saved nor typed: the server refused
    to let the console in without one."""

    def __init__(self, profile: str | None, refusal: DatabaseAuthRefused) -> None:
        name = f"'{profile}'" if profile else "this database"
        super().__init__(f"The database password for {name} is not saved on this computer; "
                         "type it in the Database password box.")
        self.profile = profile  # None for a --db address
        self.refusal = refusal  # the server's own sentence (the command line shows it)


def login(paths: AppPaths, settings: Settings, db_url: str | None, profile: str | None,
          typed_db_password: str | None, username: str, password: str,
          throttle: LoginThrottle) -> LoginResult:
    """The login's whole check, for the window and the command line alike: which database,
    its password (typed, else saved, else none), then the billing login.

    Runs on a worker thread because each step may wait: the keyring, the network, bcrypt.
    """
    target = resolve_connection(paths, settings, db_url, profile)
    result = _asking_password(target, typed_db_password, lambda db_password: connect_and_login(
        target.url, db_password, settings.mapping, username, password, throttle))
    return replace(result, profile=target.profile)


def open_database(paths: AppPaths, settings: Settings, db_url: str | None,
                  profile: str | None, typed_db_password: str | None) -> Engine:
    """The billing database an address or profile names, opened as login() opens it, for
    the commands that log nobody in (`list`, `verify`); the caller disposes of it."""
    target = resolve_connection(paths, settings, db_url, profile)
    return _asking_password(target, typed_db_password,
                            lambda db_password: open_engine(target.url, db_password))


def _asking_password(target: Target, typed: str | None, connect: Callable[[str | None], T]
                     ) -> T:
    db_password = typed or target.password
    try:
        return connect(db_password)
    except DatabaseAuthRefused as exc:
        if db_password is not None:
            raise
        # Servers with trust or socket authentication need no password; this one does.
        raise DatabasePasswordNeeded(target.profile, exc) from exc


def connect_and_login(url: str, db_password: str | None, mapping: SchemaMapping,
                      username: str, password: str, throttle: LoginThrottle) -> LoginResult:
    """Open the billing database and check the billing login, or raise a sentence why not."""
    login = (username or "").strip()
    # The same sentences authenticate() gives, before any connection is opened.
    if not login:
        raise LoginRefused("Enter your username or email address.")
    if not password:
        raise LoginRefused("Enter your password.")
    throttle.check(login)
    engine = open_engine(url, db_password)
    try:
        session = authenticate(engine, mapping, login, password, throttle)
    except LoginRefused as exc:
        # For support: who was refused and why, never the password typed.
        log.warning("Login refused for %r on this workstation: %s", login, exc)
        try:
            if not isinstance(exc, LockedOut):
                # The attempt that used up the last try says so at once (the count is kept
                # in the billing database, so ask it there).
                throttle.shared(engine).check(login)
        finally:
            engine.dispose()
        raise
    except BaseException:
        engine.dispose()
        raise
    return LoginResult(engine, session)


SERVER_KINDS = {"mysql": ("MySQL or MariaDB server", 3306),
                "postgresql": ("PostgreSQL server", 5432)}


def build_url(kind: str, *, path: str = "", host: str = "", port: int | None = None,
              database: str = "", user: str = "") -> str:
    """The profile's address from the connection form's fields, never with the password."""
    if kind == "sqlite":
        if not path.strip():
            raise UsageError("Choose the billing database file.")
        return f"sqlite:///{Path(path.strip()).expanduser().resolve()}"
    if kind not in SERVER_KINDS:
        raise UsageError(f"Unknown kind of database '{kind}'.")
    missing = [label for label, value in (("the server's address", host),
                                          ("the database name", database),
                                          ("the database user", user)) if not value.strip()]
    if missing:
        raise UsageError("Fill in " + wording.join_words(missing) + ".")
    return URL.create(kind, username=user.strip(), host=host.strip(), port=port or None,
                      database=database.strip()).render_as_string(hide_password=False)


def test_connection(url: str, password: str | None, mapping: SchemaMapping) -> str:
    """Connect once and say in words what was found; raise DesktopBackupError otherwise."""
    engine = open_engine(url, password)
    try:
        try:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
        except SQLAlchemyError as exc:
            raise friendly_error(exc, engine.url) from exc
        where = describe(parse_url(url))
        where = where[:1].upper() + where[1:]
        missing = [name for name in (mapping.tenant_table, mapping.users_table)
                   if name not in tables]
        if missing:
            raise DesktopBackupError(
                f"Connected, but {where[:1].lower() + where[1:]} does not look like the billing "
                f"database: it has no {' or '.join(repr(m) for m in missing)} table.")
        return (f"Connected. {where} is a billing database with "
                f"{wording.plural(len(tables), 'table')}.")
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Overview:
    """Everything the main window shows for one organization, read in one go."""

    organization: Organization
    days: list[DayState]
    history: list[AuditEntry]
    rows_by_file: dict[str, int] = field(default_factory=dict)
    folder: Path | None = None
    backup_due: bool = False
    last_backup: LastBackup | None = None  # how the newest run ended (weekview.last_backup)
    warnings: list[str] = field(default_factory=list)  # weekview.backup_warnings
    # Per audit entry id: why the row's file actions are off (its file now holds another
    # backup, or is gone); see history_notes.
    notes: dict[int, str] = field(default_factory=dict)
    partial_by_file: dict[str, str] = field(default_factory=dict)  # "partial: 1 of 21 tables"


def load_overview(site: Site, org_key: int | str, folder: Path, limit: int = 200,
                  check_due: bool = False) -> Overview:
    """The organization (by id, or code) as it is now, its seven weekday slots and its
    recent history: what the window draws and what `desktop-backup list` prints.

    With ``check_due`` it also applies the login rule (backup.daily_backup_due) in the same
    call, after ensure_tables: on SQLite two threads creating the console's tables at once
    would lock each other out.
    """
    engine, mapping, clock = site.engine, site.mapping, site.clock
    try:
        with engine.connect() as conn:
            org = find_organization(conn, mapping, org_key)
        slot_table, audit_table = ensure_tables(engine)
        settle_interrupted(engine, slot_table, audit_table, org, clock)
        records = week_slots(engine, slot_table, org.id)
        history = recent(engine, audit_table, org.id, limit=limit)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    now = clock()
    days = week_states(now.date(), records, folder,
                       {day: slot_filename(org, day) for day in WEEKDAYS},
                       now=now.replace(tzinfo=None), audit=history)
    rows: dict[str, int] = {}
    for entry in history:  # newest first: the first success for a file is its current copy
        if entry.action == "backup" and entry.outcome == "success" and entry.file:
            rows.setdefault(entry.file, entry.rows or 0)
    due = check_due and daily_backup_due(engine, org, is_super_admin=False, clock=clock)
    warnings = backup_warnings(now.date(), records, history)
    days, offsite_warning = _with_offsite(engine, org, days, now.replace(tzinfo=None))
    files = files_now(history, now, [day.path for day in days if day.path])
    notes = history_notes(history, files)
    partial = {path: f.partial for path, f in files.items() if f is not None and f.partial}
    return Overview(org, days, history, rows, folder, due, last_backup(records, history),
                    warnings + ([offsite_warning] if offsite_warning else []), notes, partial)


def _with_offsite(engine: Engine, org: Organization, days: list[DayState], now: datetime
                  ) -> tuple[list[DayState], str | None]:
    """Each day card's off-site line, and the header's warning when copies are not leaving."""
    offsite = offsite_queue.week_state(engine, org.id)
    lines = {d.weekday: offsite_queue.offsite_line(d, now) for d in offsite}
    return ([replace(day, offsite=lines.get(day.weekday, "")) for day in days],
            offsite_queue.offsite_warning(offsite, now))


def send_offsite(site: Site, settings: Settings, org: Organization, actor: Actor,
                 result: BackupResult | None, trigger: str = "window"
                 ) -> offsite_queue.PushReport | None:
    """After a backup (result) or at start-up (result None): send what waits to go off-site.

    Start-up respects the backoff of failed tries; None when off-site copies are off. The
    local backup stands whatever happens here (this never raises for the remote)."""
    now = site.clock().replace(tzinfo=None)
    if result is not None:
        return offsite_queue.after_backup(site.engine, settings, org, result, actor, now,
                                          trigger=trigger)
    rc = offsite_queue.rclone_for(settings, org.id)
    if rc is None:
        return None
    return offsite_queue.push(site.engine, rc, org, actor, now, trigger="startup",
                              retry_now=False)


def set_offsite_remote(site: Site, paths: AppPaths, settings: Settings, org: Organization,
                       actor: Actor, text: str, *, test: bool = True, trigger: str = "manual"
                       ) -> Remote:
    """Send the organization's copies to this remote from now on (checked first by writing,
    reading back and deleting a file, unless `test` is False); the audit says where."""
    remote = offsite_queue.set_remote(paths, settings, org, text, test=test)
    write_audit_quietly(site.engine, audit_entry(
        "offsite_set", org.id, actor, trigger=trigger,
        message=f"Off-site copies go to {remote.address}"), site.clock())
    return remote


def turn_offsite_off(site: Site, paths: AppPaths, settings: Settings, org: Organization,
                     actor: Actor, trigger: str = "manual") -> bool:
    """Stop sending copies and forget the remote's keys; True when they were on (and the
    audit then says so). The copies already off-site stay there."""
    was_on = offsite_queue.remove_remote(paths, settings, org)
    if was_on:
        write_audit_quietly(site.engine, audit_entry(
            "offsite_off", org.id, actor, trigger=trigger,
            message="Off-site copies turned off"), site.clock())
    return was_on


def push_offsite(site: Site, settings: Settings, org: Organization, actor: Actor,
                 trigger: str = "manual") -> offsite_queue.PushReport:
    """Send every copy that waits to go off-site, now (failed tries are not waited out)."""
    rc = _offsite_remote(settings, org)
    return offsite_queue.push(site.engine, rc, org, actor, site.clock().replace(tzinfo=None),
                              trigger=trigger)


def fetch_offsite(site: Site, settings: Settings, org: Organization, actor: Actor, day: str,
                  folder: Path, trigger: str = "manual") -> offsite_queue.PulledCopy:
    """Fetch a weekday's copy from off-site into `folder`, checked; the audit says so."""
    rc = _offsite_remote(settings, org)
    copy = offsite_queue.pull(rc, org, day, folder / slot_filename(org, day))
    write_audit_quietly(site.engine, audit_entry(
        "download", org.id, actor, trigger=trigger, day_of_week=day, file=str(copy.path),
        bytes=copy.size, message=copy.message), site.clock())
    return copy


def _offsite_remote(settings: Settings, org: Organization) -> Rclone:
    rc = offsite_queue.rclone_for(settings, org.id)
    if rc is None:
        raise DesktopBackupError(f"Off-site copies of {org.label} are off; set a remote "
                                 "with `desktop-backup offsite set` first.")
    return rc


@dataclass(frozen=True)
class FileNow:
    """What a backup file on disk holds now, by its manifest (for the history's rows)."""

    backup_id: str  # "" for a file without an identity (older, or the web app's)
    made: datetime | None  # in the workstation's time
    partial: str = ""  # "partial: 1 of 21 tables" (archive.Manifest.scope_words)


def files_now(history: list[AuditEntry], now: datetime, also: list[str] | None = None
              ) -> dict[str, FileNow | None]:
    """Each file the history names (and `also`), read once: what it holds now, or None when
    it is gone. Only manifests are read (a few KB each); the web app's JSON is not parsed."""
    out: dict[str, FileNow | None] = {}
    for path in [entry.file for entry in history] + list(also or []):
        if path and path not in out:
            out[path] = _file_now(Path(path), now)
    return out


def _file_now(path: Path, now: datetime) -> FileNow | None:
    try:
        if not path.is_file():
            return None
        with open_zip(path) as zf:
            if "manifest.json" not in zf.namelist():
                return FileNow("", None)
            manifest = read_manifest(zf)
    except (ArchiveError, OSError):
        return FileNow("", None)
    return FileNow(manifest.backup_id, _manifest_time(manifest, now), manifest.scope_words)


def history_notes(history: list[AuditEntry], files: dict[str, FileNow | None]
                  ) -> dict[int, str]:
    """Why a history row may not act on its file, per entry id: the file now holds another
    backup ("replaced by the 10:42 backup"), was deleted, or is gone. Rows of the same file
    are told apart by the backup's identity; entries from before identities existed, by
    which successful backup of that file is newest (`history` is newest first)."""
    deleted = {e.file for e in history
               if e.action == "delete" and e.outcome == "success" and e.file}
    newest: dict[str, AuditEntry] = {}
    notes: dict[int, str] = {}
    for entry in history:
        if entry.id is None or not entry.file or entry.action == "delete":
            continue
        note = _note(entry, files.get(entry.file), newest, entry.file in deleted)
        if note:
            notes[entry.id] = note
    return notes


def _note(entry: AuditEntry, now: FileNow | None, newest: dict[str, AuditEntry],
          deleted: bool) -> str:
    if now is None:
        return "deleted since" if deleted else "the file is no longer there"
    if entry.backup_id:
        if entry.backup_id == now.backup_id:
            return ""
        return f"replaced by the {_when(now.made, entry)} backup" if now.made else \
            "replaced by another backup"
    if entry.action == "backup" and entry.outcome == "success":
        latest = newest.setdefault(entry.file or "", entry)
        if latest is not entry:
            return f"replaced by the {_when(latest.occurred_at, entry)} backup"
    return ""


def _when(made: datetime | None, entry: AuditEntry) -> str:
    """'10:42' on the row's own day, 'Thu 26 Nov, 10:42' on another."""
    if made is None:
        return "newer"
    if entry.occurred_at is not None and made.date() == entry.occurred_at.date():
        return f"{made:%H:%M}"
    return wording.date_time(made)


def organizations(site: Site) -> list[Organization]:
    """Every organization, for the super admin's picker."""
    try:
        with site.engine.connect() as conn:
            return list_organizations(conn, site.mapping)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def organization(site: Site, key: int | str) -> Organization:
    """One organization by id or code (the command line's --org)."""
    try:
        with site.engine.connect() as conn:
            return find_organization(conn, site.mapping, key)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def acting_for(site: Site, session: Session, key: int | str) -> Organization:
    """The organization `key` names, once the logged-in user may act for it (or a
    LoginRefused saying why not)."""
    org = organization(site, key)
    authorize(session, org)
    return org


@dataclass(frozen=True)
class ActingUser:
    """Who did it and for which organization, as the audit records it."""

    user_id: int
    username: str
    organization_id: int


def _update_organization(site: Site, actor: ActingUser,
                         write: Callable[[Connection, Organization], None]) -> Organization:
    """Change one of the organization's own settings, then read it back as stored."""
    try:
        with site.engine.begin() as conn:
            write(conn, find_organization(conn, site.mapping, actor.organization_id))
        with site.engine.connect() as conn:
            return find_organization(conn, site.mapping, actor.organization_id)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def toggle_auto_backup(site: Site, actor: ActingUser, enabled: bool) -> Organization:
    """Switch the organization's daily backup on or off (the web app reads the same column)."""
    org = _update_organization(
        site, actor, lambda conn, org: set_auto_backup(conn, site.mapping, org, enabled))
    state = "on" if enabled else "off"
    write_audit(site.engine, audit_entry("toggle", org.id, actor, trigger="manual",
                                         message=f"Automatic daily backup turned {state}."),
                site.clock())
    return org


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
    now = _file_now(path, datetime.now())
    return now.backup_id or None if now else None


def database_key(engine: Engine) -> bytes | None:
    """The key this database's console seals its backups with (None before the first
    backup): with it, a check also says whether a file was changed since it was written."""
    try:
        with engine.connect() as conn:
            return read_key(conn)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def verify(site: Site, actor: ActingUser, path: Path) -> VerifyReport:
    """Read every byte of a backup and record the verdict."""
    started = time.monotonic()
    try:
        key = database_key(site.engine)
    except DesktopBackupError:
        key = None  # the file is still checked; only whether it changed stays open
    report = verify_archive(Path(path), key)
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


@dataclass(frozen=True)
class RestoreSource:
    """One backup the restore wizard offers: a weekday slot or a restore point."""

    kind: str  # "slot" or "restore_point"
    path: Path
    weekday: str = ""  # slots only
    is_today: bool = False
    made: datetime | None = None  # when the backup was made, in the workstation's time
    size: int = 0
    rows: int | None = None  # from a native archive's manifest; None when not known cheaply
    available: bool = True  # False: a slot with no file (the wizard shows it, greyed)
    copy_kept: bool = False  # the day's run failed; this is an older file
    kept_copy: str = ""  # which older file, in words (weekview.DayState.kept_copy)
    partial: str = ""  # "partial: 1 of 21 tables" when the backup left tables out


def restore_sources(site: Site, org: Organization, folder: Path) -> list[RestoreSource]:
    """The seven weekday slots (Monday first) and the organization's restore points (newest
    first), with when each was made; only manifests are read, never the rows."""
    engine = site.engine
    try:
        slot_table, audit_table = ensure_tables(engine)
        records = week_slots(engine, slot_table, org.id)
        history = recent(engine, audit_table, org.id)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    now = site.clock()
    days = week_states(now.date(), records, folder,
                       {day: slot_filename(org, day) for day in WEEKDAYS},
                       now=now.replace(tzinfo=None), audit=history)
    sources = []
    for day in days:
        path = Path(day.path) if day.path else folder / slot_filename(org, day.weekday)
        available = (day.state in ("succeeded", "failed") and path.is_file()
                     and archive_owner(path) in (None, org.id))
        made, rows, partial = _manifest_facts(path, now) if available else (None, None, "")
        record = records.get(day.weekday)
        if made is None and available and day.state == "succeeded" and record is not None:
            made = record.backup_date  # a web-app file in the slot: its record says when
        sources.append(RestoreSource("slot", path, day.weekday, day.is_today, made,
                                     day.size if available else 0, rows, available,
                                     day.copy_kept, day.kept_copy, partial))
    for path in list_restore_points(folder, org):
        made, rows, partial = _manifest_facts(path, now)
        sources.append(RestoreSource("restore_point", path, made=made,
                                     size=_size(path), rows=rows, partial=partial))
    return sources


def _manifest_facts(path: Path, now: datetime) -> tuple[datetime | None, int | None, str]:
    """A native archive's creation time (in the clock's zone, naive), row total and
    "partial: N of M tables" (or "")."""
    try:
        with open_zip(path) as zf:
            if "manifest.json" not in zf.namelist():
                return None, None, ""
            manifest = read_manifest(zf)
    except (ArchiveError, OSError):
        return None, None, ""
    made = _manifest_time(manifest, now)
    return made, manifest.total_rows if made else None, manifest.scope_words


def _manifest_time(manifest, now: datetime) -> datetime | None:
    """When the archive was made, in the clock's zone (naive), or None if unreadable."""
    try:
        made = datetime.fromisoformat(manifest.created_at)
    except ValueError:
        return None
    if made.tzinfo is not None:
        made = made.astimezone(now.tzinfo).replace(tzinfo=None)
    return made


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- the settings dialog ------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderCheck:
    """Whether backups can be written to a folder, in one sentence for the settings dialog."""

    ok: bool
    message: str
    free: int | None = None  # bytes free on the folder's drive, when known
    low: bool = False  # writable, but little room left


LOW_SPACE = 200 * 1024 * 1024  # below this (or twice the latest backup) the space is "low"


def check_backup_folder(folder: Path, latest_backup: int = 0) -> FolderCheck:
    """Try the folder as a backup would: write, sync and delete a small file; measure space.

    A missing folder whose parent exists is fine (the first backup creates it, as
    backup.prepare_folder does); a missing parent usually means an unplugged drive.
    """
    folder = Path(folder).expanduser()
    if not folder.is_absolute():
        return FolderCheck(False, "Give the folder's full path (or choose it with Choose…).")
    if folder.is_dir():
        probe, note = folder, ""
    elif folder.exists():
        return FolderCheck(False, f"{folder} is a file, not a folder.")
    elif folder.parent.is_dir():
        probe, note = folder.parent, " It does not exist yet; the first backup creates it."
    else:
        return FolderCheck(False, f"{folder} does not exist, nor does the folder it would be "
                                  "made in (is its drive connected?).")
    try:
        fd, name = tempfile.mkstemp(prefix=".desktop-backup-check-", dir=probe)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        return FolderCheck(False, f"Backups cannot be written to {probe} "
                                  f"({exc.strerror or exc}); choose another folder.")
    free_words = wording.human_size(free)
    if latest_backup and free < latest_backup:
        return FolderCheck(False, f"Only {free_words} free there, less than the latest backup "
                                  f"({wording.human_size(latest_backup)}); choose another folder "
                                  "or free some space.", free)
    if free < max(LOW_SPACE, 2 * latest_backup):
        return FolderCheck(True, f"Writable, but only {free_words} free; free some space "
                                 "soon." + note, free, low=True)
    return FolderCheck(True, f"Writable; {free_words} free." + note, free)


@dataclass(frozen=True)
class TableChoices:
    """The tables an organization's backup can hold, and which of them it holds now."""

    tables: list[str]  # by name
    chosen: tuple[str, ...] | None  # organizations.auto_backup_tables; None: every table


def backup_table_choices(site: Site, org_id: int) -> TableChoices:
    """Every table tenancy finds for the organization (not narrowed), and its current choice."""
    try:
        with site.engine.connect() as conn:
            org = find_organization(conn, site.mapping, org_id)
            scope = discover_scope(reflect(conn), site.mapping)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc
    return TableChoices(sorted(scope.names()), org.auto_backup_tables)


def save_backup_tables(site: Site, actor: ActingUser, tables: list[str] | None
                       ) -> Organization:
    """Write organizations.auto_backup_tables (None: every table) and say so in the audit."""
    org = _update_organization(
        site, actor, lambda conn, org: set_auto_backup_tables(conn, site.mapping, org, tables))
    if tables is None:
        message = "The backup holds every table again, also tables added later."
    else:
        names = ", ".join(tables)
        message = (f"The backup now holds {len(tables)} chosen tables: "
                   f"{names if len(names) < 300 else names[:297] + '…'}.")
    write_audit(site.engine, audit_entry("toggle", org.id, actor, trigger="manual",
                                         message=message), site.clock())
    return org


@dataclass(frozen=True)
class PasswordState:
    """The settings dialog's keyring page: can a password be kept, and is one kept."""

    status: KeyringStatus
    saved: bool


def password_state(profile: str) -> PasswordState:
    """Ask the keyring once (it may show a prompt or wait, so never on the UI thread)."""
    status = keyring_status()
    saved = status.usable and keystore.get_password(profile) is not None
    return PasswordState(status, saved)
