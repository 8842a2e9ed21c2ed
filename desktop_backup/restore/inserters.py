"""How a batch of new rows goes into a table: the dialect's fastest way that keeps every byte.

SQLite takes executemany; MySQL/MariaDB multi-row INSERTs written by the json module, or LOAD
DATA LOCAL INFILE from a private file; PostgreSQL COPY. While a table only receives new rows,
the server-side ones run on a writer thread (:class:`Background`) while the next batch is
read. :func:`choose_inserter` picks one per table.
"""

from __future__ import annotations

import io
import marshal
from collections.abc import Sequence
from functools import partial

from sqlalchemy.engine import Connection

from desktop_backup.background import BackgroundCalls
from desktop_backup.mysql_text import LOAD_FORMAT, insert_values, tab_separated
from desktop_backup.restore.dialects import SessionSettings
from desktop_backup.restore.hooks import RestoreHooks
from desktop_backup.restore.live import driver_errors
from desktop_backup.restore.plan import TablePlan


def quote_all(conn: Connection, names: Sequence[str], split: bool = False):
    quote = conn.dialect.identifier_preparer.quote
    quoted = [quote(n) for n in names]
    return quoted if split else ", ".join(quoted)


def placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"


def choose_inserter(conn: Connection, session: SessionSettings, plan: TablePlan,
                    streaming: bool, background: Background | None,
                    hooks: RestoreHooks) -> Inserter:
    """How a batch of rows (tuples in `plan.columns` order) is inserted. `streaming`: the
    table is only inserted into (nothing of the organization's is left in it), so the
    inserts may run on a second thread while the next batch is read. `hooks` sees each
    LOAD DATA."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _Copy(conn, plan, background if streaming else None)
    if dialect == "mysql" and session.mysql_literals:
        if (streaming and background is not None and session.load_folder is not None
                and not session.load_refused):
            return LoadData(conn, plan, session.max_statement, background, session, hooks)
        return _MultiRowInserts(conn, plan, session.max_statement,
                                background if streaming else None)
    return Inserter(conn, plan)


class Inserter:
    """executemany: SQLite (in-process; a second thread would only fight over the GIL), and
    MySQL sessions whose quoting rules the multi-row path cannot rely on."""

    def __init__(self, conn: Connection, plan: TablePlan) -> None:
        self.conn = conn
        ph = placeholder(conn)
        self.sql = (f"INSERT INTO {quote_all(conn, [plan.name])} "
                    f"({quote_all(conn, plan.columns)}) "
                    f"VALUES ({', '.join([ph] * len(plan.columns))})")

    def write(self, rows: list[tuple]) -> None:
        self.conn.exec_driver_sql(self.sql, rows)

    def run(self, sql: str) -> None:
        """A statement, in order with the inserts."""
        self.conn.exec_driver_sql(sql)

    def close(self, error: BaseException | None = None) -> None:
        """The table's inserts are all handed over (with `error`: the restore is failing,
        stop quietly)."""


class Background(BackgroundCalls):
    """The restore's writer thread: drivers release the GIL while they wait for the server,
    so the server works while Python reads the next batch. An error names, through
    `session`, the table the failing call was writing."""

    def __init__(self, depth: int, session: SessionSettings | None = None) -> None:
        super().__init__(depth, "restore-writer")
        self.session = session

    def raise_error(self) -> None:
        table = getattr(self.failed, "table", "")
        if self.error is not None and self.session is not None and table:
            self.session.table = table
        super().raise_error()


class _Call(partial):
    """A call for Background, with the table it writes (for the error message)."""

    table = ""


class _OnWriterThread(Inserter):
    """The fast paths: statements on the driver's own cursor, run on the writer thread
    (`background`) while the table streams, here otherwise; each call names its table for
    the error message."""

    def __init__(self, conn: Connection, plan: TablePlan,
                 background: Background | None) -> None:
        super().__init__(conn, plan)
        self.raw = conn.connection.dbapi_connection
        self.name = plan.name
        self.background = background

    def run(self, sql: str) -> None:
        """A statement, in order with the inserts."""
        self._call(self._statement, sql)

    def _call(self, function, argument) -> None:
        call = _Call(function, argument)
        call.table = self.name
        if self.background is None:
            call()
        else:
            self.background.submit(call)

    def _statement(self, sql: str) -> None:
        # Without parameters the driver leaves a '%' in the values as it is.
        with driver_errors(self.conn, sql[:200]), self.raw.cursor() as cursor:
            cursor.execute(sql)


class _MultiRowInserts(_OnWriterThread):
    """MySQL/MariaDB: multi-row INSERTs written by the json module (mysql_text.insert_values);
    rows it cannot write that way go through the driver's executemany."""

    def __init__(self, conn: Connection, plan: TablePlan, limit: int,
                 background: Background | None) -> None:
        super().__init__(conn, plan, background)
        self.head = (f"INSERT INTO {quote_all(conn, [plan.name])} "
                     f"({quote_all(conn, plan.columns)}) VALUES ")
        self.limit = limit

    def write(self, rows: list[tuple]) -> None:
        for part in insert_values(rows, self.limit):
            self._call(self._insert, part)

    def _insert(self, part: str | list[tuple]) -> None:
        if isinstance(part, str):
            self._statement(self.head + part)
            return
        with driver_errors(self.conn, self.sql[:200]), self.raw.cursor() as cursor:
            cursor.executemany(self.sql, part)


class _Grouped(_OnWriterThread):
    """Batches held here until a few megabytes are ready, then handed to the writer thread as
    one call (`_send`): a statement's start and end cost the server more than its rows, and
    the writer thread keeps up only with fewer, larger ones."""

    GROUP_BYTES = 4 * 1024 * 1024

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending: list = []
        self.pending_bytes = 0

    def _hold(self, part, size: int) -> None:
        self.pending.append(part)
        self.pending_bytes += size
        if self.pending_bytes >= self.GROUP_BYTES:
            self._submit()

    def _submit(self) -> None:
        if self.pending:
            pending, self.pending, self.pending_bytes = self.pending, [], 0
            self._call(self._send, pending)

    def _send(self, parts: list) -> None:
        raise NotImplementedError

    def run(self, sql: str) -> None:
        """A statement, after the rows written so far."""
        self._submit()
        super().run(sql)

    def close(self, error: BaseException | None = None) -> None:
        if error is None:
            self._submit()
        self.pending = []


class LoadData(_Grouped, _MultiRowInserts):
    """MySQL/MariaDB, a table only inserted into while streaming: the rows as tab-separated
    text through LOAD DATA LOCAL INFILE, which the server reads with a quarter less work than
    the same rows as INSERTs (no SQL to parse per value). The client library reads the text
    from a file by name: one file in the restore's private temporary folder
    (Session.load_folder), overwritten group by group on the writer thread, removed with the
    folder afterwards.

    With LOCAL the server cannot stop the client halfway through a file, so what would be an
    error (a duplicate key, a value that does not fit) only skips the row or bends the value,
    with a warning. So each group is loaded after a savepoint and must arrive whole and
    without a warning; otherwise it is rolled back to the savepoint and written again as
    INSERTs, which stop with the database's own error (the clash is then named as on every
    other path). Batches tab_separated cannot write are INSERTed from the start."""

    # measured: 2 MB went at 1.15x the INSERTs' pace on MariaDB, 4 MB 1.1x; 1 MB as fast as
    # 2 MB on 1.2M wide rows (1.06x the loader) with 7 MB less peak RSS (143 MB, not 150)
    GROUP_BYTES = 1 * 1024 * 1024
    TEXT_VALUES = 10_000  # values made into text at a time (see write)
    SAVEPOINT = "desktop_backup_rows"

    def __init__(self, conn: Connection, plan: TablePlan, limit: int,
                 background: Background | None, session: SessionSettings,
                 hooks: RestoreHooks) -> None:
        super().__init__(conn, plan, limit, background)
        self.session = session
        self.hooks = hooks
        self.file = session.load_folder / "rows.tsv"
        name = self.file.as_posix().replace("\\", "\\\\").replace("'", "\\'")
        self.load_sql = (f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE "
                         f"{quote_all(conn, [plan.name])} {LOAD_FORMAT} "
                         f"({quote_all(conn, plan.columns)})")

    def write(self, rows: list[tuple]) -> None:
        # A part of a batch at a time: a part's text is built whole (each row's string, the
        # joined text, its UTF-8). Whole batches of 50,000 values took a 1.2M-row wide
        # restore to 141-146 MB of peak RSS; parts to 137-139 MB, as fast (bench/README.md).
        width = len(rows[0]) if rows else 1
        step = max(1, self.TEXT_VALUES // width)
        for start in range(0, len(rows), step):
            self._write_part(rows[start:start + step])

    def _write_part(self, rows: list[tuple]) -> None:
        text = None if self.session.load_refused else tab_separated(rows)
        if text is None:
            self._submit()  # in order: what is held goes first
            super().write(rows)
        else:
            # The rows themselves are kept for the INSERTs, as marshal's bytes: a tenth of
            # the memory of the tuples (tab_separated only passes types marshal keeps).
            self._hold((text, len(rows), marshal.dumps(rows)), len(text))

    def _send(self, parts: list[tuple[bytes, int, bytes]]) -> None:
        if not self.session.load_refused:
            text = b"".join(text for text, _, _ in parts)
            self.hooks.loading(self.file)
            arrived = self._load(text, sum(n for _, n, _ in parts))
            self.hooks.loaded(self.file, arrived)
            if arrived:
                return
        rows = [row for _, _, kept in parts for row in marshal.loads(kept)]
        for part in insert_values(rows, self.limit):
            self._insert(part)

    def _load(self, text: bytes, count: int) -> bool:
        """Whether the rows arrived whole and unbent; if not, nothing of them stays."""
        dbapi_error = self.conn.dialect.dbapi.Error
        refusal = None
        with driver_errors(self.conn, self.load_sql[:200]), self.raw.cursor() as cursor:
            cursor.execute(f"SAVEPOINT {self.SAVEPOINT}")
            self.file.write_bytes(text)
            try:
                loaded = cursor.execute(self.load_sql)
                cursor.execute("SELECT @@SESSION.warning_count")
                if loaded == count and not cursor.fetchone()[0]:
                    return True
            except dbapi_error as exc:
                if self.conn.dialect.is_disconnect(exc, self.raw, None):
                    raise
                refusal = exc
                self.session.load_refused = True  # INSERTs from then on, this table's too
            try:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {self.SAVEPOINT}")
            except dbapi_error:
                if refusal is not None:  # it ended the transaction (a deadlock): that is news
                    raise refusal from None
                raise
            return False


class _Copy(_Grouped):
    """PostgreSQL: COPY FROM STDIN. While streaming, batches are formatted here (psycopg's
    own COPY formatter, into memory) and sent a few megabytes per COPY by the writer thread:
    the server checks a COPY's foreign keys when it ends, and does so while the next batches
    are read here. Otherwise one COPY per batch, on this thread."""

    GROUP_BYTES = 4 * 1024 * 1024  # per COPY: fewer starts and ends for the writer thread

    def __init__(self, conn: Connection, plan: TablePlan,
                 background: Background | None) -> None:
        super().__init__(conn, plan, background)
        self.copy_sql = (f"COPY {quote_all(conn, [plan.name])} "
                         f"({quote_all(conn, plan.columns)}) FROM STDIN")
        self.formatting = self.raw.cursor() if background is not None else None

    def write(self, rows: list[tuple]) -> None:
        if self.background is None:
            self._send([rows])
            return
        # Not a cycle: psycopg (and its libpq) is loaded only when a PostgreSQL restore
        # streams, not by every console that imports the restore.
        from psycopg.copy import Copy, FileWriter

        buffer = io.BytesIO()
        with driver_errors(self.conn, self.copy_sql):
            with Copy(self.formatting, binary=False, writer=FileWriter(buffer)) as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        data = buffer.getvalue()
        self._hold(data, len(data))

    def _send(self, parts: list) -> None:
        """One COPY: formatted data (bytes), or batches of rows to format on the way."""
        with driver_errors(self.conn, self.copy_sql):
            with self.raw.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                for part in parts:
                    if isinstance(part, bytes):
                        copy.write(part)
                    else:
                        for row in part:
                            copy.write_row(row)

    def close(self, error: BaseException | None = None) -> None:
        super().close(error)
        if self.formatting is not None:
            self.formatting.close()
            self.formatting = None
