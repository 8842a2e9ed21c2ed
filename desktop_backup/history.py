"""The slot table (``auto_backup_logs``) and the append-only audit trail.

``auto_backup_logs`` is the web app's table (one row per organization and weekday); the
console creates it when missing and otherwise uses it exactly as the web app left it, Windows
paths and all (no column of ours is added to it). Two workstations agree that today's backup
runs once through a lock that dies with its holder (runlock.py): the holder then claims the
weekday's row in a short transaction, and notes its host name and process id in the
console's own ``desktop_backup_runs`` table, which names it to anyone who finds the lock
taken. An ``in_progress`` row whose lock is free belongs to a run that died: it is recorded
as interrupted and taken over at once. The audit (``desktop_backup_audit``) records every
operation, success or not, and feeds the history view.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field, replace
from datetime import date, datetime

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
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from desktop_backup.db import console_metadata, console_table_names, create_once, defined
from desktop_backup.errors import DesktopBackupError
from desktop_backup.export import LOCK_WAIT_S
from desktop_backup.runlock import RunLock, run_lock

log = logging.getLogger(__name__)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SLOT_TABLE = "auto_backup_logs"
AUDIT_TABLE = "desktop_backup_audit"
RUNS_TABLE = "desktop_backup_runs"
INTERRUPTED = ("stopped before it finished (the program was closed or the computer lost "
               "power); nothing was replaced")
INTERRUPTED_SHORT = "The backup stopped before it finished; nothing was replaced."


class AlreadyRunning(DesktopBackupError):
    """Another workstation or process is making the organization's backup right now.

    Not a failure: the backup is being made. The command line exits 0 with this sentence,
    the audit records it as skipped, the window shows it as information."""


def weekday_of(day: date) -> str:
    return WEEKDAYS[day.weekday()]


def _id_type():
    return BigInteger().with_variant(Integer, "sqlite")


def _define_history_tables(md: MetaData) -> MetaData:
    """The console's three history tables, defined in `md` (console_metadata: its schema)."""
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
          *_added_audit_columns(),
          Index("ix_desktop_backup_audit_org", "organization_id", "occurred_at"))
    Table(RUNS_TABLE, md,
          Column("organization_id", BigInteger, primary_key=True, autoincrement=False),
          Column("slot_id", BigInteger, nullable=False),
          Column("day_of_week", String(10), nullable=False),
          Column("user_id", BigInteger, nullable=True),
          Column("username", String(255), nullable=True),
          Column("trigger", String(20), nullable=True),
          Column("host", String(255), nullable=False),
          Column("pid", BigInteger, nullable=False),
          Column("started_at", DateTime, nullable=False))
    return md


def _added_audit_columns() -> list[Column]:
    """Columns the audit gained after its first release; ensure_tables adds them to an
    older table. `backup_id`: the identity of the backup the entry made or acted on (its
    manifest's id); `restore_point`: the file a restore saved first, which undoes it;
    `sha256`: an encrypted backup's file as written, so a workstation without the key can
    still tell that a file is intact."""
    return [Column("backup_id", String(64), nullable=True),
            Column("restore_point", String(1024), nullable=True),
            Column("sha256", String(64), nullable=True)]


def _console_table(bind: Engine | Connection, name: str) -> Table:
    """One of the three as defined here, in the console's schema."""
    return defined(_define_history_tables(console_metadata(bind)), name)


def _runs(bind: Engine | Connection) -> Table:
    return _console_table(bind, RUNS_TABLE)  # the console's own: its definition is known


def ensure_tables(engine: Engine) -> tuple[Table, Table]:
    """Create the slot and audit tables when missing; reflect them as they are otherwise."""
    with engine.connect() as conn:
        existing = console_table_names(conn)
    for name in (SLOT_TABLE, AUDIT_TABLE, RUNS_TABLE):
        if name not in existing:
            create_once(engine, _console_table(engine, name))
    _add_missing_audit_columns(engine)
    live = console_metadata(engine)
    with engine.connect() as conn:
        slot = Table(SLOT_TABLE, live, autoload_with=conn)
        audit = Table(AUDIT_TABLE, live, autoload_with=conn)
    return slot, audit


def _add_missing_audit_columns(engine: Engine) -> None:
    """An audit table made by an older console lacks the newer columns: add them (nullable,
    so every old entry stays as it was)."""
    audit = _console_table(engine, AUDIT_TABLE)
    with engine.connect() as conn:
        have = _column_names(conn, audit)
    for col in [c for c in _added_audit_columns() if c.name not in have]:
        try:
            with engine.begin() as conn:
                preparer = conn.dialect.identifier_preparer
                kind = col.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(audit)} ADD COLUMN "
                                     f"{preparer.quote(col.name)} {kind} NULL")
        except SQLAlchemyError:
            with engine.connect() as conn:  # another workstation added it at the same time
                if col.name not in _column_names(conn, audit):
                    raise


def _column_names(conn: Connection, table: Table) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table.name, schema=table.schema)}


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
class RunInfo:
    """Who holds (or held) an organization's backup: for messages and the audit."""

    slot_id: int
    day_of_week: str
    user_id: int | None
    username: str | None
    trigger: str | None
    host: str
    pid: int
    started_at: datetime

    @property
    def where(self) -> str:
        return f"{self.host} (process {self.pid}, started {self.started_at:%H:%M})"


@dataclass(frozen=True)
class SlotClaim:
    """Today's slot, claimed by this run: the previous record tells what the file held.

    `interrupted` is a dead run's row this claim took over (for the audit); `lock` is held
    until :meth:`release`, which every run calls however it ends."""

    slot_id: int
    weekday: str
    today: date
    previous: SlotRecord | None
    interrupted: SlotRecord | None = None
    interrupted_run: RunInfo | None = None
    lock: RunLock | None = field(default=None, compare=False, repr=False)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


@dataclass(frozen=True)
class AlreadyDone:
    """Today's backup already succeeded; nothing to do without --force."""

    record: SlotRecord


def claim_today(engine: Engine, slot_table: Table, org_id: int, user_id: int, now: datetime,
                force: bool = False, *, username: str | None = None,
                trigger: str | None = None) -> SlotClaim | AlreadyDone:
    """Claim today's weekday slot for this run, exactly once across workstations.

    `now` is the workstation's local time (naive, as Laravel stores timestamps). Raises
    AlreadyRunning, naming the workstation, while a live run holds the organization.
    """
    lock = run_lock(engine, org_id)
    if not lock.acquire():
        raise AlreadyRunning(running_message(engine, org_id))
    try:
        claim = _claim_with_retry(engine, slot_table, org_id, user_id, now, force,
                                  username, trigger)
    except BaseException:
        lock.release()
        raise
    if isinstance(claim, AlreadyDone):
        lock.release()
        return claim
    return replace(claim, lock=lock)


def running_message(engine: Engine, org_id: int) -> str:
    """The sentence for a claimant that found the lock taken: not a failure, a wait."""
    run = current_run(engine, org_id)
    where = f" on {run.where}" if run else " on another workstation or in another window"
    return (f"Today's backup is already being made{where}; it will appear here when it "
            "finishes.")


def current_run(engine: Engine, org_id: int) -> RunInfo | None:
    """The run the console noted for the organization, while its slot row is in progress
    (the lock is what counts; this only names the workstation in the message)."""
    try:
        with engine.connect() as conn:
            run = _run_of(conn, org_id)
            if run is None:
                return None
            slot = Table(SLOT_TABLE, console_metadata(conn), autoload_with=conn)
            status = conn.execute(select(slot.c.status).where(slot.c.id == run.slot_id)
                                  ).scalar()
    except SQLAlchemyError:
        return None
    return run if status == "in_progress" else None


def _run_of(conn: Connection, org_id: int) -> RunInfo | None:
    runs = _runs(conn)
    row = conn.execute(select(runs).where(runs.c.organization_id == org_id)).mappings().first()
    if row is None:
        return None
    return RunInfo(int(row["slot_id"]), row["day_of_week"], row["user_id"], row["username"],
                   row["trigger"], row["host"], int(row["pid"]), _as_datetime(row["started_at"]))


def _claim_with_retry(engine, slot_table, org_id, user_id, now, force, username, trigger):
    for attempt in range(2):
        try:
            return _claim_once(engine, slot_table, org_id, user_id, now, force, username,
                               trigger)
        except IntegrityError:
            # The web app (which takes no lock) inserted the row first; look again.
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def _claim_once(engine: Engine, slot: Table, org_id: int, user_id: int, now: datetime,
                force: bool, username: str | None, trigger: str | None
                ) -> SlotClaim | AlreadyDone:
    """Runs holding the organization's lock: an in_progress row is therefore a dead run's."""
    today = now.date()
    weekday = weekday_of(today)
    where = (slot.c.organization_id == org_id) & (slot.c.day_of_week == weekday)
    with _claim_connection(engine) as conn:
        row = conn.execute(select(slot).where(where)).mappings().first()
        record = SlotRecord.from_row(row) if row else None
        if (record and record.status == "success" and not force and record.backup_date
                and record.backup_date.date() == today):
            return AlreadyDone(record)
        dead_run = _run_of(conn, org_id)
        interrupted = _settle(conn, slot, org_id, now)
        previous = next((r for r in interrupted if r.id == record.id), record) if record \
            else None
        values = {"user_id": user_id, "status": "in_progress", "error_message": None,
                  "backup_date": datetime.combine(today, datetime.min.time()),
                  "updated_at": now}
        if record is None:
            result = conn.execute(insert(slot).values(
                organization_id=org_id, day_of_week=weekday, backup_filename="",
                backup_path="", backup_size=0, created_at=now, **values))
            slot_id = int(result.inserted_primary_key[0])
        else:
            conn.execute(update(slot).where(slot.c.id == record.id).values(**values))
            slot_id = record.id
        _note_run(conn, org_id, slot_id=slot_id, day_of_week=weekday, user_id=user_id,
                  username=username, trigger=trigger, host=socket.gethostname(),
                  pid=os.getpid(), started_at=now)
    dead = interrupted[0] if interrupted else None
    return SlotClaim(slot_id, weekday, today, previous, dead, _ran(dead_run, dead))


def _ran(run: RunInfo | None, record: SlotRecord | None) -> RunInfo | None:
    """The console's note of who ran `record`'s run (none for the web app's rows)."""
    return run if run is not None and record is not None and run.slot_id == record.id \
        else None


def _settle(conn: Connection, slot: Table, org_id: int, now: datetime) -> list[SlotRecord]:
    """With the organization's lock held: mark its in_progress rows as interrupted (their
    runs died) and forget the dead run's note. Returns the rows as they are now."""
    rows = conn.execute(select(slot).where((slot.c.organization_id == org_id) & (
        slot.c.status == "in_progress"))).mappings().all()
    settled = []
    for row in rows:
        record = SlotRecord.from_row(row)
        message = INTERRUPTED_SHORT  # a day card's line; the audit says where and why
        conn.execute(update(slot).where(slot.c.id == record.id).values(
            status="failed", error_message=message, updated_at=now))
        settled.append(replace(record, status="failed", error_message=message))
    return settled


def _note_run(conn: Connection, org_id: int, **values) -> None:
    """Who runs the organization's backup now. One row per organization, updated in place
    (a database user without DELETE rights can still back up)."""
    runs = _runs(conn)
    done = conn.execute(update(runs).where(runs.c.organization_id == org_id).values(**values))
    if not done.rowcount:
        conn.execute(insert(runs).values(organization_id=org_id, **values))


def settle_dead_runs(engine: Engine, slot: Table, org_id: int, now: datetime
                     ) -> list[tuple[SlotRecord, RunInfo | None]]:
    """For the views: if no live run holds the organization, its in_progress rows are dead
    runs; record them as interrupted so nothing shows "Backing up now" for a dead run.
    Returns the rows settled now, with who ran them (for the audit)."""
    with engine.connect() as conn:
        pending = conn.execute(select(slot.c.id).where((slot.c.organization_id == org_id) & (
            slot.c.status == "in_progress"))).first()
    if pending is None:
        return []
    lock = run_lock(engine, org_id)
    if not lock.acquire():
        return []  # a live run: its row is true
    try:
        with _claim_connection(engine) as conn:
            run = _run_of(conn, org_id)
            return [(record, _ran(run, record)) for record in _settle(conn, slot, org_id, now)]
    finally:
        lock.release()


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
            if self.conn.dialect.name == "postgresql":  # a row the web app holds: retry
                self.conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
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


def unclaim_slot(engine: Engine, slot: Table, claim: SlotClaim) -> None:
    """A cancelled run: the slot goes back to what it said before (the web app's table has
    no "cancelled" status, and a cancel changed nothing); the audit says "cancelled"."""
    before = claim.previous
    with engine.begin() as conn:
        if before is None:
            conn.execute(delete(slot).where(slot.c.id == claim.slot_id))
        else:
            conn.execute(update(slot).where(slot.c.id == claim.slot_id).values(
                user_id=before.user_id, status=before.status,
                error_message=before.error_message, backup_date=before.backup_date,
                updated_at=before.updated_at))


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
    backup_id: str | None = None  # the backup made or acted on (its manifest's id)
    restore_point: str | None = None  # a restore's: the file that undoes it
    sha256: str | None = None  # an encrypted backup's: its file's SHA-256 as written


def record(engine: Engine, audit: Table, entry: AuditEntry, now: datetime) -> None:
    """Append one entry to the audit; never updates or deletes."""
    values = {k: v for k, v in entry.__dict__.items() if k not in ("id",)}
    # Local wall time, naive, on every dialect (PostgreSQL would shift an aware one to UTC).
    values["occurred_at"] = (entry.occurred_at or now).replace(tzinfo=None)
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
    return _entries(engine, query)


def backup_with_sha256(engine: Engine, audit: Table, sha256: str) -> AuditEntry | None:
    """The successful backup whose file had this SHA-256 when it was written, if any."""
    query = (select(audit).where((audit.c.action == "backup") & (audit.c.outcome == "success")
                                 & (audit.c.sha256 == sha256))
             .order_by(audit.c.occurred_at.desc(), audit.c.id.desc()).limit(1))
    found = _entries(engine, query)
    return found[0] if found else None


def _entries(engine: Engine, query) -> list[AuditEntry]:
    with engine.connect() as conn:
        return [AuditEntry(**{k: r[k] for k in AuditEntry.__dataclass_fields__})
                for r in conn.execute(query).mappings()]
