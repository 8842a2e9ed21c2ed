"""The log file never holds a password, and still says what went wrong."""

from __future__ import annotations

import logging

import pytest

from desktop_backup.backup import run_backup
from desktop_backup.cli import main
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import DesktopBackupError
from desktop_backup.logs import LOG_NAME, redact, setup_logging
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Site

SECRET = "Tr0ub4dor&3-xyz"  # noqa: S105 - a test password that must never reach the log


@pytest.fixture
def log_file(app_paths):
    path = setup_logging(app_paths)
    yield path
    logger = logging.getLogger("desktop_backup")
    for handler in list(logger.handlers):
        if getattr(handler, "desktop_backup_log", False):
            logger.removeHandler(handler)
            handler.close()


@pytest.mark.parametrize("text", [
    f"mysql+pymysql://shop:{SECRET}@db.local/billing",
    f"connect failed: password={SECRET} host=x",
    f"PASSWORD: '{SECRET}'",
    f"pwd={SECRET};",
])
def test_redact_blanks_passwords(text):
    assert SECRET not in redact(text) and "***" in redact(text)


def test_a_failed_login_and_a_failed_connection_leave_no_password_in_the_log(
        log_file, app_paths, sqlite_demo_db, monkeypatch, capsys):
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", SECRET)
    assert main(["backup", "--db", sqlite_demo_db, "--org", "MEDP", "--user", "medp.admin"],
                paths=app_paths) == 1
    url = f"postgresql+psycopg://shop:{SECRET}@127.0.0.1:1/billing"
    assert main(["list", "--db", url, "--org", "MEDP"], paths=app_paths) == 1
    capsys.readouterr()
    text = (log_file.parent / LOG_NAME).read_text()
    assert "medp.admin" in text and "Cannot reach" in text  # the log says what happened
    assert SECRET not in text


def test_a_failed_backup_is_logged_with_its_details(log_file, sqlite_demo_db, tmp_path):
    engine = open_engine(sqlite_demo_db)
    with engine.connect() as conn:
        org = find_organization(conn, SchemaMapping(), "MEDP")
    with pytest.raises(DesktopBackupError):
        run_backup(Site(engine, SchemaMapping()), org, Actor(3, "medp.admin"),
                   tmp_path / "no" / "such" / "drive", trigger="login")
    engine.dispose()
    text = log_file.read_text()
    assert "Backup of MEDP failed" in text and "does not exist" in text
