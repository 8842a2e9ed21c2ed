"""The use-case layer without a window: what the console and the command line both ask of the
core (log in, read the overview, check, copy and delete a backup, change a setting), each
leaving the audit line the history shows."""

from __future__ import annotations

import pytest

from desktop_backup import usecases
from desktop_backup.auth import LoginThrottle
from desktop_backup.backup import run_backup
from desktop_backup.config import AppPaths, Settings
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.errors import DesktopBackupError, LoginRefused
from desktop_backup.history import AuditEntry, ensure_tables, recent
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock

pytest_plugins = ["tests.keyring_fixtures"]


@pytest.fixture
def logged_in(app_paths: AppPaths, sqlite_demo_db: str):
    """medp.admin logged in on the demo database, as the login dialog does it."""
    result = usecases.login(app_paths, Settings(), sqlite_demo_db, None, None, "medp.admin",
                            DEMO_PASSWORD, LoginThrottle(app_paths.login_throttle_file))
    yield result
    result.engine.dispose()


@pytest.fixture
def site(logged_in) -> Site:
    return Site(logged_in.engine, Settings().mapping, FakeClock())


@pytest.fixture
def acting(logged_in) -> usecases.ActingUser:
    session = logged_in.session
    assert session.organization is not None
    return usecases.ActingUser(session.user_id, session.username, session.organization.id)


def history(site: Site, org_id: int) -> list[AuditEntry]:
    return recent(site.engine, ensure_tables(site.engine)[1], org_id)


def newest(site: Site, org_id: int) -> AuditEntry:
    return history(site, org_id)[0]


def test_login_opens_the_database_and_names_who_logged_in(logged_in):
    session = logged_in.session
    assert (session.username, session.organization.code) == ("medp.admin", "MEDP")
    assert logged_in.profile is None  # a --db address, not a saved profile


def test_a_wrong_password_is_refused_and_opens_nothing(app_paths, sqlite_demo_db):
    with pytest.raises(LoginRefused):
        usecases.login(app_paths, Settings(), sqlite_demo_db, None, None, "medp.admin",
                       "not the password", LoginThrottle(app_paths.login_throttle_file))


def test_an_admin_acts_for_their_own_organization_only(logged_in, site):
    assert usecases.acting_for(site, logged_in.session, "MEDP").code == "MEDP"
    with pytest.raises(LoginRefused, match="cannot back up or restore"):
        usecases.acting_for(site, logged_in.session, "CITY")


def test_the_overview_shows_todays_backup_and_its_history(logged_in, site, tmp_path):
    folder = tmp_path / "backups"
    org = logged_in.session.organization
    made = run_backup(site, org, Actor.of(logged_in.session), folder, trigger="manual")
    by_code = usecases.load_overview(site, "MEDP", folder)
    by_id = usecases.load_overview(site, org.id, folder)
    assert by_code.days == by_id.days
    today = next(day for day in by_code.days if day.is_today)
    assert (today.weekday, today.state, today.path) == ("wednesday", "succeeded",
                                                         str(made.path))
    first = by_code.history[0]
    assert (first.action, first.outcome, first.username) == ("backup", "success", "medp.admin")
    assert by_code.rows_by_file == {str(made.path): made.rows}
    assert not by_code.backup_due  # not asked for


def test_verify_copy_and_delete_each_leave_their_audit_line(logged_in, site, acting, tmp_path):
    folder = tmp_path / "backups"
    made = run_backup(site, logged_in.session.organization, Actor.of(logged_in.session),
                      folder, trigger="manual")

    report = usecases.verify(site, acting, made.path)
    line = newest(site, acting.organization_id)
    assert report.ok
    assert (line.action, line.outcome, line.username, line.file, line.rows,
            line.day_of_week) == ("verify", "success", "medp.admin", str(made.path),
                                  made.rows, "wednesday")

    stick = tmp_path / "stick"
    stick.mkdir()
    copy = usecases.save_copy(site, acting, made.path, stick / "copy.zip")
    line = newest(site, acting.organization_id)
    assert copy.read_bytes() == made.path.read_bytes()
    assert (line.action, line.file, line.bytes, line.backup_id) == (
        "save_copy", str(copy), made.size, report.backup_id)

    usecases.delete_backup(site, acting, made.path)
    line = newest(site, acting.organization_id)
    assert not made.path.exists()
    assert (line.action, line.outcome, line.file, line.bytes) == (
        "delete", "success", str(made.path), made.size)
    with pytest.raises(DesktopBackupError, match="already gone"):
        usecases.delete_backup(site, acting, made.path)


def test_a_damaged_backup_is_recorded_as_a_failed_check(site, acting, tmp_path):
    damaged = tmp_path / "org_MEDP_monday_backup.zip"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    report = usecases.verify(site, acting, damaged)
    line = newest(site, acting.organization_id)
    assert not report.ok
    assert (line.action, line.outcome, line.day_of_week, line.rows) == (
        "verify", "failed", "monday", None)


def test_settings_changes_are_stored_and_audited(site, acting):
    org = usecases.toggle_auto_backup(site, acting, False)
    assert not org.auto_backup_enabled
    assert newest(site, org.id).message == "Automatic daily backup turned off."
    choices = usecases.backup_table_choices(site, org.id)
    kept = choices.tables[:2]
    org = usecases.save_backup_tables(site, acting, kept)
    assert org.auto_backup_tables == tuple(kept)
    assert newest(site, org.id).message.startswith("The backup now holds 2 chosen tables")
    usecases.save_backup_tables(site, acting, None)
    assert usecases.backup_table_choices(site, org.id).chosen is None


def test_off_site_copies_that_are_off_stay_off_unrecorded(app_paths, site, logged_in,
                                                           memory_keyring):
    settings = Settings()
    org = logged_in.session.organization
    actor = Actor.of(logged_in.session)
    assert not usecases.turn_offsite_off(site, app_paths, settings, org, actor)
    assert "offsite_off" not in [entry.action for entry in history(site, org.id)]
    with pytest.raises(DesktopBackupError, match="Off-site copies of .* are off"):
        usecases.push_offsite(site, settings, org, actor)


def test_open_database_is_the_login_without_the_login(app_paths, sqlite_demo_db):
    engine = usecases.open_database(app_paths, Settings(), sqlite_demo_db, None, None)
    try:
        site = Site(engine, Settings().mapping)
        assert usecases.organization(site, "CITY").code == "CITY"
        assert usecases.database_key(engine) is None  # no backup sealed here yet
    finally:
        engine.dispose()
