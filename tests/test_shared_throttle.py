"""Login throttling a local user cannot reset: the count lives in the billing database, shared
by every workstation; case variants lock only the account they reach."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, Table, create_engine, insert, inspect, text

from desktop_backup.auth import FAILURES_TABLE, LoginThrottle, authenticate
from desktop_backup.cli import main
from desktop_backup.config import AppPaths, SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.errors import LockedOut, LoginRefused
from tests.auth_support import SecondsClock, cheap_passwords, php_bcrypt

MAPPING = SchemaMapping()


@pytest.fixture
def engine(demo_db):
    """The demo database with cheap hashes: these tests are about counting, not bcrypt."""
    engine = open_engine(demo_db)
    cheap_passwords(engine)
    yield engine
    engine.dispose()


def fresh_home(tmp_path, n: int) -> AppPaths:
    """A new DESKTOP_BACKUP_HOME: settings, data (and any local throttle file) all new."""
    root = tmp_path / f"home-{n}"
    return AppPaths(root / "config", root / "data", root / "logs")


def try_login(engine, throttle, name: str, password: str) -> str:
    try:
        return authenticate(engine, MAPPING, name, password, throttle).username
    except LoginRefused as exc:
        return type(exc).__name__


def add_user(engine, username: str, password: str) -> None:
    """Another admin of CITY whose username differs from medp.admin's only in case."""
    with engine.begin() as conn:
        users = Table("users", MetaData(), autoload_with=conn)
        city = conn.execute(text("SELECT id FROM organizations WHERE code = 'CITY'")).scalar()
        conn.execute(insert(users).values(
            organization_id=city, is_organization_owner=False, full_name="Shouting Admin",
            username=username, email=f"{username.lower()}-2@example.test",
            password=php_bcrypt(password), role="admin", is_active=True))


def test_twelve_wrong_guesses_from_fresh_homes_stay_locked_out(demo_db, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", "wrong guess")
    command = ["backup", "--db", demo_db, "--org", "MEDP", "--user", "medp.admin"]
    for n in range(12):
        assert main(command, paths=fresh_home(tmp_path, n)) == 1
    # The fifth guess uses up the last try and says so at once (the login the window and
    # the command line share, usecases.login); the sixth to twelfth are refused unchecked.
    assert capsys.readouterr().err.count("Too many failed attempts for 'medp.admin'") == 8
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    home = fresh_home(tmp_path, 12)
    assert main(command, paths=home) == 1
    assert "Too many failed attempts for 'medp.admin'" in capsys.readouterr().err
    assert not list(home.default_backup_dir.glob("*.zip"))  # nothing was backed up
    # The count is the database's: no workstation's local file holds it.
    assert not any((tmp_path / f"home-{n}" / "data" / "login-throttle.json").exists()
                   for n in range(13))


def test_every_workstation_shares_the_count_and_a_login_clears_it(engine, tmp_path):
    clock = SecondsClock()
    here = LoginThrottle(tmp_path / "a" / "throttle.json", clock=clock)
    there = LoginThrottle(tmp_path / "b" / "throttle.json", clock=clock)
    for throttle in (here, there, here, there):
        assert try_login(engine, throttle, "medp.admin", "wrong") == "LoginRefused"
    assert try_login(engine, here, "medp.admin", DEMO_PASSWORD) == "medp.admin"
    for throttle in (here, there, here, there, here):
        assert try_login(engine, throttle, "medp.admin", "wrong") == "LoginRefused"
    assert try_login(engine, there, "medp.admin", DEMO_PASSWORD) == "LockedOut"
    clock.advance(15 * 60 + 1)
    assert try_login(engine, there, "medp.admin", DEMO_PASSWORD) == "medp.admin"


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_case_variants_never_lock_out_another_account(engine, dialect, tmp_path):
    """Where usernames are case-sensitive, 'MEDP.ADMIN' can be another account, and
    'Medp.Admin' then names none (it is ambiguous): guesses at either lock only that name."""
    add_user(engine, "MEDP.ADMIN", "shouting-pass")
    throttle = LoginThrottle(tmp_path / "throttle.json", clock=SecondsClock())
    for name in ("MEDP.ADMIN", "Medp.Admin"):
        for _ in range(5):
            assert try_login(engine, throttle, name, "wrong") == "LoginRefused"
    assert try_login(engine, throttle, "MEDP.ADMIN", "shouting-pass") == "LockedOut"
    assert try_login(engine, throttle, "Medp.Admin", DEMO_PASSWORD) == "LockedOut"
    assert try_login(engine, throttle, "medp.admin", DEMO_PASSWORD) == "medp.admin"


def test_a_spelling_that_reaches_the_account_counts_against_it(engine, tmp_path):
    """On every dialect 'MEDP.ADMIN' logs into medp.admin when no other account has that
    name (as MySQL's collation does), so its wrong guesses are guesses at that account."""
    throttle = LoginThrottle(tmp_path / "throttle.json", clock=SecondsClock())
    for name in ("MEDP.ADMIN", "Medp.Admin", "medp.ADMIN", "MEDP.admin", "mEDP.ADMIN"):
        assert try_login(engine, throttle, name, "wrong") == "LoginRefused"
    with pytest.raises(LockedOut, match="'medp.admin'"):
        authenticate(engine, MAPPING, "medp.admin", DEMO_PASSWORD, throttle)
    assert try_login(engine, throttle, "medp.owner", DEMO_PASSWORD) == "medp.owner"


def test_a_read_only_database_counts_in_the_local_file(sqlite_demo_db, tmp_path):
    path = sqlite_demo_db.removeprefix("sqlite:///")
    writable = create_engine(sqlite_demo_db)
    cheap_passwords(writable)
    writable.dispose()
    read_only = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    clock = SecondsClock()
    throttle = LoginThrottle(tmp_path / "throttle.json", clock=clock)
    try:
        for _ in range(5):
            assert try_login(read_only, throttle, "medp.admin", "wrong") == "LoginRefused"
        assert try_login(read_only, throttle, "medp.admin", DEMO_PASSWORD) == "LockedOut"
        assert FAILURES_TABLE not in inspect(read_only).get_table_names()
    finally:
        read_only.dispose()
    # The same workstation's next start reads the file: still locked, database or not.
    with pytest.raises(LockedOut):
        LoginThrottle(tmp_path / "throttle.json", clock=clock).check("medp.admin")
