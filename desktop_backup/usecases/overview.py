"""The organization as the main window and `desktop-backup list` show it: the week, the
history, the warnings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup import offsite_queue
from desktop_backup.backup import daily_backup_due, settle_interrupted, slot_names
from desktop_backup.db import friendly_error
from desktop_backup.encryption_setting import sheet_warning
from desktop_backup.history import AuditEntry, ensure_tables, recent, week_slots
from desktop_backup.organizations import Organization, find_organization
from desktop_backup.usecases.on_disk import files_now, history_notes
from desktop_backup.weekview import DayState, LastBackup, backup_warnings, last_backup, week_states
from desktop_backup.work import Site


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
                       slot_names(folder, org),
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
    warnings += [line for line in (offsite_warning, sheet_warning(engine, org.id)) if line]
    return Overview(org, days, history, rows, folder, due, last_backup(records, history),
                    warnings, notes, partial)


def _with_offsite(engine: Engine, org: Organization, days: list[DayState], now: datetime
                  ) -> tuple[list[DayState], str | None]:
    """Each day card's off-site line, and the header's warning when copies are not leaving."""
    offsite = offsite_queue.week_state(engine, org.id)
    lines = {d.weekday: offsite_queue.offsite_line(d, now) for d in offsite}
    return ([replace(day, offsite=lines.get(day.weekday, "")) for day in days],
            offsite_queue.offsite_warning(offsite, now))
