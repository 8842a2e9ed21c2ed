"""The restore writes only what differs, and each of its write paths keeps the guarantees.

A restore compares the backup with the live rows by primary key: rows that are the same are
left alone, rows that differ are updated in place, new rows go in through the dialect's fast
path (COPY, multi-row INSERTs on a writer thread, executemany), rows the backup lacks are
deleted. Where every row of a table is new, MySQL/MariaDB, SQLite and (for a role allowed to)
PostgreSQL insert without the database's own foreign key checks, because every reference is
known to hold: these tests prove the result is still exactly the backup's, and that a
reference that disappears after the check still stops the restore.
"""

from __future__ import annotations

import stat
import tempfile
import threading

import pytest
from sqlalchemy import func, select

from desktop_backup.db import reflect
from desktop_backup.restore import (
    Changes,
    RestoreFailed,
    RestoreHooks,
    apply_restore,
    check_restore,
    list_restore_points,
)
from desktop_backup.restore.plan import KeySet
from desktop_backup.restore.values import column_converter
from desktop_backup.tenancy import discover_scope
from desktop_backup.work import Cancelled, Site
from tests import test_restore as shared
from tests.clock import FakeClock
from tests.restore_support import (
    MAPPING,
    SUPER,
    backup,
    db_digest,
    delete_organization,
    hard_shapes,
    org_digest,
    org_of,
    run,
    scalar,
    take_username_elsewhere,
    wipe_and_change,
)

engine = shared.engine
folder = shared.folder
sqlite_engine = shared.sqlite_engine
sqlite_url = shared.sqlite_url


def site(engine) -> Site:
    """The demo database as the restore sees it, on the tests' fixed clock."""
    return Site(engine, MAPPING, FakeClock())


def org_rows(engine, org_id: int) -> int:
    with engine.connect() as conn:
        metadata = reflect(conn)
        scope = discover_scope(metadata, MAPPING)
        return sum(conn.execute(select(func.count()).select_from(metadata.tables[name]).where(
            scope.predicate(scope.get(name), org_id))).scalar() for name in scope.names())


@pytest.fixture
def every_path() -> RestoreHooks:
    """SQLite restarts its transaction without foreign keys only for big restores; with
    these hooks for every restore that inserts anything, so the small demo takes that path
    too."""
    return RestoreHooks(unchecked_min_rows=1)


# --- what is written ------------------------------------------------------------------------

def test_only_rows_that_differ_are_written(engine, folder, every_path):
    medp, city = org_of(engine), org_of(engine, "CITY")
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    total = org_rows(engine, medp.id)

    # Restoring a backup of exactly what is there stops at the check: nothing would change,
    # so no restore point is made and no transaction runs.
    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.changes_nothing and plan.changes == Changes(0, 0, total, 0)
    same = apply_restore(site(engine), medp, plan, SUPER, folder, hooks=every_path)
    assert same.ok and same.changed_nothing and same.restore_point is None
    assert same.message.startswith("Nothing would change")
    assert (same.inserted, same.updated, same.deleted, same.unchanged) == (0, 0, 0, total)
    assert not list_restore_points(folder, medp)
    assert org_digest(engine, medp.id) == before

    customers = scalar(engine, "SELECT COUNT(*) FROM customers WHERE organization_id = 1")
    batches = scalar(engine, "SELECT COUNT(*) FROM batches WHERE organization_id = 1")
    wipe_and_change(engine)  # deletes, cascades, edits, one new customer
    city_now = org_digest(engine, city.id)
    kept = org_rows(engine, medp.id) - 1  # all but the new customer are the backup's rows
    # The preview counts exactly what the restore then does (not every row in both).
    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.changes == Changes(total - kept, customers + batches,
                                   kept - customers - batches, 1)
    result = apply_restore(site(engine), medp, plan, SUPER, folder, hooks=every_path)
    assert result.changes == plan.changes
    assert org_digest(engine, medp.id) == before
    assert org_digest(engine, city.id) == city_now
    assert result.deleted == 1  # the customer created after the backup
    assert result.updated == customers + batches  # renamed customers, recounted batches
    assert result.inserted == total - kept  # what was deleted, and what cascaded with it
    assert result.inserted + result.updated + result.unchanged == total


def test_a_case_or_trailing_space_change_is_seen_and_exact_values_are_not(engine, dialect,
                                                                          folder):
    """Live rows are compared as the backup holds them: decimals, microseconds, JSON, binary
    and floats read back equal (nothing rewritten), while a change MySQL's collation calls
    equal ('a' = 'A', 'a' = 'a ') is still a change."""
    hard_shapes(engine, dialect)
    medp = org_of(engine)
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    same = apply_restore(site(engine), medp, archive, SUPER, folder)
    assert same.updated == 0 and same.inserted == 0
    run(engine, "UPDATE value_samples SET label = :v", v="ŚRĪ 🚀 \"q\" \\ /")
    run(engine, "UPDATE item_groups SET name = 'root ' WHERE id = 3")
    changed = apply_restore(site(engine), medp, archive, SUPER, folder)
    assert changed.updated == 2 and changed.inserted == 0
    assert org_digest(engine, medp.id) == before


def test_a_table_without_a_primary_key_is_replaced(engine, dialect, folder):
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    run(engine, f"CREATE TABLE till_notes (organization_id {big}, note VARCHAR(50))")
    run(engine, "INSERT INTO till_notes VALUES (1, 'a'), (1, 'a'), (1, 'b'), (2, 'CITY')")
    medp = org_of(engine)
    before, everything = org_digest(engine, medp.id), db_digest(engine)
    archive = backup(engine, folder)
    run(engine, "DELETE FROM till_notes WHERE note = 'b'")
    run(engine, "INSERT INTO till_notes VALUES (1, 'c')")
    result = apply_restore(site(engine), medp, archive, SUPER, folder)
    assert org_digest(engine, medp.id) == before
    assert db_digest(engine) == everything
    assert result.deleted == 3 + 0  # the table's 3 rows then: deleted and inserted again


# --- the fast insert paths ------------------------------------------------------------------

AWKWARD = ["it's \"quoted\"", "back\\slash \\u0041 \\n", "tab\tnew\nline\r", "10% off %s %(x)s",
           "],[ inside", "ctrl \x01\x08\x0c", "Śrī 🚀", "", " trailing ", "NULL", "null"]


def test_everything_new_comes_back_exactly_through_the_fast_paths(engine, dialect, folder,
                                                                  every_path):
    """The organization lost everything: every table is inserted into through the dialect's
    fast path (and without the database's own foreign key checks), awkward
    text included, and the result is exactly the backup; other organizations stay as they
    were; PostgreSQL's sequences are moved past the restored ids."""
    hard_shapes(engine, dialect)
    for n, label in enumerate(AWKWARD):
        run(engine, "INSERT INTO value_samples (id, organization_id, label, amount) VALUES "
                    "(:id, 1, :label, :amount)", id=100 + n, label=label,
            amount=f"{n}.5{n}")
    medp, city = org_of(engine), org_of(engine, "CITY")
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    total = org_rows(engine, medp.id)
    run(engine, "UPDATE shelves SET head_bin_id = NULL")
    delete_organization(engine, medp.id)
    assert org_rows(engine, medp.id) == 0
    city_now = org_digest(engine, city.id)
    result = apply_restore(site(engine), medp, archive, SUPER, folder, hooks=every_path)
    assert result.inserted == total and result.updated == result.unchanged == 0
    assert org_digest(engine, medp.id) == before
    assert org_digest(engine, city.id) == city_now
    run(engine, "INSERT INTO value_samples (organization_id, label) VALUES (1, 'next')")
    assert scalar(engine, "SELECT MAX(id) FROM value_samples") == 100 + len(AWKWARD)
    if dialect == "sqlite":  # the connection has its foreign keys back
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    if dialect == "mysql":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar() == 1


def test_a_shared_row_deleted_after_the_check_stops_the_restore(engine, dialect, folder,
                                                                every_path):
    """A state only MEDP's customers used is deleted between the check and the restore: the
    restore that inserts those customers (without the server's foreign key checks) finds
    out, fails and changes nothing."""
    run(engine, "INSERT INTO states (id, name, code) VALUES (99, 'Lakshadweep', 'LD')")
    run(engine, "UPDATE customers SET state_id = 99 WHERE organization_id = 1 AND id IN "
                "(SELECT id FROM (SELECT MIN(id) AS id FROM customers WHERE "
                "organization_id = 1) AS lowest)")
    medp = org_of(engine)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.ok, plan.message
    run(engine, "DELETE FROM states WHERE id = 99")
    before = db_digest(engine)
    with pytest.raises(RestoreFailed) as failure:
        apply_restore(site(engine), medp, plan, SUPER, folder, hooks=every_path)
    assert "rolled back" in str(failure.value) and "customers" in str(failure.value)
    assert db_digest(engine) == before


@pytest.mark.parametrize("dialect", ["postgres"])
def test_postgres_skips_foreign_key_triggers_only_where_it_may(engine, dialect, folder):
    """PostgreSQL inserts a lost organization without its per-row foreign key triggers only
    for a role allowed to (a superuser, or one granted SET on session_replication_role) and
    only into tables with no triggers of their own (replica mode would skip those too). A
    plain role and a table with a trigger get the checked COPY; every way, the result is
    exactly the backup."""
    import uuid

    from sqlalchemy.engine import make_url

    from desktop_backup.db import open_engine

    decisions: list[bool] = []

    class Decisions(RestoreHooks):
        def foreign_key_checks_skipped(self, skipped: bool) -> None:
            decisions.append(skipped)
    medp, city = org_of(engine), org_of(engine, "CITY")
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)

    def lose_and_restore(as_engine) -> None:
        delete_organization(engine, medp.id)
        city_now = org_digest(engine, city.id)
        apply_restore(site(as_engine), medp, archive, SUPER, folder, hooks=Decisions())
        assert org_digest(engine, medp.id) == before
        assert org_digest(engine, city.id) == city_now

    lose_and_restore(engine)
    assert decisions == [True]
    with engine.connect() as conn:  # the session is back to checking foreign keys
        assert conn.exec_driver_sql("SHOW session_replication_role").scalar() == "origin"

    role = f"clerk_{uuid.uuid4().hex[:8]}"
    run(engine, f"CREATE ROLE {role} LOGIN")
    run(engine, f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    run(engine, f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    clerk = open_engine(make_url(engine.url).set(username=role))
    try:
        lose_and_restore(clerk)
        assert decisions == [True, False]
        run(engine, f"GRANT SET ON PARAMETER session_replication_role TO {role}")
        lose_and_restore(clerk)
        assert decisions == [True, False, True]
    finally:
        clerk.dispose()
        run(engine, f"DROP OWNED BY {role}")
        run(engine, f"DROP ROLE {role}")

    run(engine, "CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RETURN NEW; END $$")
    run(engine, "CREATE TRIGGER customers_kept BEFORE INSERT ON customers FOR EACH ROW "
                "EXECUTE FUNCTION keep_row()")
    lose_and_restore(engine)
    assert decisions == [True, False, True, False]


def test_a_clash_on_the_writer_thread_is_named_and_rolls_back(engine, dialect, folder,
                                                              every_path):
    """A username taken by another organization after the check: the insert fails on the
    writer thread (MySQL, PostgreSQL) and the message still names the table and the key."""
    medp = org_of(engine)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    plan = check_restore(Site(engine, MAPPING), medp, archive, restorer=SUPER)
    assert plan.ok
    take_username_elsewhere(engine, "medp.staff")
    before = db_digest(engine)
    with pytest.raises(RestoreFailed) as failure:
        apply_restore(site(engine), medp, plan, SUPER, folder, hooks=every_path)
    assert "Table users" in str(failure.value) and "'medp.staff'" in str(failure.value)
    assert "rolled back" in str(failure.value)
    assert db_digest(engine) == before


def test_a_cancel_while_the_writer_thread_runs_rolls_back(engine, folder, every_path):
    medp = org_of(engine)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    before = db_digest(engine)
    flag = threading.Event()

    def progress(p) -> None:
        if p.rows_done > p.rows_total // 2:
            flag.set()
    with pytest.raises(Cancelled):
        apply_restore(site(engine), medp, archive, SUPER, folder,
                      progress=progress, cancel=flag, hooks=every_path)
    assert db_digest(engine) == before


# --- MySQL/MariaDB: LOAD DATA LOCAL INFILE ----------------------------------------------------

class Loads(RestoreHooks):
    """What each LOAD DATA of the restore came to (True: its rows arrived whole and unbent),
    and the mode of the folder its file was in."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bool] = []
        self.modes: list[int] = []

    def loading(self, file) -> None:
        self.modes.append(stat.S_IMODE(file.parent.stat().st_mode))

    def loaded(self, file, arrived: bool) -> None:
        self.answers.append(arrived)


@pytest.fixture
def loads() -> Loads:
    return Loads()


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The temporary folder; the LOAD DATA folders go in its desktop-backup-<uid> parent."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_loads_a_lost_organization_through_a_private_file(engine, dialect, folder,
                                                                loads, scratch):
    medp, city = org_of(engine), org_of(engine, "CITY")
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    city_now = org_digest(engine, city.id)
    apply_restore(site(engine), medp, archive, SUPER, folder, hooks=loads)
    assert loads.answers and all(loads.answers)
    assert set(loads.modes) == {0o700}  # the rows on their way: the owner's only
    assert org_digest(engine, medp.id) == before
    assert org_digest(engine, city.id) == city_now
    assert list(scratch.glob("*/*")) == []  # the file went with its folder


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_without_load_data_inserts_the_same_rows(engine, dialect, folder, loads,
                                                       scratch):
    """A server that does not take LOAD DATA LOCAL (local_infile off, as many are): the
    restore uses INSERTs, and nothing of the rows is written to disk."""
    medp = org_of(engine)
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)
    run(engine, "SET GLOBAL local_infile = 0")
    try:
        apply_restore(site(engine), medp, archive, SUPER, folder, hooks=loads)
    finally:
        run(engine, "SET GLOBAL local_infile = 1")
    assert loads.answers == []
    assert org_digest(engine, medp.id) == before
    assert list(scratch.glob("*/*")) == []


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_a_load_the_server_refuses_midway_falls_back_to_inserts(engine, dialect, folder,
                                                                      scratch):
    """local_infile switched off after the restore connected: the server refuses the LOAD,
    and the same rows go in as INSERTs, exactly, for this table and the rest."""
    medp = org_of(engine)
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    delete_organization(engine, medp.id)

    class ForbidOnceConnected(Loads):
        def connected(self, conn) -> None:
            run(engine, "SET GLOBAL local_infile = 0")

    loads = ForbidOnceConnected()
    try:
        apply_restore(site(engine), medp, archive, SUPER, folder, hooks=loads)
    finally:
        run(engine, "SET GLOBAL local_infile = 1")
    # Refused (the table being written when it came may already have its next one queued);
    # every row then went in as INSERTs.
    assert loads.answers and not any(loads.answers)
    assert org_digest(engine, medp.id) == before
    assert list(scratch.glob("*/*")) == []


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_a_value_load_data_would_bend_stops_the_restore(engine, dialect, folder, loads,
                                                              scratch):
    """LOAD DATA LOCAL only warns where a value does not fit (here: text that is no date,
    in a column made a DATE since the backup) and bends it. The warning sends the rows back
    through INSERTs, whose error stops the restore: nothing is bent, nothing changes.
    (A value too long for its column is refused by the check already: test_absurd_archives.)"""
    run(engine, "CREATE TABLE till_notes (id BIGINT PRIMARY KEY, organization_id BIGINT, "
                "note VARCHAR(50))")
    run(engine, "INSERT INTO till_notes VALUES (1, 1, '2026-02-30'), (2, 2, '2026-01-01')")
    medp = org_of(engine)
    archive = backup(engine, folder)
    run(engine, "DELETE FROM till_notes WHERE organization_id = 1")
    run(engine, "ALTER TABLE till_notes MODIFY note DATE")
    before = db_digest(engine)
    with pytest.raises(RestoreFailed) as failure:
        apply_restore(site(engine), medp, archive, SUPER, folder, hooks=loads)
    assert "till_notes" in str(failure.value) and "rolled back" in str(failure.value)
    assert False in loads.answers
    assert db_digest(engine) == before
    assert list(scratch.glob("*/*")) == []


# --- the pieces -------------------------------------------------------------------------------

def test_backup_keys_take_8_bytes_each_and_refuse_repeats():
    from desktop_backup.archive import ArchiveError

    keys = KeySet(1)
    keys.add("t", ["id"], [(1, 2, 3)])
    keys.add("t", ["id"], [(7, 9)])
    keys.seal("t")
    assert keys.ordered and len(keys) == 5 and keys.ints is not None
    assert keys.present_ints([9, 4, 1, 10**12]) == {1, 9}
    assert keys.missing({(2,), (5,), ("x",)}) == {(5,), ("x",)}
    unordered = KeySet(1)
    unordered.add("t", ["id"], [(5, 1)])
    unordered.add("t", ["id"], [(3,)])
    unordered.seal("t")
    assert not unordered.ordered and list(unordered.ints) == [1, 3, 5]
    twice = KeySet(1)
    twice.add("t", ["id"], [(5, 1)])
    twice.add("t", ["id"], [(1,)])
    with pytest.raises(ArchiveError, match="row 1 twice"):
        twice.seal("t")
    huge = KeySet(1)
    huge.add("t", ["id"], [(1, 2**70)])  # beyond 64 bits: kept as tuples
    assert huge.ints is None and huge.contains((2**70,))
    with pytest.raises(ArchiveError, match="twice"):
        huge.add("t", ["id"], [(1,)])
    pairs = KeySet(2)
    pairs.add("t", ["a", "b"], [(1, 2), ("x", "y")])
    assert pairs.missing({(1, "x"), (1, "y")}) == {(1, "y")}
    with pytest.raises(ArchiveError, match="without its a, b"):
        pairs.add("t", ["a", "b"], [(None,), (1,)])


def test_column_converters_check_what_they_pass_through():
    from desktop_backup.restore.values import ValueProblem

    numbers = column_converter("decimal", "decimal", "mysql")
    column = ("116.68", "-2", None, 3, "1e5", ".5")
    assert numbers(column) is column  # valid decimal text is passed on as it is
    with pytest.raises(ValueProblem):
        numbers(("1.5", "1\n2"))  # a value cannot hide a second number behind a newline
    assert numbers(("1.5", " 7 ")) == ["1.5", " 7 "]  # what Decimal() accepts, value by value
    whole = column_converter("integer", "integer", "postgresql")
    assert whole((1, None)) == (1, None) and whole(("12",)) == [12]
    with pytest.raises(ValueProblem):
        whole((True,))
    text_pg = column_converter("text", "text", "postgresql")
    assert text_pg((1, "a")) == ["1", "a"]


def test_mysql_values_are_written_by_json_only_where_mysql_reads_them_the_same():
    from desktop_backup.mysql_text import insert_values

    def one(rows):
        return list(insert_values(rows, 1 << 20))
    assert one([(1, "a", None, True), (2, "b\"c", 1.5, False)]) == [
        '(1,"a",null,true),(2,"b\\"c",1.5,false)']
    for awkward in ("x],[y", "\x01", "\x0c", b"bytes", float("nan")):
        assert one([(1, awkward)]) == [[(1, awkward)]]  # left to the driver
    split = list(insert_values([(n, "x" * 100) for n in range(100)], 2000))
    assert len(split) > 1 and all(isinstance(p, str) and len(p) <= 2100 for p in split)


def test_load_data_text_reads_back_as_the_same_values():
    from desktop_backup.mysql_text import tab_separated

    assert tab_separated([(1, "a", None, True, 1.5), (2, "", "x", False, -0.25)]) == (
        b"1\ta\t\\N\t1\t1.5\n2\t\tx\t0\t-0.25\n")
    assert tab_separated([(1, "tab\tline\nback\\slash nul\x00 \\N \r"), (2, None)]) == (
        b"1\ttab\\tline\\nback\\\\slash nul\\0 \\\\N \r\n2\t\\N\n")
    assert tab_separated([(1, "NULL"), (2, "Śrī 🚀")]) == "1\tNULL\n2\tŚrī 🚀\n".encode()
    for awkward in (b"bytes", float("nan"), float("inf"), "\ud800", {"a": 1}):
        assert tab_separated([(1, "a"), (2, awkward)]) is None  # left to the INSERTs
    assert tab_separated([]) == b""


def test_sqlite_goes_back_to_foreign_keys_when_the_database_changed_in_between(
        sqlite_engine, folder):
    """SQLite starts its transaction again without foreign keys only if, inside the new
    transaction, still nothing is to be deleted; otherwise it starts once more with them.
    The hooks answer 'without' once and then 'with', as if the database changed between."""
    seen = []

    class ChangedInBetween(RestoreHooks):
        answers = iter([True, False])

        def keys_compared(self, conn) -> None:
            seen.append(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())

        def sqlite_unchecked(self, decided: bool) -> bool:
            return next(self.answers)
    medp = org_of(sqlite_engine)
    before = org_digest(sqlite_engine, medp.id)
    archive = backup(sqlite_engine, folder)
    wipe_and_change(sqlite_engine)
    apply_restore(site(sqlite_engine), medp, archive, SUPER, folder, hooks=ChangedInBetween())
    assert seen == [1, 0, 1]  # with, without, and with foreign keys again
    assert org_digest(sqlite_engine, medp.id) == before
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
