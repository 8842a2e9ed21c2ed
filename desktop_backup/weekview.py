"""The seven-day view: from (today, slot records, files on disk) to seven day states.

Pure date arithmetic, tested with fixed dates; the window's grid and `desktop-backup list`
only present what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    offsite: str = ""  # the day's off-site copy in words (offsite_queue.offsite_line)
    copy_made: datetime | None = None  # when the file on disk (the newest good copy) was made
    later_failure: str | None = None  # a later attempt that day failed: its reason
    failed_at: datetime | None = None  # when that attempt (or the day's failed run) ended
    elsewhere: str = ""  # the folder holding the day's file, when not the backup folder

    @property
    def label(self) -> str:
        return self.weekday.capitalize()

    @property
    def kept_copy(self) -> str:
        """Which copy a failed day still has, in words: last week's only when it is."""
        if not self.copy_kept:
            return ""
        made = self.copy_made.date() if self.copy_made else None
        failed = self.failed_at.date() if self.failed_at else self.backup_date
        if made is None or failed is None:
            return "An older copy"
        if failed <= made and self.backup_date and self.age_days is not None:
            # The slot row still carries the copy's date: the failure is today's.
            failed = self.backup_date + timedelta(days=self.age_days)
        if 0 < (failed - made).days <= 7:
            return "Last week's copy"
        return "An older copy"

    @property
    def later_attempt(self) -> str:
        """The warning beside a good copy: a later attempt the same day did not succeed."""
        if self.later_failure is None:
            return ""
        at = f" at {self.failed_at:%H:%M}" if self.failed_at else ""
        ended = "was cancelled" if "cancel" in self.later_failure.lower() else "failed"
        return f"A later attempt{at} {ended}."

    @property
    def summary(self) -> str:
        """The state in words (never colour alone)."""
        when = self.backup_date.isoformat() if self.backup_date else ""
        if self.state == "succeeded":
            at = f" {self.copy_made:%H:%M}" if self.copy_made else ""
            later = f"; {self.later_attempt[:1].lower()}{self.later_attempt[1:-1]}: " \
                f"{self.later_failure}" if self.later_failure else ""
            return f"Backed up {when}{at}{later}"
        if self.state == "failed":
            made = f" (made {self.copy_made:%Y-%m-%d %H:%M})" if self.copy_made else ""
            kept = f"; {self.kept_copy[:1].lower()}{self.kept_copy[1:]} kept{made}" \
                if self.copy_kept else ""
            return f"Failed {when}: {self.error or 'unknown reason'}{kept}"
        if self.state == "running":
            return "Backing up now"
        return "No backup"


def week_states(today: date, records: dict[str, SlotRecord], folder: Path | None,
                filename_for: dict[str, str] | None = None,
                now: datetime | None = None,
                audit: list[AuditEntry] | None = None) -> list[DayState]:
    """Monday to Sunday for the week view. A slot's file must exist to count as a backup.
    An in-progress record is a live run: the callers settle dead runs' records first
    (backup.settle_interrupted), by the lock that dies with its holder, not by a clock.

    A day shows its newest usable copy: when the day's backup succeeded and a later attempt
    that day failed, the file on disk is still that day's good copy, so the day is
    "succeeded" with a warning about the later attempt. `audit` (newest first) tells when
    the file on disk was made; without an entry for it, the file's modification time does.
    """
    days = []
    for weekday in WEEKDAYS:
        rec = records.get(weekday)
        expected = (filename_for or {}).get(weekday, "")
        path = _slot_path(rec, folder, expected)
        exists = bool(path) and Path(path).is_file()
        day = _day_state(today, weekday, rec, path, expected, exists, now, audit or [])
        days.append(replace(day, elsewhere=_elsewhere(path, exists, folder)))
    return days


def _day_state(today: date, weekday: str, rec: SlotRecord | None, path: str, expected: str,
               exists: bool, now: datetime | None, audit: list[AuditEntry]) -> DayState:
    state, error = "none", None
    backup_date = rec.backup_date.date() if rec and rec.backup_date else None
    if rec is not None:
        if rec.status == "success":
            state = "succeeded" if exists else "none"
            error = None if exists else "the file is missing from the backup folder"
        elif rec.status == "in_progress":
            state = "running"
        else:
            state, error = "failed", rec.error_message
    made = _copy_made(rec, path, weekday, audit) if exists else None
    later, failed_at = None, None
    if state == "failed" and rec is not None:
        failed_at = rec.updated_at
        if made is not None and backup_date is not None and made.date() >= backup_date:
            # The day's backup succeeded before this attempt failed: its copy is the day's.
            state, later, error, backup_date = "succeeded", error or "unknown reason", None, \
                made.date()
    if state in ("succeeded", "none") and later is None:
        attempt = _unrecorded_attempt(weekday, made, audit, now)
        if attempt is not None and state == "succeeded":
            later, failed_at = attempt.message or attempt.outcome, attempt.occurred_at
        elif attempt is not None:  # no copy at all: the failure is the day's state
            state, error, failed_at = "failed", attempt.message, attempt.occurred_at
    size = Path(path).stat().st_size if exists else 0
    return DayState(
        weekday=weekday, is_today=WEEKDAYS[today.weekday()] == weekday, state=state,
        backup_date=backup_date, size=size, filename=Path(path).name if path else expected,
        path=path, error=error, copy_kept=state == "failed" and exists,
        age_days=(today - backup_date).days if backup_date else None, copy_made=made,
        later_failure=later, failed_at=failed_at)


def _unrecorded_attempt(weekday: str, made: datetime | None, audit: list[AuditEntry],
                        now: datetime | None) -> AuditEntry | None:
    """The newest backup of this weekday that failed or was cancelled after the copy on
    disk was made, within the last week. Such runs may never have reached the slot row (the
    database was busy, a cancel while waiting): the audit is where they are."""
    for entry in audit:  # newest first
        if entry.action != "backup" or entry.day_of_week != weekday or not entry.occurred_at:
            continue
        when = entry.occurred_at.replace(tzinfo=None)
        if (made is not None and when <= made) or (now is not None and
                                                    (now - when).days >= 7):
            return None
        if entry.outcome in ("failed", "cancelled"):
            return entry
        if entry.outcome == "success":
            return None
    return None


def _copy_made(rec: SlotRecord | None, path: str, weekday: str,
               audit: list[AuditEntry]) -> datetime | None:
    """When the file on disk was made: the record's time for a success, else the newest
    successful backup of that file in the audit, else the file's modification time."""
    name = Path(path).name
    if rec is not None and rec.status == "success" and rec.updated_at is not None and (
            not rec.path or _basename(rec.path) == name):  # the record is about this file
        return rec.updated_at
    for entry in audit:
        if (entry.action == "backup" and entry.outcome == "success" and entry.occurred_at
                and entry.day_of_week == weekday and entry.file
                and _basename(entry.file) == name):
            return entry.occurred_at.replace(tzinfo=None)
    try:
        return datetime.fromtimestamp(Path(path).stat().st_mtime)
    except OSError:
        return None


def _basename(path: str) -> str:
    """The file name of a path written on any system (the web app's may be Windows')."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _slot_path(rec: SlotRecord | None, folder: Path | None, expected: str) -> str:
    """Where the weekday's file is: in the backup folder under its slot name, else where the
    record says (a backup made with --dir, or before the shop chose another folder; the web
    app's records may carry a Windows path from another machine)."""
    if folder is not None and expected and (folder / expected).is_file():
        return str(folder / expected)
    if rec and rec.path and Path(rec.path).is_file():
        return rec.path
    if folder is not None and expected:
        return str(folder / expected)
    return rec.path if rec else ""


def _elsewhere(path: str, exists: bool, folder: Path | None) -> str:
    """The folder holding the day's file when it is not the backup folder itself, so the
    week never passes another folder's copy off as this one's."""
    if not exists or folder is None or Path(path).parent == folder:
        return ""
    return str(Path(path).parent)


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
