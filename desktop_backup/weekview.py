"""The seven-day view: from (today, slot records, files on disk) to seven day states.

Pure date arithmetic, tested with fixed dates; the window's grid and `desktop-backup list`
only present what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from desktop_backup.history import WEEKDAYS, SlotRecord


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
