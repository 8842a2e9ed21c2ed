"""Everything a restore checks before it touches a row, and the plan it leaves for the apply.

An archive is untrusted: it may be damaged, foreign, or made for a database that has changed
since. This module maps the archive's tables onto the live schema (schema drift), converts
every value to what the live column takes (restore_values), and proves before any change that:

* every row belongs to the organization (its tenant column, or a parent row in the backup);
* every foreign key points at a row that will exist after the restore;
* no primary or unique key clashes with a row of another organization;
* no row outside the restore would be removed or refused by the database's own cascades.

What it learns (the backup's keys, kept compactly; which tables rows outside the restore refer
to; which columns are written after the rest; what the rows refer to outside the backup) is
what :mod:`restore_apply` uses. Memory stays bounded whatever the organization's size: rows
are read a batch at a time and only keys (8 bytes each) and unresolved references are kept.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from desktop_backup.archive import ArchiveError, Manifest, TableEntry
from desktop_backup.errors import DesktopBackupError
from desktop_backup.export import stream_rows
from desktop_backup.restore.values import (
    Key,
    ValueProblem,
    column_converter,
    column_fit,
    live_kind,
    norm,
)
from desktop_backup.tenancy import CONSOLE_TABLES, OrganizationScope, TableScope

CHUNK = 500  # values per IN (...) list: far below every dialect's parameter limit
SCAN_ROWS = 10_000  # keys fetched at a time when comparing the database with the backup
PENDING_LIMIT = 50_000  # references kept before they are looked up in the database
OUTSIDE_LIMIT = 100_000  # references outside the backup remembered per table for the restore


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
    key: list[str]  # the live primary key (empty: the table has none)
    # per column, the archive's values of a batch as the values to bind (column_converter)
    column_converters: list = field(default_factory=list)
    strategy: str = "replace"  # or "merge" (rows outside the restore refer to it): see
    # choose_strategies
    deferred: list[str] = field(default_factory=list)  # FK columns written after all rows
    backup_keys: KeySet = field(default_factory=lambda: KeySet(1))
    rows_now: int = 0
    to_delete: int = 0
    to_insert: int = 0
    to_update: int = 0
    # What the backup's rows refer to outside the backup (shared rows, another organization's),
    # found in the database by the check, per foreign key; None once there were too many to
    # keep. The restore locks them before writing without the database's own checks.
    outside: dict[ForeignKeyConstraint, set[Key]] | None = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.backup_keys = KeySet(len(self.key))

    @property
    def keyed(self) -> bool:
        """Rows are matched by primary key (the table has one, and the backup has it)."""
        return bool(self.key) and all(c in self.columns for c in self.key)

    @property
    def key_index(self) -> list[int]:
        return [self.columns.index(c) for c in self.key]

    def decode_columns(self, raw: list[list]) -> list[Sequence]:
        """A batch of archive rows (all of the entry's width) as converted columns, in
        `columns` order: one pass per column, most of them without a Python call per value."""
        if not raw:
            return [() for _ in self.columns]
        by_position = list(zip(*raw, strict=True))
        out = []
        for name, position, convert in zip(self.columns, self.positions,
                                           self.column_converters, strict=True):
            try:
                out.append(convert(by_position[position]))
            except ValueProblem as exc:
                raise ArchiveError(f"Table {self.name}, column {name}: {exc}; the backup "
                                   "cannot be used.") from None
        return out

    def decode_batch(self, raw: list[list]) -> list[tuple]:
        """A batch of archive rows as the tuples to bind, in `columns` order."""
        return list(zip(*self.decode_columns(raw), strict=True))


class KeySet:
    """The primary keys of one table in the backup, without a Python object per key where
    it can: a single whole-number key (nearly every table) is kept in a sorted array of
    8-byte integers, so a million keys take 8 MB rather than a hundred. Other keys (text,
    several columns) are a set of normalized tuples.

    Keys are added batch by batch as the archive is read; a repeated key is refused. Whether
    the backup lists its rows in key order (our own archives do) is remembered: the restore
    then reads the live rows range by range.
    """

    def __init__(self, width: int) -> None:
        self.ints: array | None = array("q") if width == 1 else None
        self.tuples: set[Key] = set()
        self.ordered = width == 1
        self.sorted = True  # `ints` is sorted (always true once sealed)
        self._lookup: set[int] | None = None  # while checking references: `ints` as a set

    def __len__(self) -> int:
        return len(self.ints) if self.ints is not None else len(self.tuples)

    def add(self, table: str, key: list[str], columns: list[Sequence]) -> None:
        """One batch's `key` columns. Raises ArchiveError for a missing or repeated key."""
        if any(None in c for c in columns):
            raise ArchiveError(f"Table {table} in the backup has a row without its "
                               f"{', '.join(key)}; it is damaged.")
        if self.ints is not None:
            values = columns[0]
            if set(map(type, values)) <= {int}:
                try:
                    self._add_ints(values)
                    return
                except OverflowError:
                    pass  # beyond 64 bits: kept as tuples below
            self._to_tuples()
        for value in map(norm, zip(*columns, strict=True)):
            if value in self.tuples:
                raise self._twice(table, value)
            self.tuples.add(value)

    def _add_ints(self, values: Sequence[int]) -> None:
        ints = self.ints
        assert ints is not None
        if not values:
            return
        if self.ordered and not ((not ints or ints[-1] < values[0])
                                 and all(map(operator.lt, values, islice(values, 1, None)))):
            self.ordered = False
        start = len(ints)
        try:
            ints.extend(values)
        except OverflowError:
            del ints[start:]  # what went in before the value too big for 64 bits
            raise
        if not self.ordered:
            self.sorted = False

    def _to_tuples(self) -> None:
        if self.ints is not None:
            self.tuples = {(v,) for v in self.ints}
            repeated = len(self.tuples) != len(self.ints)
            self.ints, self.ordered, self.sorted = None, False, True
            if repeated:
                raise ArchiveError("A table in the backup holds a row twice; it is damaged.")

    @staticmethod
    def _twice(table: str, key: Key) -> ArchiveError:
        return ArchiveError(f"Table {table} in the backup holds the row "
                            f"{', '.join(map(str, key))} twice; it is damaged.")

    def seal(self, table: str) -> None:
        """After the table's last batch: sort what came out of order, refuse repeats."""
        ints = self.ints
        if ints is None or self.sorted:
            return
        ordered = array("q", sorted(ints))
        if any(map(operator.eq, ordered, islice(ordered, 1, None))):
            twice = next(a for a, b in zip(ordered, ordered[1:], strict=False) if a == b)
            raise self._twice(table, (twice,))
        self.ints = ordered
        self.sorted = True

    def missing(self, keys: Iterable[Key]) -> set[Key]:
        """The normalized keys that are not in the backup."""
        if self.ints is None:
            return set(keys).difference(self.tuples)
        keys = set(keys)
        whole = {k for k in keys if type(k[0]) is int}
        found = self.present_ints(k[0] for k in whole)
        return {k for k in keys if k not in whole or k[0] not in found}

    def present_ints(self, values: Iterable[int]) -> set[int]:
        """Which of these whole numbers are keys in the backup (single-column keys only)."""
        ints = self.ints
        assert ints is not None and self.sorted
        if self._lookup is not None:
            return self._lookup.intersection(values)
        wanted = sorted(set(values))
        if not wanted or not ints:
            return set()
        lo, hi = bisect_left(ints, wanted[0]), bisect_right(ints, wanted[-1])
        if hi - lo <= 4 * len(wanted) + 1024:
            return set(wanted).intersection(ints[lo:hi])
        found = set()
        for value in wanted:
            at = bisect_left(ints, value, lo, hi)
            if at < hi and ints[at] == value:
                found.add(value)
        return found

    def cache(self, limit: int = 1 << 18) -> None:
        """Keep a set of a smaller table's keys while references to it are checked: the
        lookups are then in C (at most ~16 MB for `limit` keys; see release)."""
        if self.ints is not None and self.sorted and len(self.ints) <= limit:
            self._lookup = set(self.ints)

    def release(self) -> None:
        self._lookup = None

    def contains(self, key: Key) -> bool:
        if self.ints is None:
            return key in self.tuples
        if type(key[0]) is not int:
            return False
        at = bisect_left(self.ints, key[0])
        return at < len(self.ints) and self.ints[at] == key[0]


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


# --- strategy: which tables rows outside the restore refer to ---------------------------------

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
    """Which tables are "merged": referenced from outside the restore (another table, or
    another organization's rows: `foreign_rows`), and the tables such rows point at.

    Every table with a primary key is restored in place (restore_apply): rows the backup
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


@dataclass
class KeyComparison:
    """The organization's rows in a table now, matched with the backup by primary key."""

    rows_now: int = 0
    in_both: int = 0
    gone: list = field(default_factory=list)  # keys (as the database has them) of rows the
    # backup does not have: tuples, or for a whole-number key an array of the numbers


def compare_keys(conn: Connection, scope: OrganizationScope, plan: TablePlan, org_id: int,
                 *, keep_gone: bool = True) -> KeyComparison:
    """Stream the organization's keys in the table and match them with the backup's: only a
    batch of keys is held at a time, and the keys of rows the backup lacks (`keep_gone`)."""
    table = plan.table
    query = select(*[table.c[c] for c in plan.key]).where(owned(scope, plan.scope, org_id))
    keys = plan.backup_keys
    out = KeyComparison(gone=array("q") if keys.ints is not None else [])
    for part in scan_rows(conn, literal_sql(conn, query)):
        out.rows_now += len(part)
        if keys.ints is not None and all(type(r[0]) is int for r in part):
            values = [r[0] for r in part]
            found = keys.present_ints(values)
            out.in_both += len(found)
            if keep_gone and len(found) < len(values):
                out.gone.extend(v for v in values if v not in found)
            continue
        raw = [tuple(r) for r in part]
        missing = keys.missing(map(norm, raw))
        out.in_both += len(raw) - len(missing)
        if keep_gone and missing:
            gone = [k for k in raw if norm(k) in missing]
            if isinstance(out.gone, array):
                out.gone = [(v,) for v in out.gone]
            out.gone.extend(gone)
    return out


# --- the driver's own cursor, for the queries that return a row per row of the organization --

def literal_sql(conn: Connection, query) -> str:
    """A query whose only values are the organization's integer id (and other integers) as
    plain SQL, as export does: safe to inline, and run on the driver's cursor."""
    return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def scan_rows(conn: Connection, sql: str, size: int = SCAN_ROWS) -> Iterator[list]:
    """export.stream_rows, with the driver's errors made SQLAlchemy's (driver_errors)."""
    with driver_errors(conn, sql):
        yield from stream_rows(conn, sql, size)


def driver_rows(conn: Connection, sql: str, params) -> list:
    """All rows of one (small) query on the driver's cursor, as plain tuples."""
    with driver_errors(conn, sql):
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()


class driver_errors:  # noqa: N801 - a context manager, named as one reads
    """The driver's own cursor raises the driver's errors; make them SQLAlchemy's, as every
    other statement's, so the rollback and the message work the same."""

    def __init__(self, conn: Connection, statement: str) -> None:
        self.conn = conn
        self.statement = statement

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> None:
        dbapi = self.conn.dialect.dbapi
        if exc is None or dbapi is None or not isinstance(exc, dbapi.Error):
            return
        raw = self.conn.connection.dbapi_connection
        lost = self.conn.dialect.is_disconnect(exc, raw, None)
        raise DBAPIError.instance(self.statement, None, exc, dbapi.Error,
                                  connection_invalidated=lost,
                                  dialect=self.conn.dialect) from exc


def key_chunks(gone, size: int = CHUNK) -> Iterator[list[tuple]]:
    """KeyComparison.gone in IN-list sized chunks of key tuples."""
    for start in range(0, len(gone), size):
        chunk = gone[start:start + size]
        yield [(v,) for v in chunk] if isinstance(gone, array) else chunk


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
               rows: Sequence[Sequence], keys: list[tuple[str, ...]] | None = None
               ) -> str | None:
    """A sentence naming the first row of `rows` whose primary or unique key (of `keys`,
    default all) is already taken by a row that is not this organization's (which the
    restore never touches)."""
    for key in unique_keys(plan.table) if keys is None else keys:
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


def taken_in_range(conn: Connection, scope: OrganizationScope, plan: TablePlan, org_id: int,
                   values: Sequence[int]) -> bool:
    """Whether a row that is not the organization's holds one of these whole-number primary
    keys (given in ascending order): one range query instead of an IN list per 500 keys."""
    column = plan.table.c[plan.key[0]]
    query = (select(column).where(column >= values[0], column <= values[-1])
             .where(not_owned(scope, plan.scope, org_id)))
    taken = {row[0] for row in conn.execute(query)}
    return bool(taken) and not taken.isdisjoint(values)


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
    else:  # pg_trigger, not information_schema: every user sees every table's triggers
        sql = ("SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = "
               "t.tgrelid WHERE NOT t.tgisinternal AND c.relnamespace = "
               "current_schema()::regnamespace")
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
    """Reads every row of the archive once, before anything changes, and proves it fits.

    What it keeps is bounded: the backup's keys (KeySet), the references it could not yet
    match with a key of the backup (few, and looked up in the database in batches), and
    only where a foreign key points at something other than a primary key, that column's
    values."""

    def __init__(self, conn: Connection, scope: OrganizationScope, plans: list[TablePlan],
                 org_id: int) -> None:
        self.conn = conn
        self.scope = scope
        self.plans = plans
        self.by_name = {p.name: p for p in plans}
        self.order = {p.name: i for i, p in enumerate(plans)}
        self.org_id = org_id
        # references not (yet) found among the backup's keys, per (table, foreign key)
        self.pending: dict[tuple[str, ForeignKeyConstraint], set[Key]] = {}
        # for each pending reference, the key of a row that makes it: a refusal names it
        self.example: dict[tuple[str, ForeignKeyConstraint], dict[Key, Key]] = {}
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
        self.unique = {p.name: [k for k in unique_keys(p.table)
                                if all(c in p.columns for c in k)] for p in plans}
        self.done: set[str] = set()  # tables read to the end, their keys sealed
        self.reading: TablePlan | None = None

    @staticmethod
    def _foreign_keys(plan: TablePlan) -> list[ForeignKeyConstraint]:
        return [c for c in plan.table.constraints
                if isinstance(c, ForeignKeyConstraint) and c.elements
                and all(col.name in plan.columns for col in c.columns)]

    def _end_table(self) -> None:
        if self.reading is not None:
            self.reading.backup_keys.seal(self.reading.name)
            self.reading.backup_keys.cache()
            self.done.add(self.reading.name)
            self.reading = None

    def check_batch(self, plan: TablePlan, columns: list[Sequence]) -> None:
        """Ownership, duplicate keys and clashes of one batch (as TablePlan.decode_columns
        gives it); collects references. Tables come one after the other, in plan order."""
        if self.reading is not plan:
            self._end_table()
            self.reading = plan
        count = len(columns[0]) if columns else 0
        if not count:
            return
        names = plan.columns
        if plan.scope.tenant_column:
            owners = columns[names.index(plan.scope.tenant_column)]
            if owners.count(self.org_id) != count:
                other = next(v for v in owners if v != self.org_id)
                raise RestoreRefused(
                    f"Table {plan.name} in the backup holds a row of another organization "
                    f"({plan.scope.tenant_column} {other!r}); the backup has been "
                    "tampered with or mixed up, and was refused.")
        else:
            hop = set(columns[names.index(plan.scope.path[0].column)])
            self.hop_values.setdefault(plan.name, set()).update(norm((v,)) for v in hop)
        if plan.keyed:
            plan.backup_keys.add(plan.name, plan.key, [columns[i] for i in plan.key_index])
        for (table, cols), values in self.wanted.items():
            if table == plan.name:
                values.update(map(norm, zip(*[columns[names.index(c)] for c in cols],
                                            strict=True)))
        row_keys = [columns[i] for i in plan.key_index] if plan.keyed else None
        for fk in self._foreign_keys(plan):
            self._collect(plan, fk, [columns[names.index(c.name)] for c in fk.columns],
                          row_keys)
        self._check_clashes(plan, columns)

    def _collect(self, plan: TablePlan, fk: ForeignKeyConstraint, columns: list[Sequence],
                 row_keys: list[Sequence] | None) -> None:
        """Keep the references that are not keys of the backup (or not known yet)."""
        parent_name = fk.elements[0].column.table.name
        cols = tuple(e.column.name for e in fk.elements)
        parent = self.by_name.get(parent_name)
        ready = parent is not None and parent_name in self.done
        if len(columns) == 1:
            distinct = set(columns[0])
            distinct.discard(None)
            keys = parent.backup_keys if ready and list(cols) == parent.key else None
            if keys is not None and keys.ints is not None:
                found = keys.present_ints(v for v in distinct if type(v) is int)
                values = {norm((v,)) for v in distinct if v not in found}
            else:
                values = {norm((v,)) for v in distinct}
        else:
            values = {norm(v) for v in zip(*columns, strict=True)
                      if all(x is not None for x in v)}
        if ready and values:
            values = self._not_in_backup(parent_name, cols, values)
        if not values:
            return
        pending = self.pending.setdefault((plan.name, fk), set())
        pending.update(values)
        self._remember_rows(plan.name, fk, columns, row_keys, values)
        if len(pending) > PENDING_LIMIT and (parent is None or ready):
            self._look_up(plan.name, fk, pending)  # keeps memory bounded
            pending.clear()
            self.example.pop((plan.name, fk), None)

    def _remember_rows(self, name: str, fk: ForeignKeyConstraint, columns: list[Sequence],
                       row_keys: list[Sequence] | None, values: set[Key]) -> None:
        """A row of the backup for each new pending reference (the loop runs only while
        new references appear: shared lookups repeat the same few values)."""
        example = self.example.setdefault((name, fk), {})
        if row_keys is None or values.issubset(example):
            return
        for at, reference in enumerate(zip(*columns, strict=True)):
            value = norm(reference)
            if value in values and value not in example:
                example[value] = tuple(k[at] for k in row_keys)

    def _check_clashes(self, plan: TablePlan, columns: list[Sequence]) -> None:
        keys = self.unique[plan.name]
        if plan.keyed and len(plan.key) == 1 and plan.backup_keys.ints is not None:
            values = columns[plan.key_index[0]]
            ordered = all(map(operator.lt, values, islice(values, 1, None)))
            if ordered and not taken_in_range(self.conn, self.scope, plan, self.org_id,
                                              values):
                keys = [k for k in keys if list(k) != plan.key]
        if keys:
            clash = find_clash(self.conn, self.scope, plan, self.org_id,
                               list(zip(*columns, strict=True)), keys)
            if clash:
                raise RestoreRefused(clash)

    def _not_in_backup(self, table: str, cols: tuple[str, ...], values: set[Key]) -> set[Key]:
        plan = self.by_name[table]
        if list(cols) == plan.key:
            return plan.backup_keys.missing(values)
        return values - self.wanted[(table, cols)]

    def _look_up(self, name: str, fk: ForeignKeyConstraint, values: set[Key]) -> None:
        """References the backup cannot satisfy must be rows of the database (of another
        organization, or shared); refuse when any is neither."""
        parent_name = fk.elements[0].column.table.name
        parent = self.scope.metadata.tables.get(parent_name)
        if parent is None or not values:
            return
        cols = tuple(e.column.name for e in fk.elements)
        lost = missing_values(self.conn, parent, cols, values,
                              self._may_point_at(parent_name))
        if lost:
            self._refuse_reference(name, fk, lost)
        plan = self.by_name[name]
        if plan.outside is not None:
            known = plan.outside.setdefault(fk, set())
            known.update(values)
            if sum(map(len, plan.outside.values())) > OUTSIDE_LIMIT:
                plan.outside = None

    def _may_point_at(self, parent_name: str) -> ColumnElement | None:
        """The rows of a parent table that a reference from outside the backup may reach:
        any row of a shared table; of an organization's table, only rows that belong to no
        organization, or this organization's rows that the restore keeps (tables it does
        not restore). Never another organization's row."""
        parent_scope = self.scope.get(parent_name)
        if parent_scope is None:
            return None
        nobody = self.scope.unowned(parent_scope)
        if parent_name in self.by_name:  # its rows not in the backup are removed
            return nobody
        return or_(nobody, owned(self.scope, parent_scope, self.org_id))

    def _refuse_reference(self, name: str, fk: ForeignKeyConstraint, lost: list[Key]) -> None:
        """Name the table, the row and the column of a reference the restore cannot keep."""
        parent_name = fk.elements[0].column.table.name
        parent = self.scope.metadata.tables[parent_name]
        cols = tuple(e.column.name for e in fk.elements)
        exist = set(lost) - set(missing_values(self.conn, parent, cols, set(lost)))
        value = sorted(exist or lost, key=repr)[0]
        child_cols = ", ".join(c.name for c in fk.columns)
        row = self.example.get((name, fk), {}).get(value)
        plan = self.by_name[name]
        where = (f"row {', '.join(f'{c} {v}' for c, v in zip(plan.key, row, strict=True))}"
                 if row is not None else "a row")
        shown = ", ".join(map(str, value))
        if exist:
            raise RestoreRefused(
                f"Table {name}, {where}: {child_cols} {shown} points at a {parent_name} row "
                "of another organization; a restore never links one organization's data to "
                "another's, so the backup was refused.")
        raise RestoreRefused(
            f"Table {name}: {len(lost)} of the backup's rows refer to {parent_name} rows "
            f"that are neither in the backup nor in the database ({where}: {child_cols} "
            f"{shown}); restoring them would break the data.")

    def finish(self) -> None:
        """Every row's owner and every reference, once all tables have been read."""
        self._end_table()
        for plan in self.plans:
            if plan.name not in self.done:  # no batch at all: an empty table
                plan.backup_keys.seal(plan.name)
                self.done.add(plan.name)
        for plan in self.plans:
            if not plan.scope.path:
                continue
            hop = plan.scope.path[0]
            values = self.hop_values.get(plan.name, set())
            if (None,) in values:
                raise RestoreRefused(f"Table {plan.name} in the backup has rows without their "
                                     f"{hop.column}; they belong to no organization.")
            if hop.parent_table in self.by_name:
                stray = self._not_in_backup(hop.parent_table, (hop.parent_column,), values)
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
        for (name, fk), values in self.pending.items():
            parent_name = fk.elements[0].column.table.name
            if parent_name in self.by_name:
                values = self._not_in_backup(
                    parent_name, tuple(e.column.name for e in fk.elements), values)
            self._look_up(name, fk, values)
        for plan in self.plans:
            plan.backup_keys.release()


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
