"""The slot table (``auto_backup_logs``) and the append-only audit trail.

``auto_backup_logs`` is the web app's table (one row per organization and weekday); the
console creates it when missing and otherwise uses it exactly as the web app left it, Windows
paths and all. It is also how two workstations agree that today's backup runs once: the row
for today's weekday is claimed in a short transaction, and a second claimant finds it
``in_progress`` and stands down. The audit (``desktop_backup_audit``) records every
operation, success or not, and feeds the history view.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from desktop_backup.errors import DesktopBackupError

log = logging.getLogger(__name__)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SLOT_TABLE = "auto_backup_logs"
AUDIT_TABLE = "desktop_backup_audit"
# A run that has not reported for this long is taken to have crashed, and may be taken over.
STALE_AFTER = timedelta(hours=2)


class AlreadyRunning(DesktopBackupError):
    """Another workstation or process is making today's backup right now."""


def weekday_of(day: date) -> str:
    return WEEKDAYS[day.weekday()]


def _id_type():
    return BigInteger().with_variant(Integer, "sqlite")


def _console_metadata() -> MetaData:
    md = MetaData()
    # Foreign keys are left out on purpose: the web app's version cascades from users, so a
    # restore that deletes and re-inserts users would silently wipe the backup history.
    Table(SLOT_TABLE, md,
          Column("id", _id_type(), primary_key=True, autoincrement=True),
          Column("organization_id", BigInteger, nullable=False),
          Column("user_id", BigInteger, nullable=False),
          Column("day_of_week", String(255), nullable=False),
          Column("backup_filename", String(255), nullable=False, default=""),
          Column("backup_path", String(255), nullable=False, default=""),
          Column("backup_size", BigInteger, nullable=False, default=0),
          Column("status", String(20), nullable=False, default="in_progress"),
          Column("error_message", Text, nullable=True),
          Column("backup_date", DateTime, nullable=False),
          Column("created_at", DateTime, nullable=True),
          Column("updated_at", DateTime, nullable=True),
          UniqueConstraint("organization_id", "day_of_week", name="unique_org_day_backup"))
    Table(AUDIT_TABLE, md,
          Column("id", _id_type(), primary_key=True, autoincrement=True),
          Column("occurred_at", DateTime, nullable=False),
          Column("organization_id", BigInteger, nullable=True),
          Column("user_id", BigInteger, nullable=True),
          Column("username", String(255), nullable=True),
          Column("action", String(30), nullable=False),
          Column("trigger", String(20), nullable=True),
          Column("outcome", String(20), nullable=False),
          Column("day_of_week", String(10), nullable=True),
          Column("file", String(1024), nullable=True),
          Column("rows", BigInteger, nullable=True),
          Column("bytes", BigInteger, nullable=True),
          Column("duration_ms", BigInteger, nullable=True),
          Column("message", Text, nullable=True),
          Column("workstation", String(255), nullable=True),
          Index("ix_desktop_backup_audit_org", "organization_id", "occurred_at"))
    return md


def ensure_tables(engine: Engine) -> tuple[Table, Table]:
    """Create the slot and audit tables when missing; reflect them as they are otherwise."""
    md = _console_metadata()
    with engine.begin() as conn:
        existing = set(inspect(conn).get_table_names())
        for name in (SLOT_TABLE, AUDIT_TABLE):
            if name not in existing:
                md.tables[name].create(conn)
    live = MetaData()
    with engine.connect() as conn:
        slot = Table(SLOT_TABLE, live, autoload_with=conn)
        audit = Table(AUDIT_TABLE, live, autoload_with=conn)
    return slot, audit


@dataclass(frozen=True)
class SlotRecord:
    """One weekday slot as ``auto_backup_logs`` records it."""

    id: int
    organization_id: int
    user_id: int | None
    day_of_week: str
    filename: str
    path: str
    size: int
    status: str
    error_message: str | None
    backup_date: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row) -> SlotRecord:
        return cls(row["id"], row["organization_id"], row.get("user_id"), row["day_of_week"],
                   row.get("backup_filename") or "", row.get("backup_path") or "",
                   int(row.get("backup_size") or 0), str(row["status"]), row.get("error_message"),
                   _as_datetime(row.get("backup_date")), _as_datetime(row.get("updated_at")))


def _as_datetime(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class SlotClaim:
    """Today's slot, claimed by this run: the previous record tells what the file held."""

    slot_id: int
    weekday: str
    today: date
    previous: SlotRecord | None


@dataclass(frozen=True)
class AlreadyDone:
    """Today's backup already succeeded; nothing to do without --force."""

    record: SlotRecord


def claim_today(engine: Engine, slot_table: Table, org_id: int, user_id: int, now: datetime,
                force: bool = False, stale_after: timedelta = STALE_AFTER
                ) -> SlotClaim | AlreadyDone:
    """Claim today's weekday slot for this run, exactly once across workstations.

    `now` is the workstation's local time (naive, as Laravel stores timestamps).
    """
    for attempt in range(2):
        try:
            return _claim_once(engine, slot_table, org_id, user_id, now, force, stale_after)
        except (IntegrityError, OperationalError) as exc:
            # Another claimant inserted the row (or won the lock) first; look again.
            if attempt == 1 or not _is_race(exc):
                raise
    raise AssertionError("unreachable")


def _is_race(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, IntegrityError) or "deadlock" in text or "lock" in text


def _claim_once(engine: Engine, slot: Table, org_id: int, user_id: int, now: datetime,
                force: bool, stale_after: timedelta) -> SlotClaim | AlreadyDone:
    today = now.date()
    weekday = weekday_of(today)
    where = (slot.c.organization_id == org_id) & (slot.c.day_of_week == weekday)
    with _claim_connection(engine) as conn:
        query = select(slot).where(where)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        record = SlotRecord.from_row(row) if row else None
        if record and record.backup_date and record.backup_date.date() == today:
            if record.status == "success" and not force:
                return AlreadyDone(record)
            fresh = record.updated_at and now - record.updated_at < stale_after
            if record.status == "in_progress" and fresh:
                started = record.updated_at.strftime("%H:%M") if record.updated_at else "?"
                raise AlreadyRunning(
                    f"Today's backup is already running on another workstation or window "
                    f"(last report at {started}); it will appear here when it finishes.")
        values = {"user_id": user_id, "status": "in_progress", "error_message": None,
                  "backup_date": datetime.combine(today, datetime.min.time()),
                  "updated_at": now}
        if record is None:
            result = conn.execute(insert(slot).values(
                organization_id=org_id, day_of_week=weekday, backup_filename="",
                backup_path="", backup_size=0, created_at=now, **values))
            slot_id = result.inserted_primary_key[0]
        else:
            conn.execute(update(slot).where(slot.c.id == record.id).values(**values))
            slot_id = record.id
    return SlotClaim(int(slot_id), weekday, today, record)


class _claim_connection:
    """A short write transaction that serializes claimants on every dialect."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Connection:
        self.conn = self.engine.connect()
        if self.conn.dialect.name == "sqlite":
            self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.conn = self.conn.execution_options(isolation_level="READ COMMITTED")
            self.conn.begin()
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def finish_slot(engine: Engine, slot: Table, claim: SlotClaim, now: datetime, *,
                ok: bool, filename: str = "", path: str = "", size: int = 0,
                error: str | None = None) -> None:
    """Record how today's run ended. A failure keeps the previous file's name and size,
    because that file is still on disk and still the newest copy for the weekday."""
    values: dict = {"status": "success" if ok else "failed", "updated_at": now,
                    "error_message": None if ok else (error or "failed")[:2000]}
    if ok:
        values.update(backup_filename=filename, backup_path=path, backup_size=size)
    with engine.begin() as conn:
        conn.execute(update(slot).where(slot.c.id == claim.slot_id).values(**values))


def heartbeat(engine: Engine, slot: Table, claim: SlotClaim, now: datetime) -> None:
    """Tell other workstations this run is alive (so it is not taken for a crashed one)."""
    with engine.begin() as conn:
        conn.execute(update(slot).where(slot.c.id == claim.slot_id).values(updated_at=now))


def week_slots(engine: Engine, slot: Table, org_id: int) -> dict[str, SlotRecord]:
    """The organization's slot records by weekday (missing weekdays are absent)."""
    with engine.connect() as conn:
        rows = conn.execute(select(slot).where(slot.c.organization_id == org_id)).mappings()
        return {r["day_of_week"]: SlotRecord.from_row(r) for r in rows}


@dataclass(frozen=True)
class AuditEntry:
    """One operation as the history shows it."""

    action: str  # backup, restore, delete, save_copy, skipped, verify, toggle
    outcome: str  # success, failed, skipped, cancelled; refused (a restore checked and refused)
    organization_id: int | None
    user_id: int | None = None
    username: str | None = None
    trigger: str | None = None
    day_of_week: str | None = None
    file: str | None = None
    rows: int | None = None
    bytes: int | None = None
    duration_ms: int | None = None
    message: str | None = None
    occurred_at: datetime | None = None
    workstation: str | None = None
    id: int | None = None


def record(engine: Engine, audit: Table, entry: AuditEntry, now: datetime) -> None:
    """Append one entry to the audit; never updates or deletes."""
    values = {k: v for k, v in entry.__dict__.items() if k not in ("id",)}
    values["occurred_at"] = entry.occurred_at or now
    values["workstation"] = entry.workstation or socket.gethostname()
    if values.get("message"):
        values["message"] = values["message"][:4000]
    _log_entry(entry)
    with engine.begin() as conn:
        conn.execute(insert(audit).values(**values))


def _log_entry(entry: AuditEntry) -> None:
    """Every audited event in the log too, with whose data and who did it: support reads the
    log file when the database cannot be reached. (Passwords are never in an entry.)"""
    level = logging.INFO if entry.outcome in ("success", "skipped") else logging.WARNING
    where = f" {entry.file}" if entry.file else ""
    log.log(level, "Audit: %s %s, organization %s, by %s (%s)%s: %s", entry.action,
            entry.outcome, entry.organization_id, entry.username or "-", entry.trigger or "-",
            where, entry.message or "")


def record_quietly(engine: Engine, audit: Table, entry: AuditEntry, now: datetime) -> None:
    """Audit an outcome when the database may be the thing that failed: a lost connection
    must not hide the outcome itself, so the failure to record goes to the log instead."""
    try:
        record(engine, audit, entry, now.replace(tzinfo=None))
    except SQLAlchemyError as exc:
        log.warning("Could not record %s/%s in the audit: %s", entry.action, entry.outcome, exc)


def recent(engine: Engine, audit: Table, org_id: int | None, limit: int = 200
           ) -> list[AuditEntry]:
    """The newest audit entries first, for one organization or all."""
    query = select(audit).order_by(audit.c.occurred_at.desc(), audit.c.id.desc()).limit(limit)
    if org_id is not None:
        query = query.where(audit.c.organization_id == org_id)
    with engine.connect() as conn:
        return [AuditEntry(**{k: r[k] for k in AuditEntry.__dataclass_fields__})
                for r in conn.execute(query).mappings()]
