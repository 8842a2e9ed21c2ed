"""Restoring an organization from a backup: check, preview, safety backup, one transaction.

The window's wizard and ``desktop-backup restore`` go through the same two calls:

* :func:`check_restore` reads the whole archive and the live database and changes nothing. It
  verifies every checksum and count, that the archive is this organization's (id *and*
  code: a backup of another organization is refused for every role), what the schema has
  lost or gained since, that every row belongs to the organization and fits the database,
  and returns a :class:`RestorePlan` with a per-table preview.
* :func:`apply_restore` saves the organization's current data as a restore point (an archive
  outside the weekday slots, so the restore can itself be undone; none when the check found
  no rows of the organization to save, and the transaction then proves there still are
  none), then, in one transaction, makes the organization's rows the backup's (writing only
  the rows that differ), checks the result and commits. Any failure — a refused row, a lost
  connection, a cancel, a crash — rolls everything back.

The details of the transaction are in :mod:`desktop_backup.restore.transaction`, the checks in
:mod:`desktop_backup.restore.check`. docs/restore.md explains it for support staff.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.archive import ArchiveError
from desktop_backup.audit import audit_entry
from desktop_backup.backup import archive_owner, prepare_folder, write_archive
from desktop_backup.collector import rarer_passes
from desktop_backup.db import friendly_error, reflect
from desktop_backup.encryption import KeyMissing, encrypted_name, is_age_file
from desktop_backup.encryption_setting import encryption_recipients
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import AuditEntry, ensure_tables, record_quietly, weekday_of
from desktop_backup.opening import open_archive
from desktop_backup.organizations import Organization
from desktop_backup.restore.access import keeps_own_rights
from desktop_backup.restore.check import check_archive, file_sha256, schema_signature
from desktop_backup.restore.hooks import RestoreHooks
from desktop_backup.restore.plan import (
    NOTHING_WOULD_CHANGE,
    RESTORE_POINTS_DIR,
    Changes,
    RestoreFailed,
    RestorePlan,
    RestoreRefused,
    RestoreResult,
)
from desktop_backup.restore.privileges import UserGuard
from desktop_backup.restore.transaction import Applied, run_restore
from desktop_backup.scratch import sweep_leftovers
from desktop_backup.work import Actor, CancelFlag, Cancelled, Clock, ProgressCallback, Site

# --- checking --------------------------------------------------------------------------------

def check_restore(site: Site, org: Organization, archive_path: Path, *,
                  restorer: Actor | None = None, accept_dropped: bool = False,
                  progress: ProgressCallback | None = None,
                  cancel: CancelFlag | None = None) -> RestorePlan:
    """Check an archive against `org` and the live database; change nothing.

    `restorer` is who will restore (Actor.of(session)): the backup may not give any user
    more rights than they hold (restore.privileges); without it, the restorer holds nothing.
    Problems with the archive or the data are a refused plan (``ok`` False), never an
    exception; an unreachable database raises DatabaseUnavailable, a cancel Cancelled.
    """
    path = Path(archive_path)
    restorer = restorer or Actor(0, "")
    try:
        with rarer_passes(collect_first=True), open_archive(path, [org.id]) as archive:
            plan = check_archive(site, org, archive, restorer, accept_dropped, progress, cancel)
        assert plan.checked is not None
        plan.checked.file_sha256 = file_sha256(path)
        return plan
    except (ArchiveError, RestoreRefused) as exc:
        return RestorePlan(path, False, _refusal(path, exc), accept_dropped=accept_dropped,
                           organization_id=org.id, key_missing=isinstance(exc, KeyMissing))
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def _refusal(path: Path, exc: Exception) -> str:
    if isinstance(exc, ArchiveError):
        return f"{path.name} cannot be restored: {exc}"
    return str(exc)


# --- restore points --------------------------------------------------------------------------

def restore_point_path(folder: Path, org: Organization, now: datetime,
                       encrypted: bool = False) -> Path:
    """``<backup folder>/restore-points/org_{code}_restore-point_{YYYYmmdd-HHMMSS}.zip``
    (``.zip.age`` when encrypted)."""
    base = Path(folder) / RESTORE_POINTS_DIR
    stem = f"org_{org.file_key}_restore-point_{now.strftime('%Y%m%d-%H%M%S')}"
    suffix = encrypted_name(".zip") if encrypted else ".zip"
    path = base / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = base / f"{stem}-{n}{suffix}"
        n += 1
    return path


def list_restore_points(folder: Path, org: Organization) -> list[Path]:
    """The organization's restore points, newest first: named for it, and not saying they
    belong to another organization (a damaged one is listed, so the wizard can say so)."""
    return [path for path in _named_restore_points(folder, org)
            if archive_owner(path) in (None, org.id)]


def _named_restore_points(folder: Path, org: Organization) -> list[Path]:
    base = Path(folder) / RESTORE_POINTS_DIR
    pattern = re.compile(rf"org_{re.escape(org.file_key)}_restore-point_"
                         r"(\d{8}-\d{6})(?:-(\d+))?\.zip(?:\.age)?")
    found = []
    if base.is_dir():
        for path in base.iterdir():
            m = pattern.fullmatch(path.name)
            if m:
                found.append(((m.group(1), int(m.group(2) or 1)), path))
    return [p for _, p in sorted(found, reverse=True)]


def _prune_restore_points(folder: Path, org: Organization, keep: int, protect: Path) -> None:
    """Delete the oldest beyond `keep`, but only files whose manifest says they are this
    organization's: a name is no proof, and another's restore point is never ours to drop."""
    for old in list_restore_points(folder, org)[max(1, keep):]:
        if old.resolve() != protect.resolve() and _owner(old, org) == org.id:
            old.unlink(missing_ok=True)


def _owner(path: Path, org: Organization) -> int | None:
    """Whose restore point this is, from its manifest; an encrypted one is opened with the
    organization's key held here (without it, nobody's: it is kept)."""
    if not is_age_file(path):
        return archive_owner(path)
    try:
        with open_archive(path, [org.id]) as archive:
            owner = archive.manifest.organization.get("id")
    except DesktopBackupError:
        return None
    return owner if isinstance(owner, int) else None


def _take_restore_point(site: Site, org: Organization, actor: Actor, folder: Path, keep: int,
                        protect: Path, cancel: CancelFlag | None) -> Path:
    try:
        points = prepare_folder(prepare_folder(folder) / RESTORE_POINTS_DIR)
        recipients = encryption_recipients(site.engine, org.id)  # encrypted like a backup
        target = restore_point_path(points.parent, org, site.clock(),
                                    encrypted=recipients is not None)
        write_archive(site, org.id, target, actor, trigger="pre-restore", cancel=cancel,
                      recipients=recipients)
    except Cancelled:
        raise Cancelled("The restore was cancelled; nothing was changed.") from None
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc
    except DesktopBackupError as exc:
        raise DesktopBackupError(f"The restore point could not be saved, so nothing was "
                                 f"restored: {exc}") from exc
    _prune_restore_points(points.parent, org, keep, protect)
    return target


# --- applying --------------------------------------------------------------------------------

def apply_restore(site: Site, org: Organization, plan_or_path: RestorePlan | Path | str,
                  actor: Actor, backup_folder: Path, **options) -> RestoreResult:
    """Restore `org` (see :func:`_apply_restore`); then, whatever happened, sweep what
    earlier killed runs left behind (LOAD DATA scratch folders, partial restore points)."""
    try:
        return _apply_restore(site, org, plan_or_path, actor, backup_folder, **options)
    finally:
        sweep_leftovers(backup_folder)


def _apply_restore(site: Site, org: Organization, plan_or_path: RestorePlan | Path | str,
                   actor: Actor, backup_folder: Path, *, restore_points_kept: int = 5,
                   progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
                   trigger: str = "manual", accept_dropped: bool = False,
                   hooks: RestoreHooks | None = None) -> RestoreResult:
    """Restore `org` from a checked plan (or check the path first), all or nothing.

    Order: a refused plan is recorded and raised as RestoreRefused; a plan whose archive or
    schema changed since the check is refused; the restore point is written (a failure
    there changes nothing; none for a plan with nothing_to_save, whose transaction is
    refused if rows of the organization arrived since the check); the one transaction runs
    and commits. A failure raises RestoreFailed (or Cancelled) after the rollback; every
    outcome goes to the audit.
    `progress` counts the backup's rows as they are written (only the writing: call
    check_restore with its own progress to show the check); `cancel` is polled between
    batches and just before the commit. `hooks` lets a test or a benchmark watch the
    transaction (restore.hooks).
    """
    engine, clock = site.engine, site.clock
    started = time.monotonic()
    try:
        _slot, audit = ensure_tables(engine)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    if isinstance(plan_or_path, RestorePlan):
        plan = plan_or_path
        fresh = False
    else:
        plan = check_restore(site, org, Path(plan_or_path), restorer=actor,
                             accept_dropped=accept_dropped, cancel=cancel)
        fresh = True
    entry = audit_entry("restore", org.id, actor, trigger=trigger,
                        day_of_week=weekday_of(clock().date()), file=str(plan.archive_path),
                        backup_id=plan.backup_id or None)

    def fail(error: BaseException, outcome: str = "failed") -> None:
        message = str(error)
        record_quietly(engine, audit, replace(
            entry, outcome=outcome, message=message,
            duration_ms=int((time.monotonic() - started) * 1000)), clock())

    try:
        if not plan.ok or plan.checked is None:
            raise RestoreRefused(plan.message)
        if plan.organization_id != org.id:
            raise RestoreRefused(f"This restore was checked for another organization, not "
                                 f"{org.name}; check it again.")
        judged = plan.checked.restorer or Actor(0, "")
        if not UserGuard(site.mapping, judged.role, judged.is_owner, False).judged_no_looser_than(
                actor.role, actor.is_owner):
            raise RestoreRefused("This restore was checked for a user with more rights than "
                                 f"{actor.username}; check it again before restoring.")
        if not fresh:
            _still_current(engine, plan)
            if judged.user_id != actor.user_id:
                _keeps_own_rights(site, org, plan, actor)
    except RestoreRefused as exc:
        fail(exc, "refused")
        raise
    if plan.changes_nothing:
        return _nothing_to_do(engine, audit, entry, plan, org, started, clock)
    restore_point: Path | None = None
    writing = False  # past the restore point: a failure from here on was rolled back
    try:
        if not plan.nothing_to_save:
            restore_point = _take_restore_point(site, org, actor, backup_folder,
                                                restore_points_kept, plan.archive_path, cancel)
        writing = True
        with rarer_passes(collect_first=True):
            outcome = run_restore(engine, plan.checked, plan.archive_path, org.id,
                                  progress=progress, cancel=cancel, hooks=hooks,
                                  expect_empty=org.name if plan.nothing_to_save else "")
    except Cancelled as exc:
        error = Cancelled("The restore was cancelled; nothing was changed.")
        fail(error, "cancelled")
        raise error from exc
    except RestoreRefused as exc:  # rows arrived where the check found none
        fail(exc, "refused")
        raise
    except DesktopBackupError as exc:
        error = exc
        if writing and not isinstance(exc, RestoreFailed):
            error = RestoreFailed(f"{exc} The restore was rolled back; nothing was changed.")
        fail(error)
        if error is exc:
            raise
        raise error from exc
    except BaseException as exc:
        fail(RestoreFailed(f"The restore stopped unexpectedly ({type(exc).__name__}); it was "
                           "rolled back and nothing was changed."))
        raise
    return _restored(engine, audit, entry, plan, org, outcome, restore_point, started, clock)


def _restored(engine: Engine, audit, entry: AuditEntry, plan: RestorePlan, org: Organization,
              outcome: Applied, restore_point: Path | None, started: float,
              clock: Clock) -> RestoreResult:
    """The committed restore, in the audit and as the result: where the data from before
    is, or why there was none to save."""
    duration = time.monotonic() - started
    rows = sum(outcome.tables.values())
    changes = Changes(outcome.inserted, outcome.updated, outcome.unchanged, outcome.deleted)
    message = (f"Restored {org.name} from {plan.archive_path.name} in {duration:.1f} s: "
               f"{changes.sentence()} ")
    if restore_point is None:
        message += (f"{org.name} had no data here before, so there was nothing to save first "
                    "(no restore point).")
        audited = message
    else:
        message += (f"The data from before is saved in {restore_point.name}; Undo this "
                    "restore puts it back.")
        audited = f"{message} Restore point: {restore_point}"
    record_quietly(engine, audit, replace(
        entry, rows=rows, duration_ms=int(duration * 1000), message=audited,
        restore_point=str(restore_point) if restore_point else None), clock())
    return RestoreResult(True, message, plan.archive_path, restore_point, outcome.tables, rows,
                         outcome.deleted, duration, outcome.inserted, outcome.updated,
                         outcome.unchanged)


def _keeps_own_rights(site: Site, org: Organization, plan: RestorePlan, actor: Actor) -> None:
    """A plan checked for someone else (or for nobody) is applied by `actor`: the restore
    must not take away their own admin rights either (restore.access)."""
    checked = plan.checked
    assert checked is not None
    try:
        with open_archive(plan.archive_path, [org.id]) as archive, \
                site.engine.connect() as conn:
            keeps_own_rights(conn, archive, site.mapping, actor, org, checked.scope,
                             checked.plans)
    except ArchiveError as exc:
        raise RestoreRefused(_refusal(plan.archive_path, exc)) from None
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def _nothing_to_do(engine: Engine, audit, entry: AuditEntry, plan: RestorePlan,
                   org: Organization, started: float, clock: Clock) -> RestoreResult:
    """Every row is already the backup's: no restore point, no transaction, one sentence."""
    message = (f"{NOTHING_WOULD_CHANGE}: {org.name}'s data is already exactly as in "
               f"{plan.archive_path.name}, so nothing was restored and no restore point was "
               "made.")
    record_quietly(engine, audit, replace(
        entry, outcome="skipped", rows=0, message=message,
        duration_ms=int((time.monotonic() - started) * 1000)), clock())
    unchanged = plan.changes.unchanged
    return RestoreResult(True, message, plan.archive_path, None, {}, 0, 0,
                         time.monotonic() - started, 0, 0, unchanged)


def _still_current(engine: Engine, plan: RestorePlan) -> None:
    """The archive and the schema must be what was checked: the preview was about them."""
    checked = plan.checked
    assert checked is not None
    try:
        same_file = file_sha256(plan.archive_path) == checked.file_sha256
    except ArchiveError:
        same_file = False
    if not same_file:
        raise RestoreRefused(f"{plan.archive_path.name} has changed or gone since it was "
                             "checked; check it again before restoring.")
    try:
        with engine.connect() as conn:
            schema = schema_signature(reflect(conn))
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    if schema != checked.schema:
        raise RestoreRefused("The database's tables have changed since the backup was "
                             "checked; check it again before restoring.")
