"""Numbers, dates and states as a shop owner reads them; one place, so the window, the
command line and the core's own sentences agree.

It imports nothing of the project at run time (the types below are for annotations only),
so every module, down to the archive format, can word a size or a count here.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: wording sits below every module that uses it
    from desktop_backup.history import AuditEntry
    from desktop_backup.opening import VerifyReport
    from desktop_backup.work import Progress

STATE_WORDS = {"succeeded": "Backed up", "failed": "Failed", "running": "Backing up…",
               "none": "No backup"}

OUTCOME_WORDS = {"success": "Succeeded", "failed": "Failed", "cancelled": "Cancelled",
                 "skipped": "Skipped"}

ACTION_WORDS = {"backup": "Backup", "restore": "Restore", "delete": "Deleted",
                "save_copy": "Copy saved", "skipped": "Backup", "verify": "Check",
                "toggle": "Setting changed", "upload": "Copied off-site",
                "download": "Fetched from off-site", "offsite_set": "Off-site remote set",
                "offsite_off": "Off-site copies turned off"}

TRIGGER_WORDS = {"login": "At login", "manual": "By hand", "schedule": "Scheduled",
                 "cli": "Command line", "pre-restore": "Before restore",
                 "window": "After the backup", "startup": "Retried at start",
                 "network": "Network back"}


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def plural(n: int, noun: str) -> str:
    """'1 table', '21 tables', '1,204 rows': a count and its noun, as a sentence needs."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': a list inside a sentence."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def table_words(name: str) -> str:
    """'sale_transactions' as a shop owner reads it: 'Sale transactions' (the raw name stays
    in tooltips, for support)."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def day_date(value: date | None) -> str:
    """'Wed 25 Nov 2026': the weekday spelled, so nobody reads 04/03 the wrong way round."""
    if value is None:
        return ""
    return f"{value:%a} {value.day} {value:%b %Y}"


def date_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{day_date(value.date())}, {value:%H:%M}"


def local_time(iso: str, now: datetime) -> datetime | None:
    """An archive's ISO 8601 time in the workstation's zone (naive), or None if unreadable."""
    try:
        value = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(now.tzinfo).replace(tzinfo=None)
    return value


def verify_words(report: VerifyReport, now: datetime) -> str:
    """A check's verdict as the window says it: local time, thousands, plurals, and whether
    the file is as the console wrote it (the core's sentence, with its UTC timestamp, stays
    for the command line and the log)."""
    if not report.ok:
        return report.message
    who = report.organization.get("name") or "the organization"
    made = local_time(report.created_at, now)
    when = f", made {date_time(made)}" if made else ""
    name = Path(report.path).name
    origin = f" {report.authenticity_message}" if report.authenticity_message else ""
    keys = report.recipients
    locked = (f" It is encrypted for the key{'s' if len(keys) != 1 else ''} "
              f"{', '.join(keys)}." if report.encrypted and keys else "")
    return (f"{name} is a complete, undamaged backup of {who}{when}: "
            f"{plural(len(report.tables), 'table')}, {plural(report.rows, 'row')}.{origin}"
            f"{locked}")


def duration(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def status(entry: AuditEntry) -> str:
    """The history's Status column: what happened and how it ended, in two or three words."""
    outcome = OUTCOME_WORDS.get(entry.outcome, entry.outcome.capitalize())
    if entry.action == "skipped":
        return "Skipped (already done today)"
    if entry.action == "restore" and entry.outcome == "skipped":
        return "Restore not needed: nothing would change"
    if entry.action in ("backup", "restore"):
        words = f"{ACTION_WORDS[entry.action]} {outcome.lower()}"
        if entry.outcome in ("failed", "cancelled") and entry.message:
            return f"{words}: {entry.message}"
        # backup.run_backup's "partial: N of M tables" and "encrypted for the key a-b-c-d"
        said = [part for part in (entry.message or "").split("; ")
                if entry.action == "backup" and part.startswith(("partial:", "encrypted for"))]
        return f"{words} ({'; '.join(said)})" if said else words
    if entry.action == "verify":  # a check, not a backup: says what it found
        return "Check: the backup is intact" if entry.outcome == "success" else (
            "Check: the backup is damaged")
    if entry.action == "upload" and entry.outcome == "failed":
        return f"Off-site copy failed: {entry.message}" if entry.message else \
            "Off-site copy failed"
    if entry.outcome != "success":
        return f"{ACTION_WORDS.get(entry.action, entry.action)} – {outcome.lower()}"
    if entry.action in ("toggle", "encryption"):  # a setting changed: the message says how
        return entry.message.rstrip(".") if entry.message else "Setting changed"
    return ACTION_WORDS.get(entry.action, entry.action.replace("_", " ").capitalize())


def progress_line(progress: Progress) -> str:
    """'Table 3 of 21: customers' for the progress panel and the running day cell, or what
    the backup waits for ("The billing program is busy; waiting…")."""
    if progress.waiting:
        return progress.waiting
    return (f"Table {progress.table_index + 1:,} of {progress.table_count:,}: "
            f"{table_words(progress.table)}")


def rows_line(progress: Progress) -> str:
    return "" if progress.waiting else f"{progress.rows_done:,} of {progress.rows_total:,} rows"
