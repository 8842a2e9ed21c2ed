"""The seven-day view: from (today, slot records, files on disk) to seven day states.

Pure date arithmetic, tested with fixed dates; the window's grid and `desktop-backup list`
only present what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from desktop_backup.history import WEEKDAYS, AuditEntry, SlotRecord


@dataclass(frozen=True)
class DayState:
    """One weekday cell: what a shop owner needs to know about that slot."""

    weekday: str
    is_today: bool
    state: str  # "succeeded", "failed", "running", "none"
    backup_date: date | None
    size: int
    filename: str
    path: str
    error: str | None
    copy_kept: bool  # failed, but an older file for this weekday is still on disk
    age_days: int | None

    @property
    def label(self) -> str:
        return self.weekday.capitalize()

    @property
    def summary(self) -> str:
        """The state in words (never colour alone)."""
        when = self.backup_date.isoformat() if self.backup_date else ""
        if self.state == "succeeded":
            return f"Backed up {when}"
        if self.state == "failed":
            kept = "; last week's copy kept" if self.copy_kept else ""
            return f"Failed {when}: {self.error or 'unknown reason'}{kept}"
        if self.state == "running":
            return "Backing up now"
        return "No backup"


def week_states(today: date, records: dict[str, SlotRecord], folder: Path | None,
                filename_for: dict[str, str] | None = None,
                now: datetime | None = None, stale_after: timedelta = timedelta(hours=2)
                ) -> list[DayState]:
    """Monday to Sunday for the week view. A slot's file must exist to count as a backup;
    an in-progress record that has gone quiet is shown as failed (the run crashed)."""
    days = []
    for weekday in WEEKDAYS:
        rec = records.get(weekday)
        expected = (filename_for or {}).get(weekday, "")
        path = _slot_path(rec, folder, expected)
        exists = bool(path) and Path(path).is_file()
        state, error = "none", None
        backup_date = rec.backup_date.date() if rec and rec.backup_date else None
        if rec is not None:
            if rec.status == "success":
                state = "succeeded" if exists else "none"
                error = None if exists else "the file is missing from the backup folder"
            elif rec.status == "in_progress":
                quiet = bool(now and rec.updated_at and now - rec.updated_at > stale_after)
                state, error = ("failed", "the backup stopped unexpectedly") if quiet else (
                    "running", None)
            else:
                state, error = "failed", rec.error_message
        size = Path(path).stat().st_size if exists else 0
        days.append(DayState(
            weekday=weekday, is_today=WEEKDAYS[today.weekday()] == weekday, state=state,
            backup_date=backup_date, size=size, filename=Path(path).name if path else expected,
            path=path, error=error, copy_kept=state == "failed" and exists,
            age_days=(today - backup_date).days if backup_date else None))
    return days


def _slot_path(rec: SlotRecord | None, folder: Path | None, expected: str) -> str:
    """Where the weekday's file is: in the backup folder under its slot name, else where the
    record says (the web app's records may carry a Windows path from another machine)."""
    if folder is not None and expected and (folder / expected).is_file():
        return str(folder / expected)
    if rec and rec.path and Path(rec.path).is_file():
        return rec.path
    if folder is not None and expected:
        return str(folder / expected)
    return rec.path if rec else ""


# --- warnings: what the window's banner and the tray's tooltip say ------------------------------

NO_BACKUP_YET = "No backup of this organization has succeeded yet."
STALE_AFTER_DAYS = 2  # a last success older than this many days is worth a warning
FAILURES_IN_A_ROW = 2  # failed runs of one weekday's slot in a row ("twice" below)


@dataclass(frozen=True)
class LastBackup:
    """The newest backup run that ended, as the database records it."""

    when: datetime
    ok: bool
    message: str | None = None  # the failure's reason
    trigger: str | None = None


def _attempts(records: dict[str, SlotRecord], audit: list[AuditEntry]
              ) -> list[tuple[datetime, str | None, bool, str | None, str | None]]:
    """Every backup run that ended: (when, weekday, ok, message, trigger), newest first.

    Failures come from the audit only: a slot record also says "failed" for a run the person
    cancelled. Successes also come from the slot records, so the web app's backups count.
    """
    runs = []
    for entry in audit:
        if entry.action != "backup" or entry.occurred_at is None:
            continue
        if entry.outcome in ("success", "failed"):
            runs.append((entry.occurred_at, entry.day_of_week, entry.outcome == "success",
                         entry.message, entry.trigger))
    for weekday, rec in records.items():
        when = rec.updated_at or rec.backup_date
        if rec.status == "success" and when is not None:
            runs.append((when, weekday, True, None, None))
    runs.sort(key=lambda run: run[0], reverse=True)
    return runs


def last_backup(records: dict[str, SlotRecord], audit: list[AuditEntry]) -> LastBackup | None:
    """How the newest backup run ended (a cancelled run is not counted), or None."""
    runs = _attempts(records, audit)
    if not runs:
        return None
    when, _weekday, ok, message, trigger = runs[0]
    return LastBackup(when, ok, None if ok else message, trigger)


def backup_warnings(today: date, records: dict[str, SlotRecord], audit: list[AuditEntry]
                    ) -> list[str]:
    """Sentences for the warning banner: no success in more than two days, or a weekday's
    slot that failed twice in a row. Read from the slot records and the audit every time."""
    runs = _attempts(records, audit)
    warnings = []
    successes = [when for when, _day, ok, _message, _trigger in runs if ok]
    if not successes:
        warnings.append(NO_BACKUP_YET)
    else:
        last = max(successes).date()
        age = (today - last).days
        if age > STALE_AFTER_DAYS:
            warnings.append(f"The last successful backup was {age} days ago "
                            f"({last:%a} {last.day} {last:%b %Y}).")
    for weekday in WEEKDAYS:
        latest = [run for run in runs if run[1] == weekday][:FAILURES_IN_A_ROW]
        if len(latest) == FAILURES_IN_A_ROW and not any(run[2] for run in latest):
            reason = latest[0][3]
            warnings.append(f"{weekday.capitalize()}'s backup has failed twice in a row"
                            + (f": {reason}" if reason else "."))
    return warnings
