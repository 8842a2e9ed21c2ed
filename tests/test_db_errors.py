"""A database that cannot be used is named in one plain sentence, never with a traceback."""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy.engine import make_url

from desktop_backup.auth import LoginThrottle, authenticate
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import DatabaseUnavailable, DesktopBackupError, SchemaError, UsageError
from tests.dbservers import fresh_database, server_url

SERVERS = ["mysql", "postgres"]


def assert_plain_sentence(error: BaseException) -> str:
    """One line a shop owner can read: no traceback, no library names, a full sentence."""
    assert isinstance(error, DesktopBackupError)
    message = str(error)
    assert "\n" not in message and "Traceback" not in message
    assert "sqlalchemy" not in message.lower() and "sqlalche.me" not in message
    assert (message[:1].isupper() or message[:1] == "'") and message.endswith("."), message
    return message


def open_error(url: str) -> DesktopBackupError:
    with pytest.raises(DesktopBackupError) as info:
        open_engine(url)
    assert_plain_sentence(info.value)
    return info.value


def server(dialect: str, **changes) -> str:
    return make_url(server_url(dialect)).set(**changes).render_as_string(hide_password=False)


@pytest.mark.parametrize("dialect", SERVERS)
def test_an_unreachable_server(dialect):
    error = open_error(server(dialect, host="127.0.0.1", port=1, database="x"))
    assert isinstance(error, DatabaseUnavailable)
    assert str(error) == (
        "Cannot reach the database 'x' on 127.0.0.1:1; check that the server is running.")


@pytest.mark.parametrize("dialect", SERVERS)
def test_a_database_user_the_server_does_not_know(dialect):
    error = open_error(server(dialect, username="nosuchuser", password="wrong"))
    assert "refused the database user name or password" in str(error)


@pytest.mark.parametrize("dialect", SERVERS)
def test_a_database_that_does_not_exist(dialect):
    error = open_error(server(dialect, database="no_such_billing_db"))
    assert str(error).endswith("does not exist on that server.")


def test_a_driver_that_is_not_installed():
    if importlib.util.find_spec("mysql") is not None:
        pytest.skip("mysql-connector is installed here")
    error = open_error("mysql+mysqlconnector://root@127.0.0.1/billing")
    assert "driver for 'mysql+mysqlconnector' is not installed" in str(error)


def test_a_database_kind_that_is_not_supported():
    error = open_error("oracle://scott@127.0.0.1/billing")
    assert isinstance(error, UsageError) and "not supported" in str(error)


def test_an_address_that_is_not_a_database_url():
    assert isinstance(open_error("billing database on the shop pc"), UsageError)


def test_an_sqlite_file_that_is_not_a_database(tmp_path):
    junk = tmp_path / "billing.sqlite"
    junk.write_bytes(b"This is a spreadsheet, not a database. " * 100)
    error = open_error(f"sqlite:///{junk}")
    assert str(error) == f"The SQLite file {junk} is damaged or is not an SQLite database."


def test_a_missing_sqlite_file(tmp_path):
    missing = tmp_path / "moved-away.sqlite"
    error = open_error(f"sqlite:///{missing}")
    assert str(error) == f"There is no SQLite database at {missing}."
    assert not missing.exists()  # and no empty file was left in its place


def test_a_database_without_a_users_table(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    engine = open_engine(f"sqlite:///{empty}")
    try:
        with pytest.raises(SchemaError) as info:
            authenticate(engine, SchemaMapping(), "medp.admin", "pw",
                         LoginThrottle(tmp_path / "throttle.json"))
    finally:
        engine.dispose()
    message = assert_plain_sentence(info.value)
    assert "no 'users' table" in message


@pytest.mark.parametrize("dialect", SERVERS)
def test_a_server_that_goes_away_before_login(dialect, tmp_path):
    engine = open_engine(server(dialect, host="127.0.0.1", port=1), check=False)
    with pytest.raises(DatabaseUnavailable) as info:
        authenticate(engine, SchemaMapping(), "medp.admin", "pw",
                     LoginThrottle(tmp_path / "throttle.json"))
    assert assert_plain_sentence(info.value).startswith("Cannot reach")


@pytest.mark.parametrize("dialect", SERVERS)
def test_a_database_dropped_while_the_console_is_open(dialect, tmp_path):
    with fresh_database(dialect, tmp_path) as url:
        engine = open_engine(url)
        engine.dispose()
        admin = open_engine(server_url(dialect))
        name = make_url(url).database
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            force = " WITH (FORCE)" if dialect == "postgres" else ""
            conn.exec_driver_sql(f"DROP DATABASE {name}{force}")
        admin.dispose()
        with pytest.raises(DatabaseUnavailable) as info:
            authenticate(engine, SchemaMapping(), "medp.admin", "pw",
                         LoginThrottle(tmp_path / "throttle.json"))
        assert assert_plain_sentence(info.value).endswith("does not exist on that server.")

