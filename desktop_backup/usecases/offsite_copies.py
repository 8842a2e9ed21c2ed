"""Copies outside the building: send, fetch, and the remote set or turned off, each
with its audit line."""

from __future__ import annotations

from pathlib import Path

from desktop_backup import offsite_queue
from desktop_backup.audit import audit_entry, write_audit_quietly
from desktop_backup.backup import BackupResult, slot_filename
from desktop_backup.config import AppPaths, Settings
from desktop_backup.errors import DesktopBackupError
from desktop_backup.offsite import Rclone, Remote
from desktop_backup.organizations import Organization
from desktop_backup.work import Actor, Site


def send_offsite(site: Site, settings: Settings, org: Organization, actor: Actor,
                 result: BackupResult | None, trigger: str = "window"
                 ) -> offsite_queue.PushReport | None:
    """After a backup (result) or at start-up (result None): send what waits to go off-site.

    Start-up respects the backoff of failed tries; None when off-site copies are off. The
    local backup stands whatever happens here (this never raises for the remote)."""
    now = site.clock().replace(tzinfo=None)
    if result is not None:
        return offsite_queue.after_backup(site.engine, settings, org, result, actor, now,
                                          trigger=trigger)
    rc = offsite_queue.rclone_for(settings, org.id)
    if rc is None:
        return None
    return offsite_queue.push(site.engine, rc, org, actor, now, trigger="startup",
                              retry_now=False)


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


def push_offsite(site: Site, settings: Settings, org: Organization, actor: Actor,
                 trigger: str = "manual") -> offsite_queue.PushReport:
    """Send every copy that waits to go off-site, now (failed tries are not waited out)."""
    rc = _offsite_remote(settings, org)
    return offsite_queue.push(site.engine, rc, org, actor, site.clock().replace(tzinfo=None),
                              trigger=trigger)


def fetch_offsite(site: Site, settings: Settings, org: Organization, actor: Actor, day: str,
                  folder: Path, trigger: str = "manual") -> offsite_queue.PulledCopy:
    """Fetch a weekday's copy from off-site into `folder`, checked (an encrypted one with
    the organization's key held here); the audit says so."""
    rc = _offsite_remote(settings, org)
    stored = offsite_queue.remote_days(rc, org, lambda d: slot_filename(org, d)).get(day)
    name = stored.name if stored is not None else slot_filename(org, day)  # .zip.age or .zip
    copy = offsite_queue.pull(rc, org, day, folder / name)
    write_audit_quietly(site.engine, audit_entry(
        "download", org.id, actor, trigger=trigger, day_of_week=day, file=str(copy.path),
        bytes=copy.size, message=copy.message), site.clock())
    return copy


def _offsite_remote(settings: Settings, org: Organization) -> Rclone:
    rc = offsite_queue.rclone_for(settings, org.id)
    if rc is None:
        raise DesktopBackupError(f"Off-site copies of {org.label} are off; set a remote "
                                 "with `desktop-backup offsite set` first.")
    return rc
