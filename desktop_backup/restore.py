"""Restoring an organization from a backup: check, preview, safety backup, one transaction.

The window's wizard and ``desktop-backup restore`` go through the same two calls:

* :func:`check_restore` reads the whole archive and the live database and changes nothing. It
  verifies every checksum and count, that the archive is this organization's (id *and*
  code: a backup of another organization is refused for every role), what the schema has
  lost or gained since, that every row belongs to the organization and fits the database,
  and returns a :class:`RestorePlan` with a per-table preview.
* :func:`apply_restore` saves the organization's current data as a restore point (an archive
  outside the weekday slots, so the restore can itself be undone), then, in one transaction,
  makes the organization's rows the backup's (writing only the rows that differ), checks the
  result and commits. Any failure — a refused row, a lost connection, a cancel, a crash —
  rolls everything back.

The details of the transaction are in :mod:`desktop_backup.restore_apply`, the checks in
:mod:`desktop_backup.restore_check`. docs/restore.md explains it for support staff.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.archive import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    ArchiveError,
    Manifest,
    OpenArchive,
    made_by,
    open_archive,
    scope_words,
    unlisted_note,
)
from desktop_backup.audit import audit_entry
from desktop_backup.authenticity import judge, read_key
from desktop_backup.backup import archive_owner, prepare_folder, write_archive
from desktop_backup.config import SchemaMapping
from desktop_backup.db import friendly_error, reflect
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import AuditEntry, ensure_tables, record_quietly, weekday_of
from desktop_backup.organizations import Organization
from desktop_backup.restore_check import (
    RestoreFailed,
    RestoreRefused,
    RowChecker,
    TablePlan,
    choose_strategies,
    compare_keys,
    count_now,
    delete_actions,
    edges_into,
    foreign_references,
    map_archive,
    outside_effects,
    triggers_on,
)
from desktop_backup.restore_privileges import UserGuard
from desktop_backup.scratch import sweep_leftovers
from desktop_backup.tenancy import CONSOLE_TABLES, OrganizationScope, discover_scope
from desktop_backup.work import (
    Actor,
    CancelFlag,
    Cancelled,
    Clock,
    Progress,
    ProgressCallback,
    Site,
    local_now,
)

__all__ = [
    "CHANGE_WORDS", "NOTHING_WOULD_CHANGE", "RESTORE_POINTS_DIR", "Changes",
    "RestoreFailed", "RestorePlan", "RestoreRefused", "RestoreResult",
    "TablePreview", "apply_restore", "check_restore", "list_restore_points", "preview_text",
    "restore_point_path",
]

RESTORE_POINTS_DIR = "restore-points"


CHANGE_WORDS = ("Brought back", "Changed", "Unchanged", "Removed")


@dataclass(frozen=True)
class Changes:
    """What a restore does to the organization's rows, in the four words both the window and
    the command line use (CHANGE_WORDS)."""

    brought_back: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def any(self) -> bool:
        return bool(self.brought_back or self.changed or self.removed)

    def counts(self) -> tuple[int, int, int, int]:
        return (self.brought_back, self.changed, self.unchanged, self.removed)

    def sentence(self) -> str:
        """'Brought back 30 rows, Changed 5, Unchanged 63,091, Removed 3.'"""
        parts = [f"{word} {n:,}" for word, n in zip(CHANGE_WORDS, self.counts(), strict=True)]
        noun = "row" if self.brought_back == 1 else "rows"
        return f"{parts[0]} {noun}, " + ", ".join(parts[1:]) + "."

    def to_dict(self) -> dict:
        return {"brought_back": self.brought_back, "changed": self.changed,
                "unchanged": self.unchanged, "removed": self.removed}


NOTHING_WOULD_CHANGE = "Nothing would change"


@dataclass(frozen=True)
class TablePreview:
    """What a restore does to one table, counted by primary key and compared value by value.

    `to_delete`: rows there now that the backup does not have (Removed);
    `to_insert`: rows of the backup that are not there now (Brought back);
    `to_update`: rows in both whose values differ, which get the backup's (Changed);
    `unchanged`: rows in both that are already exactly the backup's (Unchanged).
    A table without a primary key has every row deleted and the backup's inserted.
    """

    table: str
    rows_now: int
    rows_in_backup: int
    to_delete: int
    to_insert: int
    to_update: int
    strategy: str  # "merge": rows outside the restore refer to the table; else "replace"
    unchanged: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RestorePlan:
    """The verdict on restoring one archive into one organization, and its preview.

    `ok` False means the restore is refused and `message` says why in one sentence; nothing
    was changed. `dropped` lists tables and columns (``table.column``) the backup has and the
    database no longer has: they are refused unless `accept_dropped` was given.
    """

    archive_path: Path
    ok: bool
    message: str
    kind: str = ""  # "native" or "seed" (the web app's layout)
    organization: dict = field(default_factory=dict)  # the archive's: id, code, name
    created_at: str = ""
    weekday: str = ""
    trigger: str = ""
    tables: list[TablePreview] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)  # take their defaults
    skipped: list[str] = field(default_factory=list)  # in the archive, never restored
    warnings: list[str] = field(default_factory=list)
    accept_dropped: bool = False
    organization_id: int | None = None  # the target organization the plan was made for
    # authenticity.AUTHENTIC, CHANGED, FOREIGN: whether the file is as this console wrote it
    authenticity: str = ""
    authenticity_message: str = ""
    made_by: str = ""  # "by Desktop Backup", "by the web app", … (archive.made_by)
    backup_id: str = ""  # the backup's identity (its manifest's id; "" in older backups)
    partial: str = ""  # "partial: 1 of 21 tables" when the backup left tables out
    # The organization's tables the backup does not hold: a restore leaves them as they are.
    untouched: list[str] = field(default_factory=list)
    _internal: _Internal | None = field(default=None, repr=False, compare=False)

    @property
    def rows_in_backup(self) -> int:
        return sum(t.rows_in_backup for t in self.tables)

    @property
    def changes(self) -> Changes:
        """The four counts of the whole restore, as the window and the CLI say them."""
        return Changes(sum(t.to_insert for t in self.tables),
                       sum(t.to_update for t in self.tables),
                       sum(t.unchanged for t in self.tables),
                       sum(t.to_delete for t in self.tables))

    @property
    def changes_nothing(self) -> bool:
        """Restoring would leave every row as it is: the restore stops there."""
        return self.ok and not self.changes.any

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "archive": str(self.archive_path),
                "kind": self.kind, "organization": self.organization,
                "created_at": self.created_at, "weekday": self.weekday,
                "trigger": self.trigger, "preview": [t.to_dict() for t in self.tables],
                "rows_in_backup": self.rows_in_backup, "changes": self.changes.to_dict(),
                "changes_nothing": self.changes_nothing, "partial": self.partial,
                "untouched": self.untouched, "dropped": self.dropped,
                "added_columns": self.added_columns, "skipped": self.skipped,
                "warnings": self.warnings, "authenticity": self.authenticity,
                "authenticity_message": self.authenticity_message}


@dataclass
class _Internal:
    """What the apply needs from the check, and how to tell that nothing changed since."""

    plans: list[TablePlan]
    scope: OrganizationScope
    manifest: Manifest
    file_sha256: str
    schema: str
    restorer: Actor | None = None  # whose rights the users' rows were judged by


@dataclass
class RestoreResult:
    """What a restore did, for the window, the command line (--json) and the audit."""

    ok: bool
    message: str
    archive: Path
    restore_point: Path | None
    tables: dict[str, int] = field(default_factory=dict)  # rows restored per table
    rows: int = 0
    deleted: int = 0  # rows removed because the backup does not have them
    duration_s: float = 0.0
    # How the backup's rows were written: new, rewritten because they differed, or left
    # alone because the database already held them exactly.
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changes(self) -> Changes:
        return Changes(self.inserted, self.updated, self.unchanged, self.deleted)

    @property
    def changed_nothing(self) -> bool:
        """The restore stopped because nothing would change (no restore point was made)."""
        return self.ok and self.restore_point is None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "archive": str(self.archive),
                "restore_point": str(self.restore_point) if self.restore_point else None,
                "tables": self.tables, "rows": self.rows, "deleted": self.deleted,
                "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "changes": self.changes.to_dict(),
                "duration_s": round(self.duration_s, 3)}


# --- checking --------------------------------------------------------------------------------

def check_restore(engine: Engine, mapping: SchemaMapping, org: Organization,
                  archive_path: Path, *, restorer: Actor | None = None,
                  accept_dropped: bool = False, progress: ProgressCallback | None = None,
                  cancel: CancelFlag | None = None) -> RestorePlan:
    """Check an archive against `org` and the live database; change nothing.

    `restorer` is who will restore (Actor.of(session)): the backup may not give any user
    more rights than they hold (restore_privileges); without it, the restorer holds nothing.
    Problems with the archive or the data are a refused plan (``ok`` False), never an
    exception; an unreachable database raises DatabaseUnavailable, a cancel Cancelled.
    """
    path = Path(archive_path)
    restorer = restorer or Actor(0, "")
    try:
        with open_archive(path) as archive:
            plan = _check(engine, mapping, org, archive, restorer, accept_dropped, progress,
                          cancel)
        assert plan._internal is not None
        plan._internal.file_sha256 = file_sha256(path)
        return plan
    except (ArchiveError, RestoreRefused) as exc:
        return RestorePlan(path, False, _refusal(path, exc), accept_dropped=accept_dropped,
                           organization_id=org.id)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def _refusal(path: Path, exc: Exception) -> str:
    if isinstance(exc, ArchiveError):
        return f"{path.name} cannot be restored: {exc}"
    return str(exc)


def _check(engine: Engine, mapping: SchemaMapping, org: Organization, archive: OpenArchive,
           restorer: Actor, accept_dropped: bool, progress: ProgressCallback | None,
           cancel: CancelFlag | None) -> RestorePlan:
    manifest = archive.manifest
    _check_organization(manifest, org)
    with engine.connect() as conn:
        origin = judge(archive.zip, MANIFEST, read_key(conn), MAX_MANIFEST_BYTES)
        guard = UserGuard(mapping, restorer.role, restorer.is_owner, origin.authentic)
        metadata = reflect(conn)
        scope = discover_scope(metadata, mapping)
        mapped = map_archive(manifest, scope, mapping.tenant_table, conn.dialect.name)
        if mapped.dropped and not accept_dropped:
            raise RestoreRefused(
                "The database has changed since this backup was made: "
                f"{_listing(mapped.dropped)} no longer exist, so the backup's data in them "
                "would be lost. Accept losing that data to restore anyway "
                "(--accept-dropped-columns on the command line).")
        plans = mapped.plans
        names = {p.name for p in plans}
        edges = edges_into(metadata, names, delete_actions(conn, metadata))
        choose_strategies(plans, edges, foreign_references(conn, scope, plans, edges, org.id))
        _read_every_row(conn, archive, scope, plans, org.id, guard, progress, cancel)
        previews, removed = _preview(conn, archive, scope, plans, org.id, cancel)
        warnings = mapped.notes + outside_effects(conn, scope, plans, edges, org.id, removed)
        if archive.unlisted:
            warnings.append(unlisted_note(archive.unlisted))
        for table, trigger in triggers_on(conn, names):
            warnings.append(f"Table {table} has the trigger {trigger}; it runs for every "
                            "restored row and may change other data.")
        schema = schema_signature(metadata)
    added = [f"{p.name}.{c.name}" for p in plans for c in p.table.columns
             if c.name not in p.columns and p.entry.columns]
    who = manifest.organization.get("name") or org.name
    rows = sum(p.entry.rows for p in plans)
    untouched = [name for name in scope.names() if name not in names]
    partial = manifest.scope_words or (
        scope_words({"tables": len(plans), "of": len(plans) + len(untouched)})
        if manifest.kind == "seed" else "")
    kind = f"a partial backup ({partial.removeprefix('partial: ')})" if partial \
        else "a complete backup"
    message = (f"{archive.path.name} is {kind} of {who} from {manifest.created_at}: "
               f"restoring it puts back {rows:,} rows in {len(plans)} tables"
               + (f" and leaves {len(untouched)} untouched." if untouched else "."))
    return RestorePlan(
        archive.path, True, message, manifest.kind,
        {k: manifest.organization.get(k) for k in ("id", "code", "name")}, manifest.created_at,
        manifest.weekday, manifest.trigger, previews, mapped.dropped, added, mapped.skipped,
        warnings, accept_dropped, org.id, origin.state, origin.message, made_by(manifest),
        manifest.backup_id, partial, untouched,
        _Internal(plans, scope, manifest, "", schema, restorer))


def _read_every_row(conn, archive: OpenArchive, scope: OrganizationScope,
                    plans: list[TablePlan], org_id: int, guard: UserGuard,
                    progress: ProgressCallback | None, cancel: CancelFlag | None) -> None:
    """Every row of every table, restored or not: counts and checksums, and for the
    restored tables values, owners, references and clashes (restore_check.RowChecker),
    and the users' rights (restore_privileges.UserGuard)."""
    checker = RowChecker(conn, scope, plans, org_id)
    restored = {p.name: p for p in plans}
    entries = [p.entry for p in plans] + [
        e for e in archive.manifest.tables if e.name not in restored]
    total = sum(e.rows for e in entries)
    done = 0
    for index, entry in enumerate(entries):
        plan = restored.get(entry.name)
        for batch in archive.batches(entry):
            _stop_if_cancelled(cancel)
            if plan is not None:
                columns = plan.decode_columns(batch)
                checker.check_batch(plan, columns)
                if guard.covers(plan.name):
                    guard.check_batch(conn, plan.table, plan.columns, columns)
            done += len(batch)
            if progress:
                progress(Progress(entry.name, index, len(entries), done, total))
    checker.finish()


def _preview(conn, archive: OpenArchive, scope: OrganizationScope, plans: list[TablePlan],
             org_id: int, cancel: CancelFlag | None = None
             ) -> tuple[list[TablePreview], dict[str, list[tuple]]]:
    """Per table, what the restore does, matched by primary key and compared value by value
    (restore_apply.count_changes); and the keys of rows that merged tables lose (what the
    database's ON DELETE rules then act on)."""
    from desktop_backup.restore_apply import count_changes

    removed = {}
    in_both = {}
    for plan in plans:
        if plan.keyed:
            merged = plan.strategy == "merge"
            found = compare_keys(conn, scope, plan, org_id, keep_gone=merged)
            plan.rows_now = found.rows_now
            in_both[plan.name] = found.in_both
            plan.to_delete = plan.rows_now - found.in_both
            plan.to_insert = plan.entry.rows - found.in_both
            if merged and found.gone:
                removed[plan.name] = [(v,) if isinstance(v, int) else v for v in found.gone]
        else:
            plan.rows_now = count_now(conn, scope, plan, org_id)
            plan.to_delete, plan.to_insert = plan.rows_now, plan.entry.rows
    changed = count_changes(conn, archive, archive.manifest, scope, plans, in_both, org_id,
                            cancel)
    previews = []
    for plan in plans:
        plan.to_update = changed.get(plan.name, 0)
        previews.append(TablePreview(plan.name, plan.rows_now, plan.entry.rows,
                                     plan.to_delete, plan.to_insert, plan.to_update,
                                     plan.strategy, in_both.get(plan.name, 0) - plan.to_update))
    return previews, removed


def _check_organization(manifest: Manifest, org: Organization) -> None:
    """The archive's organization id and code must both be the target's."""
    theirs = manifest.organization
    their_id, their_code = theirs.get("id"), theirs.get("code")
    if their_code is not None and not isinstance(their_code, str):
        raise ArchiveError("The backup's organization code is damaged.")
    if their_id == org.id and (their_code or None) == (org.code or None):
        return
    name = theirs.get("name") or "another organization"
    label = f"{name} (id {their_id}, code {their_code or 'none'})"
    if their_id == org.id:
        raise RestoreRefused(
            f"This backup was made for {label}, but organization {org.id} here has the code "
            f"{org.code or 'none'}; it is not {org.name}'s backup and was refused.")
    raise RestoreRefused(
        f"This backup belongs to {label}, not to {org.label}; a backup can only be restored "
        "into its own organization.")


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:8])
    return shown + (f" and {len(items) - 8} more" if len(items) > 8 else "")


def _stop_if_cancelled(cancel: CancelFlag | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("The restore was cancelled; nothing was changed.")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(block)
    except OSError as exc:
        raise ArchiveError(f"{path.name} cannot be read ({exc.strerror or exc}).") from None
    return digest.hexdigest()


def schema_signature(metadata) -> str:
    """Tables, columns, types and foreign keys: what the plan depends on (not the console's
    own tables, which the apply creates when they are missing)."""
    parts = []
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        if table.name in CONSOLE_TABLES:
            continue
        cols = ",".join(f"{c.name}:{c.type!r}:{c.nullable}" for c in table.columns)
        fks = ",".join(sorted(f"{fk.parent.name}>{fk.target_fullname}:{fk.ondelete}"
                              for fk in table.foreign_keys))
        parts.append(f"{table.name}({cols})[{fks}]")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def preview_text(plan: RestorePlan, org: Organization) -> str:
    """The preview as the command line prints it before asking: the window's words."""
    headers = ("table", "now", "backup", *CHANGE_WORDS)
    body = [(t.table, t.rows_now, t.rows_in_backup, t.to_insert, t.to_update, t.unchanged,
             t.to_delete) for t in plan.tables]
    body.append(("all tables", *(sum(row[i] for row in body) for i in range(1, 7))))
    body = [(row[0], *(f"{n:,}" for n in row[1:])) for row in body]  # 1,204,331 rows
    # Every column as wide as its widest value: a million rows must not run into the next.
    widths = [max(len(str(row[i])) for row in [headers, *body]) for i in range(7)]
    lines = [plan.message]
    if plan.changes_nothing:
        lines.append(f"{NOTHING_WOULD_CHANGE}: {org.name}'s data is already exactly as in "
                     "this backup.")
    else:
        lines.append(f"What the restore changes in {org.label}: {plan.changes.sentence()}")
    for row in [headers, *body]:
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{v:>{w}}" for v, w in zip(row[1:], widths[1:],
                                                                           strict=True)]
        lines.append("  " + "  ".join(cells))
    if plan.untouched:
        lines.append(f"Left untouched, because the backup does not hold them: "
                     f"{', '.join(plan.untouched)}.")
    if plan.dropped:
        lines.append(f"Not restored, because the database no longer has them: "
                     f"{', '.join(plan.dropped)}.")
    if plan.added_columns:
        lines.append(f"New since the backup, given their default values: "
                     f"{', '.join(plan.added_columns)}.")
    lines += [f"Note: {w}" for w in plan.warnings]
    if plan.authenticity_message:
        lines.append(f"Origin: {plan.authenticity_message}")
    if not plan.changes_nothing:
        lines.append("Other organizations and shared tables are not touched. Before anything "
                     "changes, the current data is saved as a restore point.")
    return "\n".join(lines)


# --- restore points --------------------------------------------------------------------------

def restore_point_path(folder: Path, org: Organization, now: datetime) -> Path:
    """``<backup folder>/restore-points/org_{code}_restore-point_{YYYYmmdd-HHMMSS}.zip``."""
    base = Path(folder) / RESTORE_POINTS_DIR
    stem = f"org_{org.file_key}_restore-point_{now.strftime('%Y%m%d-%H%M%S')}"
    path = base / f"{stem}.zip"
    n = 2
    while path.exists():
        path = base / f"{stem}-{n}.zip"
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
                         r"(\d{8}-\d{6})(?:-(\d+))?\.zip")
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
        if old.resolve() != protect.resolve() and archive_owner(old) == org.id:
            old.unlink(missing_ok=True)


def _take_restore_point(engine: Engine, mapping: SchemaMapping, org: Organization,
                        actor: Actor, folder: Path, keep: int, protect: Path,
                        cancel: CancelFlag | None, clock: Clock) -> Path:
    try:
        points = prepare_folder(prepare_folder(folder) / RESTORE_POINTS_DIR)
        target = restore_point_path(points.parent, org, clock())
        write_archive(Site(engine, mapping, clock), org.id, target, actor, trigger="pre-restore",
                      cancel=cancel)
    except Cancelled:
        raise Cancelled("The restore was cancelled; nothing was changed.") from None
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    except DesktopBackupError as exc:
        raise DesktopBackupError(f"The restore point could not be saved, so nothing was "
                                 f"restored: {exc}") from exc
    _prune_restore_points(points.parent, org, keep, protect)
    return target


# --- applying ----------------------------------------------------------------------------------

def apply_restore(engine: Engine, mapping: SchemaMapping, org: Organization,
                  plan_or_path: RestorePlan | Path | str, actor: Actor, backup_folder: Path,
                  **options) -> RestoreResult:
    """Restore `org` (see :func:`_apply_restore`); then, whatever happened, sweep what
    earlier killed runs left behind (LOAD DATA scratch folders, partial restore points)."""
    try:
        return _apply_restore(engine, mapping, org, plan_or_path, actor, backup_folder,
                              **options)
    finally:
        sweep_leftovers(backup_folder)


def _apply_restore(engine: Engine, mapping: SchemaMapping, org: Organization,
                   plan_or_path: RestorePlan | Path | str, actor: Actor, backup_folder: Path, *,
                   restore_points_kept: int = 5, progress: ProgressCallback | None = None,
                   cancel: CancelFlag | None = None, clock: Clock = local_now,
                   trigger: str = "manual", accept_dropped: bool = False) -> RestoreResult:
    """Restore `org` from a checked plan (or check the path first), all or nothing.

    Order: a refused plan is recorded and raised as RestoreRefused; a plan whose archive or
    schema changed since the check is refused; the restore point is written (a failure
    there changes nothing); the one transaction runs and commits. A failure raises
    RestoreFailed (or Cancelled) after the rollback; every outcome goes to the audit.
    `progress` counts the backup's rows as they are written (only the writing: call
    check_restore with its own progress to show the check); `cancel` is polled between
    batches and just before the commit.
    """
    from desktop_backup.restore_apply import run_restore

    started = time.monotonic()
    try:
        _slot, audit = ensure_tables(engine)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc
    if isinstance(plan_or_path, RestorePlan):
        plan = plan_or_path
        fresh = False
    else:
        plan = check_restore(engine, mapping, org, Path(plan_or_path), restorer=actor,
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
        if not plan.ok or plan._internal is None:
            raise RestoreRefused(plan.message)
        if plan.organization_id != org.id:
            raise RestoreRefused(f"This restore was checked for another organization, not "
                                 f"{org.name}; check it again.")
        judged = plan._internal.restorer or Actor(0, "")
        if not UserGuard(mapping, judged.role, judged.is_owner, False).judged_no_looser_than(
                actor.role, actor.is_owner):
            raise RestoreRefused("This restore was checked for a user with more rights than "
                                 f"{actor.username}; check it again before restoring.")
        if not fresh:
            _still_current(engine, plan)
    except RestoreRefused as exc:
        fail(exc, "refused")
        raise
    if plan.changes_nothing:
        return _nothing_to_do(engine, audit, entry, plan, org, started, clock)
    restore_point: Path | None = None
    try:
        restore_point = _take_restore_point(engine, mapping, org, actor, backup_folder,
                                            restore_points_kept, plan.archive_path, cancel,
                                            clock)
        outcome = run_restore(engine, plan._internal, plan.archive_path, org.id,
                              progress=progress, cancel=cancel)
    except Cancelled as exc:
        error = Cancelled("The restore was cancelled; nothing was changed.")
        fail(error, "cancelled")
        raise error from exc
    except DesktopBackupError as exc:
        error = exc
        if restore_point is not None and not isinstance(exc, RestoreFailed):
            error = RestoreFailed(f"{exc} The restore was rolled back; nothing was changed.")
        fail(error)
        if error is exc:
            raise
        raise error from exc
    except BaseException as exc:
        fail(RestoreFailed(f"The restore stopped unexpectedly ({type(exc).__name__}); it was "
                           "rolled back and nothing was changed."))
        raise
    duration = time.monotonic() - started
    rows = sum(outcome.tables.values())
    changes = Changes(outcome.inserted, outcome.updated, outcome.unchanged, outcome.deleted)
    message = (f"Restored {org.name} from {plan.archive_path.name} in {duration:.1f} s: "
               f"{changes.sentence()} The data from before is saved in {restore_point.name}; "
               "Undo this restore puts it back.")
    record_quietly(engine, audit, replace(
        entry, rows=rows, duration_ms=int(duration * 1000),
        message=f"{message} Restore point: {restore_point}",
        restore_point=str(restore_point)), clock())
    return RestoreResult(True, message, plan.archive_path, restore_point, outcome.tables, rows,
                         outcome.deleted, duration, outcome.inserted, outcome.updated,
                         outcome.unchanged)


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
    internal = plan._internal
    assert internal is not None
    try:
        same_file = file_sha256(plan.archive_path) == internal.file_sha256
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
    if schema != internal.schema:
        raise RestoreRefused("The database's tables have changed since the backup was "
                             "checked; check it again before restoring.")

