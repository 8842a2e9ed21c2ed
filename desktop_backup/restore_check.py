"""Everything a restore checks before it touches a row, and the plan it leaves for the apply.

An archive is untrusted: it may be damaged, foreign, or made for a database that has changed
since. This module maps the archive's tables onto the live schema (schema drift), converts
every value to what the live column takes (restore_values), and proves before any change that:

* every row belongs to the organization (its tenant column, or a parent row in the backup);
* every foreign key points at a row that will exist after the restore;
* no primary or unique key clashes with a row of another organization;
* no row outside the restore would be removed or refused by the database's own cascades.

What it learns (the backup's keys, which tables must be merged in place rather than deleted
and re-inserted, which columns are written after the rest) is what :mod:`restore_apply` uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import (
    ForeignKeyConstraint,
    Table,
    UniqueConstraint,
    func,
    not_,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from desktop_backup.archive import ArchiveError, Manifest, TableEntry
from desktop_backup.errors import DesktopBackupError
from desktop_backup.restore_values import (
    Converter,
    Key,
    ValueProblem,
    converter,
    live_kind,
    norm,
)
from desktop_backup.tenancy import CONSOLE_TABLES, OrganizationScope, TableScope

CHUNK = 500  # values per IN (...) list: far below every dialect's parameter limit


class RestoreRefused(DesktopBackupError):
    """The restore was refused before anything changed; the message says why."""


class RestoreFailed(DesktopBackupError):
    """The restore started and failed; its transaction was rolled back, nothing changed."""


# --- the plan for one table ----------------------------------------------------------------

@dataclass
class TablePlan:
    """How one archive table goes back into its live table."""

    name: str
    entry: TableEntry
    scope: TableScope
    table: Table
    columns: list[str]  # restored columns, in the order values are bound
    positions: list[int]  # where each comes from in an archive row
    converters: list[Converter]
    key: list[str]  # the live primary key (empty: the table has none)
    strategy: str = "replace"  # or "merge": update kept rows in place, see restore_apply
    deferred: list[str] = field(default_factory=list)  # FK columns written after all rows
    cleared: list[str] = field(default_factory=list)  # FK columns emptied before deletes
    backup_keys: set[Key] = field(default_factory=set)
    rows_now: int = 0
    to_delete: int = 0
    to_insert: int = 0
    to_update: int = 0

    @property
    def key_index(self) -> list[int]:
        return [self.columns.index(c) for c in self.key]

    def decode(self, raw: list) -> list:
        """One archive row as the values to bind, in `columns` order."""
        row = []
        for name, position, convert in zip(self.columns, self.positions, self.converters,
                                           strict=True):
            try:
                row.append(convert(raw[position]))
            except ValueProblem as exc:
                raise ArchiveError(f"Table {self.name}, column {name}: {exc}; the backup "
                                   "cannot be used.") from None
        return row


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
        plans.append(TablePlan(
            name=entry.name, entry=entry, scope=table_scope, table=table, columns=columns,
            positions=[names.index(c) for c in columns],
            converters=[converter(kinds[c] if manifest.kind == "native" else "text",
                                  live_kind(table.c[c]), dialect) for c in columns],
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
    owner = table_scope.tenant_column or table_scope.path[0].column
    needed = [c.name for c in table.primary_key.columns] + [owner]
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


# --- strategy: replace, or merge in place --------------------------------------------------

@dataclass(frozen=True)
class Edge:
    """One foreign key into a restored table."""

    child: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    ondelete: str  # cascade, set null, set default, restrict (also for NO ACTION / none)
    nullable: bool


def delete_actions(conn: Connection, metadata) -> dict[tuple[str, tuple[str, ...]], str]:
    """ON DELETE actions as SQLite itself reports them: SQLAlchemy reads them only from
    table-level FOREIGN KEY clauses, not from a column's own REFERENCES ... ON DELETE."""
    if conn.dialect.name != "sqlite":
        return {}
    quote = conn.dialect.identifier_preparer.quote
    actions: dict[tuple[str, tuple[str, ...]], str] = {}
    for name in metadata.tables:
        groups: dict[int, tuple[list[str], str]] = {}
        for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({quote(name)})"):
            columns, _action = groups.setdefault(row[0], ([], str(row[6])))
            columns.append(str(row[3]))
        for columns, action in groups.values():
            actions[(name, tuple(columns))] = action.lower()
    return actions


def edges_into(metadata, names: set[str],
               actions: dict[tuple[str, tuple[str, ...]], str] | None = None) -> list[Edge]:
    """Every foreign key whose parent is one of `names`, from any table in the database."""
    edges = []
    for child in metadata.tables.values():
        for constraint in child.constraints:
            if not isinstance(constraint, ForeignKeyConstraint) or not constraint.elements:
                continue
            parent = constraint.elements[0].column.table.name
            if parent not in names:
                continue
            columns = tuple(c.name for c in constraint.columns)
            action = ((actions or {}).get((child.name, columns)) or constraint.ondelete
                      or "restrict").lower()
            if action == "no action":
                action = "restrict"
            edges.append(Edge(child.name, columns, parent,
                              tuple(e.column.name for e in constraint.elements), action,
                              all(c.nullable for c in constraint.columns)))
    return edges


def choose_strategies(plans: list[TablePlan], edges: list[Edge],
                      foreign_rows: set[str]) -> None:
    """Which tables are merged in place instead of deleted and re-inserted.

    Deleting a row fires the database's cascades. A table whose rows are referenced from
    outside the restore (another table, or another organization's rows: `foreign_rows`) is
    merged: rows the backup also has are updated in place, so nothing that points at them is
    cascaded away. Tables such rows point at are merged too, or their deletion would cascade
    into the kept rows.
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
        # Self-references and cycles: written after every row is in, emptied before deletes.
        plan.deferred = sorted({e.columns[0] for e in inward
                                if order[e.parent] >= order[plan.name]})
        plan.cleared = (sorted({e.columns[0] for e in inward}) if plan.strategy == "merge"
                        else plan.deferred)


# --- queries -------------------------------------------------------------------------------

def owned(scope: OrganizationScope, table_scope: TableScope, org_id: int) -> ColumnElement:
    return scope.predicate(table_scope, org_id)


def not_owned(scope: OrganizationScope, table_scope: TableScope,
              org_id: int) -> ColumnElement:
    """Rows of the table that are not this organization's (NULL owners included)."""
    table = scope.metadata.tables[table_scope.name]
    column = table.c[table_scope.tenant_column or table_scope.path[0].column]
    return or_(column.is_(None), not_(scope.predicate(table_scope, org_id)))


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def match(table: Table, columns: Iterable[str], values: list[tuple]) -> ColumnElement:
    """`columns IN values`, with untyped binds: the server converts them as on insert."""
    exprs = [type_coerce(table.c[c], NullType()) for c in columns]
    if len(exprs) == 1:
        return exprs[0].in_([v[0] for v in values])
    return tuple_(*exprs).in_(values)


def keys_now(conn: Connection, scope: OrganizationScope, plan: TablePlan,
             org_id: int) -> dict[Key, tuple]:
    """The organization's rows in the table now: normalized key -> key as the database has it."""
    table = plan.table
    query = select(*[table.c[c] for c in plan.key]).where(owned(scope, plan.scope, org_id))
    return {norm(row): tuple(row) for row in conn.execute(query)}


def count_now(conn: Connection, scope: OrganizationScope, plan: TablePlan, org_id: int) -> int:
    query = select(func.count()).select_from(plan.table).where(
        owned(scope, plan.scope, org_id))
    return int(conn.execute(query).scalar_one())


def unique_keys(table: Table) -> list[tuple[str, ...]]:
    """The primary key and every unique constraint or plain unique index of a table."""
    keys: list[tuple[str, ...]] = []
    if table.primary_key.columns:
        keys.append(tuple(c.name for c in table.primary_key.columns))
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.columns:
            keys.append(tuple(c.name for c in constraint.columns))
    for index in table.indexes:
        partial = any(index.dialect_kwargs.get(k) is not None
                      for k in ("postgresql_where", "sqlite_where"))
        if index.unique and not partial and index.columns and len(index.columns) == len(
                index.expressions):
            keys.append(tuple(c.name for c in index.columns))
    return list(dict.fromkeys(keys))


def find_clash(conn: Connection, scope: OrganizationScope, plan: TablePlan, org_id: int,
               rows: list[list]) -> str | None:
    """A sentence naming the first row of `rows` whose primary or unique key is already
    taken by a row that is not this organization's (which the restore never touches)."""
    for key in unique_keys(plan.table):
        if not all(c in plan.columns for c in key):
            continue
        index = [plan.columns.index(c) for c in key]
        values = list(dict.fromkeys(
            tuple(row[i] for i in index) for row in rows
            if all(row[i] is not None for i in index)))
        for chunk in chunks(values):
            shown = [plan.table.c[c] for c in key] + [
                plan.table.c[c] for c in plan.key if c not in key]
            query = (select(*shown).where(match(plan.table, key, chunk))
                     .where(not_owned(scope, plan.scope, org_id)).limit(1))
            found = conn.execute(query).first()
            if found is not None:
                what = ", ".join(f"{c} {v!r}" for c, v in zip(key, found, strict=False))
                extra = [c for c in plan.key if c not in key]
                theirs = ", ".join(f"{c} {v}" for c, v in
                                   zip(extra, found[len(key):], strict=True))
                where = f" ({theirs})" if theirs else ""
                return (f"Table {plan.name}: the backup's row with {what} clashes with a "
                        f"row{where} that belongs to another organization (or to none); "
                        "restoring would overwrite it, so the restore was refused.")
    return None


def missing_values(conn: Connection, table: Table, columns: tuple[str, ...],
                   values: set[Key], where: ColumnElement | None = None) -> list[Key]:
    """Which of `values` have no row in `table` (optionally only among rows `where`)."""
    wanted = sorted(values, key=repr)
    found: set[Key] = set()
    for chunk in chunks(wanted):
        query = select(*[table.c[c] for c in columns]).where(match(table, columns, chunk))
        if where is not None:
            query = query.where(where)
        found.update(norm(row) for row in conn.execute(query))
    return [v for v in wanted if v not in found]


def triggers_on(conn: Connection, names: set[str]) -> list[tuple[str, str]]:
    """(table, trigger) pairs: triggers fire for every restored row, so the user is told."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        sql = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
    elif dialect == "mysql":
        sql = ("SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
               "WHERE TRIGGER_SCHEMA = DATABASE()")
    else:
        sql = ("SELECT DISTINCT event_object_table, trigger_name FROM information_schema.triggers"
               " WHERE event_object_schema = current_schema()")
    rows = conn.exec_driver_sql(sql).all()
    return sorted((str(t), str(n)) for t, n in rows if t in names)


# --- the rows ------------------------------------------------------------------------------

def foreign_references(conn: Connection, scope: OrganizationScope, plans: list[TablePlan],
                       edges: list[Edge], org_id: int) -> set[str]:
    """Restored tables whose rows are referenced by another organization's rows (or by rows
    of no organization) in a restored table: deleting them would reach outside the restore."""
    by_name = {p.name: p for p in plans}
    found = set()
    for edge in edges:
        child = by_name.get(edge.child)
        if child is None or edge.parent in found:
            continue
        parent = by_name[edge.parent]
        ctable = child.table
        parent_values = select(*[parent.table.c[c] for c in edge.parent_columns]).where(
            owned(scope, parent.scope, org_id))
        target = (ctable.c[edge.columns[0]] if len(edge.columns) == 1
                  else tuple_(*[ctable.c[c] for c in edge.columns]))
        query = (select(func.count()).select_from(ctable)
                 .where(target.in_(parent_values))
                 .where(not_owned(scope, child.scope, org_id)))
        if conn.execute(query).scalar_one():
            found.add(edge.parent)
    return found


class RowChecker:
    """Reads every row of the archive once, before anything changes, and proves it fits."""

    def __init__(self, conn: Connection, scope: OrganizationScope, plans: list[TablePlan],
                 org_id: int) -> None:
        self.conn = conn
        self.scope = scope
        self.plans = plans
        self.by_name = {p.name: p for p in plans}
        self.org_id = org_id
        self.fk_values: dict[tuple[str, ForeignKeyConstraint], set[Key]] = {}
        # (table, columns) that children refer to by something other than the primary key
        self.wanted: dict[tuple[str, tuple[str, ...]], set[Key]] = {}
        for plan in plans:
            for fk in self._foreign_keys(plan):
                parent = fk.elements[0].column.table.name
                cols = tuple(e.column.name for e in fk.elements)
                if parent in self.by_name and list(cols) != self.by_name[parent].key:
                    self.wanted[(parent, cols)] = set()
        for plan in plans:
            if plan.scope.path:
                hop = plan.scope.path[0]
                parent = self.by_name.get(hop.parent_table)
                if parent is not None and [hop.parent_column] != parent.key:
                    self.wanted[(hop.parent_table, (hop.parent_column,))] = set()
        self.hop_values: dict[str, set[Key]] = {}

    @staticmethod
    def _foreign_keys(plan: TablePlan) -> list[ForeignKeyConstraint]:
        return [c for c in plan.table.constraints
                if isinstance(c, ForeignKeyConstraint) and c.elements
                and all(col.name in plan.columns for col in c.columns)]

    def check_batch(self, plan: TablePlan, rows: list[list]) -> None:
        """Ownership, duplicate keys and clashes of one batch; collects references."""
        columns = plan.columns
        if plan.scope.tenant_column:
            at = columns.index(plan.scope.tenant_column)
            for row in rows:
                if row[at] != self.org_id:
                    raise RestoreRefused(
                        f"Table {plan.name} in the backup holds a row of another organization "
                        f"({plan.scope.tenant_column} {row[at]!r}); the backup has been "
                        "tampered with or mixed up, and was refused.")
        else:
            at = columns.index(plan.scope.path[0].column)
            self.hop_values.setdefault(plan.name, set()).update(norm([r[at]]) for r in rows)
        if plan.key:
            index = plan.key_index
            for row in rows:
                key = norm(row[i] for i in index)
                if None in key:
                    raise ArchiveError(f"Table {plan.name} in the backup has a row without its "
                                       f"{', '.join(plan.key)}; it is damaged.")
                if key in plan.backup_keys:
                    raise ArchiveError(f"Table {plan.name} in the backup holds the row "
                                       f"{', '.join(map(str, key))} twice; it is damaged.")
                plan.backup_keys.add(key)
        for (table, cols), values in self.wanted.items():
            if table == plan.name:
                index = [columns.index(c) for c in cols]
                values.update(norm(row[i] for i in index) for row in rows)
        for fk in self._foreign_keys(plan):
            index = [columns.index(c.name) for c in fk.columns]
            values = self.fk_values.setdefault((plan.name, fk), set())
            for row in rows:
                value = tuple(row[i] for i in index)
                if all(v is not None for v in value):
                    values.add(norm(value))
        clash = find_clash(self.conn, self.scope, plan, self.org_id, rows)
        if clash:
            raise RestoreRefused(clash)

    def _backup_values(self, table: str, cols: tuple[str, ...]) -> set[Key]:
        plan = self.by_name[table]
        return plan.backup_keys if list(cols) == plan.key else self.wanted[(table, cols)]

    def finish(self) -> None:
        """Every row's owner and every reference, once all tables have been read."""
        for plan in self.plans:
            if not plan.scope.path:
                continue
            hop = plan.scope.path[0]
            values = self.hop_values.get(plan.name, set())
            if None in {v[0] for v in values}:
                raise RestoreRefused(f"Table {plan.name} in the backup has rows without their "
                                     f"{hop.column}; they belong to no organization.")
            if hop.parent_table in self.by_name:
                stray = values - self._backup_values(hop.parent_table, (hop.parent_column,))
            else:
                parent_scope = self.scope.get(hop.parent_table)
                parent = self.scope.metadata.tables[hop.parent_table]
                where = owned(self.scope, parent_scope, self.org_id) if parent_scope else None
                stray = set(missing_values(self.conn, parent, (hop.parent_column,), values,
                                           where))
            if stray:
                example = sorted(stray, key=repr)[0][0]
                raise RestoreRefused(
                    f"Table {plan.name} in the backup has rows whose {hop.column} "
                    f"({example!r}) is not one of this organization's {hop.parent_table}; "
                    "the backup has been tampered with or mixed up, and was refused.")
        for (name, fk), values in self.fk_values.items():
            parent_name = fk.elements[0].column.table.name
            parent = self.scope.metadata.tables.get(parent_name)
            if parent is None:
                continue
            cols = tuple(e.column.name for e in fk.elements)
            where = None
            if parent_name in self.by_name:
                values = values - self._backup_values(parent_name, cols)
                where = not_owned(self.scope, self.by_name[parent_name].scope, self.org_id)
            if not values:
                continue
            lost = missing_values(self.conn, parent, cols, values, where)
            if lost:
                child_cols = ", ".join(c.name for c in fk.columns)
                raise RestoreRefused(
                    f"Table {name}: {len(lost)} of the backup's rows refer to {parent_name} "
                    f"rows that are neither in the backup nor in the database ({child_cols} "
                    f"{', '.join(map(str, lost[0]))}); restoring them would break the data.")


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
