"""The day's backup: once a day per organization, one slot per weekday, nothing lost.

A run claims today's weekday slot in ``auto_backup_logs`` (so two workstations never both
run it), streams the organization's rows into a temporary file beside the slot, checks that
file, makes it durable and renames it over the slot in one step. Whatever fails on the way
(a dropped connection, a full disk, a cancel, a crash) last week's file for the weekday is
still there, the failure is recorded with its reason, and no temporary file is left.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sqlite3
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pyrage import x25519
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup import __version__
from desktop_backup.archive import (
    MANIFEST,
    READ_BUFFER,
    ArchiveError,
    ArchiveWriter,
    Manifest,
    TableEntry,
    check_members,
    damage_errors,
    encode_json_rows,
    encode_rows,
    left_out_words,
    new_temp_path,
    open_zip,
    read_manifest,
)
from desktop_backup.audit import audit_entry, write_audit_quietly
from desktop_backup.authenticity import archive_key
from desktop_backup.busy import BUSY_WAIT_S, BusyWait, probe_sqlite
from desktop_backup.collector import rarer_passes
from desktop_backup.config import SchemaMapping
from desktop_backup.db import friendly_error, reflect
from desktop_backup.encryption import EncryptingWriter, encrypted_name, open_decrypted
from desktop_backup.encryption_setting import encryption_recipients
from desktop_backup.errors import DesktopBackupError
from desktop_backup.export import Snapshot, export_organization, read_snapshot
from desktop_backup.history import (
    INTERRUPTED,
    WEEKDAYS,
    AlreadyDone,
    AlreadyRunning,
    AuditEntry,
    RunInfo,
    SlotClaim,
    SlotRecord,
    claim_today,
    ensure_tables,
    finish_slot,
    record,
    record_quietly,
    settle_dead_runs,
    unclaim_slot,
    week_slots,
    weekday_of,
)
from desktop_backup.offsite import file_sha256
from desktop_backup.organizations import Organization, find_organization
from desktop_backup.orgkeys import fingerprint
from desktop_backup.scratch import held, sweep_leftovers
from desktop_backup.seedformat import SeedWriter, find_seed_member
from desktop_backup.tenancy import (
    NARROWED,
    OrganizationScope,
    check_polymorphic_types,
    discover_scope,
    stranded_rows,
)
from desktop_backup.wording import human_size, plural
from desktop_backup.work import (
    Actor,
    CancelFlag,
    Cancelled,
    Clock,
    ProgressCallback,
    Site,
    local_now,
)

log = logging.getLogger(__name__)
TRIGGERS = ("login", "manual", "schedule", "cli", "pre-restore")
WEB_APP_DIR = "web-app-format"  # backups in the web app's format, beside the weekday slots
MADE_BY = "Desktop Backup"  # the console's name in the files it writes


@dataclass
class BackupResult:
    """What a backup did, for the window, the command line (--json) and the audit."""

    ok: bool
    message: str
    skipped: bool = False
    path: Path | None = None
    size: int = 0
    rows: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    weekday: str = ""
    duration_s: float = 0.0
    format: str = "native"
    scope: dict = field(default_factory=dict)  # Manifest.scope: N of M tables, left out
    recipients: list[str] = field(default_factory=list)  # fingerprints; [] when in clear

    @property
    def encrypted(self) -> bool:
        return bool(self.recipients)

    @property
    def tables_words(self) -> str:
        """'21 tables', or '1 of 21 tables (partial)' when the backup left tables out."""
        of = self.scope.get("of", 0)
        if of > len(self.tables):
            return f"{len(self.tables)} of {of} tables (partial)"
        return plural(len(self.tables), "table")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "skipped": self.skipped,
                "path": str(self.path) if self.path else None, "size": self.size,
                "rows": self.rows, "tables": self.tables, "weekday": self.weekday,
                "duration_s": round(self.duration_s, 3), "format": self.format,
                "scope": self.scope, "encrypted": self.encrypted,
                "recipients": self.recipients}


def slot_filename(org: Organization, weekday: str) -> str:
    """``org_{code}_{weekday}_backup.zip``, the web app's name, with the organization's
    file key (its code, or ``id-{id}`` where the code cannot be one; see Organization)."""
    return f"org_{org.file_key}_{weekday}_backup.zip"


# The web app's JSON opens with its metadata; the organization's id is within its first bytes.
_SEED_HEAD_BYTES = 64 * 1024
_SEED_OWNER = re.compile(rb'\s*\{\s*"metadata"\s*:\s*\{[^{}]*?"organization_id"\s*:\s*'
                         rb'(\d{1,19})\s*[,}]')


def archive_owner(path: Path) -> int | None:
    """The organization id a backup file says it belongs to, or None when it says nothing
    readable (not a backup, damaged, missing). Reads the manifest or the web app's metadata
    only, never the rows: cheap enough to ask before every replace or prune."""
    try:
        with open_zip(path) as zf:
            if MANIFEST in zf.namelist():
                owner = read_manifest(zf).organization.get("id")
                return owner if isinstance(owner, int) else None
            member = find_seed_member(zf)
            if member is None:
                return None
            with zf.open(member) as stream:
                head = stream.read(_SEED_HEAD_BYTES)
    except (ArchiveError, *damage_errors()):
        return None
    match = _SEED_OWNER.match(head)
    return json.loads(match.group(1)) if match else None


def check_slot_owner(target: Path, org: Organization) -> None:
    """Refuse to replace a file that belongs to another organization, whatever its name says.

    Two organizations can still reach one name (the same code twice, or codes that differ
    only in case on a Windows or macOS disk); the older file is then kept, not overwritten.
    """
    if not target.exists():
        return
    owner = archive_owner(target)
    if owner is not None and owner != org.id:
        raise DesktopBackupError(
            f"{target.name} in the backup folder holds the backup of another organization "
            f"(id {owner}), not of {org.name} (id {org.id}); it was kept and nothing was "
            "written. Give the two organizations different codes, or move that file away.")


def slot_target(folder: Path, org: Organization, weekday: str, fmt: str = "native",
                create: bool = True, encrypted: bool = False) -> Path:
    """Where a backup of this format goes: the native weekday slot (its ``.zip.age`` name
    when encrypted), or for the web app's format the same name in its own folder beside the
    slots (WEB_APP_DIR), so an export for the web app never replaces the day's native
    backup."""
    if fmt == "seed":
        folder = prepare_folder(folder / WEB_APP_DIR) if create else folder / WEB_APP_DIR
    name = slot_filename(org, weekday)
    return folder / (encrypted_name(name) if encrypted else name)


def slot_names(folder: Path, org: Organization) -> dict[str, str]:
    """Each weekday's slot file name as it is in `folder`: the encrypted one when that is
    there, else the plain one (for the week view, `list` and the restore wizard)."""
    names = {}
    for day in WEEKDAYS:
        plain = slot_filename(org, day)
        names[day] = encrypted_name(plain) if (folder / encrypted_name(plain)).is_file() \
            else plain
    return names


def prepare_folder(folder: Path, create: bool = True) -> Path:
    """The backup folder, created owner-only when missing (if its parent exists)."""
    folder = Path(folder)
    if not folder.is_dir():
        if not create or not folder.parent.is_dir():
            raise DesktopBackupError(
                f"The backup folder {folder} does not exist (is its drive connected?).")
        try:
            folder.mkdir(mode=0o700)
        except OSError as exc:
            raise _disk_error(exc, folder) from exc
    try:
        os.chmod(folder, 0o700)
    except OSError:
        pass  # a folder on a share or FAT drive keeps its own permissions
    return folder


def run_backup(site: Site, org: Organization, actor: Actor, folder: Path, *, trigger: str,
               force: bool = False, fmt: str = "native", progress: ProgressCallback | None = None,
               cancel: CancelFlag | None = None, busy_wait_s: float = BUSY_WAIT_S
               ) -> BackupResult:
    """Make today's backup of `org` into its weekday slot (by the site's clock), unless it
    already succeeded.

    Waits (visibly, up to `busy_wait_s`) while another program holds the database locked.
    Raises AlreadyRunning, audited as skipped, while a live run elsewhere makes it.
    Whatever happens, what earlier killed runs left behind is swept afterwards."""
    try:
        return _run_backup(site.engine, site.mapping, org, actor, folder, trigger=trigger,
                           force=force, fmt=fmt, progress=progress, cancel=cancel,
                           clock=site.clock, busy_wait_s=busy_wait_s)
    finally:
        sweep_leftovers(folder)


def _run_backup(engine: Engine, mapping: SchemaMapping, org: Organization, actor: Actor,
                folder: Path, *, trigger: str, force: bool, fmt: str,
                progress: ProgressCallback | None, cancel: CancelFlag | None,
                clock: Clock, busy_wait_s: float) -> BackupResult:
    started = time.monotonic()
    busy = BusyWait(busy_wait_s, progress, cancel)
    now = clock()
    audit = audit_entry("backup", org.id, actor, trigger=trigger,
                        day_of_week=weekday_of(now.date()))
    try:
        slot_table, audit_table = busy.run(engine, lambda: _console_tables(engine, probe=True))
        recipients = busy.run(engine, lambda: encryption_recipients(engine, org.id))
    except BaseException as exc:
        _record_unclaimed(engine, audit, exc, clock, started)
        raise
    if recipients is not None and fmt == "seed":  # refused as asked, not a failed backup
        raise DesktopBackupError(
            f"Backups of {org.name} are encrypted, and the web app's format cannot be (the "
            "web app could not read it); nothing was written. Make a native backup, or turn "
            "encryption off first.")
    try:
        claim = busy.run(engine, lambda: _claim(engine, slot_table, org, actor, clock, force,
                                                trigger))
    except BaseException as exc:
        _record_unclaimed(engine, audit, exc, clock, started)
        raise
    if isinstance(claim, AlreadyDone):
        message = (f"Today's backup of {org.name} already succeeded at "
                   f"{_hhmm(claim.record.updated_at)}; nothing to do.")
        record_quietly(engine, audit_table, replace(audit, action="skipped",
                                                      outcome="skipped", message=message), now)
        return BackupResult(True, message, skipped=True, path=Path(claim.record.path) if
                            claim.record.path else None, size=claim.record.size,
                            weekday=weekday_of(now.date()), format=fmt)
    try:
        _record_interrupted(engine, audit_table, claim, org, clock)
        return _make_backup(engine, mapping, org, actor, folder, claim, slot_table,
                            audit_table, audit, started, trigger=trigger, fmt=fmt,
                            progress=progress, cancel=cancel, clock=clock, busy=busy,
                            recipients=recipients)
    finally:
        claim.release()


def _claim(engine: Engine, slot_table, org: Organization, actor: Actor, clock: Clock,
           force: bool, trigger: str) -> SlotClaim | AlreadyDone:
    try:
        return claim_today(engine, slot_table, org.id, actor.user_id,
                           clock().replace(tzinfo=None), force=force,
                           username=actor.username, trigger=trigger)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def _record_unclaimed(engine: Engine, audit: AuditEntry, exc: BaseException, clock: Clock,
                      started: float) -> None:
    """Before the claim: a run elsewhere (skipped) or a failure to begin (busy, unreachable,
    cancelled while waiting); into the audit when the database takes it, and the log."""
    error = _as_user_error(exc, engine)
    if isinstance(error, AlreadyRunning):
        log.info("%s", error)
        entry = replace(audit, action="skipped", outcome="skipped", message=str(error))
    else:
        outcome = "cancelled" if isinstance(error, Cancelled) else "failed"
        log.warning("Backup of organization %s did not start: %s", audit.organization_id,
                    error, exc_info=exc if outcome == "failed" else None)
        entry = replace(audit, outcome=outcome, message=str(error),
                         duration_ms=int((time.monotonic() - started) * 1000))
    write_audit_quietly(engine, entry, clock())


def _record_interrupted(engine: Engine, audit_table, claim: SlotClaim, org: Organization,
                        clock: Clock) -> None:
    """The dead run this claim took over gets its own line in the history."""
    if claim.interrupted is not None:
        _audit_interrupted(engine, audit_table, org, claim.interrupted, claim.interrupted_run,
                           clock)


def settle_interrupted(engine: Engine, slot_table, audit_table, org: Organization,
                       clock: Clock = local_now) -> bool:
    """For the week view and `list`: runs that died are shown (and recorded) as interrupted,
    never as "Backing up now". True when something was settled."""
    settled = settle_dead_runs(engine, slot_table, org.id, clock().replace(tzinfo=None))
    for record_, run in settled:
        _audit_interrupted(engine, audit_table, org, record_, run, clock)
    return bool(settled)


def _audit_interrupted(engine: Engine, audit_table, org: Organization, record_: SlotRecord,
                       run: RunInfo | None, clock: Clock) -> None:
    where = f" on {run.where}" if run else ""
    message = f"The backup{where} {INTERRUPTED}."
    log.warning("Backup of %s: %s", org.file_key, message)
    record_quietly(engine, audit_table, audit_entry(
        "backup", org.id, run or record_.user_id, trigger=run.trigger if run else None,
        outcome="failed", day_of_week=record_.day_of_week, message=message,
        workstation=run.host if run else None), clock())


def _make_backup(engine: Engine, mapping: SchemaMapping, org: Organization, actor: Actor,
                 folder: Path, claim: SlotClaim, slot_table, audit_table, audit: AuditEntry,
                 started: float, *, trigger: str, fmt: str, progress, cancel, clock: Clock,
                 busy: BusyWait, recipients: list[x25519.Recipient] | None) -> BackupResult:
    """Today's slot is claimed: write, check and rename the archive; record the outcome.

    The ownership map is checked first, with the slot claimed: a wrong declaration or a
    table locked for longer than the wait is that day's failed backup, on the grid as in
    the history, and nothing is written."""
    folder_path: Path | None = None
    encrypted = recipients is not None
    try:
        notes = busy.run(engine, lambda: check_scope(engine, mapping))
        folder_path = prepare_folder(folder)
        target = slot_target(folder_path, org, claim.weekday, fmt, encrypted=encrypted)
        check_slot_owner(target, org)
        other = slot_target(folder_path, org, claim.weekday, fmt, encrypted=not encrypted)
        check_slot_owner(other, org)  # removed once the new copy is in place
        _sweep_partials(target)
        check = claim.lock.check if claim.lock is not None else None
        site = Site(engine, mapping, clock)
        manifest = busy.run(engine, lambda: write_archive(
            site, org.id, target, actor, trigger=trigger, fmt=fmt, progress=progress,
            cancel=cancel, heartbeat=check, recipients=recipients))
        _remove_other_copy(other, target)
    except BaseException as exc:
        error = _as_user_error(exc, engine)
        cancelled = isinstance(error, Cancelled)
        reason = _without_kept(str(error))
        kept = _kept_sentence(slot_target(folder_path, org, claim.weekday, fmt, create=False,
                                          encrypted=encrypted)
                              if folder_path is not None else None, clock())
        if isinstance(error, DesktopBackupError):
            error.args = (reason + kept,)  # say which copy was kept, only when one was
        duration = time.monotonic() - started
        if cancelled:
            log.info("Backup of %s cancelled: %s", org.file_key, error)
            _quietly(unclaim_slot, engine, slot_table, claim)
        else:
            log.warning("Backup of %s failed: %s", org.file_key, error, exc_info=exc)
            _quietly(finish_slot, engine, slot_table, claim, clock().replace(tzinfo=None),
                     ok=False, error=reason)
        record_quietly(engine, audit_table, replace(
            audit, outcome="cancelled" if cancelled else "failed",
            message=reason + kept, duration_ms=int(duration * 1000)), clock())
        if error is exc:
            raise
        raise error from exc
    size = target.stat().st_size
    busy.run(engine, lambda: finish_slot(engine, slot_table, claim,
                                         clock().replace(tzinfo=None), ok=True,
                                         filename=target.name, path=str(target), size=size))
    duration = time.monotonic() - started
    tables = {t.name: t.rows for t in manifest.tables}
    rows = sum(tables.values())
    keys = manifest.encryption.get("recipients", [])
    said = manifest.scope_words or plural(len(tables), "table")
    left_out = "; ".join(filter(None, [left_out_words(manifest.scope, "unplaced"), *notes]))
    if left_out:  # reported at every backup, never silently
        said += f"; {left_out}"
        log.warning("Backup of %s: %s", org.file_key, left_out)
    busy.run(engine, lambda: record(
        engine, audit_table, replace(audit, file=str(target), rows=rows, bytes=size,
                                      duration_ms=int(duration * 1000),
                                      message=f"{said}; {encrypted_words(keys)}" if keys
                                      else said,
                                      backup_id=manifest.backup_id or None,
                                      sha256=file_sha256(target) if encrypted else None),
        clock()))
    result = BackupResult(True, "", path=target, size=size, rows=rows, tables=tables,
                          weekday=claim.weekday, duration_s=duration, format=fmt,
                          scope=manifest.scope, recipients=list(keys))
    result.message = (f"Backed up {org.name}: {plural(rows, 'row')} from "
                      f"{result.tables_words} into {target.name} ({human_size(size)}"
                      f"{', ' + encrypted_words(keys) if keys else ''}) in "
                      f"{duration:.1f} s." + (f" {left_out}." if left_out else ""))
    log.info("%s (trigger %s, by %s)", result.message, trigger, actor.username)
    return result


def encrypted_words(fingerprints: Sequence[str]) -> str:
    """'encrypted for the keys a-b-c-d, e-f-g-h' (the history and the command line)."""
    keys = ", ".join(fingerprints)
    return f"encrypted for the key{'s' if len(fingerprints) != 1 else ''} {keys}"


def _remove_other_copy(other: Path, target: Path) -> None:
    """Once the new copy is in place, the same weekday's copy in the other form goes: the
    plain ``.zip`` once the encrypted slot is written (no clear copy is left behind), or the
    ``.age`` once encryption is off (its owner was checked before the write)."""
    if other == target or not other.exists():
        return
    try:
        other.unlink()
        log.info("Removed %s: %s replaces it", other.name, target.name)
    except OSError as exc:
        log.warning("Could not remove %s after writing %s: %s", other.name, target.name, exc)


_KEPT = re.compile(r"[;.]? [Tt]he previous copy was kept\.?")


def _without_kept(message: str) -> str:
    """A failure's reason without "the previous copy was kept": whether one was, and which,
    is known only here, after the failure (see _kept_sentence)."""
    stripped = _KEPT.sub(".", message).replace("..", ".")
    return stripped.rstrip(" ")


def _kept_sentence(slot: Path | None, now: datetime) -> str:
    """Which copy a failed run left in the slot, in one sentence ("" when there is none):
    today's earlier copy, last week's, or an older one, from the file's own manifest."""
    if slot is None or not slot.is_file():
        return ""
    try:
        with zipfile.ZipFile(slot) as zf:
            made = datetime.fromisoformat(read_manifest(zf).created_at)
    except (OSError, zipfile.BadZipFile, ArchiveError, KeyError, ValueError):
        return " The copy already in the slot was kept."
    if made.tzinfo is not None and now.tzinfo is not None:
        made = made.astimezone(now.tzinfo)
    days = (now.date() - made.date()).days
    if days <= 0:
        return f" Today's earlier copy (made at {made:%H:%M}) was kept."
    if days <= 7:
        return " Last week's copy was kept."
    return f" The copy of {made.day} {made:%b} was kept."


def write_archive(site: Site, org_id: int, target: Path, actor: Actor, *, trigger: str,
                  fmt: str = "native", progress: ProgressCallback | None = None,
                  cancel: CancelFlag | None = None, heartbeat: Callable[[], None] | None = None,
                  recipients: Sequence[x25519.Recipient] | None = None) -> Manifest:
    """Export into a temporary file beside `target`, check it, then replace `target`; the
    site's clock dates the archive. With `recipients`, the file is an age file encrypted
    for them as it is written (no clear byte reaches the disk).

    Also used for restore points and saved copies: every archive the console writes goes
    through this one path, so every archive is checked and durable.

    How an encrypted archive is read back without the organization's secret key (which a
    backup never needs): it is also encrypted for a check key made for this write alone and
    held only in memory; the read-back decrypts it with that key, checks the zip as for a
    plain archive, and the key is dropped. Its age stanza stays in the file, opened by no
    one; the manifest lists only the real recipients.
    """
    if fmt not in ("native", "seed"):
        raise DesktopBackupError(f"Unknown backup format '{fmt}'; use native or seed.")
    if recipients is not None and fmt != "native":
        raise DesktopBackupError("The web app's format cannot be encrypted.")
    check_key = x25519.Identity.generate() if recipients is not None else None
    tmp = new_temp_path(target.parent, target.name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _disk_error(exc, target.parent) from exc
    try:
        raw = os.fdopen(fd, "wb")
        # held: until checked, a sweep must not take a live writer's file
        with held(tmp), rarer_passes():
            with raw:
                now = site.clock()
                if recipients is not None and check_key is not None:
                    manifest = _write_encrypted(site, org_id, raw, actor, trigger, now,
                                                progress, cancel, heartbeat,
                                                [*recipients, check_key.to_public()],
                                                [fingerprint(r) for r in recipients])
                elif fmt == "native":
                    manifest = _write_native(site.engine, site.mapping, org_id, raw, actor,
                                             trigger, now, progress, cancel, heartbeat)
                else:
                    manifest = _write_seed(site.engine, site.mapping, org_id, raw, target.name,
                                           actor, trigger, now, progress, cancel, heartbeat)
                raw.flush()
                os.fsync(raw.fileno())
            if check_key is not None:
                _check_encrypted(tmp, check_key, fmt)
            else:
                _check_written(tmp, fmt)
        os.replace(tmp, target)  # after the lock is let go: Windows renames no open file
        _fsync_folder(target.parent)
        return manifest
    except OSError as exc:
        raise _disk_error(exc, target.parent) from exc
    finally:
        tmp.unlink(missing_ok=True)


class _NativeSink:
    takes_json_rows = True

    def __init__(self, writer: ArchiveWriter) -> None:
        self.writer = writer

    def begin_table(self, entry: TableEntry, columns: list[str], count: int) -> None:
        self.writer.begin_table(entry)

    def write_rows(self, rows: list, floats: bool = True) -> None:
        self.writer.write_encoded(encode_rows(rows, floats), len(rows))

    def write_json_rows(self, texts: list[str]) -> None:
        self.writer.write_encoded(encode_json_rows(texts), len(texts))

    def end_table(self) -> TableEntry:
        return self.writer.end_table()


def _write_encrypted(site: Site, org_id, raw, actor, trigger, now, progress, cancel,
                     heartbeat, recipients: list[x25519.Recipient], fingerprints: list[str]
                     ) -> Manifest:
    """The native archive streamed through age into `raw`; finished only when whole."""
    with EncryptingWriter(raw, recipients) as sealed:
        return _write_native(site.engine, site.mapping, org_id, sealed, actor, trigger, now,
                             progress, cancel, heartbeat,
                             encryption={"recipients": fingerprints})


def _write_native(engine, mapping, org_id, raw, actor, trigger, now, progress, cancel,
                  heartbeat, encryption: dict | None = None) -> Manifest:
    key = archive_key(engine)
    writer = ArchiveWriter(raw)
    try:
        snapshot = export_organization(engine, mapping, org_id, _NativeSink(writer),
                                       progress=progress, cancel=cancel, heartbeat=heartbeat)
        manifest = _manifest(snapshot, actor, trigger, now)
        manifest.encryption = encryption or {}
        writer.finish(manifest, key)
        return manifest
    except BaseException:
        writer.abort()
        raise


class _SeedSink:
    """Only tables with the tenant column: the web app's restore deletes by that column."""

    takes_json_rows = False  # PHP-style values, written by seedformat

    def __init__(self, zf: zipfile.ZipFile, member: str, metadata: dict) -> None:
        self.writer = SeedWriter(zf, member, metadata)
        self.entry: TableEntry | None = None

    def begin_table(self, entry: TableEntry, columns: list[str], count: int) -> None:
        self.entry = entry
        self.writer.begin_table(entry.name, columns, count)

    def write_rows(self, rows: list, floats: bool = True) -> None:  # PHP's JSON has no NaN
        assert self.entry is not None
        self.writer.write_rows(rows)
        self.entry.rows += len(rows)

    def end_table(self) -> TableEntry:
        assert self.entry is not None
        self.writer.end_table()
        return self.entry


def _write_seed(engine, mapping, org_id, raw, zip_name, actor, trigger, now, progress, cancel,
                heartbeat) -> Manifest:
    org = _organization_of(engine, mapping, org_id)
    backup_id = uuid.uuid4().hex
    with engine.connect() as conn:  # the scope goes first in the file, so it is known first
        scope = discover_scope(reflect(conn), mapping, org.auto_backup_tables)
    # Two keys the web app does not write (and ignores): who made the file, and its identity.
    metadata = {"organization_id": org.id, "organization_name": org.name,
                "organization_code": org.code,
                "created_at": now.isoformat(timespec="seconds"),
                "day_of_week": weekday_of(now.date()),
                "backup_type": "auto_daily" if trigger in ("login", "schedule") else trigger,
                "made_by": f"{MADE_BY} {__version__}", "backup_id": backup_id,
                "scope": _seed_scope(scope)}
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,
                         allowZip64=True) as zf:
        sink = _SeedSink(zf, zip_name.removesuffix(".zip") + ".json", metadata)
        snapshot = export_organization(engine, mapping, org_id, sink,
                                       include=lambda scope: scope.tenant_column is not None,
                                       progress=progress, cancel=cancel, heartbeat=heartbeat)
        sink.writer.finish(snapshot.organization.row)
    return _manifest(snapshot, actor, trigger, now, kind="seed", backup_id=backup_id)


def _seed_scope(scope: OrganizationScope) -> dict:
    """backup_scope for the web app's format, before the export: only the tables with the
    tenant column go in."""
    return scope_record(scope, [t.name for t in scope.tables if t.tenant_column is not None])


def _organization_of(engine: Engine, mapping: SchemaMapping, org_id: int) -> Organization:
    with engine.connect() as conn:
        return find_organization(conn, mapping, org_id)


def _manifest(snapshot: Snapshot, actor: Actor, trigger: str, now: datetime,
              kind: str = "native", backup_id: str = "") -> Manifest:
    org = snapshot.organization
    manifest = Manifest(
        organization={"id": org.id, "code": org.code, "name": org.name, "row": org.row},
        created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
        local_date=now.date().isoformat(), weekday=weekday_of(now.date()), trigger=trigger,
        source=snapshot.source, app_version=__version__,
        created_by={"user_id": actor.user_id, "username": actor.username},
        tables=snapshot.entries, backup_id=backup_id or uuid.uuid4().hex,
        scope=backup_scope(snapshot))
    manifest.kind = kind
    return manifest


def backup_scope(snapshot: Snapshot) -> dict:
    """Which of the organization's tables the backup holds, and which it leaves out (those
    narrowed away in the settings, and for the web app's format those without the tenant
    column): a partial backup must look partial everywhere it is shown."""
    return scope_record(snapshot.scope, [entry.name for entry in snapshot.entries])


def scope_record(scope: OrganizationScope, saved: list[str]) -> dict:
    """The manifest's scope: N of M tables, the names of those left out (narrowed away, not
    in this format, or that no one could place), and every table of the database with what
    the backup did with it: nothing is left out silently."""
    narrowed = [name for name, why in scope.left_out.items() if why == NARROWED]
    left_out = (sorted(set(scope.names()) - set(saved)) + sorted(narrowed)
                + sorted(scope.unplaced()))
    return {"tables": len(saved), "of": len(saved) + len(left_out), "left_out": left_out,
            "unplaced": sorted(scope.unplaced()), "map": scope.table_map(saved)}


def check_scope(engine: Engine, mapping: SchemaMapping) -> list[str]:
    """The ownership map a backup would use, checked before anything is claimed or written:
    a wrong declaration is one UsageError; rows no way reaches are returned as sentences for
    the summary and the history."""
    with read_snapshot(engine) as conn:
        scope = discover_scope(reflect(conn), mapping)
        check_polymorphic_types(conn, scope)
        return [s.sentence for s in stranded_rows(conn, scope)]


def _sweep_partials(target: Path) -> None:
    """Remove what a crashed run left for this slot. Safe: we hold the slot's claim, so no
    other process is writing it."""
    for leftover in target.parent.glob(f".{target.name}.*.partial"):
        try:
            leftover.unlink()
            log.info("Removed %s, left by an interrupted backup", leftover.name)
        except OSError:
            pass


def _check_written(source: Path | BinaryIO, fmt: str) -> None:
    """Re-read what reached the disk (a path, or an encrypted file's decrypted stream):
    structure, manifest and every member's CRC."""
    try:
        with zipfile.ZipFile(source) as zf:
            check_members(zf.infolist())
            if fmt == "native":
                manifest = read_manifest(zf)
                expected = {t.member for t in manifest.tables} | {MANIFEST}
                if set(zf.namelist()) != expected:
                    raise ArchiveError("the written archive is missing tables")
            bad = _damaged_member(source, zf)
            if bad is not None:
                raise ArchiveError(f"'{bad}' was damaged while writing")
    except (zipfile.BadZipFile, ArchiveError) as exc:
        raise DesktopBackupError(
            f"The new backup could not be read back ({exc}); the previous copy was kept. "
            "Check the disk holding the backup folder.") from exc


def _damaged_member(source: Path | BinaryIO, zf: zipfile.ZipFile) -> str | None:
    """The first member whose data does not inflate to its CRC, as zipfile.testzip says,
    read on two threads where the archive is a file: the inflater lets the GIL go, so a big
    backup's re-read takes half the time."""
    if not isinstance(source, Path):
        return _first_damaged(zf, zf.infolist())
    members = sorted(zf.infolist(), key=lambda info: info.compress_size, reverse=True)

    def in_own_handle(part: list[zipfile.ZipInfo]) -> str | None:
        with zipfile.ZipFile(source) as own:
            return _first_damaged(own, part)

    with ThreadPoolExecutor(2, thread_name_prefix="re-read") as pool:
        found = list(pool.map(in_own_handle, (members[0::2], members[1::2])))
    return next((name for name in found if name is not None), None)


def _first_damaged(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> str | None:
    for info in members:
        try:
            with zf.open(info) as member:
                while member.read(READ_BUFFER):
                    pass
        except damage_errors():  # a bad CRC, or data that no longer inflates at all
            return info.filename
    return None


def _check_encrypted(path: Path, check_key: x25519.Identity, fmt: str) -> None:
    """Decrypt what reached the disk with this write's check key and re-read the zip in it
    (the decrypted bytes go to the reader's encrypted scratch file, never in clear)."""
    try:
        plain = open_decrypted(path, [check_key])
    except ArchiveError as exc:
        raise DesktopBackupError(
            f"The new backup could not be read back ({exc}); the previous copy was kept. "
            "Check the disk holding the backup folder.") from exc
    with plain:
        _check_written(plain, fmt)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error(exc: OSError, folder: Path) -> DesktopBackupError:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DesktopBackupError(
            f"The disk holding the backup folder {folder} is full; free some space and try "
            "again. The previous copy was kept.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DesktopBackupError(
            f"The backup folder {folder} cannot be written to; check its permissions or choose "
            "another folder. The previous copy was kept.")
    return DesktopBackupError(
        f"Writing to the backup folder {folder} failed ({exc.strerror or exc}). "
        "The previous copy was kept.")


def _as_user_error(exc: BaseException, engine: Engine) -> BaseException:
    if isinstance(exc, DesktopBackupError):
        return exc
    if isinstance(exc, SQLAlchemyError):
        return friendly_error(exc, engine.url)
    if isinstance(exc, OSError):
        return _disk_error(exc, Path("."))
    return exc


def _console_tables(engine: Engine, probe: bool = False):
    try:
        if probe:
            probe_sqlite(engine)
        return ensure_tables(engine)
    except (SQLAlchemyError, sqlite3.Error) as exc:
        raise friendly_error(exc, engine.url) from exc


def _quietly(step: Callable[..., None], *args, **kwargs) -> None:
    """Record the slot's outcome when the database may be what failed: the failure to record
    goes to the log (the outcome itself is already there)."""
    try:
        step(*args, **kwargs)
    except SQLAlchemyError as exc:
        log.warning("Could not record the backup's outcome in the slot table: %s", exc)


def _hhmm(value: datetime | None) -> str:
    return value.strftime("%H:%M") if value else "earlier today"


def daily_backup_due(engine: Engine, org: Organization | None, *, is_super_admin: bool,
                     clock: Clock = local_now) -> bool:
    """The login rule: an admin or owner (never a super admin) of an organization with
    auto-backup on, and no successful backup with today's local date. Read from the
    database every time, never remembered, so a sleep or a restart cannot fool it."""
    if is_super_admin or org is None or not org.auto_backup_enabled:
        return False
    slot_table, _audit = _console_tables(engine)
    today = clock().date()
    try:
        record_ = week_slots(engine, slot_table, org.id).get(weekday_of(today))
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    done = (record_ is not None and record_.status == "success" and record_.backup_date
            is not None and record_.backup_date.date() == today)
    return not done
