"""The off-site queue: which weekday copies still have to leave the building, and sending them.

Each organization's remote is in the settings (address only) and the keyring (its secrets).
Every good local backup puts its slot in ``desktop_backup_offsite`` as pending; ``push``
sends what is pending, newest first, and records the outcome there and in the audit. A failed
upload stays queued with a growing wait (backoff) before the next automatic try; an explicit
push tries at once. Exactly one workstation sends a given backup: a row is claimed by one
conditional UPDATE before the upload, and only a workstation that holds the very file (same
SHA-256) may claim it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from desktop_backup import keystore as keyring_store
from desktop_backup.audit import audit_entry
from desktop_backup.config import AppPaths, Settings, save_settings
from desktop_backup.db import (
    console_metadata,
    console_table,
    console_table_names,
    friendly_error,
)
from desktop_backup.encryption import encrypted_name, is_encrypted_name, plain_name
from desktop_backup.errors import KeyringUnavailable
from desktop_backup.history import WEEKDAYS, ensure_tables, record_quietly
from desktop_backup.offsite import (
    TEMP_MARK,
    OffsiteError,
    Rclone,
    Remote,
    RemoteFile,
    RemoteUnreachable,
    download_to,
    file_sha256,
    local_hashes,
    parse_remote,
    probe,
    upload_verified,
)
from desktop_backup.opening import verify_archive
from desktop_backup.organizations import Organization
from desktop_backup.wording import human_size
from desktop_backup.work import CancelFlag, Progress, ProgressCallback

log = logging.getLogger(__name__)
OFFSITE_TABLE = "desktop_backup_offsite"
PENDING, UPLOADING, COPIED, FAILED = "pending", "uploading", "copied", "failed"
# An upload that has not finished after this long is taken to have died with its process.
STALE_UPLOAD = timedelta(hours=2)
FIRST_WAIT = timedelta(minutes=5)
LONGEST_WAIT = timedelta(hours=6)


def org_folder(org: Organization) -> str:
    """The remote folder of one organization: by id (codes can change), code for people."""
    code = "".join(ch for ch in (org.code or "") if ch.isalnum() or ch in "-_")
    return f"org_{org.id}_{code}" if code else f"org_{org.id}"


def _offsite_table(md: MetaData) -> Table:
    """The console's off-site table, defined in `md` (console_metadata: its schema)."""
    return Table(OFFSITE_TABLE, md,
             Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                    autoincrement=True),
             Column("organization_id", BigInteger, nullable=False),
             Column("day_of_week", String(10), nullable=False),
             Column("status", String(20), nullable=False),
             Column("file_name", String(255), nullable=False),
             Column("local_path", String(1024), nullable=False),
             Column("sha256", String(64), nullable=False),
             Column("size", BigInteger, nullable=False),
             Column("backup_at", DateTime, nullable=False),
             Column("attempts", Integer, nullable=False, default=0),
             Column("next_try_at", DateTime, nullable=True),
             Column("copied_at", DateTime, nullable=True),
             Column("error_message", Text, nullable=True),
             Column("workstation", String(255), nullable=True),
             Column("updated_at", DateTime, nullable=False),
             UniqueConstraint("organization_id", "day_of_week", name="uq_offsite_org_day"))


def ensure_offsite_table(engine: Engine) -> Table:
    """Create the console's off-site table when missing; reflect it otherwise."""
    return console_table(engine, _offsite_table(console_metadata(engine)))


@dataclass(frozen=True)
class OffsiteDay:
    """One weekday's off-site state, for the grid, `offsite status` and the header."""

    weekday: str
    status: str  # pending, uploading, copied, failed; "" when nothing was ever queued
    file_name: str = ""
    size: int = 0
    backup_at: datetime | None = None
    copied_at: datetime | None = None
    attempts: int = 0
    next_try_at: datetime | None = None
    error: str | None = None

    @classmethod
    def from_row(cls, row) -> OffsiteDay:
        return cls(row["day_of_week"], row["status"], row["file_name"], int(row["size"]),
                   row["backup_at"], row["copied_at"], int(row["attempts"] or 0),
                   row["next_try_at"], row["error_message"])

    def to_dict(self) -> dict:
        return {k: (v.isoformat(sep=" ", timespec="seconds") if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}


def week_state(engine: Engine, org_id: int) -> list[OffsiteDay]:
    """Seven days, Monday first, each with its off-site state. Only reads: a database where
    nothing was ever queued has no off-site table yet, and a read must not create it (on
    SQLite that would wait for another workstation's running backup to let go)."""
    try:
        with engine.connect() as conn:
            if OFFSITE_TABLE not in console_table_names(conn):
                return [OffsiteDay(day, "") for day in WEEKDAYS]
            table = Table(OFFSITE_TABLE, console_metadata(conn), autoload_with=conn)
            rows = conn.execute(select(table).where(table.c.organization_id == org_id))
            found = {r["day_of_week"]: OffsiteDay.from_row(r) for r in rows.mappings()}
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    return [found.get(day, OffsiteDay(day, "")) for day in WEEKDAYS]


def last_copied(days: list[OffsiteDay]) -> datetime | None:
    """When an off-site copy last succeeded (the header warns when that is too long ago)."""
    times = [d.copied_at for d in days if d.status == COPIED and d.copied_at]
    return max(times) if times else None


OFFSITE_STALE = timedelta(days=2)  # no off-site copy for this long: the header warns


def offsite_line(day: OffsiteDay, now: datetime) -> str:
    """What a day card says about the day's off-site copy ("" when none was ever queued)."""
    if day.status == COPIED and day.copied_at:
        when = (f"{day.copied_at:%H:%M}" if day.copied_at.date() == now.date()
                else f"{day.copied_at.day} {day.copied_at:%b}")
        return f"Off-site: copied {when}"
    if day.status == UPLOADING:
        return "Off-site: sending…"
    if day.status == FAILED:
        return f"Off-site: waiting ({short_reason(day.error)})"
    if day.status == PENDING:
        return "Off-site: waiting to be sent"
    return ""


_SHORT_REASONS = (("cannot be reached", "remote unreachable"),
                  ("did not answer", "remote unreachable"),
                  ("refused the keys", "keys refused"),
                  ("no such bucket", "bucket or folder missing"), ("is full", "remote full"),
                  ("did not match", "check failed"), ("keyring", "keys not on this computer"))


def short_reason(error: str | None) -> str:
    """A failed upload's reason in two or three words, for a day card."""
    for needle, words in _SHORT_REASONS:
        if needle in (error or ""):
            return words
    return "failed"


def offsite_warning(days: list[OffsiteDay], now: datetime) -> str | None:
    """The header's warning when copies are queued but none reached the remote for two
    days (None when off-site copies were never used, or are fine)."""
    queued = [d for d in days if d.status]
    if not queued:
        return None
    last = last_copied(days)
    waiting = [d for d in queued if d.status != COPIED]
    if last is not None and (now - last < OFFSITE_STALE or not waiting):
        return None
    oldest = min((d.backup_at for d in waiting if d.backup_at), default=None)
    if last is None and oldest is not None and now - oldest < OFFSITE_STALE:
        return None
    since = f"since {last.day} {last:%b}" if last else "yet"
    reason = next((d.error for d in waiting if d.error), None)
    return (f"No backup has reached the off-site store {since}" +
            (f": {reason}" if reason else "."))


# --- the remote of an organization: address in the settings, secrets in the keyring ---

def _secret_key(org_id: int) -> str:
    return f"offsite:org_{org_id}"


def configured_remote(settings: Settings, org_id: int) -> Remote | None:
    """The organization's remote as the settings hold it, or None when off."""
    text = settings.offsite_remotes.get(str(org_id))
    return parse_remote(text)[0] if text else None


def rclone_for(settings: Settings, org_id: int) -> Rclone | None:
    """An rclone runner for the organization's remote, secrets from the keyring."""
    remote = configured_remote(settings, org_id)
    if remote is None:
        return None
    names = settings.offsite_key_names.get(str(org_id), [])
    saved = keyring_store.get_password(_secret_key(org_id)) if names else None
    if names and saved is None:
        raise OffsiteError("The off-site remote's keys are not in this computer's password "
                           "store (keyring); set the remote again to send copies from here.")
    secrets: dict[str, str] = json.loads(saved) if saved else {}
    return Rclone(remote, secrets)


def set_remote(paths: AppPaths, settings: Settings, org: Organization, text: str,
               test: bool = True) -> Remote:
    """Check the remote (write, read back, delete a file), then keep its address in the
    settings and its secrets in the keyring. Nothing is kept when the check fails."""
    remote, secrets = parse_remote(text)
    rc = Rclone(remote, secrets)
    if test:
        probe(rc)
    if secrets:
        try:
            keyring_store.set_password(_secret_key(org.id), json.dumps(secrets))
        except KeyringUnavailable as exc:
            raise OffsiteError("This computer has no usable password store (keyring), so the "
                               "remote's keys cannot be kept; nothing was changed.") from exc
    else:
        keyring_store.forget_password(_secret_key(org.id))
    settings.offsite_remotes = {**settings.offsite_remotes, str(org.id): remote.address}
    settings.offsite_key_names = {**settings.offsite_key_names,
                                  str(org.id): sorted(secrets)}
    save_settings(paths, settings)
    log.info("Off-site remote of organization %s set to %s", org.id, remote.address)
    return remote


def remove_remote(paths: AppPaths, settings: Settings, org: Organization) -> bool:
    """Turn off-site copies off for `org`: address and secrets forgotten. True if it was on."""
    was_on = str(org.id) in settings.offsite_remotes
    keyring_store.forget_password(_secret_key(org.id))
    settings.offsite_remotes = {k: v for k, v in settings.offsite_remotes.items()
                                if k != str(org.id)}
    settings.offsite_key_names = {k: v for k, v in settings.offsite_key_names.items()
                                  if k != str(org.id)}
    save_settings(paths, settings)
    return was_on


def try_remote(text: str) -> None:
    """Test a remote as typed (secrets included) without keeping anything."""
    remote, secrets = parse_remote(text)
    probe(Rclone(remote, secrets))


def check_remote(settings: Settings, org_id: int) -> None:
    """The settings page's "Test connection": one sentence (OffsiteError) when it fails."""
    rc = rclone_for(settings, org_id)
    if rc is None:
        raise OffsiteError("No off-site remote is set for this organization.")
    probe(rc)


# --- the queue ---

def enqueue(engine: Engine, org_id: int, weekday: str, path: Path, now: datetime) -> None:
    """Queue a fresh local backup for upload; it supersedes whatever the day had queued."""
    table = ensure_offsite_table(engine)
    values = {"status": PENDING, "file_name": path.name, "local_path": str(path),
              "sha256": file_sha256(path), "size": path.stat().st_size, "backup_at": now,
              "attempts": 0, "next_try_at": now, "copied_at": None, "error_message": None,
              "workstation": socket.gethostname(), "updated_at": now}
    where = (table.c.organization_id == org_id) & (table.c.day_of_week == weekday)
    try:
        with engine.begin() as conn:
            if conn.execute(update(table).where(where).values(**values)).rowcount == 0:
                conn.execute(insert(table).values(organization_id=org_id, day_of_week=weekday,
                                                  **values))
    except IntegrityError:  # another process inserted the day's row first: update it
        with engine.begin() as conn:
            conn.execute(update(table).where(where).values(**values))
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


@dataclass
class PushReport:
    """What a push did, for the command line, the window and the tray."""

    sent: list[str] = field(default_factory=list)  # weekdays copied
    failed: dict[str, str] = field(default_factory=dict)  # weekday -> reason
    waiting: list[str] = field(default_factory=list)  # pending, not due yet (backoff)
    elsewhere: list[str] = field(default_factory=list)  # another workstation's file
    monthly: str = ""  # what the monthly copies did, in words (offsite_monthly)

    @property
    def ok(self) -> bool:
        return not self.failed

    def message(self) -> str:
        parts = []
        if self.sent:
            parts.append(f"Copied off-site: {', '.join(d.title() for d in self.sent)}.")
        for day, reason in self.failed.items():
            parts.append(f"{day.title()} is still waiting to go off-site: {reason}")
        if self.waiting:
            parts.append(f"Waiting to retry: {', '.join(d.title() for d in self.waiting)}.")
        if self.elsewhere:
            parts.append("Sent by the workstation that made them: "
                         f"{', '.join(d.title() for d in self.elsewhere)}.")
        if self.monthly:
            parts.append(self.monthly)
        return " ".join(parts) or "Nothing is waiting to go off-site."

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message(), "sent": self.sent,
                "failed": self.failed, "waiting": self.waiting, "elsewhere": self.elsewhere,
                "monthly": self.monthly}


def push(engine: Engine, rc: Rclone, org: Organization, actor, now: datetime, *,
         trigger: str = "cli", retry_now: bool = True,
         progress: ProgressCallback | None = None) -> PushReport:
    """Send every pending copy of `org`, newest first. `retry_now` ignores the backoff
    (an explicit push); start-up and the timer leave it False. `progress` hears each
    upload's bytes (Progress: table = the weekday, copy i of n, unit "bytes")."""
    table = ensure_offsite_table(engine)
    _slots, audit = ensure_tables(engine)
    report = PushReport()
    with engine.connect() as conn:
        rows = list(conn.execute(select(table).where(
            (table.c.organization_id == org.id) & (table.c.status != COPIED))
            .order_by(table.c.backup_at.desc())).mappings())
    for i, row in enumerate(rows):
        sent = None if progress is None else _bytes_to(progress, row["day_of_week"], i,
                                                       len(rows))
        if _push_one(engine, table, audit, rc, org, actor, dict(row), now, trigger,
                     retry_now, report, sent):
            report.waiting += [r["day_of_week"] for r in rows[i + 1:]]
            break  # the remote is unreachable: the rest waits for the next try
    return report


def _bytes_to(progress: ProgressCallback, weekday: str, index: int, count: int):
    """A transfer's (bytes done, bytes in all) as the core's Progress."""
    return lambda done, total: progress(Progress(weekday, index, count, done, total,
                                                 unit="bytes"))


def _push_one(engine, table, audit, rc, org, actor, row, now, trigger, retry_now,
              report, progress) -> bool:
    """Send one queued copy; True when the remote proved unreachable."""
    day = row["day_of_week"]
    local = Path(row["local_path"])
    hashes = _held_file_hashes(local, row)
    if hashes is None:
        report.elsewhere.append(day)
        return False
    if not retry_now and row["next_try_at"] and row["next_try_at"] > now:
        report.waiting.append(day)
        return False
    if not _claim(engine, table, row, now):
        report.elsewhere.append(day)  # another workstation or window is sending it
        return False
    started = time.monotonic()
    entry = audit_entry("upload", org.id, actor, trigger=trigger, day_of_week=day,
                        file=rc.remote.join(org_folder(org), local.name), bytes=row["size"])
    try:
        upload_verified(rc, local, org_folder(org), row["sha256"], progress=progress,
                        known=hashes)
    except OffsiteError as exc:
        _finish(engine, table, row, now, ok=False, error=str(exc))
        report.failed[day] = str(exc)
        record_quietly(engine, audit, replace(entry, outcome="failed", message=str(exc),
                       duration_ms=_ms(started)), now)
        return isinstance(exc, RemoteUnreachable)
    _finish(engine, table, row, now, ok=True)
    # The same weekday in the other form goes: a clear copy must not outlive encryption
    # off-site either (nor an encrypted one its being turned off, as in the backup folder).
    rc.delete_quietly(rc.remote.join(org_folder(org), _other_form(local.name)))
    report.sent.append(day)
    record_quietly(engine, audit, replace(entry, duration_ms=_ms(started),
                   message=f"checked against SHA-256 {row['sha256'][:12]}"), now)
    return False


def _other_form(name: str) -> str:
    """``…_backup.zip`` <-> ``…_backup.zip.age``."""
    return plain_name(name) if is_encrypted_name(name) else encrypted_name(name)


def _held_file_hashes(local: Path, row) -> dict[str, str] | None:
    """The file's hashes when this workstation has the very file that was queued (not a
    newer or older one), else None. Read once: the upload checks its copy with them."""
    try:
        if not local.is_file() or local.stat().st_size != int(row["size"]):
            return None
        hashes = local_hashes(local)
    except OSError:
        return None
    return hashes if hashes["sha256"] == row["sha256"] else None


def _claim(engine: Engine, table: Table, row, now: datetime) -> bool:
    """One conditional UPDATE: exactly one claimant wins, on every dialect."""
    stale = now - STALE_UPLOAD
    where = (table.c.id == row["id"]) & (table.c.sha256 == row["sha256"]) & (
        table.c.status.in_((PENDING, FAILED))
        | ((table.c.status == UPLOADING) & (table.c.updated_at < stale)))
    with engine.begin() as conn:
        claimed = conn.execute(update(table).where(where).values(
            status=UPLOADING, workstation=socket.gethostname(), updated_at=now)).rowcount
    return claimed == 1


def _finish(engine, table, row, now, *, ok: bool, error: str | None = None) -> None:
    attempts = int(row["attempts"] or 0) + 1
    if ok:
        values = {"status": COPIED, "copied_at": now, "error_message": None,
                  "attempts": attempts, "next_try_at": None}
    else:
        values = {"status": FAILED, "error_message": (error or "failed")[:2000],
                  "attempts": attempts, "next_try_at": now + backoff(attempts)}
    where = (table.c.id == row["id"]) & (table.c.sha256 == row["sha256"])
    try:
        with engine.begin() as conn:
            conn.execute(update(table).where(where).values(updated_at=now, **values))
    except SQLAlchemyError as exc:
        log.warning("Could not record the off-site outcome of %s: %s", row["day_of_week"], exc)


def backoff(attempts: int) -> timedelta:
    """How long to wait before the next automatic try: 5 min, doubling, at most 6 h."""
    return min(FIRST_WAIT * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- after a backup, and coming back ---

def after_backup(engine: Engine, settings: Settings, org: Organization, result, actor,
                 now: datetime, trigger: str,
                 progress: ProgressCallback | None = None) -> PushReport | None:
    """Queue and send the backup `result` just made; None when off-site copies are off.

    Called after run_backup has returned: the local slot is already safely in place, and
    nothing here can touch it. A failure leaves the copy queued; it never raises.
    `progress` hears the upload's bytes."""
    if result.skipped or not result.ok or result.path is None:
        return None
    if configured_remote(settings, org.id) is None:
        return None
    try:
        enqueue(engine, org.id, result.weekday, Path(result.path), now)
        rc = rclone_for(settings, org.id)
        assert rc is not None
        return push(engine, rc, org, actor, now, trigger=trigger, retry_now=False,
                    progress=progress)
    except OffsiteError as exc:
        return PushReport(failed={result.weekday: str(exc)})
    except Exception as exc:  # noqa: BLE001 - an upload must never fail the backup
        log.warning("Off-site copy after the backup failed", exc_info=exc)
        return PushReport(failed={result.weekday: str(exc)})


@dataclass(frozen=True)
class PulledCopy:
    """A day's copy fetched from the remote and checked: ready for `restore`."""

    path: Path
    size: int
    message: str


def remote_days(rc: Rclone, org: Organization, slot_name,
                cancel: CancelFlag | None = None) -> dict[str, RemoteFile]:
    """The remote's weekday files of `org` (weekday -> RemoteFile): the encrypted slot
    (``.zip.age``) when the remote has it, else the plain one."""
    files = {f.name: f for f in rc.files(rc.remote.join(org_folder(org)), cancel)
             if not f.name.endswith(TEMP_MARK)}
    found = {}
    for day in WEEKDAYS:
        name = next((n for n in (encrypted_name(slot_name(day)), slot_name(day))
                     if n in files), None)
        if name is not None:
            found[day] = files[name]
    return found


def pull(rc: Rclone, org: Organization, weekday: str, target: Path,
         cancel: CancelFlag | None = None,
         progress: ProgressCallback | None = None) -> PulledCopy:
    """Fetch a day's copy into `target` (a private temporary file first), check that it is
    a whole backup of this very organization, then move it into place. `cancel` stops the
    download (Cancelled; nothing is kept); `progress` hears its bytes."""
    remote_path = rc.remote.join(org_folder(org), target.name)
    received = None if progress is None else _bytes_to(progress, weekday, 0, 1)
    try:
        temp = download_to(rc, remote_path, target, cancel, received)
    except OffsiteError as exc:
        if "no such bucket or folder" in str(exc):
            raise OffsiteError(f"The off-site store has no {weekday.title()} copy of "
                               f"{org.label}.") from exc
        raise
    try:
        report = verify_archive(temp, None, [org.id])
        if not report.ok:
            raise OffsiteError(f"The off-site {weekday.title()} copy is not a usable backup "
                               f"({report.message}); nothing was kept.")
        if report.organization.get("id") != org.id:
            raise OffsiteError(f"The off-site {weekday.title()} copy belongs to another "
                               "organization; nothing was kept.")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    size = target.stat().st_size
    return PulledCopy(target, size, f"Fetched the {weekday.title()} copy of {org.label} from "
                      f"off-site into {target} ({human_size(size)}); it is a "
                      "complete, undamaged backup.")
