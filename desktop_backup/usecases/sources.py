"""The backups the restore wizard offers: the seven weekday slots and the restore
points, with when each was made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.archive import ArchiveError, open_zip, read_manifest
from desktop_backup.backup import archive_owner, slot_names
from desktop_backup.db import friendly_error
from desktop_backup.history import ensure_tables, recent, week_slots
from desktop_backup.organizations import Organization
from desktop_backup.restore import list_restore_points
from desktop_backup.usecases.on_disk import manifest_time
from desktop_backup.weekview import week_states
from desktop_backup.work import Site


@dataclass(frozen=True)
class RestoreSource:
    """One backup the restore wizard offers: a weekday slot or a restore point."""

    kind: str  # "slot" or "restore_point"
    path: Path
    weekday: str = ""  # slots only
    is_today: bool = False
    made: datetime | None = None  # when the backup was made, in the workstation's time
    size: int = 0
    rows: int | None = None  # from a native archive's manifest; None when not known cheaply
    available: bool = True  # False: a slot with no file (the wizard shows it, greyed)
    copy_kept: bool = False  # the day's run failed; this is an older file
    kept_copy: str = ""  # which older file, in words (weekview.DayState.kept_copy)
    partial: str = ""  # "partial: 1 of 21 tables" when the backup left tables out


def restore_sources(site: Site, org: Organization, folder: Path) -> list[RestoreSource]:
    """The seven weekday slots (Monday first) and the organization's restore points (newest
    first), with when each was made; only manifests are read, never the rows."""
    engine = site.engine
    try:
        slot_table, audit_table = ensure_tables(engine)
        records = week_slots(engine, slot_table, org.id)
        history = recent(engine, audit_table, org.id)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    now = site.clock()
    names = slot_names(folder, org)
    days = week_states(now.date(), records, folder, names,
                       now=now.replace(tzinfo=None), audit=history)
    sources = []
    for day in days:
        path = Path(day.path) if day.path else folder / names[day.weekday]
        available = (day.state in ("succeeded", "failed") and path.is_file()
                     and archive_owner(path) in (None, org.id))
        made, rows, partial = _manifest_facts(path, now) if available else (None, None, "")
        record = records.get(day.weekday)
        if made is None and available and day.state == "succeeded" and record is not None:
            made = record.backup_date  # a web-app file in the slot: its record says when
        sources.append(RestoreSource("slot", path, day.weekday, day.is_today, made,
                                     day.size if available else 0, rows, available,
                                     day.copy_kept, day.kept_copy, partial))
    for path in list_restore_points(folder, org):
        made, rows, partial = _manifest_facts(path, now)
        sources.append(RestoreSource("restore_point", path, made=made,
                                     size=_size(path), rows=rows, partial=partial))
    return sources


def _manifest_facts(path: Path, now: datetime) -> tuple[datetime | None, int | None, str]:
    """A native archive's creation time (in the clock's zone, naive), row total and
    "partial: N of M tables" (or "")."""
    try:
        with open_zip(path) as zf:
            if "manifest.json" not in zf.namelist():
                return None, None, ""
            manifest = read_manifest(zf)
    except (ArchiveError, OSError):
        return None, None, ""
    made = manifest_time(manifest, now)
    return made, manifest.total_rows if made else None, manifest.scope_words


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
