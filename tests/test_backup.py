"""The backup engine: what goes in, exact values, weekday slots, nothing lost, records."""

from __future__ import annotations

import gc
import json
import os
import stat
import threading
import weakref
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from desktop_backup import backup as backup_module
from desktop_backup import opening
from desktop_backup.backup import WEB_APP_DIR, daily_backup_due, run_backup, slot_filename
from desktop_backup.collector import CONTAINERS_PER_PASS, rarer_passes
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import ensure_tables, recent, week_slots
from desktop_backup.opening import verify_archive
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Cancelled, Site
from tests.archives import archive_manifest, archive_rows
from tests.clock import FakeClock
from tests.sample_types import LABEL, NOTE, SAMPLE_DDL, insert_samples

MAPPING = SchemaMapping()
ADMIN = Actor(3, "medp.admin")


@pytest.fixture
def engine(demo_db):
    engine = open_engine(demo_db)
    yield engine
    engine.dispose()


@pytest.fixture
def folder(tmp_path) -> Path:
    """The backup folder: not there yet, as on a first run (its parent exists)."""
    return tmp_path / "backups"


@pytest.fixture
def sqlite_engine(sqlite_demo_db):
    engine = open_engine(sqlite_demo_db)
    yield engine
    engine.dispose()


def org_of(engine, key="MEDP"):
    with engine.connect() as conn:
        return find_organization(conn, MAPPING, key)


def scalar(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_backup_holds_exactly_the_organizations_rows(engine, folder):
    org = org_of(engine)
    result = run_backup(Site(engine, MAPPING, FakeClock()), org, ADMIN, folder, trigger="cli")
    rows = archive_rows(result.path)
    manifest = archive_manifest(result.path)
    # Tables with the tenant column: every row of this organization and no other.
    for table in ("customers", "items", "sale_transactions", "companies", "users"):
        expected = scalar(engine, f"SELECT COUNT(*) FROM {table} WHERE organization_id = 1")
        assert len(rows[table]) == expected > 0
        assert {r["organization_id"] for r in rows[table]} == {1}
    # Tables reached only through a parent, at their parents' rows.
    user_ids = {u["user_id"] for u in rows["users"]}
    assert rows["user_permissions"] and {r["user_id"] for r in rows["user_permissions"]} <= user_ids
    assert len(rows["user_permissions"]) == scalar(
        engine, "SELECT COUNT(*) FROM user_permissions p JOIN users u ON u.user_id = p.user_id "
                "WHERE u.organization_id = 1")
    returns = {r["id"] for r in rows["sale_return_transactions"]}
    assert {r["sale_return_transaction_id"] for r in rows["sale_return_transaction_items"]} \
        <= returns
    assert manifest.table("user_permissions").selection["how"] == "parent"
    assert manifest.table("customers").selection == {"how": "tenant_column",
                                                     "column": "organization_id"}
    # A table with both the tenant column and a parent path is taken by the tenant column.
    assert manifest.table("sale_transaction_items").selection["how"] == "tenant_column"
    # Shared reference tables, the tenant table and the console's own tables stay out.
    for table in ("states", "hsn_codes", "subscription_plans", "organizations",
                  "auto_backup_logs", "desktop_backup_audit", "migrations"):
        assert table not in rows
    # The super admin (organization_id NULL) is not part of any organization's backup.
    assert "superadmin" not in {u["username"] for u in rows["users"]}
    # The organization's own row travels in the metadata.
    assert manifest.organization["code"] == "MEDP"
    assert manifest.organization["row"]["name"] == org.name
    assert result.rows == sum(len(r) for r in rows.values()) == manifest.total_rows
    assert result.tables == {name: len(r) for name, r in rows.items()}


def test_new_tables_are_found_by_reflection_and_auto_backup_tables_narrows(sqlite_engine,
                                                                           folder):
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE loyalty_cards (id INTEGER PRIMARY KEY, "
                          "organization_id INTEGER, card_no VARCHAR(20))"))
        conn.execute(text("CREATE TABLE loyalty_points (id INTEGER PRIMARY KEY, card_id INTEGER "
                          "NOT NULL REFERENCES loyalty_cards(id) ON DELETE CASCADE, points INT)"))
        conn.execute(text("INSERT INTO loyalty_cards VALUES (1, 1, 'A1'), (2, 2, 'B1'), "
                          "(3, NULL, 'orphan')"))
        conn.execute(text("INSERT INTO loyalty_points VALUES (1, 1, 10), (2, 2, 20), (3, 3, 5)"))
    org = org_of(sqlite_engine)
    result = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org, ADMIN, folder,
                        trigger="cli")
    rows = archive_rows(result.path)
    assert [r["card_no"] for r in rows["loyalty_cards"]] == ["A1"]
    assert [r["points"] for r in rows["loyalty_points"]] == [10]

    with sqlite_engine.begin() as conn:
        conn.execute(text("UPDATE organizations SET auto_backup_tables = :t WHERE id = 1"),
                     {"t": json.dumps(["customers", "loyalty_points"])})
    narrowed = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN,
                          folder, trigger="manual", force=True)
    assert set(narrowed.tables) == {"customers", "loyalty_points"}
    assert archive_rows(narrowed.path)["loyalty_points"] == rows["loyalty_points"]


def test_values_are_written_exactly(engine, dialect, folder):
    with engine.begin() as conn:
        for ddl in SAMPLE_DDL[dialect]:
            conn.execute(text(ddl))
        insert_samples(conn, dialect)
    result = run_backup(Site(engine, MAPPING, FakeClock()), org_of(engine), ADMIN, folder,
                        trigger="cli")
    rows = {r["id"]: r for r in archive_rows(result.path)["value_samples"]}
    assert set(rows) == {0, 1}  # id 0 kept, the other organization's row left out
    full, empty = rows[0], rows[1]
    assert all(v is None for k, v in empty.items() if k not in ("id", "organization_id"))
    assert full["label"] == LABEL and full["note"] == NOTE
    assert full["day"] == "2026-03-29"
    assert full["ratio"] == 0.1
    kinds = {c["name"]: c["kind"] for c in
             archive_manifest(result.path).table("value_samples").columns}
    assert kinds["blob_data"] == "binary" and kinds["amount"] == "decimal"
    assert full["blob_data"] == "AP9kYXRh"  # base64 of b"\x00\xffdata"
    if dialect == "sqlite":
        return  # SQLite keeps what its type affinity made of the text; checked on restore
    assert full["amount"] == "0.000001"
    assert full["big_amount"] == "12345678901234567890.1234567890"
    assert full["moment"] == "2026-03-29 02:30:00.123456"
    assert full["doc"] == '{"a": [1, 2],  "s": "x/y"}'
    assert full["kind"] == "b"
    assert full["opened"] == "23:59:58"
    assert full["flag"] in (True, 1)
    # TIMESTAMP values are read in UTC, whatever the server's zone: no hour shifts.
    assert full["stamp"].startswith("2026-03-29 01:30:00")
    assert archive_manifest(result.path).source["session_time_zone"] == "+00:00"


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])  # MariaDB stores no NaN/infinity
def test_infinities_and_nan_are_written_as_such_never_as_null(engine, dialect, folder):
    """The fast encoder writes a non-finite float as null; the backup must notice wherever a
    float can be: a float column, and on SQLite any column (it types values, not columns)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE gauges (id INTEGER PRIMARY KEY, organization_id INTEGER"
                          " NOT NULL, reading DOUBLE PRECISION, counter INTEGER)"))
        if dialect == "postgres":
            conn.execute(text("INSERT INTO gauges VALUES (1, 1, 'Infinity', 1), "
                              "(2, 1, '-Infinity', 2), (3, 1, 'NaN', 3), (4, 1, NULL, 4)"))
        else:  # 9e999 is SQLite's infinity (a NaN would be stored as NULL)
            conn.execute(text("INSERT INTO gauges VALUES (1, 1, 9e999, 1), "
                              "(2, 1, -9e999, 2), (3, 1, 0.5, 3), (4, 1, NULL, 4)"))
            conn.execute(text("CREATE TABLE tallies (id INTEGER PRIMARY KEY, "
                              "organization_id INTEGER NOT NULL, counter INTEGER)"))
            conn.execute(text("INSERT INTO tallies VALUES (1, 1, 9e999), (2, 1, NULL)"))
    result = run_backup(Site(engine, MAPPING, FakeClock()), org_of(engine), ADMIN, folder,
                        trigger="cli")
    rows = {r["id"]: r for r in archive_rows(result.path)["gauges"]}
    assert rows[1]["reading"] == float("inf") and rows[2]["reading"] == float("-inf")
    assert rows[4]["reading"] is None
    if dialect == "postgres":
        assert rows[3]["reading"] != rows[3]["reading"]  # NaN
    else:  # in a table whose columns are all declared INTEGER
        tallies = archive_rows(result.path)["tallies"]
        assert [r["counter"] for r in tallies] == [float("inf"), None]


def test_weekday_slots_replace_last_weeks_file_and_skip_when_done(sqlite_engine, folder):
    clock = FakeClock()
    org = org_of(sqlite_engine)
    first = run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    assert first.path == folder / "org_MEDP_wednesday_backup.zip"
    again = run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    assert again.skipped and again.ok and "already succeeded" in again.message
    assert first.path.stat().st_mtime_ns == again.path.stat().st_mtime_ns

    clock.advance(days=1)
    thursday = run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    assert thursday.path.name == "org_MEDP_thursday_backup.zip"
    with sqlite_engine.begin() as conn:
        conn.execute(text("DELETE FROM customer_ledgers WHERE organization_id = 1"))
    clock.advance(days=6)  # next Wednesday replaces this Wednesday
    replaced = run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    assert replaced.path == first.path and not replaced.skipped
    assert archive_rows(replaced.path)["customer_ledgers"] == []
    assert sorted(p.name for p in folder.iterdir()) == [
        "org_MEDP_thursday_backup.zip", "org_MEDP_wednesday_backup.zip"]
    slots = week_slots(sqlite_engine, ensure_tables(sqlite_engine)[0], org.id)
    assert slots["wednesday"].backup_date.date() == clock().date()
    assert slots["wednesday"].status == "success" and slots["thursday"].status == "success"
    if os.name == "posix":
        assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_force_runs_again_and_the_day_rule_reads_the_database(sqlite_engine, folder):
    clock = FakeClock()
    org = org_of(sqlite_engine)
    assert daily_backup_due(sqlite_engine, org, is_super_admin=False, clock=clock)
    assert not daily_backup_due(sqlite_engine, org, is_super_admin=True, clock=clock)
    run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    assert not daily_backup_due(sqlite_engine, org, is_super_admin=False, clock=clock)
    forced = run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="manual",
                        force=True)
    assert not forced.skipped
    clock.advance(days=1)
    assert daily_backup_due(sqlite_engine, org, is_super_admin=False, clock=clock)
    with sqlite_engine.begin() as conn:
        conn.execute(text("UPDATE organizations SET auto_backup_enabled = 0 WHERE id = 1"))
    assert not daily_backup_due(sqlite_engine, org_of(sqlite_engine), is_super_admin=False,
                                clock=clock)


def _last_week_then_today(engine, folder, clock):
    """Make last Wednesday's backup, then move the clock to this Wednesday."""
    org = org_of(engine)
    clock.advance(days=-7)
    old = run_backup(Site(engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    clock.advance(days=7)
    return org, old.path, old.path.read_bytes()


def test_a_cancelled_backup_keeps_last_weeks_copy(sqlite_engine, folder):
    clock = FakeClock()
    org, path, before = _last_week_then_today(sqlite_engine, folder, clock)
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.rows_done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login",
                   progress=progress, cancel=cancel)
    assert path.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left
    # A cancel changed nothing, so the slot still says what it said: last week's backup.
    # The web app's table has no "cancelled" status; the history says "cancelled".
    slot = week_slots(sqlite_engine, ensure_tables(sqlite_engine)[0], org.id)["wednesday"]
    assert slot.status == "success" and slot.path == str(path)
    assert slot.backup_date.date() == clock().date() - timedelta(days=7)
    audit = recent(sqlite_engine, ensure_tables(sqlite_engine)[1], org.id)
    assert audit[0].outcome == "cancelled" and "Last week's copy was kept" in audit[0].message


@pytest.mark.parametrize("damage", ["bad CRC", "no longer inflates"])
def test_a_backup_damaged_on_its_way_to_disk_is_refused_and_last_weeks_copy_kept(
        sqlite_engine, folder, monkeypatch, damage):
    """The re-read after writing inflates every member (on two threads) and checks its CRC:
    a member the disk changed makes the backup fail with a sentence naming it."""
    clock = FakeClock()
    org, path, before = _last_week_then_today(sqlite_engine, folder, clock)
    real_check = backup_module._check_written
    damaged = {}

    def check_after_the_disk_changed_a_byte(source, fmt):
        with zipfile.ZipFile(source) as zf:
            info = max(zf.infolist(), key=lambda i: i.compress_size)
        damaged["member"] = info.filename
        raw = bytearray(Path(source).read_bytes())
        if damage == "bad CRC":  # the data inflates, to other bytes than were written
            at = raw.index(b"PK\x01\x02")  # the central directory's entries
            while raw[at + 46:at + 46 + len(info.filename)] != info.filename.encode():
                at = raw.index(b"PK\x01\x02", at + 4)
            raw[at + 16:at + 20] = (info.CRC ^ 1).to_bytes(4, "little")
        else:
            start = info.header_offset + 30 + len(info.filename) + 40  # into the data
            raw[start:start + 64] = bytes(64)
        Path(source).write_bytes(raw)
        real_check(source, fmt)

    monkeypatch.setattr(backup_module, "_check_written", check_after_the_disk_changed_a_byte)
    with pytest.raises(DesktopBackupError, match="could not be read back") as caught:
        run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    assert f"'{damaged['member']}' was damaged while writing" in str(caught.value)
    assert "copy was kept" in str(caught.value)
    assert path.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == [path.name]


def test_a_crashed_runs_leftovers_are_swept_by_the_next_run(sqlite_engine, folder):
    folder.mkdir()
    leftover = folder / ".org_MEDP_wednesday_backup.zip.deadbeef.partial"
    leftover.write_bytes(b"half a backup from a run that was killed")
    other = folder / ".org_CITY_wednesday_backup.zip.cafe0000.partial"  # not our slot
    other.write_bytes(b"another organization's run in progress")
    run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN, folder,
               trigger="login")
    assert not leftover.exists() and other.exists()


def test_progress_reports_every_table_up_to_the_total(sqlite_engine, folder):
    events = []
    result = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN,
                        folder, trigger="cli", progress=events.append)
    assert {e.table for e in events} == set(result.tables)
    assert [e.rows_done for e in events] == sorted(e.rows_done for e in events)
    assert events[-1].rows_done == events[-1].rows_total == result.rows


def test_a_backup_collects_cycles_less_often_and_then_as_before(sqlite_engine, folder):
    """Rows made and dropped a batch at a time start no collector pass (collector.py); once
    the backup ends, done or cancelled, the process collects as it did before."""
    before = gc.get_threshold()
    during = []
    run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN, folder,
               trigger="cli", progress=lambda p: during.append(gc.get_threshold()[0]))
    assert set(during) == {max(before[0], CONTAINERS_PER_PASS)}
    assert gc.get_threshold() == before

    cancel = threading.Event()

    with pytest.raises(Cancelled):
        run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN,
                   folder, trigger="cli", force=True, progress=lambda p: cancel.set(),
                   cancel=cancel)
    assert gc.get_threshold() == before


@pytest.fixture
def collector_setting():
    """The test changes the process's collector setting; it gets the one it found back."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_overlapping_backups_put_the_collector_back_when_the_last_ends(collector_setting):
    gc.set_threshold(700, 10, 10)
    first, second = rarer_passes(), rarer_passes()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == CONTAINERS_PER_PASS  # the second still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)

    gc.set_threshold(0, 10, 10)  # switched off by someone: it stays off
    with rarer_passes():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_collect_first_frees_the_garbage_there_is_before_the_work(collector_setting):
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    gone = weakref.ref(a)
    gc.set_threshold(0, 10, 10)  # no pass but the one asked for
    del a, b
    assert gone() is not None
    with rarer_passes(collect_first=True):
        assert gone() is None


def test_a_missing_backup_drive_fails_clearly(sqlite_engine, folder):
    clock = FakeClock()
    missing = folder / "E-drive" / "Backups"
    with pytest.raises(DesktopBackupError, match="does not exist"):
        run_backup(Site(sqlite_engine, MAPPING, clock), org_of(sqlite_engine), ADMIN, missing,
                   trigger="login")
    slot = week_slots(sqlite_engine, ensure_tables(sqlite_engine)[0], 1)["wednesday"]
    assert slot.status == "failed" and "does not exist" in slot.error_message
    assert not missing.exists()


def test_a_full_disk_keeps_last_weeks_copy(sqlite_engine, sqlite_demo_db, folder, tmp_path):
    """A real full disk: a tiny tmpfs in a private mount namespace holds last week's copy."""
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-r", "-m", "true"]).returncode != 0:
        pytest.skip("full-disk test needs Linux mount namespaces (unshare -r -m)")
    clock = FakeClock()
    clock.advance(days=-7)
    run_backup(Site(sqlite_engine, MAPPING, clock), org_of(sqlite_engine), ADMIN, folder,
               trigger="login")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    child = Path(__file__).with_name("full_disk_child.py")
    run = subprocess.run([unshare, "-r", "-m", sys.executable, str(child), sqlite_demo_db,
                          str(folder), str(mount)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert "full" in report["error"] and report["error"].endswith(" Last week's copy was kept.")
    assert report["files"] == ["org_MEDP_wednesday_backup.zip"]  # no temporary file left
    assert report["intact"]
    slot = week_slots(sqlite_engine, ensure_tables(sqlite_engine)[0], 1)["wednesday"]
    assert slot.status == "failed" and "full" in slot.error_message


def test_seed_format_is_what_the_web_app_writes(sqlite_engine, folder):
    result = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine, "CITY"),
                        ADMIN, folder, trigger="cli", fmt="seed")
    with zipfile.ZipFile(result.path) as zf:
        assert zf.namelist() == ["org_CITY_wednesday_backup.json"]
        raw = zf.read("org_CITY_wednesday_backup.json").decode("ascii")
    data = json.loads(raw)
    assert set(data) == {"metadata", "tables", "organization"}
    meta = data["metadata"]
    assert meta["organization_id"] == 2 and meta["organization_code"] == "CITY"
    assert meta["day_of_week"] == "wednesday" and meta["created_at"].endswith("+05:30")
    # Only tables with organization_id: the web app's restore deletes by that column.
    assert "user_permissions" not in data["tables"] and "customers" in data["tables"]
    customers = data["tables"]["customers"]
    assert customers["count"] == len(customers["data"]) > 0
    assert all(row["organization_id"] == 2 for row in customers["data"])
    assert "\\/" in raw and "/" not in raw.replace("\\/", "")  # PHP escapes every slash
    assert data["organization"]["code"] == "CITY"
    report = verify_archive(result.path)
    assert report.ok and report.kind == "seed" and report.organization["id"] == 2


def test_the_web_app_format_goes_beside_the_slots_and_says_who_made_it(sqlite_engine, folder):
    """`backup --format seed --force` after the day's backup: the native slot is kept, the
    web-app file goes into its own folder, and it says it is ours and partial."""
    city = org_of(sqlite_engine, "CITY")
    native = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), city, ADMIN, folder,
                        trigger="cli")
    before = native.path.read_bytes()
    seed = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), city, ADMIN, folder, trigger="cli",
                      fmt="seed", force=True)
    assert native.path.read_bytes() == before  # never over the native weekday slot
    assert seed.path == folder / WEB_APP_DIR / "org_CITY_wednesday_backup.zip"
    assert seed.path.parent.stat().st_mode & 0o777 == 0o700
    with zipfile.ZipFile(seed.path) as zf:
        meta = json.loads(zf.read("org_CITY_wednesday_backup.json"))["metadata"]
    assert meta["made_by"].startswith("Desktop Backup ") and meta["backup_id"]
    assert "user_permissions" in meta["scope"]["left_out"]
    report = verify_archive(seed.path)
    assert report.ok and "made by Desktop Backup in the web app's format" in report.message
    assert f"partial: {len(seed.tables)} of {meta['scope']['of']} tables" in report.message
    assert "complete" not in report.message and report.backup_id == meta["backup_id"]
    assert "(partial)" in seed.message


def test_the_web_apps_backups_are_read_in_both_layouts(tmp_path):
    payload = {"metadata": {"organization_id": 7, "organization_name": "Café Ñandú",
                            "organization_code": "CAFE",
                            "created_at": "2026-01-12T12:14:11+05:30",
                            "day_of_week": "monday", "backup_type": "auto_daily"},
               "tables": {"customers": {"count": 1, "data": [
                   {"id": 1, "organization_id": 7, "name": "A/B", "balance": "116.68",
                    "created_at": "2026-01-12 12:14:11", "note": None}]}},
               "organization": {"id": 7, "name": "Café Ñandú", "code": "CAFE"}}
    text_json = json.dumps(payload, indent=4).replace("/", "\\/")
    plan = tmp_path / "org_CAFE_monday_backup.zip"
    with zipfile.ZipFile(plan, "w") as zf:
        zf.writestr("org_CAFE_monday_backup.json", text_json)
    app = tmp_path / "org_CAFE_monday_full_backup.zip"
    with zipfile.ZipFile(app, "w") as zf:
        zf.writestr("database/database_backup.json", text_json)
        zf.writestr("_backup_metadata.json", json.dumps(
            {"backup_type": "full_auto_backup", "includes": {"database": True, "code": True}}))
        zf.writestr("code/app/Http/Kernel.php", "<?php // never extracted, never run")
    for path in (plan, app):
        report = verify_archive(path)
        assert report.ok, report.message
        assert report.organization == {"id": 7, "code": "CAFE", "name": "Café Ñandú"}
        assert report.tables == {"customers": 1}
        assert "made by the web app" in report.message  # not by us: it says nothing of that
        row = archive_rows(path)["customers"][0]
        assert row["balance"] == "116.68" and row["name"] == "A/B" and row["note"] is None


def test_verify_reports_damage_in_one_sentence(sqlite_engine, folder):
    result = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN,
                        folder, trigger="cli")
    good = verify_archive(result.path)
    assert good.ok and "complete, undamaged" in good.message and good.rows == result.rows
    data = bytearray(result.path.read_bytes())
    truncated = folder / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    bad = verify_archive(truncated)
    assert not bad.ok and "cannot be used" in bad.message and "\n" not in bad.message


def test_verify_reads_with_rarer_collector_passes_then_as_before(sqlite_engine, folder,
                                                                 monkeypatch):
    """collector.py: a verify's rows start no collector pass; a damaged file changes nothing
    of the process's setting either."""
    result = run_backup(Site(sqlite_engine, MAPPING, FakeClock()), org_of(sqlite_engine), ADMIN,
                        folder, trigger="cli")
    before = gc.get_threshold()
    during = []
    original = opening.judge

    def judge(*args):  # judged after every row was read, still inside the verify
        during.append(gc.get_threshold()[0])
        return original(*args)

    monkeypatch.setattr(opening, "judge", judge)
    assert verify_archive(result.path).ok
    assert during == [max(before[0], CONTAINERS_PER_PASS)]
    assert gc.get_threshold() == before
    truncated = folder / "truncated.zip"
    truncated.write_bytes(result.path.read_bytes()[:1000])
    assert not verify_archive(truncated).ok
    assert gc.get_threshold() == before


WINDOWS_PATH = "C:\\xampp\\htdocs\\billing\\storage\\app\\backups\\org_MEDP_monday_backup.zip"


def test_the_web_apps_log_table_is_used_as_it_is(engine, dialect, folder):
    """A table the web app created (enum status, foreign keys, a Windows path) is kept."""
    enum = ("ENUM('success','failed','in_progress')" if dialect == "mysql"
            else "VARCHAR(20)")
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    pk = ("INTEGER PRIMARY KEY" if dialect == "sqlite" else
          "BIGSERIAL PRIMARY KEY" if dialect == "postgres" else
          "BIGINT AUTO_INCREMENT PRIMARY KEY")
    with engine.begin() as conn:
        conn.execute(text(
            f"CREATE TABLE auto_backup_logs (id {pk}, organization_id {big} NOT NULL "
            f"REFERENCES organizations(id) ON DELETE CASCADE, user_id {big} NOT NULL "
            f"REFERENCES users(user_id) ON DELETE CASCADE, day_of_week VARCHAR(255) NOT NULL, "
            f"backup_filename VARCHAR(255) NOT NULL, backup_path VARCHAR(255) NOT NULL, "
            f"backup_size {big} NOT NULL DEFAULT 0, status {enum} NOT NULL DEFAULT "
            f"'in_progress', error_message TEXT NULL, backup_date TIMESTAMP NULL, "
            f"created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL, "
            f"CONSTRAINT unique_org_day_backup UNIQUE (organization_id, day_of_week))"))
        conn.execute(text(
            "INSERT INTO auto_backup_logs (organization_id, user_id, day_of_week, "
            "backup_filename, backup_path, backup_size, status, backup_date) VALUES "
            "(1, 3, 'monday', 'org_MEDP_monday_backup.zip', :path, 1234, 'success', "
            "'2026-11-23 00:00:00')"), {"path": WINDOWS_PATH})
    org = org_of(engine)
    run_backup(Site(engine, MAPPING, FakeClock()), org, ADMIN, folder, trigger="login")
    slots = week_slots(engine, ensure_tables(engine)[0], org.id)
    assert slots["monday"].path == WINDOWS_PATH
    assert slots["wednesday"].status == "success"
    assert slots["wednesday"].filename == "org_MEDP_wednesday_backup.zip"
    assert scalar(engine, "SELECT COUNT(*) FROM auto_backup_logs") == 2


def test_slot_names_use_the_code_or_the_id(sqlite_engine):
    org = org_of(sqlite_engine)
    assert slot_filename(org, "friday") == "org_MEDP_friday_backup.zip"
    no_code = type(org)(**{**org.__dict__, "code": None})
    assert slot_filename(no_code, "friday") == "org_id-1_friday_backup.zip"


def test_audit_records_every_backup(sqlite_engine, folder):
    clock = FakeClock()
    org = org_of(sqlite_engine)
    result = run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    run_backup(Site(sqlite_engine, MAPPING, clock), org, ADMIN, folder, trigger="login")
    entries = recent(sqlite_engine, ensure_tables(sqlite_engine)[1], org.id)
    assert [(e.action, e.outcome) for e in entries] == [("skipped", "skipped"),
                                                        ("backup", "success")]
    done = entries[1]
    assert done.username == "medp.admin" and done.trigger == "login"
    assert done.rows == result.rows and done.bytes == result.size
    assert done.file == str(result.path) and done.duration_ms is not None
    assert done.occurred_at.date() == clock().date()
    assert timedelta(0) <= clock().replace(tzinfo=None) - done.occurred_at < timedelta(minutes=1)


def test_an_older_audit_table_gains_the_identity_columns_and_keeps_its_entries(tmp_path,
                                                                              folder):
    """A database whose audit was made by an earlier console: its entries stay, the backup
    id and the restore point get columns of their own, and the next backup records its id."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE desktop_backup_audit (id INTEGER PRIMARY KEY, occurred_at "
                "DATETIME NOT NULL, organization_id BIGINT, user_id BIGINT, username "
                "VARCHAR(255), action VARCHAR(30) NOT NULL, \"trigger\" VARCHAR(20), outcome "
                "VARCHAR(20) NOT NULL, day_of_week VARCHAR(10), file VARCHAR(1024), rows "
                "BIGINT, bytes BIGINT, duration_ms BIGINT, message TEXT, workstation "
                "VARCHAR(255))"))
            conn.execute(text(
                "INSERT INTO desktop_backup_audit (occurred_at, organization_id, action, "
                "outcome, message) VALUES ('2026-11-20 09:00:00', 1, 'backup', 'success', "
                "'21 tables')"))
        _slots, audit = ensure_tables(engine)
        assert {"backup_id", "restore_point"} <= set(audit.c.keys())
        old = recent(engine, audit, 1)
        assert [(e.message, e.backup_id) for e in old] == [("21 tables", None)]
        ensure_tables(engine)  # a second look adds nothing
    finally:
        engine.dispose()


def test_every_backup_has_its_own_identity_in_its_manifest_and_the_audit(sqlite_engine,
                                                                          folder):
    clock = FakeClock()
    first = run_backup(Site(sqlite_engine, MAPPING, clock), org_of(sqlite_engine), ADMIN, folder,
                       trigger="cli")
    first_id = archive_manifest(first.path).backup_id
    clock.advance(minutes=42)
    second = run_backup(Site(sqlite_engine, MAPPING, clock), org_of(sqlite_engine), ADMIN, folder,
                        trigger="cli", force=True)
    second_id = archive_manifest(second.path).backup_id
    assert len(first_id) == len(second_id) == 32 and first_id != second_id
    audit = recent(sqlite_engine, ensure_tables(sqlite_engine)[1], 1)
    assert [e.backup_id for e in audit if e.action == "backup"] == [second_id, first_id]
    assert verify_archive(second.path).backup_id == second_id
