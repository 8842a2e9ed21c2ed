"""Streaming an organization's rows out of the database, inside one consistent snapshot.

The hot loop uses the driver's own cursor (server-side where the driver has one) through the
SQLAlchemy connection: SQLAlchemy builds the SQL and owns the connection, the DB-API cursor
moves the rows. Rows go straight to a sink (an archive writer) batch by batch, so memory stays
flat whatever the organization's size.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import String, Table, Text, cast, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import JSON

from desktop_backup.archive import TableEntry, column_kind
from desktop_backup.archive import batch_rows as archive_batch_rows
from desktop_backup.config import SchemaMapping
from desktop_backup.db import friendly_error, reflect, server_version
from desktop_backup.organizations import Organization, find_organization
from desktop_backup.tenancy import OrganizationScope, TableScope, count_owned, discover_scope
from desktop_backup.work import CancelFlag, Cancelled, Progress, ProgressCallback

BATCH_ROWS = 5000  # at most; a wide table's batches have fewer (archive.batch_rows), so a
# batch (its tuples, JSON text and bytes, a few in flight) stays a few MB and its line under
# LINE_TARGET (a longer line is encoded twice to be split)
SESSION_TIME_ZONE = "+00:00"
# How long one statement waits for another program's lock before the backup's bounded,
# visible wait (busy.py) tries again: servers would otherwise wait 50 s (InnoDB), a year
# (MySQL metadata locks) or for ever (PostgreSQL).
LOCK_WAIT_S = 10


class RowSink(Protocol):
    """Where exported rows go: a native or web-app archive writer. A sink whose
    `takes_json_rows` is true also takes rows the server wrote as JSON arrays
    (`write_json_rows`, one text per row); the others always get value tuples.
    `write_rows(rows, floats=False)` promises that no value is a float: the table has no
    float column, on a database that types each value by its column (SQLite does not)."""

    takes_json_rows: bool

    def begin_table(self, entry: TableEntry, columns: list[str], count: int) -> None: ...
    def write_rows(self, rows: list, floats: bool = True) -> None: ...
    def write_json_rows(self, texts: list[str]) -> None: ...
    def end_table(self) -> TableEntry: ...


@dataclass
class Snapshot:
    """What the export saw: the organization, the scope and the source, at one instant."""

    organization: Organization
    scope: OrganizationScope
    source: dict
    counts: dict[str, int]
    entries: list[TableEntry]


def export_organization(engine: Engine, mapping: SchemaMapping, org_id: int, sink: RowSink,
                        *, include: Callable[[TableScope], bool] = lambda scope: True,
                        progress: ProgressCallback | None = None,
                        cancel: CancelFlag | None = None,
                        heartbeat: Callable[[], None] | None = None,
                        batch_rows: int = BATCH_ROWS) -> Snapshot:
    """Write every row the organization owns into `sink`, as of one instant."""
    with read_snapshot(engine) as conn:
        return _export(conn, mapping, org_id, sink, include, progress, cancel, heartbeat,
                       batch_rows)


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only snapshot whose every lock wait is bounded (LOCK_WAIT_S), so a table a
    billing program holds locked makes a read fail with a sentence the busy wait retries,
    instead of waiting for ever; reflection included."""
    try:
        with engine.connect() as conn:
            _begin_snapshot(conn)
            try:
                yield conn
            finally:
                conn.rollback()
                if conn.dialect.name == "mysql":  # the pooled session gets its default back
                    conn.exec_driver_sql("SET SESSION lock_wait_timeout = DEFAULT")
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def _begin_snapshot(conn: Connection) -> None:
    """Open a read-only snapshot so the archive is one point in time while the shop sells."""
    name = conn.dialect.name
    if name == "mysql":
        conn.exec_driver_sql(f"SET time_zone = '{SESSION_TIME_ZONE}'")
        conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_S}")
        conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    elif name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
        conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO, YMD'")
    else:
        conn.exec_driver_sql("BEGIN")


def _export(conn: Connection, mapping: SchemaMapping, org_id: int, sink: RowSink,
            include: Callable[[TableScope], bool], progress: ProgressCallback | None,
            cancel: CancelFlag | None, heartbeat: Callable[[], None] | None,
            batch_rows: int) -> Snapshot:
    org = find_organization(conn, mapping, org_id)
    scope = discover_scope(reflect(conn), mapping, org.auto_backup_tables)
    tables = [s for s in scope.tables if include(s)]
    counts = {s.name: _count(conn, scope, s, org.id) for s in tables}
    total = sum(counts.values())
    source = {"dialect": _dialect_label(conn), "server_version": server_version(conn),
              "database": conn.engine.url.database and _database_name(conn),
              "session_time_zone": SESSION_TIME_ZONE,
              "tenant_table": mapping.tenant_table, "tenant_column": mapping.tenant_column}
    done = 0
    last_beat = time.monotonic()
    entries = []
    for index, table_scope in enumerate(tables):
        table = scope.metadata.tables[table_scope.name]
        entry = TableEntry(name=table.name, columns=_describe_columns(conn, table),
                           primary_key=[c.name for c in table.primary_key.columns],
                           selection=table_scope.describe())
        sink.begin_table(entry, [c["name"] for c in entry.columns], counts[table.name])
        if progress:
            progress(Progress(table.name, index, len(tables), done, total))
        kinds = [c["kind"] for c in entry.columns]
        rows_per_batch = archive_batch_rows(len(kinds), batch_rows)
        as_json = getattr(sink, "takes_json_rows", False) and server_json_rows(conn, entry)
        floats = conn.dialect.name == "sqlite" or "float" in kinds
        sql = _select_sql(conn, scope, table_scope, table, org.id, kinds, as_json)
        for rows in stream_rows(conn, sql, rows_per_batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled("The backup was cancelled; the previous copy was kept.")
            if as_json:
                sink.write_json_rows([row[0] for row in rows])
            else:
                sink.write_rows(rows, floats=floats)
            done += len(rows)
            if progress:
                progress(Progress(table.name, index, len(tables), done, total))
            if heartbeat and time.monotonic() - last_beat > 60:
                heartbeat()
                last_beat = time.monotonic()
        entries.append(sink.end_table())
    return Snapshot(org, scope, source, counts, entries)


def _dialect_label(conn: Connection) -> str:
    return server_version(conn).split(" ")[0]


def _database_name(conn: Connection) -> str:
    database = conn.engine.url.database or ""
    if conn.dialect.name == "sqlite":
        return database.replace("\\", "/").rsplit("/", 1)[-1]
    return database


def _count(conn: Connection, scope: OrganizationScope, table_scope: TableScope,
           org_id: int) -> int:
    return count_owned(conn, scope, table_scope, org_id)


def _describe_columns(conn: Connection, table: Table) -> list[dict]:
    columns = []
    for column in table.columns:
        try:
            type_name = column.type.compile(dialect=conn.dialect)
        except Exception:  # noqa: BLE001 - an exotic reflected type still gets a name
            type_name = type(column.type).__name__
        kind = "json" if isinstance(column.type, JSON) else column_kind(type_name)
        columns.append({"name": column.name, "type": type_name, "kind": kind,
                        "nullable": bool(column.nullable)})
    return columns


# Kinds the server turns into text itself: exact digits and dates, and no Python Decimal or
# datetime built per value (the slowest part of a fetch) nor a json default() call per value.
SERVER_TEXT_KINDS = frozenset({"decimal", "date", "datetime", "time", "json"})


# Column types whose JSON_ARRAY text on MariaDB/MySQL is what json.dumps writes for the value
# the driver returns (the kinds in SERVER_TEXT_KINDS are cast to text first): no floats (the
# server's shortest form of a FLOAT is not Python's), no bytes (base64 in the archive), no BIT.
_SERVER_JSON_TYPES = ("INT", "BOOL", "CHAR", "TEXT", "ENUM", "DECIMAL", "NUMERIC", "DATE",
                      "TIME", "JSON")


def server_json_rows(conn: Connection, entry: TableEntry) -> bool:
    """Whether MariaDB/MySQL should write this table's rows as JSON arrays itself: one value
    per row for PyMySQL, which decodes each value in Python, instead of one per column (a
    1.2M-row wide backup: 26.6 s with the server's JSON, 46.2 s with plain rows). mysqlclient
    decodes in C and takes plain rows: the server's JSON_ARRAY kept a core busy for longer
    than the whole backup takes without it (14.0-15.6 s against 26.5-28.7 s; issue 21)."""
    if conn.dialect.name != "mysql" or conn.dialect.driver == "mysqldb" or not entry.columns:
        return False
    version = conn.dialect.server_version_info or ()
    mariadb = getattr(conn.dialect, "is_mariadb", False)
    if tuple(version[:3]) < ((10, 2, 3) if mariadb else (5, 7, 8)):
        return False  # no JSON_ARRAY yet
    return all(c["kind"] not in ("float", "binary")
               and any(t in c["type"].upper() for t in _SERVER_JSON_TYPES)
               and not any(t in c["type"].upper() for t in ("BINARY", "BLOB", "BIT"))
               for c in entry.columns)


def _select_sql(conn: Connection, scope: OrganizationScope, table_scope: TableScope,
                table: Table, org_id: int, kinds: list[str], as_json: bool = False) -> str:
    """The SELECT for one table, as plain SQL for the driver's cursor; `as_json`: one column,
    each row as the server's JSON array of its values (server_json_rows)."""
    columns = []
    as_text = conn.dialect.name in ("mysql", "postgresql")
    for column, kind in zip(table.columns, kinds, strict=True):
        # In a JSON array MariaDB would write a JSON column's text (its type may be reflected
        # as LONGTEXT) as the JSON itself: every value that is text is cast to text.
        if as_text and (kind in SERVER_TEXT_KINDS or as_json and kind in ("text", "enum")):
            columns.append(cast(column, Text if conn.dialect.name == "postgresql"
                                else _MysqlChar()).label(column.name))
        else:
            columns.append(column)
    if as_json:
        columns = [func.json_array(*columns).label("row")]
    query = select(*columns).where(scope.predicate(table_scope, org_id))
    if table.primary_key.columns:
        query = query.order_by(*table.primary_key.columns)
    # The only parameter is the organization's integer id, so inlining it is safe.
    return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


class _MysqlChar(String):
    """CAST(x AS CHAR): MySQL's cast to text (it has no CAST AS TEXT)."""

    __visit_name__ = "CHAR"


def stream_rows(conn: Connection, sql: str, batch_rows: int) -> Iterator[list]:
    """Rows in batches, streamed where the driver can: plain tuples, none of SQLAlchemy's per-row
    work, and memory for one batch only. The batches must be read to the end before the
    connection runs another statement (MySQL's rule, and PostgreSQL's while it streams)."""
    raw = conn.connection.dbapi_connection
    dialect = conn.dialect
    if dialect.name == "postgresql":
        yield from _postgres_stream(raw, sql, batch_rows)
        return
    if dialect.name == "mysql":
        cursor = raw.cursor(_mysql_stream_cursor(dialect.driver))
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql)
        while True:
            rows = cursor.fetchmany(batch_rows)
            if not rows:
                break
            yield rows
    finally:
        cursor.close()


def _postgres_stream(raw, sql: str, batch_rows: int) -> Iterator[list]:
    """The server sends the rows without waiting to be asked for each batch (libpq's chunked
    mode, libpq 17 and later; one row at a time before), as COPY does, so it works on the
    next rows while these are encoded. A server-side cursor's FETCH round trips kept the two
    taking turns: the backup waited for the server a third of its time (bench/README.md)."""
    import psycopg

    chunk = batch_rows if psycopg.pq.version() >= 170000 else 1
    cursor = raw.cursor()
    try:
        rows = cursor.stream(sql, size=chunk)
        while batch := list(itertools.islice(rows, batch_rows)):
            yield batch
    finally:
        cursor.close()


def _mysql_stream_cursor(driver: str):
    if driver == "mysqldb":
        import MySQLdb.cursors

        return MySQLdb.cursors.SSCursor
    import pymysql.cursors

    return pymysql.cursors.SSCursor
