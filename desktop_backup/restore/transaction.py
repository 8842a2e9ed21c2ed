"""The restore's one transaction: the organization's rows become the backup's, or nothing changes.

Inside a single transaction, on one connection, every table with a primary key is compared
with the backup row by row, so a restore writes only what differs (restoring last night's
backup into a database that has hardly changed since writes almost nothing):

1. The organization's keys in each table are read and matched with the backup's (kept from
   the check, 8 bytes a key): rows the backup does not have are *gone*. The rows of nobody
   the check adopted (left behind by a deleted parent the backup brings back,
   TablePlan.adopted) are matched with them, while they are still orphans.
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

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    ForeignKeyConstraint,
    and_,
    bindparam,
    column,
    create_engine,
    delete,
    func,
    select,
    table,
    text,
    true,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from desktop_backup.archive import ArchiveError
from desktop_backup.db import friendly_error
from desktop_backup.errors import DesktopBackupError
from desktop_backup.opening import open_archive
from desktop_backup.restore.dialects import UNCHECKED_SWITCH, SessionSettings
from desktop_backup.restore.hooks import RestoreHooks
from desktop_backup.restore.inserters import Background, choose_inserter, placeholder, quote_all
from desktop_backup.restore.live import (
    KeyComparison,
    LiveRows,
    chunks,
    compare_keys,
    count_now,
    edges_into,
    find_clash,
    key_chunks,
    key_in,
    match,
    mine,
    owned,
    triggers_on,
)
from desktop_backup.restore.plan import (
    Checked,
    RestoreFailed,
    RestoreRefused,
    TablePlan,
    stop_if_cancelled,
)
from desktop_backup.restore.values import live_kind, norm
from desktop_backup.tenancy import OrganizationScope
from desktop_backup.work import CancelFlag, Cancelled, Progress, ProgressCallback

log = logging.getLogger(__name__)
ROLLED_BACK = "The restore was rolled back; nothing was changed."


@dataclass
class Applied:
    """What the transaction wrote."""

    tables: dict[str, int]
    deleted: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def run_restore(engine: Engine, checked: Checked, path: Path, org_id: int, *,
                progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
                hooks: RestoreHooks | None = None, expect_empty: str = "") -> Applied:
    """Run the transaction; raise RestoreFailed, RestoreRefused or Cancelled after rolling
    back.

    `expect_empty` (the organization's name) says that the check found none of its rows in
    the restored tables, so no restore point was made: should any be there now, the restore
    is refused (RestoreRefused) before anything is written."""
    hooks = hooks or RestoreHooks()
    hooks.started()
    try:
        archive = open_archive(path, [org_id])
    except ArchiveError as exc:
        raise RestoreFailed(f"{exc} Nothing was restored.") from None
    with archive:
        try:
            conn, loader = _connect(engine)
        except SQLAlchemyError as exc:
            raise friendly_error(exc, engine.url) from exc
        session = SessionSettings(conn)
        try:
            hooks.connected(conn)
            session.begin(checked.manifest, may_load=loader is not None)
            applied = _apply(conn, session, archive, checked, org_id, progress, cancel, hooks,
                             expect_empty)
            stop_if_cancelled(cancel)
            session.committing = True
            conn.commit()
            hooks.committed()
            return applied
        except BaseException as exc:
            _rollback_quietly(conn)
            if isinstance(exc, Cancelled | RestoreRefused) or not isinstance(
                    exc, SQLAlchemyError | DesktopBackupError):
                raise  # a cancel, a refusal, or a bug: its traceback is kept for the log
            raise RestoreFailed(_explain(exc, engine, checked, path, org_id, session)) from exc
        finally:
            session.end()
            conn.close()
            if loader is not None:
                loader.dispose()


def _connect(engine: Engine) -> tuple[Connection, Engine | None]:
    """The restore's one connection. For a MySQL/MariaDB server that takes LOAD DATA LOCAL,
    a connection of its own (from the returned engine) whose client may send files, for
    inserters.LoadData: the pool's connections never may, since a server may ask such a client for
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


def _apply(conn: Connection, session: SessionSettings, archive, checked: Checked, org_id: int,
           progress: ProgressCallback | None, cancel: CancelFlag | None,
           hooks: RestoreHooks, expect_empty: str = "") -> Applied:
    scope, plans = checked.scope, checked.plans
    triggered = {t for t, _name in triggers_on(conn, {p.name for p in plans})}

    def compare_all() -> dict[str, KeyComparison]:
        found = _compare_all(conn, session, scope, plans, org_id)
        hooks.keys_compared(conn)
        return found

    def sqlite_unchecked(found: dict[str, KeyComparison]) -> bool:
        return hooks.sqlite_unchecked(
            _sqlite_without_foreign_keys(plans, found, hooks.unchecked_min_rows))

    found = compare_all()
    unchecked: set[str] = set()
    if conn.dialect.name == "sqlite" and sqlite_unchecked(found):
        conn.rollback()  # nothing was written yet
        session.begin_sqlite(foreign_keys=False)
        found = compare_all()
        if sqlite_unchecked(found):
            _hold_outside(conn, session, plans)
            unchecked = {p.name for p in plans}
        else:  # it changed in between: with foreign keys after all
            conn.rollback()
            session.begin_sqlite()
            found = compare_all()
    elif conn.dialect.name in UNCHECKED_SWITCH:
        unchecked = _unchecked(plans, found)
        if unchecked and conn.dialect.name == "postgresql":
            skipped = _may_skip_foreign_key_triggers(conn, unchecked, triggered)
            hooks.foreign_key_checks_skipped(skipped)
            if not skipped:
                unchecked = set()
        _hold_outside(conn, session, [p for p in plans if p.name in unchecked])
    if expect_empty:
        _still_empty(conn, scope, plans, found, org_id, expect_empty)
    _empty_references_to_gone_rows(conn, session, scope, plans, found, org_id)
    deleted = 0
    for plan in reversed(plans):  # children first
        stop_if_cancelled(cancel)
        session.table = plan.name
        t = plan.table
        if plan.keyed:
            gone = found[plan.name].gone
            # A declared table's ownership may run through rows deleted (or references
            # emptied) a moment ago: a new invoice's log rows, a new customer's addresses.
            # Its gone keys were chosen among its owned rows in this transaction, so they
            # go by key, with their parents, never left dangling.
            # Adopted orphans (TablePlan.adopted) go by key too, still orphans.
            ours = mine(scope, plan, org_id) if plan.scope.simple else true()
            for chunk in key_chunks(gone):
                conn.execute(delete(t).where(ours).where(key_in(t, plan.key, chunk)))
            deleted += len(gone)
        else:
            deleted += count_now(conn, scope, plan, org_id)
            conn.execute(delete(t).where(owned(scope, plan.scope, org_id)))
    total = sum(p.rows_restored for p in plans)
    done = 0
    stats = {"inserted": 0, "updated": 0, "unchanged": 0}
    patches: dict[str, list[dict]] = {}
    background = Background(depth=2, session=session) if _streams(conn, session) else None
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
            writer = _TableWriter(conn, session, scope, plan, org_id, hooks, compare=left > 0,
                                  background=background)
            switch = UNCHECKED_SWITCH.get(conn.dialect.name) if plan.name in unchecked \
                else None
            if switch:  # see _unchecked; in order with the inserts
                writer.statement(switch[0])
            try:
                for batch in archive.batches(plan.entry):
                    stop_if_cancelled(cancel)
                    rows = plan.restored_rows(plan.decode_batch(batch, judged=True))
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
                    writer.stats["inserted"] == plan.rows_restored:
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
        if now != plan.rows_restored:
            raise DesktopBackupError(
                f"After restoring, table {plan.name} has {now} of the organization's rows "
                f"instead of the backup's {plan.rows_restored} (a trigger or a cascade changed "
                "them).")
    if conn.dialect.name == "postgresql":
        _move_sequences(conn, plans)
    session.table = ""
    return Applied({p.name: p.rows_restored for p in plans}, deleted, **stats)


def _compare_all(conn: Connection, session: SessionSettings, scope: OrganizationScope,
                 plans: list[TablePlan], org_id: int) -> dict[str, KeyComparison]:
    found = {}
    for plan in plans:
        if plan.keyed:
            session.table = plan.name
            found[plan.name] = compare_keys(conn, scope, plan, org_id)
    session.table = ""
    return found


def _still_empty(conn: Connection, scope: OrganizationScope, plans: list[TablePlan],
                 found: dict[str, KeyComparison], org_id: int, name: str) -> None:
    """No restore point was made because the check found none of the organization's rows:
    rows that arrived since (a cashier's sale) would be lost with nothing to undo to, so
    the restore is refused, inside the transaction, before anything is written."""
    for plan in plans:
        now = found[plan.name].rows_now if plan.keyed else count_now(conn, scope, plan, org_id)
        if now:
            raise RestoreRefused(
                f"{name}'s data changed since the backup was checked (table {plan.name} now "
                f"holds {now:,} of its {'row' if now == 1 else 'rows'}), and this restore was "
                "to make no restore point; nothing was restored: check the backup again.")


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


def _sqlite_without_foreign_keys(plans: list[TablePlan], found: dict[str, KeyComparison],
                                 min_rows: int) -> bool:
    """SQLite can restore without enforcing foreign keys when nothing is deleted (so no
    cascade is needed) and every reference is known: into the backup (all of whose rows are
    there at COMMIT) or outside it (checked again under the write lock, _hold_outside).
    Nobody else writes while the transaction holds SQLite's write lock. Only worth starting
    the transaction again for when many rows are new."""
    if any(found[p.name].gone if p.keyed else True for p in plans):
        return False  # PK-less tables are deleted and inserted again: not this path
    new = sum(p.rows_restored - found[p.name].in_both for p in plans)
    return new >= min_rows and all(_references_known(p) for p in plans)


def _hold_outside(conn: Connection, session: SessionSettings, plans: list[TablePlan]) -> None:
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


def _streams(conn: Connection, session: SessionSettings) -> bool:
    """Whether inserts run on a second thread: MySQL's multi-row INSERTs and PostgreSQL's
    COPY (the drivers wait for the server without holding the GIL). SQLite works inside
    this process, where a second thread would only fight for the GIL."""
    return conn.dialect.name == "postgresql" or (conn.dialect.name == "mysql"
                                                  and session.mysql_literals)


def _empty_references_to_gone_rows(conn: Connection, session: SessionSettings,
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
                                      .where(key_in(pt, parent.key, chunk)))
            conn.execute(sql_update(ct).where(owned(scope, child.scope, org_id))
                         .where(pointing).values({edge.columns[0]: None}))


class _TableWriter:
    """Writes one table's backup rows batch by batch: compared with the live rows when the
    organization still has some, inserted through the dialect's fast path otherwise."""

    def __init__(self, conn: Connection, session: SessionSettings, scope: OrganizationScope,
                 plan: TablePlan, org_id: int, hooks: RestoreHooks, compare: bool,
                 background: Background | None = None) -> None:
        self.conn = conn
        self.plan = plan
        self.compare = compare and plan.keyed
        self.index = plan.key_index if plan.keyed else []
        self.deferred = [plan.columns.index(c) for c in plan.deferred]
        if self.compare and background is not None:
            background.drain()  # this table reads and updates on this thread
        self.insert = choose_inserter(conn, session, plan, not self.compare, background, hooks)
        self.stats = {"inserted": 0, "updated": 0, "unchanged": 0}
        self.live = LiveRows(conn, scope, plan, org_id) if self.compare else None
        self.others = [i for i in range(len(plan.columns)) if i not in self.index]
        ph = placeholder(conn)
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


def _patch(conn: Connection, plan: TablePlan, held: list[dict]) -> None:
    light = table(plan.name, *[column(c) for c in plan.columns])
    by_key = and_(*[light.c[c] == bindparam(f"k{n}") for n, c in enumerate(plan.key)])
    statement = sql_update(light).where(by_key).values(
        {c: bindparam(f"v{n}") for n, c in enumerate(plan.deferred)})
    for chunk in chunks(held, 5000):
        conn.execute(statement, chunk)


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


def _rollback_quietly(conn: Connection) -> None:
    try:
        conn.rollback()
    except SQLAlchemyError:
        conn.invalidate()  # the server rolls back a transaction whose connection is gone


def _explain(exc: Exception, engine: Engine, checked: Checked, path: Path, org_id: int,
             session: SessionSettings) -> str:
    """One sentence about what went wrong, for a restore that has been rolled back."""
    where = f" while writing table {session.table}" if session.table else ""
    if isinstance(exc, IntegrityError):
        clash = _find_clash_again(engine, checked, path, org_id, session.table)
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


def _find_clash_again(engine: Engine, checked: Checked, path: Path, org_id: int,
                      name: str) -> str | None:
    """After a unique violation, find the row and the key that clashed, to name them."""
    plan = next((p for p in checked.plans if p.name == name), None)
    if plan is None:
        return None
    try:
        with open_archive(path, [org_id]) as archive, engine.connect() as conn:
            for batch in archive.batches(plan.entry):
                clash = find_clash(conn, checked.scope, plan, org_id, plan.decode_batch(batch))
                if clash:
                    return clash
    except (ArchiveError, SQLAlchemyError):
        return None
    return None
