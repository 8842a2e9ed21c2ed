"""The week view as a pure function of (today, slot records, audit, files): fixed dates."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from desktop_backup.history import AuditEntry, SlotRecord
from desktop_backup.weekview import week_states

TODAY = date(2026, 11, 25)  # a Wednesday
NAME = "org_MEDP_wednesday_backup.zip"
FULL = "The backup folder /media/usb/backups cannot be written to; check its permissions."


def slot(status: str, backup_date: datetime, updated_at: datetime,
         error: str | None = None, path: str = "") -> dict[str, SlotRecord]:
    return {"wednesday": SlotRecord(1, 1, 3, "wednesday", NAME, path, 1000, status, error,
                                    backup_date, updated_at)}


def success(at: datetime, path: Path) -> AuditEntry:
    return AuditEntry(action="backup", outcome="success", organization_id=1,
                      day_of_week="wednesday", file=str(path), occurred_at=at)


def wednesday(folder: Path, records, audit) -> object:
    days = week_states(TODAY, records, folder, {"wednesday": NAME},
                       now=datetime(2026, 11, 25, 11, 30), audit=audit)
    return days[2]


def test_a_failed_retry_after_todays_backup_shows_todays_copy_and_a_warning(tmp_path):
    (tmp_path / NAME).write_bytes(b"today's good copy")
    records = slot("failed", datetime(2026, 11, 25), datetime(2026, 11, 25, 11, 2), FULL)
    audit = [AuditEntry(action="backup", outcome="failed", organization_id=1,
                        day_of_week="wednesday", occurred_at=datetime(2026, 11, 25, 11, 2)),
             success(datetime(2026, 11, 25, 10, 42), tmp_path / NAME),
             success(datetime(2026, 11, 18, 10, 5), tmp_path / NAME)]
    day = wednesday(tmp_path, records, audit)
    assert day.state == "succeeded" and not day.copy_kept and day.error is None
    assert day.backup_date == TODAY and day.copy_made == datetime(2026, 11, 25, 10, 42)
    assert day.later_failure == FULL
    assert day.later_attempt == "A later attempt at 11:02 failed."
    assert day.summary == (f"Backed up 2026-11-25 10:42; a later attempt at 11:02 failed: "
                           f"{FULL}")


def test_a_failed_day_keeps_last_weeks_copy_and_says_so(tmp_path):
    (tmp_path / NAME).write_bytes(b"last week's copy")
    records = slot("failed", datetime(2026, 11, 25), datetime(2026, 11, 25, 10, 1), FULL)
    day = wednesday(tmp_path, records, [success(datetime(2026, 11, 18, 10, 5),
                                                 tmp_path / NAME)])
    assert day.state == "failed" and day.copy_kept and day.later_failure is None
    assert day.kept_copy == "Last week's copy"
    assert day.copy_made == datetime(2026, 11, 18, 10, 5)
    assert day.summary.endswith("; last week's copy kept (made 2026-11-18 10:05)")


def test_an_older_copy_is_not_called_last_weeks(tmp_path):
    (tmp_path / NAME).write_bytes(b"a copy from three weeks ago")
    records = slot("failed", datetime(2026, 11, 25), datetime(2026, 11, 25, 10, 1), FULL)
    day = wednesday(tmp_path, records, [success(datetime(2026, 11, 4, 9, 0), tmp_path / NAME)])
    assert day.copy_kept and day.kept_copy == "An older copy"
    assert day.summary.endswith("; an older copy kept (made 2026-11-04 09:00)")
    assert "last week" not in day.summary.lower()


def test_a_failed_day_without_a_file_keeps_nothing(tmp_path):
    records = slot("failed", datetime(2026, 11, 25), datetime(2026, 11, 25, 10, 1), FULL)
    day = wednesday(tmp_path, records, [])
    assert day.state == "failed" and not day.copy_kept and day.kept_copy == ""
    assert "kept" not in day.summary


def test_a_successful_day_shows_the_time_of_its_copy(tmp_path):
    (tmp_path / NAME).write_bytes(b"copy")
    records = slot("success", datetime(2026, 11, 25), datetime(2026, 11, 25, 10, 42),
                   path=str(tmp_path / NAME))
    day = wednesday(tmp_path, records, [])
    assert day.state == "succeeded" and day.later_failure is None
    assert day.summary == "Backed up 2026-11-25 10:42"


BUSY = "The billing database stayed busy for 2 minutes; try the backup again."


def test_a_busy_failure_that_never_reached_the_slot_row_still_shows_on_the_card(tmp_path):
    """A run refused before its claim (the database was busy) is only in the audit: the day
    keeps its good copy and warns; a cancel says it was cancelled."""
    (tmp_path / NAME).write_bytes(b"today's good copy")
    records = slot("success", datetime(2026, 11, 25), datetime(2026, 11, 25, 10, 42))
    good = success(datetime(2026, 11, 25, 10, 42), tmp_path / NAME)
    busy = AuditEntry(action="backup", outcome="failed", organization_id=1, message=BUSY,
                      day_of_week="wednesday", occurred_at=datetime(2026, 11, 25, 11, 2))
    day = wednesday(tmp_path, records, [busy, good])
    assert day.state == "succeeded" and day.later_failure == BUSY
    assert day.later_attempt == "A later attempt at 11:02 failed."
    cancelled = AuditEntry(action="backup", outcome="cancelled", organization_id=1,
                           message="The backup was cancelled.", day_of_week="wednesday",
                           occurred_at=datetime(2026, 11, 25, 11, 5))
    assert wednesday(tmp_path, records, [cancelled, good]).later_attempt == (
        "A later attempt at 11:05 was cancelled.")
    # Before the copy, or a success after it: nothing to warn about.
    assert wednesday(tmp_path, records, [good, busy]).later_failure is None


def test_a_first_backup_that_failed_before_its_claim_is_a_failed_day(tmp_path):
    busy = AuditEntry(action="backup", outcome="failed", organization_id=1, message=BUSY,
                      day_of_week="wednesday", occurred_at=datetime(2026, 11, 25, 9, 0))
    day = wednesday(tmp_path, {}, [busy])
    assert day.state == "failed" and day.error == BUSY and not day.copy_kept


def test_after_the_backup_folder_changes_the_old_folders_copy_says_where_it_is(tmp_path):
    """Settings ▸ another backup folder: the day's copy made before is still the newest one
    (a restore can use it), but the week says it is in the old folder, not the new one."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    (old / NAME).write_bytes(b"a copy in the folder the shop used before")
    records = slot("success", datetime(2026, 11, 25), datetime(2026, 11, 25, 10, 42),
                   path=str(old / NAME))
    audit = [success(datetime(2026, 11, 25, 10, 42), old / NAME)]
    here = wednesday(old, records, audit)
    assert here.state == "succeeded" and here.elsewhere == ""
    moved = wednesday(new, records, audit)
    assert moved.state == "succeeded" and moved.path == str(old / NAME)
    assert moved.elsewhere == str(old)
    (old / NAME).unlink()  # the old folder's drive unplugged: nothing to point at
    gone = wednesday(new, records, audit)
    assert gone.state == "none" and gone.elsewhere == ""
