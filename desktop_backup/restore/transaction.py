"""The restore's one transaction: the organization's rows become the backup's, or nothing changes.

Inside a single transaction, on one connection, every table with a primary key is compared
with the backup row by row, so a restore writes only what differs (restoring last night's
backup into a database that has hardly changed since writes almost nothing):

1. The organization's keys in each table are read and matched with the backup's (kept from
   the check, 8 bytes a key): rows the backup does not have are *gone*.
2. Nullable foreign keys of the restored tables that point at gone rows are emptied, so no
   delete is blocked by, or cascades through, a row that is about to be rewritten anyway.
3. Children first, gone rows are deleted (a table without a primary key loses all the
   organization's rows).
4. Parents first, batch by batch: the live rows with the batch's keys are read (one range
   query where the backup is in key order) and compared with the backup's; rows that differ
   are updated in place, new rows are inserted through the dialect's fast path (COPY on
   PostgreSQL, LOAD DATA LOCAL INFILE or multi-row INSERTs on MySQL/MariaDB, executemany on
   SQLite), identical rows are left alone. Forward references (self-references, cycles) are
   written afterwards.
5. The organization's row counts are checked against the backup's; PostgreSQL's sequences are
   moved past the restored ids. A last look at the cancel flag, then COMMIT. Anything raised
   before that rolls back.

Nothing here is DDL and nothing TRUNCATEs: on MySQL either would commit implicitly. Session
settings (MySQL's NO_AUTO_VALUE_ON_ZERO, so id 0 stays 0, and its time zone) are put back
before the connection returns to the pool.
"""

from __future__ import annotations

import io
import logging
import marshal
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    ForeignKeyConstraint,
    Text,
    and_,
    bindparam,
    cast,
    column,
    create_engine,
    delete,
    func,
    literal,
    select,
    table,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import CHAR, JSON, DateTime, NullType

from desktop_backup.archive import ArchiveError, Manifest, column_kind, open_archive
from desktop_backup.background import BackgroundCalls
from desktop_backup.db import friendly_error
from desktop_backup.errors import DesktopBackupError
from desktop_backup.export import SERVER_TEXT_KINDS
from desktop_backup.mysql_text import LOAD_FORMAT, insert_values, tab_separated
from desktop_backup.restore.check import (
    KeyComparison,
    RestoreFailed,
    TablePlan,
    chunks,
    compare_keys,
    count_now,
    driver_errors,
    driver_rows,
    edges_into,
    find_clash,
    key_chunks,
    match,
    owned,
    triggers_on,
)
from desktop_backup.restore.values import live_kind, norm
from desktop_backup.scratch import ScratchFolder
from desktop_backup.work import CancelFlag, Cancelled, Progress, ProgressCallback

if TYPE_CHECKING:
    from desktop_backup.restore.flow import _Internal
    from desktop_backup.tenancy import OrganizationScope

log = logging.getLogger(__name__)
ROLLED_BACK = "The restore was rolled back; nothing was changed."
SQLITE_CACHE_KB = 32 * 1024
UNCHECKED_MIN_ROWS = 20_000  # new rows worth starting SQLite's transaction again for
# How a server is told to insert a table's rows without checking their foreign keys, and to
# check them again (see _unchecked); both run in order with the inserts.
UNCHECKED_SWITCH = {
    "mysql": ("SET SESSION foreign_key_checks = 0", "SET SESSION foreign_key_checks = 1"),
    "postgresql": ("SET LOCAL session_replication_role = replica",
                   "SET LOCAL session_replication_role = origin"),
}
_TIME_ZONE = re.compile(r"[+-]\d{2}:\d{2}")


@dataclass
class Applied:
    """What the transaction wrote."""

    tables: dict[str, int]
    deleted: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class _Session:
    """The dialect's settings for the transaction, and putting them back afterwards."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.restore: list[tuple[str, tuple]] = []  # statements that put the session back
        self.table = ""  # the table being written, for error messages
        self.committing = False
        self.mysql_literals = False  # MySQL parses JSON-escaped text as its own string literals
        self.max_statement = 1024 * 1024
        # MySQL/MariaDB on a connection that may LOAD DATA LOCAL (_connect): the private
        # folder its batches pass through (_LoadData)
        self.load_folder: Path | None = None
        self.scratch: ScratchFolder | None = None
        self.load_refused = False  # the server refused one LOAD DATA: INSERTs for the rest

    def begin(self, manifest: Manifest, may_load: bool = False) -> None:
        conn = self.conn
        dialect = conn.dialect.name
        if dialect == "sqlite":
            # A bigger page cache for this transaction (the default is 2 MB): index pages
            # stay in memory while a million rows go in. Put back afterwards.
            cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            self.restore.append((f"PRAGMA cache_size = {int(cache)}", ()))
            conn.exec_driver_sql(f"PRAGMA cache_size = {-SQLITE_CACHE_KB}")
            self.begin_sqlite()
        elif dialect == "mysql":
            saved = tuple(conn.exec_driver_sql(
                "SELECT @@SESSION.sql_mode, @@SESSION.time_zone, "
                "@@SESSION.foreign_key_checks").one())
            self.restore.append(("SET SESSION sql_mode = %s, time_zone = %s, "
                                 "foreign_key_checks = %s", saved))
            conn.exec_driver_sql("SET SESSION sql_mode = CONCAT_WS(',', NULLIF("
                                 "@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')")
            zone = str(manifest.source.get("session_time_zone") or "")
            if manifest.kind == "native" and _TIME_ZONE.fullmatch(zone):
                conn.exec_driver_sql(f"SET time_zone = '{zone}'")  # as TIMESTAMPs were read
            modes = set(str(saved[0] or "").upper().split(","))
            self.mysql_literals = not modes & {"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES"}
            packet = conn.exec_driver_sql("SELECT @@SESSION.max_allowed_packet").scalar()
            self.max_statement = max(64 * 1024, min(int(packet or 0) // 2, 8 * 1024 * 1024))
            if may_load and self.mysql_literals:
                self.load_folder = self._scratch_folder()
        elif dialect == "postgresql":
            conn.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")  # those that can be
            # Dates read back as the backup holds them (ISO); the input order is kept.
            conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")

    def begin_reading(self, manifest: Manifest) -> None:
        """Only what reading live values as the backup holds them needs (the check's
        comparison): MySQL's time zone as the backup's TIMESTAMPs were read, PostgreSQL's
        ISO dates. No lock is taken; `end` puts the session back."""
        conn = self.conn
        if conn.dialect.name == "mysql":
            zone = str(manifest.source.get("session_time_zone") or "")
            if manifest.kind == "native" and _TIME_ZONE.fullmatch(zone):
                saved = conn.exec_driver_sql("SELECT @@SESSION.time_zone").scalar()
                self.restore.append(("SET SESSION time_zone = %s", (saved,)))
                conn.exec_driver_sql(f"SET time_zone = '{zone}'")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")

    def begin_sqlite(self, foreign_keys: bool = True) -> None:
        """BEGIN IMMEDIATE: the write lock now, not halfway. SQLite switches foreign keys
        only outside a transaction, so doing without them means starting again."""
        conn = self.conn
        switched = ("PRAGMA foreign_keys = ON", ())
        if not foreign_keys and switched not in self.restore:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            self.restore.append(switched)
        elif foreign_keys and switched in self.restore:
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            self.restore.remove(switched)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT

    def _scratch_folder(self) -> Path | None:
        """A locked folder in the console's private scratch parent, which the next start
        sweeps if this process is killed; None (rows go through INSERTs) if none can be made."""
        try:
            self.scratch = ScratchFolder()
        except (OSError, DesktopBackupError) as exc:
            log.warning("No private folder for LOAD DATA (%s); inserting rows instead", exc)
            return None
        return self.scratch.path

    def end(self) -> None:
        if self.scratch is not None:
            self.scratch.remove()  # the last batch's rows
            self.scratch, self.load_folder = None, None
        if not self.restore:
            return
        try:
            self.conn.rollback()  # nothing is left open: these run outside a transaction
            for statement, params in self.restore:
                self.conn.exec_driver_sql(statement, params)
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
            conn, loader = _connect(engine)
        except SQLAlchemyError as exc:
            raise friendly_error(exc, engine.url) from exc
        session = _Session(conn)
        try:
            session.begin(internal.manifest, may_load=loader is not None)
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
            if loader is not None:
                loader.dispose()


def _connect(engine: Engine) -> tuple[Connection, Engine | None]:
    """The restore's one connection. For a MySQL/MariaDB server that takes LOAD DATA LOCAL,
    a connection of its own (from the returned engine) whose client may send files, for
    _LoadData: the pool's connections never may, since a server may ask such a client for
    any file it can read, and this one is the shop's own database, for this restore only."""
    if engine.dialect.name != "mysql" or engine.dialect.driver not in ("mysqldb", "pymysql"):
        return engine.connect(), None
    with engine.connect() as probe:
        allowed = probe.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar()
    if not allowed:
        return engine.connect(), None
    loader = create_engine(engine.url, poolclass=NullPool,
                           connect_args={"local_infile": True})
    try:
        return loader.connect(), loader
    except BaseException:
        loader.dispose()
        raise


def _apply(conn: Connection, session: _Session, archive, internal: _Internal, org_id: int,
           progress: ProgressCallback | None, cancel: CancelFlag | None) -> Applied:
    scope, plans = internal.scope, internal.plans
    triggered = {t for t, _name in triggers_on(conn, {p.name for p in plans})}
    found = _compare_all(conn, session, scope, plans, org_id)
    unchecked: set[str] = set()
    if conn.dialect.name == "sqlite" and _sqlite_without_foreign_keys(plans, found):
        conn.rollback()  # nothing was written yet
        session.begin_sqlite(foreign_keys=False)
        found = _compare_all(conn, session, scope, plans, org_id)
        if _sqlite_without_foreign_keys(plans, found):
            _hold_outside(conn, session, plans)
            unchecked = {p.name for p in plans}
        else:  # it changed in between: with foreign keys after all
            conn.rollback()
            session.begin_sqlite()
            found = _compare_all(conn, session, scope, plans, org_id)
    elif conn.dialect.name in UNCHECKED_SWITCH:
        unchecked = _unchecked(plans, found)
        if unchecked and conn.dialect.name == "postgresql" and \
                not _may_skip_foreign_key_triggers(conn, unchecked, triggered):
            unchecked = set()
        _hold_outside(conn, session, [p for p in plans if p.name in unchecked])
    _empty_references_to_gone_rows(conn, session, scope, plans, found, org_id)
    deleted = 0
    for plan in reversed(plans):  # children first
        _stop_if_cancelled(cancel)
        session.table = plan.name
        t = plan.table
        if plan.keyed:
            gone = found[plan.name].gone
            for chunk in key_chunks(gone):
                conn.execute(delete(t).where(owned(scope, plan.scope, org_id))
                             .where(_key_in(t, plan.key, chunk)))
            deleted += len(gone)
        else:
            deleted += count_now(conn, scope, plan, org_id)
            conn.execute(delete(t).where(owned(scope, plan.scope, org_id)))
    total = sum(p.entry.rows for p in plans)
    done = 0
    stats = {"inserted": 0, "updated": 0, "unchanged": 0}
    patches: dict[str, list[dict]] = {}
    background = _Background(depth=2, session=session) if _streams(conn, session) else None
    # Without triggers, a table the organization had no rows left in holds exactly what was
    # inserted into it: counting it again (slow on a server right after a million inserts)
    # would only repeat that. Every other table is counted.
    counted = {p.name for p in plans}
    try:
        for index, plan in enumerate(plans):  # parents first
            session.table = plan.name
            if progress:
                progress(Progress(plan.name, index, len(plans), done, total))
            comparison = found.get(plan.name)
            left = comparison.rows_now - len(comparison.gone) if comparison else 0
            writer = _TableWriter(conn, session, scope, plan, org_id, compare=left > 0,
                                  background=background)
            switch = UNCHECKED_SWITCH.get(conn.dialect.name) if plan.name in unchecked \
                else None
            if switch:  # see _unchecked; in order with the inserts
                writer.statement(switch[0])
            try:
                for batch in archive.batches(plan.entry):
                    _stop_if_cancelled(cancel)
                    rows = plan.decode_batch(batch)
                    held = writer.write(rows)
                    if held:
                        patches.setdefault(plan.name, []).extend(held)
                    done += len(rows)
                    if progress:
                        progress(Progress(plan.name, index, len(plans), done, total))
                if switch:
                    writer.statement(switch[1])
            except BaseException as exc:
                writer.close(exc)
                raise
            writer.close()
            for name, n in writer.stats.items():
                stats[name] += n
            if not triggered and not writer.compare and \
                    writer.stats["inserted"] == plan.entry.rows:
                counted.discard(plan.name)
        if background is not None:
            background, running = None, background
            running.finish()
    finally:
        if background is not None:
            background.finish(quiet=True)
    for plan in plans:
        if patches.get(plan.name):
            session.table = plan.name
            _patch(conn, plan, patches[plan.name])
    for plan in plans:
        if plan.name not in counted:
            continue
        session.table = plan.name
        now = count_now(conn, scope, plan, org_id)
        if now != plan.entry.rows:
            raise DesktopBackupError(
                f"After restoring, table {plan.name} has {now} of the organization's rows "
                f"instead of the backup's {plan.entry.rows} (a trigger or a cascade changed "
                "them).")
    if conn.dialect.name == "postgresql":
        _move_sequences(conn, plans)
    session.table = ""
    return Applied({p.name: p.entry.rows for p in plans}, deleted, **stats)


def _compare_all(conn: Connection, session: _Session, scope: OrganizationScope,
                 plans: list[TablePlan], org_id: int) -> dict[str, KeyComparison]:
    found = {}
    for plan in plans:
        if plan.keyed:
            session.table = plan.name
            found[plan.name] = compare_keys(conn, scope, plan, org_id)
    session.table = ""
    return found


def _foreign_keys(plan: TablePlan) -> list[ForeignKeyConstraint]:
    return [c for c in plan.table.constraints
            if isinstance(c, ForeignKeyConstraint) and c.elements]


def _pure(plan: TablePlan, found: dict[str, KeyComparison]) -> bool:
    """Nothing of the organization's is left in the table once its gone rows are deleted:
    every row it will hold is written by this transaction."""
    if not plan.keyed:
        return True  # all its rows are deleted and inserted again
    comparison = found[plan.name]
    return comparison.rows_now == len(comparison.gone)


def _references_known(plan: TablePlan) -> bool:
    """Every foreign key of the table is restored (a column added since the backup would
    take its default, unchecked) and the check kept what its rows refer to outside."""
    return plan.outside is not None and all(
        col.name in plan.columns for fk in _foreign_keys(plan) for col in fk.columns)


def _unchecked(plans: list[TablePlan], found: dict[str, KeyComparison]) -> set[str]:
    """Tables inserted into without the server's foreign key checks (UNCHECKED_SWITCH: on
    MySQL the mysqldump way, a third faster; on PostgreSQL the per-row foreign key triggers
    are most of a big COPY's time), because every reference of their rows is known to hold
    until COMMIT:

    * a reference into the backup points at a row of a table this transaction writes
      entirely (its rows are ours and locked by us until COMMIT);
    * a reference outside the backup (shared rows, another organization's) was found by the
      check and is locked here first (_hold_outside), so nobody can delete it meanwhile.

    Deletes, updates and tables the organization still has rows in keep the checks (and
    their cascades)."""
    by_name = {p.name: p for p in plans}
    pure = {p.name for p in plans if _pure(p, found)}
    unchecked = set()
    for name in pure:
        plan = by_name[name]
        parents = {fk.elements[0].column.table.name for fk in _foreign_keys(plan)}
        if _references_known(plan) and all(p in pure or p not in by_name for p in parents):
            unchecked.add(name)
    return unchecked


def _may_skip_foreign_key_triggers(conn: Connection, names: set[str],
                                   triggered: set[str]) -> bool:
    """PostgreSQL checks foreign keys with internal triggers, which only a session in
    `replica` mode skips (pg_restore --disable-triggers does the same). That mode skips the
    tables' own triggers and rules too, so it is used only where they have none, and only
    where the role may set it (a superuser, or GRANT SET ON PARAMETER
    session_replication_role); everyone else gets the checked COPY. `triggered`: the
    restored tables that have triggers of their own."""
    if names & triggered:
        return False
    rules = conn.exec_driver_sql("SELECT tablename FROM pg_rules WHERE schemaname = "
                                 "current_schema()").scalars().all()
    if set(rules) & names:
        return False
    mode, superuser = conn.exec_driver_sql(
        "SELECT current_setting('session_replication_role'), "
        "current_setting('is_superuser')").one()
    if mode != "origin":
        return False  # a replication set-up's own choice: left alone
    if superuser == "on":
        return True
    if (conn.dialect.server_version_info or (0,)) < (15,):
        return False  # before 15 only a superuser may
    return bool(conn.exec_driver_sql(
        "SELECT has_parameter_privilege('session_replication_role', 'SET')").scalar())


def _sqlite_without_foreign_keys(plans: list[TablePlan],
                                 found: dict[str, KeyComparison]) -> bool:
    """SQLite can restore without enforcing foreign keys when nothing is deleted (so no
    cascade is needed) and every reference is known: into the backup (all of whose rows are
    there at COMMIT) or outside it (checked again under the write lock, _hold_outside).
    Nobody else writes while the transaction holds SQLite's write lock. Only worth starting
    the transaction again for when many rows are new."""
    if any(found[p.name].gone if p.keyed else True for p in plans):
        return False  # PK-less tables are deleted and inserted again: not this path
    new = sum(p.entry.rows - found[p.name].in_both for p in plans)
    return new >= UNCHECKED_MIN_ROWS and all(_references_known(p) for p in plans)


def _hold_outside(conn: Connection, session: _Session, plans: list[TablePlan]) -> None:
    """The rows outside the backup that these tables' rows refer to: still there, and (on a
    server) locked FOR SHARE until COMMIT, as the database's own check would lock them."""
    metadata = plans[0].table.metadata if plans else None
    for plan in plans:
        session.table = plan.name
        for fk, values in (plan.outside or {}).items():
            parent = metadata.tables[fk.elements[0].column.table.name]
            cols = tuple(e.column.name for e in fk.elements)
            wanted = sorted(values, key=repr)
            seen: set = set()
            for chunk in chunks(wanted):
                query = (select(*[parent.c[c] for c in cols]).where(match(parent, cols, chunk))
                         .with_for_update(read=True))
                seen.update(norm(row) for row in conn.execute(query))
            lost = [v for v in wanted if v not in seen]
            if lost:
                raise DesktopBackupError(
                    f"Table {plan.name}: the backup's rows refer to {parent.name} rows that "
                    f"have been deleted since the check ({', '.join(cols)} "
                    f"{', '.join(map(str, lost[0]))}).")
    session.table = ""


def _streams(conn: Connection, session: _Session) -> bool:
    """Whether inserts run on a second thread: MySQL's multi-row INSERTs and PostgreSQL's
    COPY (the drivers wait for the server without holding the GIL). SQLite works inside
    this process, where a second thread would only fight for the GIL."""
    return conn.dialect.name == "postgresql" or (conn.dialect.name == "mysql"
                                                  and session.mysql_literals)


def _empty_references_to_gone_rows(conn: Connection, session: _Session,
                                   scope: OrganizationScope, plans: list[TablePlan],
                                   found: dict[str, KeyComparison], org_id: int) -> None:
    """Before rows go, nullable references to them from the restored tables are emptied:
    the organization's row that keeps such a reference gets the backup's value later (which
    never points at a gone row), so the delete neither cascades into it nor is refused."""
    by_name = {p.name: p for p in plans}
    for edge in edges_into(scope.metadata, set(by_name)):
        child, parent = by_name.get(edge.child), by_name[edge.parent]
        gone = found[parent.name].gone if parent.name in found else []
        if child is None or not gone or not edge.nullable or len(edge.columns) != 1:
            continue
        session.table = child.name
        ct, pt = child.table, parent.table
        target = ct.c[edge.columns[0]]
        for chunk in key_chunks(gone):
            if list(edge.parent_columns) == parent.key:
                pointing = target.in_([k[0] for k in chunk])
            else:
                pointing = target.in_(select(pt.c[edge.parent_columns[0]])
                                      .where(_key_in(pt, parent.key, chunk)))
            conn.execute(sql_update(ct).where(owned(scope, child.scope, org_id))
                         .where(pointing).values({edge.columns[0]: None}))


class _LiveRows:
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
        t = plan.table
        self.live = select(*[type_coerce(_comparable(conn, t.c[c]), NullType())
                             for c in plan.columns]).where(owned(scope, plan.scope, org_id))
        if self.by_range:
            key = t.c[plan.key[0]]
            self.range = self.live.where(key >= bindparam("lo", type_=key.type),
                                         key <= bindparam("hi", type_=key.type)).compile(
                dialect=conn.dialect)

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
                elif now != row:
                    changed.append(row)
        else:
            for row in rows:
                now = live.get(norm(row[i] for i in self.index))
                if now is None:
                    new.append(row)
                elif now != row:
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
            query = self.live.where(_key_in(self.plan.table, self.plan.key, chunk))
            compiled = query.compile(dialect=self.conn.dialect,
                                     compile_kwargs={"render_postcompile": True})
            for values in driver_rows(self.conn, *_driver_sql(compiled, {})):
                values = tuple(values)
                if self.single:
                    out[values[self.index[0]]] = values
                else:
                    out[norm(values[i] for i in self.index)] = values
        return out


def count_changes(conn: Connection, archive, manifest: Manifest, scope: OrganizationScope,
                  plans: list[TablePlan], in_both: dict[str, int], org_id: int,
                  cancel: CancelFlag | None = None) -> dict[str, int]:
    """For the preview: per keyed table with rows on both sides, how many of the backup's
    rows differ from the live ones (the rest of `in_both` are identical). Read-only; the
    session reads values as the transaction will (time zone, date style), then is put back."""
    session = _Session(conn)
    changed: dict[str, int] = {}
    try:
        session.begin_reading(manifest)
        for plan in plans:
            if not plan.keyed or not in_both.get(plan.name):
                continue
            live = _LiveRows(conn, scope, plan, org_id)
            changed[plan.name] = 0
            for batch in archive.batches(plan.entry):
                _stop_if_cancelled(cancel)
                _new, differ = live.split(plan.decode_batch(batch))
                changed[plan.name] += len(differ)
    finally:
        session.end()
        conn.rollback()
    return changed


class _TableWriter:
    """Writes one table's backup rows batch by batch: compared with the live rows when the
    organization still has some, inserted through the dialect's fast path otherwise."""

    def __init__(self, conn: Connection, session: _Session, scope: OrganizationScope,
                 plan: TablePlan, org_id: int, compare: bool,
                 background: _Background | None = None) -> None:
        self.conn = conn
        self.plan = plan
        self.compare = compare and plan.keyed
        self.index = plan.key_index if plan.keyed else []
        self.deferred = [plan.columns.index(c) for c in plan.deferred]
        if self.compare and background is not None:
            background.drain()  # this table reads and updates on this thread
        self.insert = _inserter(conn, session, plan, not self.compare, background)
        self.stats = {"inserted": 0, "updated": 0, "unchanged": 0}
        self.live = _LiveRows(conn, scope, plan, org_id) if self.compare else None
        self.others = [i for i in range(len(plan.columns)) if i not in self.index]
        ph = _placeholder(conn)
        sets = [f"{q} = {ph}" for q in quote_all(conn, [plan.columns[i] for i in self.others],
                                                 split=True)]
        keys = [f"{q} = {ph}" for q in quote_all(conn, plan.key, split=True)]
        self.update_sql = (f"UPDATE {quote_all(conn, [plan.name])} SET {', '.join(sets)} "
                           f"WHERE {' AND '.join(keys)}" if sets and plan.keyed else "")

    def write(self, rows: list[tuple]) -> list[dict]:
        """Write one batch; return the forward references held back for `_patch`."""
        if not rows:
            return []
        new, changed = rows, []
        if self.live is not None:
            new, changed = self.live.split(rows)
        self.stats["inserted"] += len(new)
        self.stats["updated"] += len(changed)
        self.stats["unchanged"] += len(rows) - len(new) - len(changed)
        held: list[dict] = []
        if self.deferred:
            new = self._hold_back(new, held)
            changed = self._hold_back(changed, held)
        if new:
            self.insert.write(new)
        if changed and self.update_sql:
            self.conn.exec_driver_sql(self.update_sql, [
                tuple(r[i] for i in self.others) + tuple(r[i] for i in self.index)
                for r in changed])
        return held

    def statement(self, sql: str) -> None:
        """A session statement, in order with this table's inserts."""
        self.insert.run(sql)

    def close(self, error: BaseException | None = None) -> None:
        """The table is written (or, with `error`, the restore is failing)."""
        self.insert.close(error)

    def _hold_back(self, rows: list[tuple], held: list[dict]) -> list[tuple]:
        """Empty the forward-pointing values of `rows`; they are written by `_patch`."""
        out = []
        at = self.deferred
        for row in rows:
            values = [row[i] for i in at]
            if any(v is not None for v in values):
                held.append({**{f"k{n}": row[i] for n, i in enumerate(self.index)},
                             **{f"v{n}": v for n, v in enumerate(values)}})
                row = tuple(None if i in at else v for i, v in enumerate(row))
            out.append(row)
        return out


def _driver_sql(compiled, values: dict) -> tuple[str, object]:
    """A compiled statement's SQL and its parameters as the driver's own cursor takes them."""
    params = compiled.construct_params(values)
    if compiled.positiontup is None:
        return str(compiled), params
    return str(compiled), tuple(params[name] for name in compiled.positiontup)


def _patch(conn: Connection, plan: TablePlan, held: list[dict]) -> None:
    light = table(plan.name, *[column(c) for c in plan.columns])
    by_key = and_(*[light.c[c] == bindparam(f"k{n}") for n, c in enumerate(plan.key)])
    statement = sql_update(light).where(by_key).values(
        {c: bindparam(f"v{n}") for n, c in enumerate(plan.deferred)})
    for chunk in chunks(held, 5000):
        conn.execute(statement, chunk)


# --- reading live rows as the backup holds them ----------------------------------------------

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


# --- inserting ------------------------------------------------------------------------------

def quote_all(conn: Connection, names: Sequence[str], split: bool = False):
    quote = conn.dialect.identifier_preparer.quote
    quoted = [quote(n) for n in names]
    return quoted if split else ", ".join(quoted)


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"


def _inserter(conn: Connection, session: _Session, plan: TablePlan, streaming: bool,
              background: _Background | None) -> _Inserter:
    """How a batch of rows (tuples in `plan.columns` order) is inserted. `streaming`: the
    table is only inserted into (nothing of the organization's is left in it), so the
    inserts may run on a second thread while the next batch is read."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _Copy(conn, plan, background if streaming else None)
    if dialect == "mysql" and session.mysql_literals:
        if (streaming and background is not None and session.load_folder is not None
                and not session.load_refused):
            return _LoadData(conn, plan, session.max_statement, background, session)
        return _MultiRowInserts(conn, plan, session.max_statement,
                                background if streaming else None)
    return _Inserter(conn, plan)


class _Inserter:
    """executemany: SQLite (in-process; a second thread would only fight over the GIL), and
    MySQL sessions whose quoting rules the multi-row path cannot rely on."""

    def __init__(self, conn: Connection, plan: TablePlan) -> None:
        self.conn = conn
        ph = _placeholder(conn)
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


class _Background(BackgroundCalls):
    """The restore's writer thread: drivers release the GIL while they wait for the server,
    so the server works while Python reads the next batch. An error names, through
    `session`, the table the failing call was writing."""

    def __init__(self, depth: int, session: _Session | None = None) -> None:
        super().__init__(depth, "restore-writer")
        self.session = session

    def raise_error(self) -> None:
        table = getattr(self.failed, "table", "")
        if self.error is not None and self.session is not None and table:
            self.session.table = table
        super().raise_error()


class _Call(partial):
    """A call for _Background, with the table it writes (for the error message)."""

    table = ""


class _OnWriterThread(_Inserter):
    """The fast paths: statements on the driver's own cursor, run on the writer thread
    (`background`) while the table streams, here otherwise; each call names its table for
    the error message."""

    def __init__(self, conn: Connection, plan: TablePlan,
                 background: _Background | None) -> None:
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
                 background: _Background | None) -> None:
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


class _LoadData(_Grouped, _MultiRowInserts):
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

    GROUP_BYTES = 2 * 1024 * 1024  # measured: 1.15x the INSERTs' pace on MariaDB, 4 MB 1.1x
    SAVEPOINT = "desktop_backup_rows"

    def __init__(self, conn: Connection, plan: TablePlan, limit: int,
                 background: _Background | None, session: _Session) -> None:
        super().__init__(conn, plan, limit, background)
        self.session = session
        self.file = session.load_folder / "rows.tsv"
        name = self.file.as_posix().replace("\\", "\\\\").replace("'", "\\'")
        self.load_sql = (f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE "
                         f"{quote_all(conn, [plan.name])} {LOAD_FORMAT} "
                         f"({quote_all(conn, plan.columns)})")

    def write(self, rows: list[tuple]) -> None:
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
            if self._load(text, sum(n for _, n, _ in parts)):
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
                 background: _Background | None) -> None:
        super().__init__(conn, plan, background)
        self.copy_sql = (f"COPY {quote_all(conn, [plan.name])} "
                         f"({quote_all(conn, plan.columns)}) FROM STDIN")
        self.formatting = self.raw.cursor() if background is not None else None

    def write(self, rows: list[tuple]) -> None:
        if self.background is None:
            self._send([rows])
            return
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
                clash = find_clash(conn, internal.scope, plan, org_id, plan.decode_batch(batch))
                if clash:
                    return clash
    except (ArchiveError, SQLAlchemyError):
        return None
    return None
