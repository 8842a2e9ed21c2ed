"""Monthly copies off-site: the last backup of each month, kept for N months (default off).

The week's seven slots only reach back seven days. A shop that wants to go back further asks
for monthly copies: once a month is over, its last backup is still in one of the weekday
slots off-site (for up to a week), so it is copied, on the remote itself, to
``monthly/org_{code}_{YYYY-MM}_backup.zip`` and checked against the SHA-256 the upload
queue recorded for it. Only after a new monthly copy has been checked are monthly copies
beyond the newest N removed; files the console did not name are never touched.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from desktop_backup.audit import audit_entry, write_audit_quietly
from desktop_backup.config import Settings
from desktop_backup.history import WEEKDAYS
from desktop_backup.offsite import OffsiteError, Rclone, copy_verified
from desktop_backup.offsite_queue import COPIED, ensure_offsite_table, org_folder
from desktop_backup.organizations import Organization

log = logging.getLogger(__name__)
MONTHLY_DIR = "monthly"
_WEEKDAY_PART = re.compile(rf"_({'|'.join(WEEKDAYS)})_")
_MONTHLY_FILE = re.compile(r"^org_.+_(\d{4}-\d{2})_backup\.zip(\.age)?$")


@dataclass
class MonthlyReport:
    """What one pass did: months copied (YYYY-MM), months removed, and what failed."""

    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def message(self) -> str:
        parts = []
        if self.kept:
            parts.append(f"Monthly copy kept off-site for {', '.join(self.kept)}.")
        if self.removed:
            parts.append(f"Monthly copies older than the months kept were removed: "
                         f"{', '.join(self.removed)}.")
        parts += [f"The monthly copy for {month} failed: {why}"
                  for month, why in self.failed.items()]
        return " ".join(parts)


def months_kept(settings: Settings, org_id: int) -> int:
    """How many monthly copies the organization keeps off-site (0: none, the default)."""
    try:
        return max(int(settings.offsite_monthly.get(str(org_id), 0) or 0), 0)
    except (TypeError, ValueError):  # a hand-edited settings file: no monthly copies
        return 0


def monthly_name(slot_file: str, month: str) -> str:
    """``org_MEDP_friday_backup.zip`` → ``org_MEDP_2026-11_backup.zip``."""
    return _WEEKDAY_PART.sub(f"_{month}_", slot_file, count=1)


def keep_monthly(engine: Engine, rc: Rclone, org: Organization, actor, now: datetime,
                 months: int, trigger: str = "monthly") -> MonthlyReport:
    """Copy the last backup of every finished month that has none yet, then prune.

    Best effort, like every off-site step: a failure is reported and recorded, and the next
    pass tries again while the month's last backup is still in its weekday slot."""
    report = MonthlyReport()
    if months <= 0:
        return report
    folder = f"{org_folder(org)}/{MONTHLY_DIR}"  # under the remote, like the weekday slots
    have = {_month_of(f.name) for f in rc.files(rc.remote.join(folder))} - {None}
    finished = _finished_months(engine, org.id, now)
    for month in sorted(finished)[-months:]:  # older months would only be pruned again
        row = finished[month]
        if month in have:
            continue
        try:
            copy_verified(rc, rc.remote.join(org_folder(org), row["file_name"]), folder,
                          monthly_name(row["file_name"], month), row["sha256"])
        except OffsiteError as exc:
            report.failed[month] = str(exc)
            continue
        report.kept.append(month)
    if report.kept:  # prune only after a newer monthly copy has been checked
        report.removed = _prune(rc, folder, months)
    _record(engine, org, actor, report, now, trigger, rc.remote.join(folder))
    return report


def _finished_months(engine: Engine, org_id: int, now: datetime) -> dict[str, dict]:
    """For each month before this one: the newest backup copied off-site (queue row)."""
    table = ensure_offsite_table(engine)
    this_month = date(now.year, now.month, 1)
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(
            (table.c.organization_id == org_id) & (table.c.status == COPIED))
            .order_by(table.c.backup_at)).mappings().all()
    newest: dict[str, dict] = {}
    for row in rows:
        made = row["backup_at"]
        if made.date() < this_month:
            newest[f"{made:%Y-%m}"] = dict(row)  # ordered by time: the last one wins
    return newest


def _month_of(name: str) -> str | None:
    """YYYY-MM of a monthly copy this console named; None for any other file."""
    found = _MONTHLY_FILE.match(name)
    return found.group(1) if found else None


def _prune(rc: Rclone, folder: str, months: int) -> list[str]:
    """Remove the console's monthly copies beyond the newest `months`."""
    ours = sorted(((_month_of(f.name), f.name) for f in rc.files(rc.remote.join(folder))
                   if _month_of(f.name)), reverse=True)
    removed = []
    for month, name in ours[months:]:
        rc.delete_quietly(rc.remote.join(folder, name))
        removed.append(month)
    return sorted(removed)


def _record(engine: Engine, org: Organization, actor, report: MonthlyReport, now: datetime,
            trigger: str, where: str) -> None:
    if not (report.kept or report.failed):
        return
    write_audit_quietly(engine, audit_entry(
        "upload", org.id, actor, trigger=trigger, file=where, message=report.message(),
        outcome="failed" if report.failed else "success"), now)
    log.info("Monthly copies of organization %s: %s", org.id, report.message())
