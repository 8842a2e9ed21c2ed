"""Everything a restore checks before it touches a row, and the plan it leaves for the apply.

An archive is untrusted: it may be damaged, foreign, or made for a database that has changed
since. This module maps the archive's tables onto the live schema (schema drift), converts
every value to what the live column takes (restore.values), and proves before any change that:

* every row belongs to the organization (its tenant column, or a parent row in the backup);
* every foreign key points at a row that will exist after the restore (a row that refers to
  a membership or role assignment of a user deleted since the backup is left out, with what
  depends on it, and a Note says so: restore.rows.user_links and settle_left_out);
* no primary or unique key clashes with a row of another organization;
* no row outside the restore would be removed or refused by the database's own cascades;
* the person restoring stays an admin of the organization (restore.access).

What it learns (the backup's keys, kept compactly; which tables rows outside the restore refer
to; which columns are written after the rest; what the rows refer to outside the backup) is
what :mod:`desktop_backup.restore.transaction` uses. Memory stays bounded whatever the
organization's size: rows are read a batch at a time and only keys (8 bytes each) and
unresolved references are kept. Every row is read by :mod:`desktop_backup.restore.rows`;
the queries about the live organization are in :mod:`desktop_backup.restore.live`, shared
with the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ForeignKeyConstraint, Table, func, literal, select, tuple_
from sqlalchemy.engine import Connection

from desktop_backup.archive import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    ArchiveError,
    Manifest,
    TableEntry,
    left_out_words,
    scope_words,
)
from desktop_backup.authenticity import judge, read_key
from desktop_backup.db import reflect
from desktop_backup.opening import OpenArchive, made_by, unlisted_note
from desktop_backup.organizations import Organization
from desktop_backup.restore.access import OwnAccess
from desktop_backup.restore.dialects import SessionSettings
from desktop_backup.restore.live import (
    Edge,
    LiveRows,
    chunks,
    compare_keys,
    count_now,
    delete_actions,
    edges_into,
    foreign_references,
    match,
    not_owned,
    owned,
    triggers_on,
)
from desktop_backup.restore.plan import (
    Checked,
    RestorePlan,
    RestoreRefused,
    TablePlan,
    TablePreview,
)
from desktop_backup.restore.privileges import UserGuard
from desktop_backup.restore.rows import read_every_row, settle_left_out
from desktop_backup.restore.values import column_converter, column_fit, live_kind, norm
from desktop_backup.tenancy import CONSOLE_TABLES, OrganizationScope, TableScope, discover_scope
from desktop_backup.work import Actor, CancelFlag, ProgressCallback, Site


def check_archive(site: Site, org: Organization, archive: OpenArchive, restorer: Actor,
                  accept_dropped: bool, progress: ProgressCallback | None,
                  cancel: CancelFlag | None) -> RestorePlan:
    """The whole check of one open archive against `org` and the live database, as
    :func:`desktop_backup.restore.check_restore` describes it; raises RestoreRefused or
    ArchiveError for what the plan then refuses. The plan's file digest is the caller's."""
    manifest = archive.manifest
    mapping = site.mapping
    _check_organization(manifest, org)
    with site.engine.connect() as conn:
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
        changes = ChangeCounter(conn, scope, org.id)
        session = SessionSettings(conn)
        try:
            session.begin_reading(manifest)
            access = OwnAccess(mapping, restorer, org, scope, plans)

            def also(plan: TablePlan, columns: list) -> None:
                changes.count(plan, columns)
                access.see(plan, columns)
            read_every_row(conn, archive, scope, plans, org.id, guard, progress, cancel,
                           also=also)
            left_out = settle_left_out(archive, plans, cancel, changes.uncount)
            access.check(conn)
        finally:
            session.end()
            conn.rollback()
        previews, removed = _preview(conn, scope, plans, org.id, changes.changed)
        warnings = mapped.notes + left_out + outside_effects(conn, scope, plans, edges, org.id,
                                                             removed)
        if archive.unlisted:
            warnings.append(unlisted_note(archive.unlisted))
        for table, trigger in triggers_on(conn, names):
            warnings.append(f"Table {table} has the trigger {trigger}; it runs for every "
                            "restored row and may change other data.")
        schema = schema_signature(metadata)
    added = [f"{p.name}.{c.name}" for p in plans for c in p.table.columns
             if c.name not in p.columns and p.entry.columns]
    who = manifest.organization.get("name") or org.name
    rows = sum(p.rows_restored for p in plans)
    untouched = [name for name in scope.names() if name not in names]
    partial = manifest.scope_words or (
        scope_words({"tables": len(plans), "of": len(plans) + len(untouched)})
        if manifest.kind == "seed" else "")
    kind = f"a partial backup ({partial.removeprefix('partial: ')})" if partial \
        else "a complete backup"
    message = (f"{archive.path.name} is {kind} of {who} from {manifest.created_at}: "
               f"restoring it puts back {rows:,} rows in {len(plans)} tables"
               + (f" and leaves {len(untouched)} untouched." if untouched else ".")
               + (f" {left_out_words(manifest.scope, 'unplaced')}."
                  if manifest.scope.get("unplaced") else ""))
    return RestorePlan(
        archive.path, True, message, manifest.kind,
        {k: manifest.organization.get(k) for k in ("id", "code", "name")}, manifest.created_at,
        manifest.weekday, manifest.trigger, previews, mapped.dropped, added, mapped.skipped,
        warnings, accept_dropped, org.id, origin.state, origin.message, made_by(manifest),
        manifest.backup_id, partial, untouched,
        Checked(plans, scope, manifest, "", schema, restorer))


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


# --- the archive on the live schema ----------------------------------------------------------

@dataclass
class ArchiveMapping:
    """The archive mapped onto the live schema."""

    plans: list[TablePlan]
    dropped: list[str]  # "table" or "table.column": in the backup, gone from the database
    skipped: list[str]  # archive tables never restored (the console's own bookkeeping)
    notes: list[str]


def map_archive(manifest: Manifest, scope: OrganizationScope, tenant_table: str,
                dialect: str) -> ArchiveMapping:
    """Match each archive table and column with the live schema; refuse what cannot work."""
    metadata = scope.metadata
    plans: list[TablePlan] = []
    dropped: list[str] = []
    skipped: list[str] = []
    notes: list[str] = []
    for entry in manifest.tables:
        if entry.name in CONSOLE_TABLES or entry.name == tenant_table:
            skipped.append(entry.name)
            continue
        table = metadata.tables.get(entry.name)
        table_scope = scope.get(entry.name)
        if entry.name in scope.shared or entry.name in scope.unplaced():
            # judged by the live map, whatever the archive says it is
            skipped.append(entry.name)
            what = ("shared by every organization" if entry.name in scope.shared
                    else f"left out ({scope.left_out[entry.name]})")
            notes.append(f"Table {entry.name} is {what} in this database; a restore never "
                         f"writes it, so its {entry.rows} rows in the backup are not restored.")
            continue
        if table is None or table_scope is None:
            dropped.append(entry.name)
            why = "no longer exists" if table is None else "no longer belongs to an organization"
            notes.append(f"Table {entry.name} {why}; its {entry.rows} rows in the backup "
                         "would not be restored.")
            continue
        names = [c["name"] for c in entry.columns]
        if len(set(names)) != len(names):
            raise ArchiveError(f"Table {entry.name} lists a column twice; the backup is damaged.")
        kinds = {c["name"]: c["kind"] for c in entry.columns}
        live = [c.name for c in table.columns]
        dropped += [f"{entry.name}.{n}" for n in names if n not in live]
        columns = [n for n in live if n in kinds]
        _refuse_missing(entry, table, table_scope, columns)
        archive_kinds = {c: kinds[c] if manifest.kind == "native" else "text" for c in columns}
        plans.append(TablePlan(
            name=entry.name, entry=entry, scope=table_scope, table=table, columns=columns,
            positions=[names.index(c) for c in columns],
            column_converters=[column_converter(archive_kinds[c], live_kind(table.c[c]),
                                                dialect, column_fit(table.c[c], dialect))
                               for c in columns],
            key=[c.name for c in table.primary_key.columns]))
    order = restore_order(metadata, [p.name for p in plans])
    plans.sort(key=lambda p: order.index(p.name))
    return ArchiveMapping(plans, dropped, skipped, notes)


def restore_order(metadata, names: Iterable[str]) -> list[str]:
    """Parents before children. A cycle is broken at a table whose foreign keys into the
    rest of the cycle are nullable, so its rows go in first with those columns empty and
    get them once every row is in (see choose_strategies' `deferred`)."""
    remaining = set(names)
    parents: dict[str, list[tuple[str, bool]]] = {n: [] for n in remaining}
    for name in remaining:
        for constraint in metadata.tables[name].constraints:
            if isinstance(constraint, ForeignKeyConstraint) and constraint.elements:
                parent = constraint.elements[0].column.table.name
                if parent in remaining and parent != name:
                    parents[name].append((parent, all(c.nullable for c in constraint.columns)))
    ordered: list[str] = []
    while remaining:
        ready = sorted(n for n in remaining if not any(p in remaining for p, _ in parents[n]))
        if not ready:
            def required(n: str) -> int:
                return sum(1 for p, nullable in parents[n] if p in remaining and not nullable)
            ready = [min(remaining, key=lambda n: (required(n), n))]
        ordered += ready
        remaining.difference_update(ready)
    return ordered


def _refuse_missing(entry: TableEntry, table: Table, table_scope: TableScope,
                    columns: list[str]) -> None:
    """Columns a restored row cannot do without: its key, its owner, required new columns."""
    if not entry.rows:
        return
    needed = [c.name for c in table.primary_key.columns] + table_scope.owner_columns
    missing = [c for c in dict.fromkeys(needed) if c not in columns]
    if missing:
        raise RestoreRefused(
            f"The backup's table {entry.name} has no {', '.join(missing)} column, so its rows "
            "cannot be matched to this organization; it was made for a different database.")
    for column in table.columns:
        if column.name in columns or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and column.autoincrement in (True, "auto"):
            continue
        raise RestoreRefused(
            f"Column {entry.name}.{column.name} was added to the database after this backup "
            "was made and needs a value the backup does not have; this backup cannot be "
            "restored into the current database.")


# --- strategy: which tables rows outside the restore refer to --------------------------------

def choose_strategies(plans: list[TablePlan], edges: list[Edge],
                      foreign_rows: set[str]) -> None:
    """Which tables are "merged": referenced from outside the restore (another table, or
    another organization's rows: `foreign_rows`), and the tables such rows point at.

    Every table with a primary key is restored in place (restore.transaction): rows the backup
    also has are kept or updated, so nothing that points at them is cascaded away, and only
    rows the backup lacks are deleted. For merged tables those deletions reach rows outside
    the restore; the preview says what the database's ON DELETE rules will do to them
    (outside_effects), or refuses. A table without a primary key ("replace") has all the
    organization's rows deleted and the backup's inserted.
    """
    by_name = {p.name: p for p in plans}
    restored = set(by_name)
    merge = {e.parent for e in edges if e.child not in restored} | foreign_rows
    merge = {n for n in merge if by_name[n].key}
    changed = True
    while changed:
        changed = False
        for e in edges:
            if e.child in merge and e.child != e.parent and e.parent not in merge \
                    and by_name[e.parent].key:
                merge.add(e.parent)
                changed = True
    order = {p.name: i for i, p in enumerate(plans)}
    for plan in plans:
        plan.strategy = "merge" if plan.name in merge else "replace"
        inward = [e for e in edges if e.child == plan.name and len(e.columns) == 1
                  and e.columns[0] in plan.columns and e.nullable]
        # Self-references and cycles: written after every row is in.
        plan.deferred = sorted({e.columns[0] for e in inward
                                if order[e.parent] >= order[plan.name]})


# --- the preview -----------------------------------------------------------------------------

def _preview(conn, scope: OrganizationScope, plans: list[TablePlan], org_id: int,
             changed: dict[str, int]) -> tuple[list[TablePreview], dict[str, list[tuple]]]:
    """Per table, what the restore does, matched by primary key, with the rows that differ
    counted as the archive was read (ChangeCounter); and the keys of rows that merged tables
    lose (what the database's ON DELETE rules then act on)."""
    removed = {}
    in_both = {}
    for plan in plans:
        if plan.keyed:
            merged = plan.strategy == "merge"
            found = compare_keys(conn, scope, plan, org_id, keep_gone=merged)
            plan.rows_now = found.rows_now
            in_both[plan.name] = found.in_both
            plan.to_delete = plan.rows_now - found.in_both
            plan.to_insert = plan.rows_restored - found.in_both
            if merged and found.gone:
                removed[plan.name] = [(v,) if isinstance(v, int) else v for v in found.gone]
        else:
            plan.rows_now = count_now(conn, scope, plan, org_id)
            plan.to_delete, plan.to_insert = plan.rows_now, plan.rows_restored
    previews = []
    for plan in plans:
        # An adopted orphan the backup holds is rewritten: Changed, whatever its values
        # (its owner comes back with it); one the backup lacks is Removed (compare_keys).
        plan.to_update = changed.get(plan.name, 0) + sum(
            1 for key in plan.adopted if plan.backup_keys.contains(norm(key)))
        previews.append(TablePreview(plan.name, plan.rows_now, plan.entry.rows,
                                     plan.to_delete, plan.to_insert, plan.to_update,
                                     plan.strategy, in_both.get(plan.name, 0) - plan.to_update,
                                     plan.left_out))
    return previews, removed


class ChangeCounter:
    """For the preview: per keyed table, how many of the backup's rows differ from the live
    ones with the same key (the other rows on both sides are identical), batch by batch while
    the check reads the archive, so it is read once. Read-only; the caller's session reads
    values as the transaction will (SessionSettings.begin_reading)."""

    def __init__(self, conn: Connection, scope: OrganizationScope, org_id: int) -> None:
        self.conn, self.scope, self.org_id = conn, scope, org_id
        self.changed: dict[str, int] = {}
        self.live: dict[str, LiveRows | None] = {}

    def count(self, plan: TablePlan, columns: list) -> None:
        if not plan.keyed or not columns or not len(columns[0]):
            return
        if plan.name not in self.live:  # its first batch: compare where the organization has rows
            self.live[plan.name] = LiveRows(self.conn, self.scope, plan, self.org_id) \
                if self._holds_rows(plan) else None
        live = self.live[plan.name]
        if live is None:
            return
        live.follow_keys()
        _new, differ = live.split(list(zip(*columns, strict=True)))
        self.changed[plan.name] = self.changed.get(plan.name, 0) + len(differ)

    def uncount(self, plan: TablePlan, rows: list[tuple]) -> None:
        """Rows the restore leaves out after all (rows.settle_left_out), already counted by
        `count` while their keys were still the backup's: they change nothing."""
        live = self.live.get(plan.name)
        if live is None or not rows:
            return
        live.follow_keys()
        _new, differ = live.split(rows)
        self.changed[plan.name] = self.changed.get(plan.name, 0) - len(differ)

    def _holds_rows(self, plan: TablePlan) -> bool:
        query = select(literal(1)).select_from(plan.table).where(
            owned(self.scope, plan.scope, self.org_id)).limit(1)
        return self.conn.execute(query).first() is not None


def outside_effects(conn: Connection, scope: OrganizationScope, plans: list[TablePlan],
                    edges: list[Edge], org_id: int, removed: dict[str, list[tuple]]
                    ) -> list[str]:
    """What removing rows the backup does not have does to rows outside the restore.

    Returns warnings (cascades into the organization's other tables, the web app's log);
    raises RestoreRefused when the database would refuse it or another organization's rows
    would change."""
    by_name = {p.name: p for p in plans}
    warnings = []
    for edge in edges:
        gone = removed.get(edge.parent)
        if not gone:
            continue
        parent = by_name[edge.parent]
        child_plan = by_name.get(edge.child)
        child = scope.metadata.tables[edge.child]
        target = (child.c[edge.columns[0]] if len(edge.columns) == 1
                  else tuple_(*[child.c[c] for c in edge.columns]))
        count = 0
        for chunk in chunks(gone):
            sub = select(*[parent.table.c[c] for c in edge.parent_columns]).where(
                match(parent.table, parent.key, chunk))
            query = select(func.count()).select_from(child).where(target.in_(sub))
            if child_plan is not None:
                query = query.where(not_owned(scope, child_plan.scope, org_id))
            count += int(conn.execute(query).scalar_one())
        if not count:
            continue
        rows = f"{count} row{'s' if count != 1 else ''} of {edge.child}"
        if child_plan is not None:
            raise RestoreRefused(
                f"{rows} belonging to another organization refer to {edge.parent} rows that "
                "the backup does not have; restoring would change them, so it was refused.")
        if edge.ondelete == "restrict":
            raise RestoreRefused(
                f"{rows} refer to {edge.parent} rows that the backup does not have, and the "
                f"database does not allow removing those; remove or change those {edge.child} "
                "rows first.")
        effect = ("will be deleted with them" if edge.ondelete == "cascade"
                  else "will lose their link to them")
        warnings.append(f"{rows} refer to {edge.parent} rows that the backup does not have "
                        f"and {effect} (ON DELETE {edge.ondelete.upper()}).")
    return warnings


# --- what the apply checks again -------------------------------------------------------------

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
