"""Exactly once a day, across workstations; one instant per archive; a dropped connection."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from desktop_backup.backup import run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import (
    AlreadyDone,
    AlreadyRunning,
    SlotClaim,
    claim_today,
    ensure_tables,
    recent,
    week_slots,
)
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Site
from tests.archives import archive_rows
from tests.clock import FakeClock

MAPPING = SchemaMapping()
ADMIN = Actor(3, "medp.admin")


@pytest.fixture
def engines(demo_db):
    """Two engines: two workstations with their own connections to one billing database."""
    first, second = open_engine(demo_db), open_engine(demo_db)
    yield first, second
    first.dispose()
    second.dispose()


def org_of(engine, key="MEDP"):
    with engine.connect() as conn:
        return find_organization(conn, MAPPING, key)


def test_two_workstations_claiming_at_the_same_moment_one_wins(engines):
    slot_table = ensure_tables(engines[0])[0]
    now = FakeClock()().replace(tzinfo=None)
    for round_ in range(4):  # several rounds: a race that only sometimes breaks still fails
        org_id = 1 + round_ % 3
        day = now + timedelta(days=round_)
        barrier = threading.Barrier(2)
        outcomes: list = []

        def claim(engine, org_id=org_id, day=day, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                outcomes.append(claim_today(engine, slot_table, org_id, 3, day))
            except AlreadyRunning as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=claim, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyRunning", "SlotClaim"]
        assert "already being made on" in str(next(o for o in outcomes if not isinstance(
            o, SlotClaim)))
        next(o for o in outcomes if isinstance(o, SlotClaim)).release()


def test_a_second_backup_while_one_runs_says_it_runs_elsewhere(engines, tmp_path):
    first, second = engines
    clock = FakeClock()
    running, tried = threading.Event(), threading.Event()
    results: dict = {}

    def hold(progress):
        running.set()
        tried.wait(30)

    def backup_a():
        results["a"] = run_backup(Site(first, MAPPING, clock), org_of(first), ADMIN, tmp_path / "a",
                                  trigger="login", progress=hold)

    thread = threading.Thread(target=backup_a)
    thread.start()
    assert running.wait(30)
    try:
        with pytest.raises(AlreadyRunning, match="already being made on"):
            run_backup(Site(second, MAPPING, clock), org_of(second), ADMIN, tmp_path / "b",
                       trigger="login")
    finally:
        tried.set()
        thread.join(60)
    assert results["a"].ok and not results["a"].skipped
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    # Once it has finished, the other workstation sees today's backup as done.
    skipped = run_backup(Site(second, MAPPING, clock), org_of(second), ADMIN, tmp_path / "b",
                         trigger="login")
    assert skipped.skipped


def test_a_run_that_died_is_taken_over_at_once_and_recorded_as_interrupted(engines,
                                                                          tmp_path):
    engine = engines[0]
    slot_table, audit_table = ensure_tables(engine)
    clock = FakeClock()
    crashed = claim_today(engine, slot_table, 1, 3, clock().replace(tzinfo=None),
                          username="medp.admin", trigger="login")
    assert isinstance(crashed, SlotClaim)  # ...and the process died here, mid-backup
    partial = tmp_path / ".org_MEDP_wednesday_backup.zip.0123abcd.partial"
    partial.write_bytes(b"half an archive")
    with pytest.raises(AlreadyRunning):  # alive: respected, whatever --force says
        run_backup(Site(engine, MAPPING, clock), org_of(engine), ADMIN, tmp_path, trigger="cli",
                   force=True)
    crashed.release()  # what the OS and the server do when a process dies
    clock.advance(minutes=1)
    result = run_backup(Site(engine, MAPPING, clock), org_of(engine), ADMIN, tmp_path,
                        trigger="login")
    assert result.ok and not result.skipped
    assert not partial.exists()
    assert week_slots(engine, slot_table, 1)["wednesday"].status == "success"
    assert isinstance(claim_today(engine, slot_table, 1, 3, clock().replace(tzinfo=None)),
                      AlreadyDone)
    history = recent(engine, audit_table, 1)
    assert [(e.action, e.outcome) for e in history][:3] == [
        ("backup", "success"), ("backup", "failed"), ("skipped", "skipped")]
    assert "stopped before it finished" in history[1].message
    assert "already being made" in history[2].message


def test_the_archive_is_one_instant_while_the_shop_keeps_selling(engines, dialect, tmp_path):
    first, second = engines
    before = _count(first, "SELECT COUNT(*) FROM sale_transactions WHERE organization_id = 1")
    wrote: list = []

    def sell_during_backup(progress):
        if wrote:
            return
        if dialect == "sqlite":  # a till that gives up at once instead of waiting 10 s
            till = sqlite3.connect(first.url.database, timeout=0.1)
            try:
                till.execute("DELETE FROM customer_ledgers WHERE organization_id = 1")
                till.commit()
                wrote.append(True)
            except sqlite3.OperationalError as exc:
                wrote.append(exc)
            finally:
                till.close()
            return
        with second.begin() as conn:
            conn.execute(text("INSERT INTO sale_transactions (organization_id, invoice_no, "
                              "total_amount, status) VALUES (1, 'LIVE-1', 10, 'paid')"))
            conn.execute(text("DELETE FROM customer_ledgers WHERE organization_id = 1"))
        wrote.append(True)

    result = run_backup(Site(first, MAPPING, FakeClock()), org_of(first), ADMIN, tmp_path,
                        trigger="cli", progress=sell_during_backup)
    rows = archive_rows(result.path)
    assert len(rows["sale_transactions"]) == before
    assert "LIVE-1" not in {r["invoice_no"] for r in rows["sale_transactions"]}
    ledgers = _count(first, "SELECT COUNT(*) FROM customer_ledgers WHERE organization_id = 1")
    if dialect == "sqlite":
        # SQLite keeps the snapshot by making writers wait until the backup has read.
        assert "locked" in str(wrote[0]) and ledgers > 0
        assert len(rows["customer_ledgers"]) == ledgers
    else:
        assert wrote == [True] and ledgers == 0  # the sale happened during the backup...
        assert len(rows["customer_ledgers"]) > 0  # ...and the archive still shows before it


def _count(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


KILL_OTHERS = {
    "mysql": ("SELECT id FROM information_schema.processlist "
              "WHERE db = DATABASE() AND id <> CONNECTION_ID()", "KILL {}"),
    "postgres": ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                 "AND pid <> pg_backend_pid()", "SELECT pg_terminate_backend({})"),
}


@pytest.mark.parametrize("dialect", ["mysql", "postgres"])  # SQLite has no connection
def test_a_connection_dropped_mid_backup_fails_clearly_and_keeps_last_week(engines, dialect,
                                                                          tmp_path):
    first, second = engines
    clock = FakeClock()
    clock.advance(days=-7)
    old = run_backup(Site(first, MAPPING, clock), org_of(first), ADMIN, tmp_path, trigger="login")
    before = old.path.read_bytes()
    clock.advance(days=7)
    find, kill = KILL_OTHERS[dialect]

    def drop_connection(progress):
        if progress.rows_done > 0:
            with second.connect() as conn:
                for (ident,) in conn.execute(text(find)).all():
                    conn.execute(text(kill.format(int(ident))))

    with pytest.raises(DesktopBackupError) as failure:
        run_backup(Site(first, MAPPING, clock), org_of(second), ADMIN, tmp_path, trigger="login",
                   progress=drop_connection)
    message = str(failure.value)
    assert "connection" in message.lower() or "reach" in message.lower(), message
    assert "Traceback" not in message and "sqlalchemy" not in message.lower()
    assert old.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [old.path.name]
    slot = week_slots(second, ensure_tables(second)[0], 1)["wednesday"]
    assert slot.status == "failed"


@pytest.mark.parametrize("dialect", ["postgres"])
def test_a_table_that_cannot_be_read_fails_clearly_and_keeps_last_week(demo_db, dialect,
                                                                      tmp_path):
    """The database user may not read one table: the backup stops with its name."""
    import uuid

    from sqlalchemy.engine import make_url

    admin = open_engine(demo_db)
    role = f"clerk_{uuid.uuid4().hex[:8]}"
    clock = FakeClock()
    clock.advance(days=-7)
    old = run_backup(Site(admin, MAPPING, clock), org_of(admin), ADMIN, tmp_path, trigger="login")
    before = old.path.read_bytes()
    clock.advance(days=7)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public "
                          f"TO {role}"))
        conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"))
        conn.execute(text(f"REVOKE SELECT ON customer_ledgers FROM {role}"))
    clerk = open_engine(make_url(demo_db).set(username=role))
    try:
        with pytest.raises(DesktopBackupError, match="customer_ledgers") as failure:
            run_backup(Site(clerk, MAPPING, clock), org_of(clerk), ADMIN, tmp_path, trigger="login")
        assert "permission denied" in str(failure.value)
        assert old.path.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir()] == [old.path.name]
        assert week_slots(admin, ensure_tables(admin)[0], 1)["wednesday"].status == "failed"
    finally:
        clerk.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()
