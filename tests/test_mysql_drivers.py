"""Both MySQL drivers: mysqlclient (C, chosen when installed) and PyMySQL give the same archive.

The export uses each driver's own streaming cursor, so each is exercised against the real
server. Without mysqlclient these tests are skipped (CI installs it and requires them).
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from desktop_backup.backup import run_backup, write_archive
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine, parse_url
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Site
from tests.archives import archive_rows
from tests.clock import FakeClock
from tests.sample_types import SAMPLE_DDL, insert_samples

MAPPING = SchemaMapping()
HAVE_MYSQLCLIENT = importlib.util.find_spec("MySQLdb") is not None


@pytest.fixture
def mysqlclient():
    if not HAVE_MYSQLCLIENT:
        message = "mysqlclient is not installed (needs the MariaDB/MySQL client library)"
        if os.environ.get("DESKTOP_BACKUP_REQUIRE_MYSQLCLIENT"):
            pytest.fail(message)
        pytest.skip(message)


def with_driver(url: str, driver: str) -> str:
    return make_url(url).set(drivername=f"mysql+{driver}").render_as_string(
        hide_password=False)


def test_a_plain_mysql_address_uses_the_fastest_installed_driver():
    expected = "mysql+mysqldb" if HAVE_MYSQLCLIENT else "mysql+pymysql"
    assert parse_url("mysql://shop@db.local/billing").drivername == expected
    assert parse_url("mysql+pymysql://shop@db.local/billing").drivername == "mysql+pymysql"


@pytest.mark.parametrize("dialect", ["mysql"])
def test_both_drivers_write_the_same_rows(mysqlclient, demo_db, tmp_path):
    engines = {d: open_engine(with_driver(demo_db, d)) for d in ("pymysql", "mysqldb")}
    try:
        with engines["pymysql"].begin() as conn:
            for ddl in SAMPLE_DDL["mysql"]:
                conn.execute(text(ddl))
            insert_samples(conn, "mysql")
        archives = {}
        for driver, engine in engines.items():
            target = tmp_path / f"{driver}.zip"
            write_archive(Site(engine, MAPPING), 1, target, Actor(3, "medp.admin"), trigger="cli")
            archives[driver] = archive_rows(target)
        assert archives["mysqldb"] == archives["pymysql"]
        assert archives["mysqldb"]["value_samples"][0]["big_amount"] == \
            "12345678901234567890.1234567890"
    finally:
        for engine in engines.values():
            engine.dispose()


@pytest.mark.parametrize("dialect", ["mysql"])
def test_restore_through_mysqlclient_brings_the_rows_back(mysqlclient, demo_db, tmp_path):
    from desktop_backup.restore import apply_restore

    engine = open_engine(with_driver(demo_db, "mysqldb"))
    try:
        with engine.connect() as conn:
            org = find_organization(conn, MAPPING, "MEDP")
        actor = Actor(3, "medp.admin")
        made = run_backup(Site(engine, MAPPING, FakeClock()), org, actor, tmp_path, trigger="cli")
        before = archive_rows(made.path)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM customer_ledgers WHERE organization_id = 1"))
            conn.execute(text("UPDATE customers SET name = 'changed' WHERE organization_id = 1"))
        result = apply_restore(Site(engine, MAPPING), org, made.path, actor, tmp_path)
        assert result.ok
        again = write_archive(Site(engine, MAPPING), 1, tmp_path / "after.zip", actor,
                              trigger="cli")
        assert again.total_rows == made.rows
        assert archive_rows(tmp_path / "after.zip") == before
    finally:
        engine.dispose()


TRICKY = ["", "tab\there", "line\nbreak\r\n", 'quote " and \\ back\\slash', "\x01\x1f\x7f",
          "Śrī 🚀 दवा \u2028 </script>", "\\u0041 not an escape", "1e20"]


@pytest.mark.parametrize("dialect", ["mysql"])
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_rows_the_server_writes_as_json_keep_every_character(driver, demo_db, tmp_path,
                                                              request):
    """MariaDB writes the rows of tables without floats or bytes as JSON itself (one value
    per row for the driver), through either driver: the archive holds exactly what the
    columns hold."""
    if driver == "mysqldb":
        request.getfixturevalue("mysqlclient")
    engine = open_engine(with_driver(demo_db, driver))
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE text_samples (id BIGINT UNSIGNED PRIMARY KEY, organization_id "
                "BIGINT, label VARCHAR(100), note TEXT, amount DECIMAL(20,6), day DATE, "
                "moment DATETIME(6), flag TINYINT(1), doc JSON, kind ENUM('a','b'), "
                "opened TIME) CHARACTER SET utf8mb4"))
            for i, value in enumerate(TRICKY):
                conn.execute(text(
                    "INSERT INTO text_samples VALUES (:id, 1, :v, :v, '-0.000001', "
                    "'2026-03-29', '2026-03-29 02:30:00.123456', 1, '{\"s\": \"x/y\"}', 'b', "
                    "'-01:02:03')"), {"id": 18446744073709551615 - i, "v": value})
            conn.execute(text("INSERT INTO text_samples (id, organization_id) VALUES (1, 1)"))
        write_archive(Site(engine, MAPPING), 1, tmp_path / "a.zip", Actor(3, "medp.admin"),
                      trigger="cli")
        rows = archive_rows(tmp_path / "a.zip")["text_samples"]
    finally:
        engine.dispose()
    assert rows[0] == {"id": 1, "organization_id": 1, "label": None, "note": None,
                       "amount": None, "day": None, "moment": None, "flag": None, "doc": None,
                       "kind": None, "opened": None}
    assert [r["label"] for r in rows[1:]] == list(reversed(TRICKY))
    assert [r["note"] for r in rows[1:]] == list(reversed(TRICKY))
    assert rows[1]["id"] == 18446744073709551615 - len(TRICKY) + 1
    assert {(r["amount"], r["day"], r["moment"], r["flag"], r["doc"], r["kind"], r["opened"])
            for r in rows[1:]} == {("-0.000001", "2026-03-29", "2026-03-29 02:30:00.123456", 1,
                                    '{"s": "x/y"}', "b", "-01:02:03")}
