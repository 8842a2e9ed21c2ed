"""The restore engine on real databases: what a shop owner would notice.

The proof of success is a content digest: every row of the organization, read back through
SQLAlchemy with its real types, before the backup and after the restore (with the data
wiped and changed in between). Other organizations' digests must not move, and a failure at
any point must leave the whole database exactly as it was.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from desktop_backup.backup import write_archive
from desktop_backup.collector import CONTAINERS_PER_PASS
from desktop_backup.db import open_engine
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import ensure_tables, recent
from desktop_backup.restore import (
    RestoreFailed,
    RestoreRefused,
    apply_restore,
    check_restore,
    list_restore_points,
)
from desktop_backup.work import Actor, Cancelled, Site
from tests.clock import FakeClock
from tests.restore_support import (
    ADMIN,
    MAPPING,
    backup,
    db_digest,
    hard_shapes,
    org_digest,
    org_of,
    run,
    scalar,
    take_username_elsewhere,
    wipe_and_change,
)

# --- helpers (also used by the other restore test modules) ----------------------------------


@pytest.fixture
def engine(demo_db):
    engine = open_engine(demo_db)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(sqlite_demo_db) -> str:
    return sqlite_demo_db


@pytest.fixture
def sqlite_engine(sqlite_url):
    engine = open_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def folder(tmp_path) -> Path:
    return tmp_path / "backups"


class _Stop(RuntimeError):
    pass


def _fail_halfway(exc: BaseException):
    def progress(p) -> None:
        if p.table_index >= p.table_count // 2 and p.rows_done > 0:
            raise exc
    return progress


# --- the proof of success ----------------------------------------------------------------------

def test_restore_brings_back_exactly_the_backups_rows_and_can_be_undone(engine, folder):
    medp, city = org_of(engine), org_of(engine, "CITY")
    before = org_digest(engine, medp.id)
    archive = backup(engine, folder)
    wipe_and_change(engine)
    run(engine, "INSERT INTO customers (organization_id, name, opening_balance) "
                "VALUES (2, 'CITY keeps this', 1)")
    changed, city_now = org_digest(engine, medp.id), org_digest(engine, city.id)
    shared = {k: v for k, v in db_digest(engine).items() if k in
              ("states", "hsn_codes", "subscription_plans", "organizations", "migrations")}
    assert changed != before

    plan = check_restore(Site(engine, MAPPING), medp, archive)
    assert plan.ok, plan.message
    # A crash after half of the tables have been written: everything is rolled back.
    everything = db_digest(engine)
    with pytest.raises(_Stop):
        apply_restore(Site(engine, MAPPING, FakeClock()), medp, plan, ADMIN, folder,
                      progress=_fail_halfway(_Stop("crash")))
    assert db_digest(engine) == everything
    assert len(list_restore_points(folder, medp)) == 1  # taken before the transaction
    failed = recent(engine, ensure_tables(engine)[1], medp.id)[0]
    assert failed.action == "restore" and failed.outcome == "failed"
    assert "rolled back" in failed.message

    preview = {t.table: t for t in plan.tables}
    assert preview["customers"].to_delete == 1 and preview["customers"].to_insert == 0
    assert preview["customers"].to_update == preview["customers"].rows_in_backup
    assert preview["stock_ledgers"].rows_now == 0
    assert preview["stock_ledgers"].to_insert == preview["stock_ledgers"].rows_in_backup > 0
    assert preview["users"].to_insert == 1
    assert "states" not in preview and "organizations" not in preview

    result = apply_restore(Site(engine, MAPPING, FakeClock()), medp, plan, ADMIN, folder)
    assert result.ok and result.rows == plan.rows_in_backup == sum(result.tables.values())
    assert org_digest(engine, medp.id) == before
    assert org_digest(engine, city.id) == city_now  # including CITY's new customer
    assert {k: v for k, v in db_digest(engine).items() if k in shared} == shared

    # The restore point holds the data from before the restore, and undoes it.
    assert result.restore_point.parent == folder / "restore-points"
    assert result.restore_point.name.startswith("org_MEDP_restore-point_20261125-")
    undo = apply_restore(Site(engine, MAPPING, FakeClock()), medp, result.restore_point, ADMIN,
                         folder)
    assert undo.ok and org_digest(engine, medp.id) == changed

    entries = [e for e in recent(engine, ensure_tables(engine)[1], medp.id)
               if e.action == "restore"]
    assert [e.outcome for e in entries] == ["success", "success", "failed"]
    entries = entries[:2]
    first = entries[-1]
    assert first.username == "medp.admin" and first.rows == result.rows
    assert first.file == str(archive) and str(result.restore_point) in first.message
    assert first.duration_ms is not None


def test_a_web_app_backup_restores_and_leaves_what_it_does_not_hold(engine, dialect, folder):
    """The web app's backup has only organization_id tables: restoring users must not wipe
    user_permissions through the cascade, nor the web app's log rows that cascade from
    users."""
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    pk = ("INTEGER PRIMARY KEY" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
          if dialect == "postgres" else "BIGINT AUTO_INCREMENT PRIMARY KEY")
    run(engine, f"CREATE TABLE auto_backup_logs (id {pk}, organization_id {big} NOT NULL, "
                f"user_id {big} NOT NULL, day_of_week VARCHAR(255) NOT NULL, backup_filename "
                f"VARCHAR(255) NOT NULL, backup_path VARCHAR(255) NOT NULL, backup_size {big} "
                f"NOT NULL DEFAULT 0, status VARCHAR(20) NOT NULL DEFAULT 'in_progress', "
                f"error_message TEXT NULL, backup_date TIMESTAMP NULL, created_at TIMESTAMP "
                f"NULL, updated_at TIMESTAMP NULL, FOREIGN KEY (organization_id) REFERENCES "
                f"organizations(id) ON DELETE CASCADE, FOREIGN KEY (user_id) REFERENCES "
                f"users(user_id) ON DELETE CASCADE)")
    run(engine, "INSERT INTO auto_backup_logs (organization_id, user_id, day_of_week, "
                "backup_filename, backup_path, status) VALUES (1, 3, 'monday', 'x.zip', "
                ":path, 'success')", path="C:\\xampp\\x.zip")
    medp = org_of(engine)
    archive = backup(engine, folder, fmt="seed")
    before = org_digest(engine, medp.id)
    permissions = scalar(engine, "SELECT COUNT(*) FROM user_permissions")
    run(engine, "UPDATE users SET full_name = 'changed' WHERE organization_id = 1")
    run(engine, "DELETE FROM customers WHERE organization_id = 1 AND id NOT IN (SELECT "
                "customer_id FROM sale_transactions WHERE customer_id IS NOT NULL) AND id NOT "
                "IN (SELECT customer_id FROM customer_ledgers WHERE customer_id IS NOT NULL)")
    plan = check_restore(Site(engine, MAPPING), medp, archive)
    assert plan.ok, plan.message
    assert plan.kind == "seed"
    strategies = {t.table: t.strategy for t in plan.tables}
    # users are referenced by tables the web app's backup lacks: kept rows are updated in
    # place (and what those rows point at, by closure); leaf tables are simply replaced.
    assert strategies["users"] == "merge" and strategies["stock_ledgers"] == "replace"
    assert "user_permissions" not in strategies
    apply_restore(Site(engine, MAPPING), medp, plan, ADMIN, folder)
    assert org_digest(engine, medp.id) == before
    assert scalar(engine, "SELECT COUNT(*) FROM user_permissions") == permissions
    assert scalar(engine, "SELECT backup_path FROM auto_backup_logs") == "C:\\xampp\\x.zip"


def test_self_references_cycles_id_zero_and_exact_values(engine, dialect, folder):
    hard_shapes(engine, dialect)
    medp = org_of(engine)
    before, everything = org_digest(engine, medp.id), db_digest(engine)
    archive = backup(engine, folder)
    run(engine, "UPDATE shelves SET head_bin_id = NULL WHERE organization_id = 1")
    run(engine, "DELETE FROM bins WHERE organization_id = 1")
    run(engine, "UPDATE item_groups SET parent_id = NULL WHERE organization_id = 1")
    run(engine, "DELETE FROM item_groups WHERE organization_id = 1")
    run(engine, "DELETE FROM value_samples")
    run(engine, "UPDATE shelves SET name = 'renamed' WHERE id = 1")
    if dialect == "postgres":  # as in a database whose sequences were never moved
        run(engine, "SELECT setval(pg_get_serial_sequence('item_groups', 'id'), 1, false)")
    result = apply_restore(Site(engine, MAPPING), medp, archive, ADMIN, folder)
    assert result.ok
    assert org_digest(engine, medp.id) == before
    assert db_digest(engine) == everything  # CITY's groups, shelf and bin untouched too
    assert scalar(engine, "SELECT parent_id FROM item_groups WHERE id = 0") == 3
    # The next id the database hands out does not clash with a restored one.
    run(engine, "INSERT INTO item_groups (organization_id, name) VALUES (1, 'new')")
    assert scalar(engine, "SELECT MAX(id) FROM item_groups") == 6


# --- all or nothing ------------------------------------------------------------------------------

def test_cancel_rolls_back(sqlite_engine, folder):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    wipe_and_change(sqlite_engine)
    before = db_digest(sqlite_engine)
    flag = threading.Event()

    def progress(p) -> None:
        if p.table_index == p.table_count - 1:
            flag.set()  # set during the last table: the check before COMMIT sees it
    with pytest.raises(Cancelled, match="nothing was changed"):
        apply_restore(Site(sqlite_engine, MAPPING), medp, archive, ADMIN, folder,
                      progress=progress, cancel=flag)
    assert db_digest(sqlite_engine) == before
    assert recent(sqlite_engine, ensure_tables(sqlite_engine)[1], medp.id)[0].outcome == \
        "cancelled"


def test_the_check_and_the_writing_collect_cycles_less_often_then_as_before(sqlite_engine,
                                                                           folder):
    """collector.py: a restore's rows start no collector pass, and the process collects as
    before once it is done."""
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    wipe_and_change(sqlite_engine)
    before = gc.get_threshold()
    seen = set()
    site = Site(sqlite_engine, MAPPING)
    plan = check_restore(site, medp, archive, restorer=ADMIN,
                         progress=lambda p: seen.add(("check", gc.get_threshold()[0])))
    assert gc.get_threshold() == before
    apply_restore(site, medp, plan, ADMIN, folder,
                  progress=lambda p: seen.add(("write", gc.get_threshold()[0])))
    rarer = max(before[0], CONTAINERS_PER_PASS)
    assert seen == {("check", rarer), ("write", rarer)}
    assert gc.get_threshold() == before


@pytest.mark.parametrize("dialect", ["mysql", "postgres"])
def test_a_database_that_goes_away_mid_restore_changes_nothing(engine, dialect, demo_db,
                                                              folder):
    medp = org_of(engine)
    archive = backup(engine, folder)
    wipe_and_change(engine)
    before = db_digest(engine)
    admin = create_engine(demo_db, isolation_level="AUTOCOMMIT")

    def kill_the_restore(p) -> None:
        if p.table_index >= p.table_count // 2 and p.rows_done > 0:
            with admin.connect() as conn:
                if dialect == "postgres":
                    conn.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname "
                        "= current_database() AND pid <> pg_backend_pid() AND state LIKE "
                        "'idle in transaction%'"))
                else:
                    ids = conn.execute(text(
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                        "AND ID <> CONNECTION_ID()")).scalars().all()
                    for pid in ids:
                        conn.execute(text(f"KILL {int(pid)}"))
    try:
        with pytest.raises(RestoreFailed) as failure:
            apply_restore(Site(engine, MAPPING), medp, archive, ADMIN, folder,
                          progress=kill_the_restore)
    finally:
        admin.dispose()
    assert "rolled back" in str(failure.value) and "\n" not in str(failure.value)
    assert db_digest(engine) == before


def test_a_key_taken_by_another_organization_is_refused_and_named(sqlite_engine, folder):
    engine = sqlite_engine
    medp = org_of(engine)
    archive = backup(engine, folder)
    run(engine, "DELETE FROM users WHERE username = 'medp.staff'")
    run(engine, "INSERT INTO users (organization_id, is_organization_owner, full_name, "
                "username, email, password, role, is_active) VALUES (2, false, 'Taken', "
                "'medp.staff', 'someone@else.example', 'x', 'staff', true)")
    before = db_digest(engine)
    plan = check_restore(Site(engine, MAPPING), medp, archive)
    assert not plan.ok
    assert "users" in plan.message and "'medp.staff'" in plan.message
    assert "another organization" in plan.message
    with pytest.raises(RestoreRefused):
        apply_restore(Site(engine, MAPPING), medp, plan, ADMIN, folder)
    assert db_digest(engine) == before


def test_a_clash_that_appears_after_the_check_rolls_back_and_is_named(sqlite_engine, folder):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    run(sqlite_engine, "DELETE FROM users WHERE username = 'medp.staff'")
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive)
    assert plan.ok
    take_username_elsewhere(sqlite_engine, "medp.staff")
    before = db_digest(sqlite_engine)
    with pytest.raises(RestoreFailed) as failure:
        apply_restore(Site(sqlite_engine, MAPPING), medp, plan, ADMIN, folder)
    assert "Table users" in str(failure.value) and "'medp.staff'" in str(failure.value)
    assert "rolled back" in str(failure.value)
    assert db_digest(sqlite_engine) == before


# --- refusals before anything changes ---------------------------------------------------------

def test_another_organizations_backup_is_refused_even_for_a_super_admin(sqlite_engine, folder):
    city_archive = backup(sqlite_engine, folder, "CITY")
    medp = org_of(sqlite_engine)
    before = db_digest(sqlite_engine)
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, city_archive)
    assert not plan.ok and "City Care Chemists" in plan.message
    assert "its own organization" in plan.message
    with pytest.raises(RestoreRefused):
        apply_restore(Site(sqlite_engine, MAPPING), medp, city_archive, Actor(1, "superadmin"),
                      folder)
    assert db_digest(sqlite_engine) == before
    assert not list_restore_points(folder, medp)
    entry = recent(sqlite_engine, ensure_tables(sqlite_engine)[1], medp.id)[0]
    assert entry.action == "restore" and entry.outcome == "refused"


def test_same_id_but_another_code_is_refused(sqlite_engine, folder):
    archive = backup(sqlite_engine, folder)
    run(sqlite_engine, "UPDATE organizations SET code = 'MEDX' WHERE id = 1")
    plan = check_restore(Site(sqlite_engine, MAPPING), org_of(sqlite_engine, "1"), archive)
    assert not plan.ok and "code MEDX" in plan.message


def test_schema_drift_dropped_columns_and_tables_need_consent(sqlite_engine, folder):
    medp = org_of(sqlite_engine)
    before = org_digest(sqlite_engine, medp.id)
    archive = backup(sqlite_engine, folder)
    run(sqlite_engine, "ALTER TABLE customers DROP COLUMN gstin")
    run(sqlite_engine, "DROP TABLE stock_transfer_outgoing_transaction_items")
    run(sqlite_engine, "ALTER TABLE customers ADD COLUMN loyalty_points INTEGER NOT NULL "
                       "DEFAULT 7")
    run(sqlite_engine, "DELETE FROM customers WHERE organization_id = 1 AND id NOT IN (SELECT "
                       "customer_id FROM sale_transactions WHERE customer_id IS NOT NULL) AND "
                       "id NOT IN (SELECT customer_id FROM customer_ledgers WHERE customer_id "
                       "IS NOT NULL)")
    changed = db_digest(sqlite_engine)
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive)
    assert not plan.ok
    assert "customers.gstin" in plan.message
    assert "stock_transfer_outgoing_transaction_items" in plan.message
    assert "--accept-dropped-columns" in plan.message
    assert db_digest(sqlite_engine) == changed

    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive, accept_dropped=True)
    assert plan.ok, plan.message
    assert set(plan.dropped) == {"customers.gstin", "stock_transfer_outgoing_transaction_items"}
    assert plan.added_columns == ["customers.loyalty_points"]
    apply_restore(Site(sqlite_engine, MAPPING), medp, plan, ADMIN, folder)
    after = org_digest(sqlite_engine, medp.id)
    assert after["sale_transactions"] == before["sale_transactions"]
    assert scalar(sqlite_engine, "SELECT MIN(loyalty_points) FROM customers") == 7
    assert scalar(sqlite_engine, "SELECT COUNT(*) FROM customers WHERE organization_id = 1") \
        == next(t.rows_in_backup for t in plan.tables if t.table == "customers")


def test_a_required_column_added_since_is_refused(sqlite_engine, folder):
    """A new NOT NULL column without a default cannot take a value for the backup's rows."""
    run(sqlite_engine, "CREATE TABLE notes (id INTEGER PRIMARY KEY, organization_id INTEGER, "
                       "body TEXT)")
    run(sqlite_engine, "INSERT INTO notes VALUES (1, 1, 'a')")
    archive = backup(sqlite_engine, folder)
    run(sqlite_engine, "DROP TABLE notes")
    run(sqlite_engine, "CREATE TABLE notes (id INTEGER PRIMARY KEY, organization_id INTEGER, "
                       "body TEXT, author TEXT NOT NULL)")
    plan = check_restore(Site(sqlite_engine, MAPPING), org_of(sqlite_engine), archive)
    assert not plan.ok and "notes.author" in plan.message


def test_rows_referring_to_removed_rows_are_shown_and_the_database_rules_apply(sqlite_engine,
                                                                           folder):
    """A row the backup does not have is removed; rows outside the restore that refer to it
    follow the database's ON DELETE rule, and the preview says so first."""
    medp = org_of(sqlite_engine)
    run(sqlite_engine, "CREATE TABLE user_notes (id INTEGER PRIMARY KEY, user_id INTEGER NOT "
                       "NULL REFERENCES users(user_id) ON DELETE CASCADE, note TEXT)")
    archive = backup(sqlite_engine, folder, fmt="seed")  # user_notes is not in it
    run(sqlite_engine, "INSERT INTO users (user_id, organization_id, is_organization_owner, "
                       "full_name, username, email, password, role, is_active) VALUES (500, 1, "
                       "0, 'New', 'medp.new', 'new@medp.example', 'x', 'staff', 1)")
    run(sqlite_engine, "INSERT INTO user_notes (user_id, note) VALUES (500, 'a'), (3, 'b')")
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive)
    assert plan.ok
    assert any("1 row of user_notes" in w and "deleted with them" in w for w in plan.warnings)
    apply_restore(Site(sqlite_engine, MAPPING), medp, plan, ADMIN, folder)
    assert scalar(sqlite_engine, "SELECT group_concat(note) FROM user_notes") == "b"

    run(sqlite_engine, "CREATE TABLE user_badges (id INTEGER PRIMARY KEY, user_id INTEGER "
                       "REFERENCES users(user_id))")  # no ON DELETE: the database refuses
    run(sqlite_engine, "INSERT INTO users (user_id, organization_id, is_organization_owner, "
                       "full_name, username, email, password, role, is_active) VALUES (501, 1, "
                       "0, 'New', 'medp.new2', 'new2@medp.example', 'x', 'staff', 1)")
    run(sqlite_engine, "INSERT INTO user_badges (user_id) VALUES (501)")
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive)
    assert not plan.ok and "1 row of user_badges" in plan.message


def test_triggers_are_named_in_the_preview(sqlite_engine, folder):
    run(sqlite_engine, "CREATE TRIGGER customers_touch AFTER INSERT ON customers BEGIN "
                       "SELECT 1; END")
    plan = check_restore(Site(sqlite_engine, MAPPING), org_of(sqlite_engine),
                         backup(sqlite_engine, folder))
    assert plan.ok and any("customers_touch" in w for w in plan.warnings)


def test_a_plan_is_refused_when_the_file_changed_since_the_check(sqlite_engine, folder,
                                                                 tmp_path):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    plan = check_restore(Site(sqlite_engine, MAPPING), medp, archive)
    run(sqlite_engine, "UPDATE customers SET name = 'x' WHERE id = 1")
    write_archive(Site(sqlite_engine, MAPPING), medp.id, archive, ADMIN, trigger="manual")
    before = db_digest(sqlite_engine)
    with pytest.raises(RestoreRefused, match="changed"):
        apply_restore(Site(sqlite_engine, MAPPING), medp, plan, ADMIN, folder)
    assert db_digest(sqlite_engine) == before
    with pytest.raises(RestoreRefused, match="another organization"):
        apply_restore(Site(sqlite_engine, MAPPING), org_of(sqlite_engine, "CITY"),
                      check_restore(Site(sqlite_engine, MAPPING), medp, archive), ADMIN, folder)


def test_restore_points_keep_the_newest_and_never_the_one_being_restored(sqlite_engine,
                                                                         folder):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    clock = FakeClock()
    for _ in range(3):
        clock.advance(minutes=1)
        run(sqlite_engine, "UPDATE batches SET quantity = quantity + 1 WHERE organization_id = 1")
        apply_restore(Site(sqlite_engine, MAPPING, clock), medp, archive, ADMIN, folder,
                      restore_points_kept=2)
    points = list_restore_points(folder, medp)
    assert [p.name for p in points] == ["org_MEDP_restore-point_20261125-100300.zip",
                                        "org_MEDP_restore-point_20261125-100200.zip"]
    # Restoring the oldest kept point with a limit of 1 keeps that file anyway.
    clock.advance(minutes=1)
    apply_restore(Site(sqlite_engine, MAPPING, clock), medp, points[1], ADMIN, folder,
                  restore_points_kept=1)
    assert points[1].exists() and len(list_restore_points(folder, medp)) == 2


def test_a_missing_backup_folder_drive_stops_before_any_change(sqlite_engine, folder, tmp_path):
    medp = org_of(sqlite_engine)
    archive = backup(sqlite_engine, folder)
    wipe_and_change(sqlite_engine)
    before = db_digest(sqlite_engine)
    with pytest.raises(DesktopBackupError, match="restore point could not be saved|does not"):
        apply_restore(Site(sqlite_engine, MAPPING), medp, archive, ADMIN,
                      tmp_path / "unplugged" / "drive")
    assert db_digest(sqlite_engine) == before
