"""Copies outside the building: send, fetch, and the remote set or turned off, each
with its audit line."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from desktop_backup import offsite_queue
from desktop_backup.audit import audit_entry, write_audit_quietly
from desktop_backup.backup import BackupResult, slot_filename
from desktop_backup.config import AppPaths, Settings, save_settings
from desktop_backup.errors import DesktopBackupError, UsageError
from desktop_backup.offsite import Rclone, Remote
from desktop_backup.offsite_monthly import keep_monthly, months_kept
from desktop_backup.organizations import Organization
from desktop_backup.wording import local_time
from desktop_backup.work import Actor, CancelFlag, ProgressCallback, Site

log = logging.getLogger(__name__)


def send_offsite(site: Site, settings: Settings, org: Organization, actor: Actor,
                 result: BackupResult | None, trigger: str = "window",
                 progress: ProgressCallback | None = None
                 ) -> offsite_queue.PushReport | None:
    """After a backup (result) or at start-up (result None): send what waits to go off-site.

    Start-up respects the backoff of failed tries; None when off-site copies are off. The
    local backup stands whatever happens here (this never raises for the remote).
    `progress` hears each upload's bytes."""
    now = site.clock().replace(tzinfo=None)
    if result is not None:
        report = offsite_queue.after_backup(site.engine, settings, org, result, actor, now,
                                            trigger=trigger, progress=progress)
    else:
        rc = offsite_queue.rclone_for(settings, org.id)
        report = None if rc is None else offsite_queue.push(
            site.engine, rc, org, actor, now, trigger="startup", retry_now=False,
            progress=progress)
    return _with_monthly(site, settings, org, actor, report)


def set_offsite_remote(site: Site, paths: AppPaths, settings: Settings, org: Organization,
                       actor: Actor, text: str, *, test: bool = True, trigger: str = "manual"
                       ) -> Remote:
    """Send the organization's copies to this remote from now on (checked first by writing,
    reading back and deleting a file, unless `test` is False); the audit says where."""
    remote = offsite_queue.set_remote(paths, settings, org, text, test=test)
    write_audit_quietly(site.engine, audit_entry(
        "offsite_set", org.id, actor, trigger=trigger,
        message=f"Off-site copies go to {remote.address}"), site.clock())
    return remote


def turn_offsite_off(site: Site, paths: AppPaths, settings: Settings, org: Organization,
                     actor: Actor, trigger: str = "manual") -> bool:
    """Stop sending copies and forget the remote's keys; True when they were on (and the
    audit then says so). The copies already off-site stay there."""
    was_on = offsite_queue.remove_remote(paths, settings, org)
    if was_on:
        write_audit_quietly(site.engine, audit_entry(
            "offsite_off", org.id, actor, trigger=trigger,
            message="Off-site copies turned off"), site.clock())
    return was_on


def set_monthly_copies(site: Site, paths: AppPaths, settings: Settings, org: Organization,
                       actor: Actor, months: int, trigger: str = "manual") -> int:
    """Keep the last backup of each month off-site for `months` months (0: none); saved in
    this workstation's settings and audited. Returns the months now kept."""
    if months < 0 or months > 1200:
        raise UsageError("Give the months of monthly copies to keep as a number from 0 "
                         "(none) to 1200.")
    kept = {k: v for k, v in settings.offsite_monthly.items() if k != str(org.id)}
    if months:
        kept[str(org.id)] = months
    settings.offsite_monthly = kept
    save_settings(paths, settings)
    words = (f"the last backup of each month is kept off-site for {months} months" if months
             else "no monthly copies are kept off-site")
    write_audit_quietly(site.engine, audit_entry(
        "offsite_set", org.id, actor, trigger=trigger,
        message=f"Monthly copies: {words}"), site.clock())
    return months


def push_offsite(site: Site, settings: Settings, org: Organization, actor: Actor,
                 trigger: str = "manual", progress: ProgressCallback | None = None
                 ) -> offsite_queue.PushReport:
    """Send every copy that waits to go off-site, now (failed tries are not waited out);
    `progress` hears each upload's bytes."""
    rc = _offsite_remote(settings, org)
    report = offsite_queue.push(site.engine, rc, org, actor,
                                site.clock().replace(tzinfo=None), trigger=trigger,
                                progress=progress)
    return _with_monthly(site, settings, org, actor, report)


def _with_monthly(site: Site, settings: Settings, org: Organization, actor: Actor,
                  report: offsite_queue.PushReport | None) -> offsite_queue.PushReport | None:
    """After sending: keep the monthly copies (when asked for) of the months that ended.
    Best effort like every off-site step: an unreachable remote waits for the next push."""
    months = months_kept(settings, org.id)
    if report is None or not months:
        return report
    try:
        rc = _offsite_remote(settings, org)
        monthly = keep_monthly(site.engine, rc, org, actor, site.clock().replace(tzinfo=None),
                               months)
    except DesktopBackupError as exc:
        log.info("Monthly off-site copies of organization %s wait: %s", org.id, exc)
        return report
    report.monthly = monthly.message()
    return report


def fetch_offsite(site: Site, settings: Settings, org: Organization, actor: Actor, day: str,
                  folder: Path, trigger: str = "manual", cancel: CancelFlag | None = None,
                  progress: ProgressCallback | None = None) -> offsite_queue.PulledCopy:
    """Fetch a weekday's copy from off-site into `folder`, checked (an encrypted one with
    the organization's key held here); the audit says so. `cancel` stops the download
    (Cancelled; nothing is kept); `progress` hears its bytes."""
    rc = _offsite_remote(settings, org)
    stored = offsite_queue.remote_days(rc, org, lambda d: slot_filename(org, d),
                                       cancel).get(day)
    name = stored.name if stored is not None else slot_filename(org, day)  # .zip.age or .zip
    copy = offsite_queue.pull(rc, org, day, folder / name, cancel, progress)
    write_audit_quietly(site.engine, audit_entry(
        "download", org.id, actor, trigger=trigger, day_of_week=day, file=str(copy.path),
        bytes=copy.size, message=copy.message), site.clock())
    return copy


@dataclass(frozen=True)
class OffsiteCopy:
    """One weekday's copy as the remote holds it, for the restore wizard's list."""

    weekday: str
    name: str
    size: int
    made: datetime | None  # when the file was written, in the workstation's time


def remote_copies(site: Site, settings: Settings, org: Organization) -> list[OffsiteCopy]:
    """The weekday copies the organization's remote holds (Monday first; none when off-site
    copies are off). An unreachable remote raises its one sentence (OffsiteError)."""
    rc = offsite_queue.rclone_for(settings, org.id)
    if rc is None:
        return []
    now = site.clock()
    days = offsite_queue.remote_days(rc, org, lambda day: slot_filename(org, day))
    return [OffsiteCopy(day, f.name, f.size, local_time(f.modified, now))
            for day, f in days.items()]


def _offsite_remote(settings: Settings, org: Organization) -> Rclone:
    rc = offsite_queue.rclone_for(settings, org.id)
    if rc is None:
        raise DesktopBackupError(f"Off-site copies of {org.label} are off; set a remote "
                                 "with `desktop-backup offsite set` first.")
    return rc
