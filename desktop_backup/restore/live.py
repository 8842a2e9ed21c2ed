"""The queries about the live organization that the check and the transaction share.

Which of its rows a table holds (`owned`), how its keys match the backup's
(:func:`compare_keys`), which rows of others a backup's row would clash with
(:func:`find_clash`), which foreign keys point into the restored tables (:func:`edges_into`),
and its live rows read as the backup holds them (:class:`LiveRows`): one way of asking, so the
preview and the transaction count the same rows the same way. Queries that return a row per
row of the organization run on the driver's own cursor (:func:`scan_rows`), with its errors
made SQLAlchemy's (:class:`driver_errors`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ForeignKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import CHAR, JSON, DateTime, NullType

from desktop_backup.archive import column_kind
from desktop_backup.export import SERVER_TEXT_KINDS, stream_rows
from desktop_backup.restore.plan import TablePlan
from desktop_backup.restore.values import Key, norm
from desktop_backup.tenancy import OrganizationScope, TableScope

CHUNK = 500  # values per IN (...) list: far below every dialect's parameter limit
SCAN_ROWS = 10_000  # keys fetched at a time when comparing the database with the backup


# --- which rows are the organization's -------------------------------------------------------

def owned(scope: OrganizationScope, table_scope: TableScope, org_id: int) -> ColumnElement:
    return scope.predicate(table_scope, org_id)


def mine(scope: OrganizationScope, plan: TablePlan, org_id: int) -> ColumnElement:
    """The organization's rows of a restored table and the orphans the check adopted
    (TablePlan.adopted), as long as they are still orphans: one that found an owner since
    is not matched, and the database refuses the backup's row with its key."""
    rows = owned(scope, plan.scope, org_id)
    orphaned = scope.orphaned(plan.scope)
    if not plan.adopted or orphaned is None:
        return rows
    return or_(rows, and_(orphaned, _fixed_in(plan.table, plan.key, plan.adopted)))


def _fixed_in(table: Table, key: list[str], values: list[tuple]) -> ColumnElement:
    """`key IN values` with each value bound in place (no expanding list), so the clause
    also fits the statements compiled once and run with other values (LiveRows.range)."""
    columns = [table.c[c] for c in key]
    parts = []
    for chunk in chunks(values):
        if len(columns) == 1:
            parts.append(columns[0].in_([literal(v[0], columns[0].type) for v in chunk]))
        else:
            parts.append(tuple_(*columns).in_([tuple_(*[literal(x, c.type) for x, c in zip(
                v, columns, strict=True)]) for v in chunk]))
    return or_(*parts)


def not_owned(scope: OrganizationScope, table_scope: TableScope,
              org_id: int) -> ColumnElement:
    """Rows of the table that are not this organization's (NULL owners included)."""
    return scope.not_owned(table_scope, org_id)


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def key_chunks(gone, size: int = CHUNK) -> Iterator[list[tuple]]:
    """KeyComparison.gone in IN-list sized chunks of key tuples."""
    for start in range(0, len(gone), size):
        chunk = gone[start:start + size]
        yield [(v,) for v in chunk] if isinstance(gone, array) else chunk


def match(table: Table, columns: Iterable[str], values: list[tuple]) -> ColumnElement:
    """`columns IN values`, with untyped binds: the server converts them as on insert."""
    exprs = [type_coerce(table.c[c], NullType()) for c in columns]
    if len(exprs) == 1:
        return exprs[0].in_([v[0] for v in values])
    return tuple_(*exprs).in_(values)


def key_in(t, key: list[str], values: list[tuple]):
    """`key IN values` with the database's own key values (typed binds)."""
    if len(key) == 1:
        return t.c[key[0]].in_([v[0] for v in values])
    return tuple_(*[t.c[c] for c in key]).in_(values)


def count_now(conn: Connection, scope: OrganizationScope, plan: TablePlan, org_id: int) -> int:
    query = select(func.count()).select_from(plan.table).where(
        owned(scope, plan.scope, org_id))
    return int(conn.execute(query).scalar_one())


# --- the organization's keys, matched with the backup's --------------------------------------

@dataclass
class KeyComparison:
    """The organization's rows in a table now, matched with the backup by primary key."""

    rows_now: int = 0
    in_both: int = 0
    gone: list = field(default_factory=list)  # keys (as the database has them) of rows the


def compare_keys(conn: Connection, scope: OrganizationScope, plan: TablePlan, org_id: int,
                 *, keep_gone: bool = True) -> KeyComparison:
    """Stream the organization's keys in the table and match them with the backup's: only a
    batch of keys is held at a time, and the keys of rows the backup lacks (`keep_gone`)."""
    table = plan.table
    query = select(*[table.c[c] for c in plan.key]).where(mine(scope, plan, org_id))
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


# --- foreign keys into the restored tables ---------------------------------------------------

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


# --- keys of others, and rows that must exist ------------------------------------------------

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
               rows: Sequence[Sequence], keys: list[tuple[str, ...]] | None = None,
               spare_orphans: bool = False) -> str | None:
    """A sentence naming the first row of `rows` whose primary or unique key (of `keys`,
    default all) is already taken by a row that is not this organization's (which the
    restore never touches). `spare_orphans`: rows of nobody whose parents are all gone
    (OrganizationScope.orphaned) are judged once every parent of the backup is known
    (RowChecker._adopt_orphans), not here."""
    others = not_owned(scope, plan.scope, org_id)
    orphaned = scope.orphaned(plan.scope) if spare_orphans else None
    if orphaned is not None:
        others = and_(others, not_(orphaned))
    for key in unique_keys(plan.table) if keys is None else keys:
        if not all(c in plan.columns for c in key):
            continue
        for chunk in chunks(_key_values(plan, rows, key)):
            shown = [plan.table.c[c] for c in key] + [
                plan.table.c[c] for c in plan.key if c not in key]
            query = (select(*shown).where(match(plan.table, key, chunk))
                     .where(others).limit(1))
            found = conn.execute(query).first()
            if found is not None:
                extra = [c for c in plan.key if c not in key]
                return clash_words(plan.name, list(zip(key, found, strict=False)),
                                   list(zip(extra, found[len(key):], strict=True)))
    return None


def _key_values(plan: TablePlan, rows: Sequence[Sequence], key: tuple[str, ...]) -> list:
    """The distinct values of `key` among `rows` (decoded in plan.columns order), without
    the rows where any part of it is NULL (a NULL never clashes)."""
    index = [plan.columns.index(c) for c in key]
    return list(dict.fromkeys(tuple(row[i] for i in index) for row in rows
                              if all(row[i] is not None for i in index)))


def orphans_holding(conn: Connection, scope: OrganizationScope, plan: TablePlan,
                    rows: Sequence[Sequence], keys: list[tuple[str, ...]]) -> dict[Key, str]:
    """The orphans (OrganizationScope.orphaned) that hold a unique key other than the
    primary key of one of `rows`, by their own key, each with the clash sentence that
    refuses the restore unless the check adopts them (RowChecker._adopt_orphans)."""
    orphaned = scope.orphaned(plan.scope)
    found: dict[Key, str] = {}
    if orphaned is None or not plan.key:
        return found
    for key in keys:
        if list(key) == plan.key or not all(c in plan.columns for c in key):
            continue
        for chunk in chunks(_key_values(plan, rows, key)):
            query = (select(*[plan.table.c[c] for c in (*key, *plan.key)])
                     .where(match(plan.table, key, chunk)).where(orphaned))
            for row in conn.execute(query):
                theirs = list(zip(plan.key, row[len(key):], strict=True))
                found.setdefault(norm(row[len(key):]), clash_words(
                    plan.name, list(zip(key, row, strict=False)), theirs))
    return found


def clash_words(table: str, key: list[tuple[str, object]],
                theirs: list[tuple[str, object]] = ()) -> str:
    """The refusal for a backup's row whose key a row of another organization (or of
    none) holds: `key` the clashing (column, value) pairs, `theirs` that row's own key."""
    what = ", ".join(f"{c} {v!r}" for c, v in key)
    shown = ", ".join(f"{c} {v}" for c, v in theirs)
    where = f" ({shown})" if shown else ""
    return (f"Table {table}: the backup's row with {what} clashes with a row{where} that "
            "belongs to another organization (or to none); restoring would overwrite it, so "
            "the restore was refused.")


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


# --- live rows as the backup holds them ------------------------------------------------------

class LiveRows:
    """The organization's live rows with a batch's keys, as the backup would hold them, and
    the batch split into new, changed and identical rows. One comparison for the restore's
    transaction and for the check's preview, so both count the same rows the same way."""

    def __init__(self, conn: Connection, scope: OrganizationScope, plan: TablePlan,
                 org_id: int) -> None:
        self.conn = conn
        self.plan = plan
        self.index = plan.key_index if plan.keyed else []
        self.single = len(self.index) == 1 and plan.backup_keys.ints is not None
        self.by_range = self.single and plan.backup_keys.ordered
        # adopted orphans are rewritten even where their values are the backup's (Changed:
        # their owner comes back with them), as the preview counts them
        self.adopted = {norm(k) for k in plan.adopted}
        t = plan.table
        self.live = select(*[type_coerce(_comparable(conn, t.c[c]), NullType())
                             for c in plan.columns]).where(mine(scope, plan, org_id))
        if len(self.index) == 1:  # while the keys are still being read: see follow_keys
            key = t.c[plan.key[0]]
            self.range = self.live.where(key >= bindparam("lo", type_=key.type),
                                         key <= bindparam("hi", type_=key.type)).compile(
                dialect=conn.dialect)

    def follow_keys(self) -> None:
        """While the table's keys are still being read (the check compares each batch as it
        reads it): as far as they go now, whole numbers in key order or not."""
        keys = self.plan.backup_keys
        self.single = len(self.index) == 1 and keys.ints is not None
        self.by_range = self.single and keys.ordered

    def split(self, rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
        """(new, changed): rows the database lacks, and rows it holds with other values;
        the rest are identical."""
        live = self.fetch(rows)
        new, changed = [], []
        if self.single:
            at = self.index[0]
            for row in rows:
                now = live.get(row[at])
                if now is None:
                    new.append(row)
                elif now != row or (self.adopted and (row[at],) in self.adopted):
                    changed.append(row)
        else:
            for row in rows:
                key = norm(row[i] for i in self.index)
                now = live.get(key)
                if now is None:
                    new.append(row)
                elif now != row or key in self.adopted:
                    changed.append(row)
        return new, changed

    def fetch(self, rows: list[tuple]) -> dict:
        """The organization's live rows with the batch's keys, as the backup would hold them:
        one range query where the backup lists its rows in key order, IN lists otherwise."""
        out: dict = {}
        if self.by_range:
            at = self.index[0]
            sql, params = _driver_sql(self.range, {"lo": rows[0][at], "hi": rows[-1][at]})
            for values in driver_rows(self.conn, sql, params):
                out[values[at]] = tuple(values)
            return out
        keys = list(dict.fromkeys(tuple(r[i] for i in self.index) for r in rows))
        for chunk in chunks(keys):
            query = self.live.where(key_in(self.plan.table, self.plan.key, chunk))
            compiled = query.compile(dialect=self.conn.dialect,
                                     compile_kwargs={"render_postcompile": True})
            for values in driver_rows(self.conn, *_driver_sql(compiled, {})):
                values = tuple(values)
                if self.single:
                    out[values[self.index[0]]] = values
                else:
                    out[norm(values[i] for i in self.index)] = values
        return out


def _comparable(conn: Connection, col):
    """A live column as our backup writes it: on MySQL and PostgreSQL decimals, dates and JSON
    as the server's text (export.SERVER_TEXT_KINDS), so equal means equal. A value read
    differently only costs an update that changes nothing."""
    dialect = conn.dialect.name
    if dialect not in ("mysql", "postgresql"):
        return col
    try:
        type_name = col.type.compile(dialect=conn.dialect)
    except Exception:  # noqa: BLE001 - an exotic reflected type still gets a name
        type_name = type(col.type).__name__
    kind = "json" if isinstance(col.type, JSON) else column_kind(type_name)
    if kind not in SERVER_TEXT_KINDS:
        return col
    if dialect == "mysql":
        return cast(col, CHAR())
    if isinstance(col.type, DateTime) and col.type.timezone:
        # The backup reads these in UTC; so does this, whatever the session's time zone.
        return cast(func.timezone("UTC", col), Text).concat(literal("+00", Text))
    return cast(col, Text)


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


def _driver_sql(compiled, values: dict) -> tuple[str, object]:
    """A compiled statement's SQL and its parameters as the driver's own cursor takes them."""
    params = compiled.construct_params(values)
    if compiled.positiontup is None:
        return str(compiled), params
    return str(compiled), tuple(params[name] for name in compiled.positiontup)


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
