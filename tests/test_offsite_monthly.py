"""Monthly copies off-site (issue 19, point 6): the last backup of each finished month is
copied on the remote, checked, kept for N months, and older ones pruned only after a newer
one was checked. Against a real folder remote and `rclone serve s3`."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from desktop_backup.cli import main
from desktop_backup.config import AppPaths, SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.history import ensure_tables, recent
from desktop_backup.offsite import Rclone, parse_remote
from desktop_backup.offsite_monthly import MONTHLY_DIR, keep_monthly, monthly_name
from desktop_backup.offsite_queue import enqueue, push
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor
from tests.rclone_servers import Server

pytest_plugins = ["tests.keyring_fixtures"]
ADMIN = Actor(1, "medp.admin")


@pytest.fixture(params=["folder", "s3"])
def server(request, tmp_path):
    srv = Server(request.param, tmp_path / "server").start()
    yield srv
    srv.stop()


@pytest.fixture
def shop(sqlite_demo_db, server, tmp_path):
    """The demo organization MEDP with a remote; `backup(weekday, made, content)` puts a
    slot file in the backup folder and sends it off-site as of `made`."""
    engine = open_engine(sqlite_demo_db)
    with engine.connect() as conn:
        org = find_organization(conn, SchemaMapping(), "MEDP")
    rc = Rclone(*parse_remote(server.remote))
    folder = tmp_path / "backups"
    folder.mkdir()

    def backup(weekday: str, made: datetime, content: bytes) -> Path:
        path = folder / f"org_MEDP_{weekday}_backup.zip"
        path.write_bytes(content)
        enqueue(engine, org.id, weekday, path, made)
        assert push(engine, rc, org, ADMIN, made).sent == [weekday]
        return path

    yield engine, rc, org, backup, server.shop / "org_1_MEDP" / MONTHLY_DIR
    engine.dispose()


def _months(monthly: Path) -> dict[str, str]:
    """YYYY-MM → SHA-256 of the monthly copies on the remote's disk."""
    return {p.name.split("_")[2]: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(monthly.glob("org_*"))} if monthly.exists() else {}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_monthly_name_replaces_the_weekday_with_the_month():
    assert monthly_name("org_MEDP_friday_backup.zip", "2026-11") == "org_MEDP_2026-11_backup.zip"
    assert monthly_name("org_id-7_monday_backup.zip.age", "2026-01") == \
        "org_id-7_2026-01_backup.zip.age"


def test_the_last_backup_of_each_finished_month_is_kept_and_old_months_pruned(shop):
    engine, rc, org, backup, monthly = shop
    backup("friday", datetime(2026, 10, 30, 18, 0), b"october friday")
    backup("saturday", datetime(2026, 10, 31, 18, 0), b"october's last")
    backup("monday", datetime(2026, 11, 30, 18, 0), b"november's last")
    backup("wednesday", datetime(2026, 12, 2, 9, 0), b"this month, not finished")

    report = keep_monthly(engine, rc, org, ADMIN, datetime(2026, 12, 2, 9, 5), months=2)
    assert report.kept == ["2026-10", "2026-11"] and not report.removed and not report.failed
    assert _months(monthly) == {"2026-10": _sha(b"october's last"),
                                "2026-11": _sha(b"november's last")}
    assert not [p for p in monthly.iterdir() if "partial" in p.name]

    # Nothing new: a second pass copies nothing and, with fewer months asked, prunes
    # nothing either (only a newly checked copy allows a prune).
    again = keep_monthly(engine, rc, org, ADMIN, datetime(2026, 12, 2, 12, 0), months=1)
    assert again.kept == [] and again.removed == [] and len(_months(monthly)) == 2

    # January: December's last backup is copied, then only the newest month is kept.
    (monthly / "notes.txt").write_text("the shop's own file")
    backup("thursday", datetime(2026, 12, 31, 18, 0), b"december's last")
    later = keep_monthly(engine, rc, org, ADMIN, datetime(2027, 1, 2, 9, 0), months=1)
    assert later.kept == ["2026-12"] and later.removed == ["2026-10", "2026-11"]
    assert _months(monthly) == {"2026-12": _sha(b"december's last")}
    assert (monthly / "notes.txt").read_text() == "the shop's own file"

    _slots, audit = ensure_tables(engine)
    uploads = [e for e in recent(engine, audit, org.id, 50) if e.trigger == "monthly"]
    assert [e.outcome for e in uploads] == ["success", "success"]
    assert "2026-12" in uploads[0].message and "2026-10" in uploads[0].message


def test_a_copy_that_does_not_match_its_backup_is_discarded_and_nothing_is_pruned(shop):
    engine, rc, org, backup, monthly = shop
    backup("saturday", datetime(2026, 10, 31, 18, 0), b"october's last")
    assert keep_monthly(engine, rc, org, ADMIN, datetime(2026, 11, 2), months=1).kept == \
        ["2026-10"]
    slot = backup("monday", datetime(2026, 11, 30, 18, 0), b"november's last")
    # Someone changes the remote's Monday file after it was checked.
    (monthly.parent / slot.name).write_bytes(b"tampered with on the remote")

    report = keep_monthly(engine, rc, org, ADMIN, datetime(2026, 12, 2), months=1)
    assert report.kept == [] and "did not match" in report.failed["2026-11"]
    assert _months(monthly) == {"2026-10": _sha(b"october's last")}  # the old one stays
    _slots, audit = ensure_tables(engine)
    last = recent(engine, audit, org.id, 1)[0]
    assert last.trigger == "monthly" and last.outcome == "failed"


def test_monthly_copies_are_off_by_default(shop):
    engine, rc, org, backup, monthly = shop
    backup("saturday", datetime(2026, 10, 31, 18, 0), b"october's last")
    assert keep_monthly(engine, rc, org, ADMIN, datetime(2026, 11, 2), months=0).kept == []
    assert _months(monthly) == {}


def test_the_command_line_turns_monthly_copies_on_and_a_push_makes_them(
        shop, server, sqlite_demo_db, tmp_path, monkeypatch, capsys, memory_keyring):
    """`offsite monthly 3`, then `offsite push`: last month's backup gets its monthly copy."""
    engine, rc, org, backup, monthly = shop
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")
    login = ("--db", sqlite_demo_db, "--org", "MEDP", "--user", "medp.admin", "--json")

    def cli(*argv: str) -> dict:
        code = main(list(argv), paths=paths)
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    assert cli("offsite", "set", server.remote, *login)["ok"]
    assert cli("offsite", "status", *login)["monthly_months"] == 0
    assert cli("offsite", "monthly", "3", *login)["monthly_months"] == 3
    assert "kept 3 months" in cli("offsite", "status", *login)["message"]
    last_month = datetime.now().replace(day=1) - timedelta(days=1)
    backup("sunday", last_month.replace(hour=18), b"last month's last backup")

    pushed = cli("offsite", "push", *login)
    assert f"Monthly copy kept off-site for {last_month:%Y-%m}" in pushed["monthly"]
    assert _months(monthly) == {f"{last_month:%Y-%m}": _sha(b"last month's last backup")}
    assert cli("offsite", "monthly", "0", *login)["monthly_months"] == 0
    assert json.loads(paths.settings_file.read_text())["offsite_monthly"] == {}
