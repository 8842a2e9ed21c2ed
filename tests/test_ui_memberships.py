"""The window's login for a user of several organizations (issue 20): after a good password
it asks which one, listing only theirs; a user of one organization is not asked."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from desktop_backup.ui.login import LoginDialog
from desktop_backup.ui.workers import TaskRunner
from tests.membership_schema import MAPPING, PASSWORD, load_membership_schema

pytest_plugins = ["tests.ui_support"]  # env, prompts, clock
CONSOLE_TABLES = ["auto_backup_logs", "desktop_backup_audit", "desktop_backup_encryption",
                  "desktop_backup_keys", "desktop_backup_login_failures",
                  "desktop_backup_offsite", "desktop_backup_recovery_sheets", "desktop_backup_runs"]
WAIT_MS = 15_000


@pytest.fixture
def dialog(qtbot, env, tmp_path):
    path = tmp_path / "databases" / "members.sqlite"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    load_membership_schema(url)
    env.settings.mapping = MAPPING
    made = LoginDialog(env, TaskRunner(), db_url=url)
    qtbot.addWidget(made)
    made.show()
    return made


def submit(qtbot, dialog, username):
    dialog.username_edit.setText(username)
    dialog.password_edit.setText(PASSWORD)
    dialog.login_button.click()
    qtbot.waitUntil(lambda: not dialog.busy.isVisible(), timeout=WAIT_MS)


def test_a_user_of_two_organizations_chooses_one_of_theirs(qtbot, dialog, prompts):
    submit(qtbot, dialog, "alice")
    assert dialog.org_combo.isVisible() and dialog.isVisible()
    assert [dialog.org_combo.itemText(i) for i in range(dialog.org_combo.count())] == [
        "Acme Health (ACME)", "Beta Pharma (BETA)"]
    assert dialog.message.message() == (
        "You look after 2 organizations; choose the one to work on.")
    assert not dialog.password_edit.isEnabled() and dialog.login_button.text() == "&Continue"
    dialog.grab().save("/tmp/members-choice.png")
    dialog.org_combo.setCurrentIndex(1)
    with qtbot.waitSignal(dialog.loggedIn, timeout=WAIT_MS) as logged:
        dialog.login_button.click()
    session = logged.args[0].session
    logged.args[0].engine.dispose()
    assert session.organization.code == "BETA" and not session.is_super_admin
    assert not dialog.isVisible()
    assert prompts.asked == [f"console tables: {', '.join(sorted(CONSOLE_TABLES))}"]


def test_a_user_of_one_organization_is_not_asked(qtbot, dialog):
    with qtbot.waitSignal(dialog.loggedIn, timeout=WAIT_MS) as logged:
        submit(qtbot, dialog, "bob")
    logged.args[0].engine.dispose()
    assert logged.args[0].session.organization.code == "ACME"
    assert not dialog.org_combo.isVisibleTo(dialog)


def test_quitting_while_choosing_logs_nobody_in(qtbot, dialog):
    submit(qtbot, dialog, "alice")
    engine = dialog.pending.engine
    with qtbot.assertNotEmitted(dialog.loggedIn):
        dialog.quit_button.click()
    assert dialog.pending is None and not dialog.isVisible()
    assert engine.pool.checkedout() == 0


def test_no_to_the_console_tables_leaves_the_database_as_it_was(qtbot, dialog, prompts):
    prompts.console_tables_answer = False
    with qtbot.assertNotEmitted(dialog.loggedIn):
        submit(qtbot, dialog, "bob")
    assert dialog.isVisible() and dialog.message.message() == (
        "Nothing was added to this database, so the console cannot work on it; log in again "
        "to be asked again.")
    engine = create_engine(dialog.db_url)
    try:
        assert not set(inspect(engine).get_table_names()) & set(CONSOLE_TABLES)
    finally:
        engine.dispose()
    prompts.console_tables_answer = True
    with qtbot.waitSignal(dialog.loggedIn, timeout=WAIT_MS) as logged:
        submit(qtbot, dialog, "bob")
    logged.args[0].engine.dispose()
    assert len(prompts.asked) == 2


def test_with_a_console_schema_the_window_asks_and_keeps_its_tables_there(
        qtbot, dialog, prompts, env):
    env.settings.console_schema = "console"
    with qtbot.waitSignal(dialog.loggedIn, timeout=WAIT_MS) as logged:
        submit(qtbot, dialog, "bob")
    logged.args[0].engine.dispose()
    assert prompts.asked == [f"console tables in console: {', '.join(sorted(CONSOLE_TABLES))}"]
    billing = create_engine(dialog.db_url)
    kept = create_engine(dialog.db_url.replace("members.sqlite", "members.console.sqlite"))
    try:
        assert not set(inspect(billing).get_table_names()) & set(CONSOLE_TABLES)
        assert {"auto_backup_logs", "desktop_backup_audit"} <= set(
            inspect(kept).get_table_names())
    finally:
        billing.dispose()
        kept.dispose()


def test_the_console_opens_on_the_chosen_organization(qtbot, env, start_console, tmp_path):
    path = tmp_path / "databases" / "console.sqlite"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    load_membership_schema(url)
    env.settings.mapping = MAPPING
    console = start_console(url)
    dialog = console.login
    submit(qtbot, dialog, "alice")
    dialog.org_combo.setCurrentIndex(1)
    with qtbot.waitSignal(console.mainWindowShown, timeout=WAIT_MS) as shown:
        dialog.login_button.click()
    window = shown.args[0]
    assert window.session.org.code == "BETA"

    def backed_up() -> bool:  # the login's automatic backup, of Beta only
        overview = window.session.overview
        return overview is not None and any(
            day.is_today and day.state == "succeeded" for day in overview.days)
    qtbot.waitUntil(backed_up, timeout=WAIT_MS)
    window.grab().save("/tmp/members-window.png")
    assert window.session.overview.organization.code == "BETA"
    assert [p.name for p in window.session.overview.folder.glob("*.zip")] == [
        f"org_BETA_{window.session.today()}_backup.zip"]
