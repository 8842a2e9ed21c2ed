"""The restore's one transaction: the organization's rows become the backup's, or nothing changes.

Inside a single transaction, on one connection:

1. Foreign-key columns that point forward (self-references, cycles) and, in merged tables,
   every nullable foreign key into the restored tables are emptied, so no delete is blocked
   by, or cascades through, a row that is about to be rewritten anyway.
2. Children first: replaced tables lose all the organization's rows; merged tables lose only
   the rows the backup does not have (see restore_check.choose_strategies).
3. Parents first, batch by batch, with the original primary keys: rows are inserted (and, in
   merged tables, kept rows are updated in place). Values are bound untyped, so the server
   converts decimals, dates and JSON text itself, exactly.
4. The emptied forward columns get their values; the organization's row counts are checked
   against the backup; PostgreSQL's sequences are moved past the restored ids.
5. A last look at the cancel flag, then COMMIT. Anything raised before that rolls back.

Nothing here is DDL and nothing TRUNCATEs: on MySQL either would commit implicitly. Session
settings (MySQL's NO_AUTO_VALUE_ON_ZERO, so id 0 stays 0, and its time zone) are put back
before the connection returns to the pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    and_,
    bindparam,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from desktop_backup.archive import ArchiveError, Manifest, open_archive
from desktop_backup.db import friendly_error
from desktop_backup.errors import DesktopBackupError
from desktop_backup.export import CancelFlag, Cancelled, Progress, ProgressCallback
from desktop_backup.restore_check import (
    RestoreFailed,
    TablePlan,
    chunks,
    count_now,
    find_clash,
    keys_now,
    owned,
)
from desktop_backup.restore_values import Key, live_kind, norm

if TYPE_CHECKING:
    from desktop_backup.restore import _Internal

ROLLED_BACK = "The restore was rolled back; nothing was changed."
_TIME_ZONE = re.compile(r"[+-]\d{2}:\d{2}")


@dataclass
class Applied:
    """What the transaction wrote."""

    tables: dict[str, int]
    deleted: int


class _Session:
    """The dialect's settings for the transaction, and putting them back afterwards."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.saved: tuple | None = None
        self.table = ""  # the table being written, for error messages
        self.committing = False

    def begin(self, manifest: Manifest) -> None:
        conn = self.conn
        dialect = conn.dialect.name
        if dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now, not halfway
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT
        elif dialect == "mysql":
            self.saved = tuple(conn.exec_driver_sql(
                "SELECT @@SESSION.sql_mode, @@SESSION.time_zone").one())
            conn.exec_driver_sql("SET SESSION sql_mode = CONCAT_WS(',', NULLIF("
                                 "@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')")
            zone = str(manifest.source.get("session_time_zone") or "")
            if manifest.kind == "native" and _TIME_ZONE.fullmatch(zone):
                conn.exec_driver_sql(f"SET time_zone = '{zone}'")  # as TIMESTAMPs were read
        elif dialect == "postgresql":
            conn.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")  # those that can be

    def end(self) -> None:
        if self.saved is None:
            return
        try:
            self.conn.exec_driver_sql("SET SESSION sql_mode = %s, time_zone = %s", self.saved)
            self.conn.rollback()
        except SQLAlchemyError:
            self.conn.invalidate()  # never hand a connection with our settings to the pool


def run_restore(engine: Engine, internal: _Internal, path: Path, org_id: int, *,
                progress: ProgressCallback | None = None,
                cancel: CancelFlag | None = None) -> Applied:
    """Run the transaction; raise RestoreFailed or Cancelled after rolling back."""
    try:
        archive = open_archive(path)
    except ArchiveError as exc:
        raise RestoreFailed(f"{exc} Nothing was restored.") from None
    with archive:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise friendly_error(exc, engine.url) from exc
        session = _Session(conn)
        try:
            session.begin(internal.manifest)
            applied = _apply(conn, session, archive, internal, org_id, progress, cancel)
            _stop_if_cancelled(cancel)
            session.committing = True
            conn.commit()
            return applied
        except BaseException as exc:
            _rollback_quietly(conn)
            if isinstance(exc, Cancelled) or not isinstance(exc, SQLAlchemyError
                                                             | DesktopBackupError):
                raise  # a cancel, or a bug: its traceback is kept for the log
            raise RestoreFailed(_explain(exc, engine, internal, path, org_id, session)) from exc
        finally:
            session.end()
            conn.close()


def _apply(conn: Connection, session: _Session, archive, internal: _Internal, org_id: int,
           progress: ProgressCallback | None, cancel: CancelFlag | None) -> Applied:
    scope, plans = internal.scope, internal.plans
    now = {p.name: keys_now(conn, scope, p, org_id) for p in plans if p.strategy == "merge"}
    for plan in plans:
        if plan.cleared:
            session.table = plan.name
            t = plan.table
            conn.execute(sql_update(t).where(owned(scope, plan.scope, org_id))
                         .where(or_(*[t.c[c].is_not(None) for c in plan.cleared]))
                         .values({c: None for c in plan.cleared}))
    for plan in reversed(plans):  # children first
        _stop_if_cancelled(cancel)
        session.table = plan.name
        t = plan.table
        if plan.strategy == "merge":
            gone = [raw for key, raw in now[plan.name].items() if key not in plan.backup_keys]
            for chunk in chunks(gone):
                conn.execute(delete(t).where(_key_in(t, plan.key, chunk)))
        else:
            conn.execute(delete(t).where(owned(scope, plan.scope, org_id)))
    total = sum(p.entry.rows for p in plans)
    done = 0
    patches: dict[str, list[dict]] = {}
    for index, plan in enumerate(plans):  # parents first
        session.table = plan.name
        if progress:
            progress(Progress(plan.name, index, len(plans), done, total))
        writer = _Writer(conn, plan, set(now.get(plan.name, ())))
        for batch in archive.batches(plan.entry):
            _stop_if_cancelled(cancel)
            rows = [plan.decode(raw) for raw in batch]
            if plan.deferred:
                patches.setdefault(plan.name, []).extend(writer.hold_back(rows))
            writer.write(rows)
            done += len(rows)
            if progress:
                progress(Progress(plan.name, index, len(plans), done, total))
    for plan in plans:
        if patches.get(plan.name):
            session.table = plan.name
            _Writer(conn, plan, set()).patch(patches[plan.name])
    for plan in plans:
        session.table = plan.name
        found = count_now(conn, scope, plan, org_id)
        if found != plan.entry.rows:
            raise DesktopBackupError(
                f"After restoring, table {plan.name} has {found} of the organization's rows "
                f"instead of the backup's {plan.entry.rows} (a trigger or a cascade changed "
                "them).")
    if conn.dialect.name == "postgresql":
        _move_sequences(conn, plans)
    session.table = ""
    return Applied({p.name: p.entry.rows for p in plans}, sum(p.to_delete for p in plans))


class _Writer:
    """Inserts and in-place updates for one table, bound untyped and in batches."""

    def __init__(self, conn: Connection, plan: TablePlan, existing: set[Key]) -> None:
        self.conn = conn
        self.plan = plan
        self.existing = existing
        self.light = table(plan.name, *[column(c) for c in plan.columns])
        self.index = plan.key_index

    def hold_back(self, rows: list[list]) -> list[dict]:
        """Take the forward-pointing values out of `rows`; they are written by `patch`."""
        plan = self.plan
        at = [plan.columns.index(c) for c in plan.deferred]
        held = []
        for row in rows:
            values = [row[i] for i in at]
            if any(v is not None for v in values):
                held.append({**{f"k{n}": row[i] for n, i in enumerate(self.index)},
                             **{f"v{n}": v for n, v in enumerate(values)}})
                for i in at:
                    row[i] = None
        return held

    def write(self, rows: list[list]) -> None:
        inserts, updates = [], []
        for row in rows:
            if self.existing and norm(row[i] for i in self.index) in self.existing:
                updates.append(row)
            else:
                inserts.append(row)
        columns = self.plan.columns
        if inserts:
            self.conn.execute(insert(self.light), [dict(zip(columns, r, strict=True))
                                                   for r in inserts])
        others = [i for i in range(len(columns)) if i not in self.index]
        if updates and others:
            statement = sql_update(self.light).where(self._by_key()).values(
                {columns[i]: bindparam(f"v{n}") for n, i in enumerate(others)})
            self.conn.execute(statement, [
                {**{f"k{n}": r[i] for n, i in enumerate(self.index)},
                 **{f"v{n}": r[i] for n, i in enumerate(others)}} for r in updates])

    def patch(self, held: list[dict]) -> None:
        statement = sql_update(self.light).where(self._by_key()).values(
            {c: bindparam(f"v{n}") for n, c in enumerate(self.plan.deferred)})
        for chunk in chunks(held, 5000):
            self.conn.execute(statement, chunk)

    def _by_key(self):
        return and_(*[self.light.c[self.plan.columns[i]] == bindparam(f"k{n}")
                      for n, i in enumerate(self.index)])


def _key_in(t, key: list[str], values: list[tuple]):
    """`key IN values` with the database's own key values (typed binds)."""
    if len(key) == 1:
        return t.c[key[0]].in_([v[0] for v in values])
    return tuple_(*[t.c[c] for c in key]).in_(values)


def _move_sequences(conn: Connection, plans: list[TablePlan]) -> None:
    """Move each restored table's sequence past its highest id (forward only: a sequence is
    not rolled back with the transaction, and moving it forward is always harmless)."""
    quote = conn.dialect.identifier_preparer.quote
    for plan in plans:
        if len(plan.key) != 1 or live_kind(plan.table.c[plan.key[0]]) != "integer":
            continue
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                {"t": quote(plan.name), "c": plan.key[0]}).scalar()
        if not sequence:
            continue
        top = conn.execute(select(func.max(plan.table.c[plan.key[0]]))).scalar()
        if top is None:
            continue
        last, called = conn.exec_driver_sql(
            f"SELECT last_value, is_called FROM {sequence}").one()
        if top > (last if called else last - 1):
            conn.execute(text("SELECT setval(:s, :v, true)"), {"s": sequence, "v": top})


def _stop_if_cancelled(cancel: CancelFlag | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("The restore was cancelled; nothing was changed.")


def _rollback_quietly(conn: Connection) -> None:
    try:
        conn.rollback()
    except SQLAlchemyError:
        conn.invalidate()  # the server rolls back a transaction whose connection is gone


def _explain(exc: Exception, engine: Engine, internal: _Internal, path: Path, org_id: int,
             session: _Session) -> str:
    """One sentence about what went wrong, for a restore that has been rolled back."""
    where = f" while writing table {session.table}" if session.table else ""
    if isinstance(exc, IntegrityError):
        clash = _find_clash_again(engine, internal, path, org_id, session.table)
        if clash:
            return f"{clash} {ROLLED_BACK}"
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"The database refused the backup's rows{where} ({first}). {ROLLED_BACK}"
    if isinstance(exc, SQLAlchemyError):
        problem = str(friendly_error(exc, engine.url)).rstrip(".")
        if session.committing:
            return (f"{problem} while the restore was being committed; the database may or may "
                    "not have saved it. Check the data; the restore point holds the data "
                    "from before.")
        return f"{problem}{where}. {ROLLED_BACK}"
    if isinstance(exc, ArchiveError):
        return f"The backup could not be read{where}: {exc} {ROLLED_BACK}"
    return f"{exc} {ROLLED_BACK}"


def _find_clash_again(engine: Engine, internal: _Internal, path: Path, org_id: int,
                      name: str) -> str | None:
    """After a unique violation, find the row and the key that clashed, to name them."""
    plan = next((p for p in internal.plans if p.name == name), None)
    if plan is None:
        return None
    try:
        with open_archive(path) as archive, engine.connect() as conn:
            for batch in archive.batches(plan.entry):
                clash = find_clash(conn, internal.scope, plan, org_id,
                                   [plan.decode(r) for r in batch])
                if clash:
                    return clash
    except (ArchiveError, SQLAlchemyError):
        return None
    return None
