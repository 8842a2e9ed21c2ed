"""The settings dialog, the keyring page, the folder check, the tables choice, Help and About."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTime
from PySide6.QtWidgets import QApplication, QDialog
from sqlalchemy import create_engine, text

from desktop_backup import __version__, usecases
from desktop_backup.config import Profile, SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import UsageError
from desktop_backup.history import ensure_tables, recent
from desktop_backup.logs import LOG_NAME
from desktop_backup.organizations import find_organization, set_auto_backup_tables
from desktop_backup.ui.restore_wizard import RestoreLauncher
from desktop_backup.ui.settings_dialog import SettingsDialog
from desktop_backup.ui.theme import apply_theme, is_dark
from desktop_backup.ui.week_grid import short_paths
from tests.memory_keyring import LockedKeyring, installed

pytest_plugins = ["tests.ui_support", "tests.keyring_fixtures"]
WAIT_MS = 15_000
MAPPING = SchemaMapping()
SERVER = Profile("Shop server", "postgresql+psycopg://backup@192.168.1.20/billing")


# --- the folder check (plain) -------------------------------------------------------------------


def test_a_writable_folder_is_said_so_with_its_free_space(tmp_path):
    check = usecases.check_backup_folder(tmp_path)
    assert check.ok and check.free > 0 and check.message.startswith("Writable; ")
    assert check.message.endswith(" free.")
    assert list(tmp_path.iterdir()) == []  # the test file is gone again
    missing = usecases.check_backup_folder(tmp_path / "backups")
    assert missing.ok and "does not exist yet; the first backup creates it" in missing.message


def test_an_unusable_folder_is_refused_with_the_reason(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    assert not usecases.check_backup_folder(a_file).ok
    assert "is a file, not a folder" in usecases.check_backup_folder(a_file).message
    unplugged = usecases.check_backup_folder(tmp_path / "usb" / "backups")
    assert not unplugged.ok and "is its drive connected?" in unplugged.message
    under_a_file = usecases.check_backup_folder(a_file / "backups")
    assert not under_a_file.ok
    assert not usecases.check_backup_folder(Path("relative/backups")).ok


def test_free_space_is_compared_with_the_latest_backup(tmp_path):
    free = usecases.check_backup_folder(tmp_path).free
    too_small = usecases.check_backup_folder(tmp_path, latest_backup=free * 2)
    assert not too_small.ok and "less than the latest backup" in too_small.message
    low = usecases.check_backup_folder(tmp_path, latest_backup=int(free * 0.75))
    assert low.ok and low.low and low.message.startswith("Writable, but only ")


# --- the tables column (plain) ------------------------------------------------------------------


def test_auto_backup_tables_is_json_a_text_column_gets_text_and_none_is_null(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'orgs.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE organizations (id INTEGER PRIMARY KEY, code TEXT, "
                          "name TEXT, auto_backup_tables TEXT)"))
        conn.execute(text("INSERT INTO organizations VALUES (1, 'A', 'A shop', NULL)"))
    with engine.begin() as conn:
        org = find_organization(conn, MAPPING, "A")
        set_auto_backup_tables(conn, MAPPING, org, ["customers", "bills"])
        stored = conn.execute(text("SELECT auto_backup_tables FROM organizations")).scalar()
        assert stored == '["customers","bills"]'  # as the web app's json_encode writes it
        assert find_organization(conn, MAPPING, "A").auto_backup_tables == ("customers",
                                                                            "bills")
        set_auto_backup_tables(conn, MAPPING, org, None)
        assert conn.execute(text("SELECT auto_backup_tables IS NULL FROM organizations")
                            ).scalar() == 1
        with pytest.raises(UsageError):
            set_auto_backup_tables(conn, MAPPING, org, [])
    engine.dispose()


# --- the window: fixtures -----------------------------------------------------------------------


@pytest.fixture
def window(quiet_window):
    return quiet_window


@pytest.fixture
def keep_theme():
    app = QApplication.instance()
    palette, style = app.palette(), app.style().name()
    yield
    app.setPalette(palette)
    app.setStyle(style)


def open_settings(qtbot, window) -> SettingsDialog:
    window.settings_action.trigger()  # File ▸ Settings…
    [dialog] = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
    assert dialog.objectName() == "settingsDialog"
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=WAIT_MS)
    return dialog


def org_tables(url: str):
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT auto_backup_tables FROM organizations "
                                    "WHERE id = 1")).scalar()
            return raw, find_organization(conn, MAPPING, 1).auto_backup_tables
    finally:
        engine.dispose()


# --- the dialog ---------------------------------------------------------------------------------


def test_settings_are_saved_to_the_file_and_take_effect(qtbot, window, env, tmp_path,
                                                        keep_theme):
    dialog = open_settings(qtbot, window)
    assert dialog.folder_edit.text() == str(env.backup_folder)
    assert dialog.folder_result.kind == "succeeded"
    assert "free" in dialog.folder_result.message()
    assert not dialog.schedule_check.isChecked() and not dialog.time_edit.isEnabled()
    assert dialog.login_check.isChecked() is False  # as the fixture set it

    new_folder = tmp_path / "usb-backups"
    dialog.folder_edit.setText(str(new_folder))
    qtbot.waitUntil(lambda: dialog.folder_check is not None, timeout=WAIT_MS)
    assert "the first backup creates it" in dialog.folder_result.message()
    assert dialog.folder_note.isVisible() and dialog.save_button.isEnabled()
    dialog.login_check.setChecked(True)
    dialog.schedule_check.setChecked(True)
    dialog.time_edit.setTime(QTime(7, 30))
    dialog.points_spin.setValue(3)
    dialog.notify_check.setChecked(True)
    dialog.theme_combo.setCurrentIndex(2)  # Dark
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    saved = json.loads(env.paths.settings_file.read_text())
    assert {k: saved[k] for k in ("backup_dir", "auto_backup_on_login", "schedule_time",
                                  "restore_points_kept", "notify_on_success", "theme")} == {
        "backup_dir": str(new_folder), "auto_backup_on_login": True, "schedule_time": "07:30",
        "restore_points_kept": 3, "notify_on_success": True, "theme": "dark"}
    assert env.backup_folder == new_folder
    assert window.schedule.schedule.at == time(7, 30)
    assert "Next scheduled backup:" in window.backup_status.text()
    assert "07:30" in window.backup_status.text()
    assert str(new_folder) in window.subtitle.text()
    assert is_dark(QApplication.palette())
    dark = [a for a in window.theme_group.actions() if a.isChecked()]
    assert [a.text() for a in dark] == ["&Dark"]

    dialog = open_settings(qtbot, window)
    dialog.schedule_check.setChecked(False)
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        dialog.save_button.click()
    assert json.loads(env.paths.settings_file.read_text())["schedule_time"] is None
    assert window.schedule.next_run() is None
    assert "Scheduled daily backup: off" in window.backup_status.text()
    apply_theme(QApplication.instance(), "light")


def test_an_unusable_folder_cannot_be_saved_and_cancel_changes_nothing(qtbot, window, env,
                                                                       tmp_path):
    dialog = open_settings(qtbot, window)
    blocker = tmp_path / "not-a-drive"
    blocker.write_text("")
    dialog.folder_edit.setText(str(blocker / "backups"))
    qtbot.waitUntil(lambda: dialog.folder_check is not None, timeout=WAIT_MS)
    assert dialog.folder_result.kind == "failed"
    assert "is its drive connected?" in dialog.folder_result.message()
    assert not dialog.save_button.isEnabled()
    dialog.reject()
    assert json.loads(env.paths.settings_file.read_text())["backup_dir"] is None  # the login's
    assert env.settings.backup_dir is None


def test_tables_are_chosen_for_the_organization_and_all_ticked_is_null(qtbot, window, env,
                                                                      sqlite_demo_db):
    dialog = open_settings(qtbot, window)
    dialog.tabs.setCurrentIndex(1)
    names = [dialog.tables_list.item(i).data(Qt.ItemDataRole.UserRole)
             for i in range(dialog.tables_list.count())]
    shown = [dialog.tables_list.item(i).text() for i in range(dialog.tables_list.count())]
    assert "customers" in names and "user_permissions" in names
    assert "User permissions" in shown and "user_permissions" not in shown  # friendly names
    assert "organizations" not in names and "auto_backup_logs" not in names
    assert dialog.ticked_tables() == names
    assert dialog.tables_count.text() == f"All {len(names)} tables, and tables added later"

    dialog.none_button.click()
    assert not dialog.save_button.isEnabled()
    assert dialog.tables_message.message() == "Tick at least one table."
    dialog.all_button.click()
    for i in range(dialog.tables_list.count()):
        item = dialog.tables_list.item(i)
        if item.data(Qt.ItemDataRole.UserRole) in ("customers", "user_permissions"):
            item.setCheckState(Qt.CheckState.Unchecked)
    assert dialog.tables_count.text() == f"{len(names) - 2} of {len(names)} tables"
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        dialog.save_button.click()
    _raw, chosen = org_tables(sqlite_demo_db)
    assert set(chosen) == set(names) - {"customers", "user_permissions"}
    engine = open_engine(sqlite_demo_db)
    try:
        toggle = recent(engine, ensure_tables(engine)[1], 1)[0]
    finally:
        engine.dispose()
    assert toggle.action == "toggle" and toggle.username == "medp.admin"
    assert toggle.message.startswith(f"The backup now holds {len(names) - 2} chosen tables: ")
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=WAIT_MS)

    # The next backup holds only those tables.
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_button.click()
    assert set(finished.args[0].tables) == set(names) - {"customers", "user_permissions"}
    qtbot.waitUntil(lambda: not window.session.backup_running and not window.session.runner.busy,
                    timeout=WAIT_MS)

    dialog = open_settings(qtbot, window)
    unticked = [dialog.tables_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(dialog.tables_list.count())
                if dialog.tables_list.item(i).checkState() == Qt.CheckState.Unchecked]
    assert unticked == sorted(["customers", "user_permissions"])
    dialog.all_button.click()
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        dialog.save_button.click()
    raw, chosen = org_tables(sqlite_demo_db)
    assert raw is None and chosen is None  # SQL NULL: every table, also tables added later


def test_narrowing_the_tables_asks_first_and_the_partial_backup_looks_partial(
        qtbot, window, env, prompts, sqlite_demo_db, tmp_path):
    dialog = open_settings(qtbot, window)
    dialog.tabs.setCurrentIndex(1)
    total = dialog.tables_list.count()
    dialog.none_button.click()
    only = next(dialog.tables_list.item(i) for i in range(total)
                if dialog.tables_list.item(i).text() == "Customers")
    only.setCheckState(Qt.CheckState.Checked)

    # Declined: nothing is saved and the Tables page stays open.
    prompts.fewer_tables_answer = False
    dialog.save_button.click()
    asked = prompts.asked[-1]
    assert asked.startswith(f"fewer tables 1 of {total}: ") and "user_permissions" in asked
    assert "customers" not in asked.split(": ", 1)[1].split(", ")
    assert dialog.isVisible() and dialog.tabs.currentIndex() == 1
    assert org_tables(sqlite_demo_db)[1] is None  # still every table

    prompts.fewer_tables_answer = True
    with qtbot.waitSignal(window.session.settingsChanged, timeout=WAIT_MS):
        dialog.save_button.click()
    assert org_tables(sqlite_demo_db)[1] == ("customers",)
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=WAIT_MS)

    # The next backup records its scope, and every place that shows it says "partial".
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_button.click()
    result = finished.args[0]
    assert (result.scope["tables"], result.scope["of"]) == (1, total)
    assert f"from 1 of {total} tables (partial)" in result.message
    assert f"{result.rows:,} rows from 1 of {total} tables (partial)" in window.notice.message()
    qtbot.waitUntil(lambda: not window.session.backup_running and not window.session.runner.busy,
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.history.model.entries[0].file == str(result.path),
                    timeout=WAIT_MS)
    words = f"partial: 1 of {total} tables"
    cell = window.grid.cell("wednesday")
    assert f"Partial: 1 of {total} tables" in cell.detail_label.text()
    assert window.history.proxy.index(0, 5).data() == f"Backup succeeded ({words})"
    window.grab().save(str(tmp_path / "partial-backup.png"))
    report = usecases.verify(window.session.site(), window.session.actor(), result.path)
    assert report.ok and words in report.message and "complete" not in report.message

    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    with qtbot.waitSignal(launcher.wizardOpened, timeout=WAIT_MS) as opened:
        window.file_action("restore", result.path)
    wizard = opened.args[0]
    qtbot.waitUntil(lambda: wizard.plan is not None and not wizard.check_page.running,
                    timeout=WAIT_MS)
    choose = wizard.choose_page  # the list of backups says it too
    qtbot.waitUntil(lambda: choose.sources is not None, timeout=WAIT_MS)
    assert choose.items_by_path[str(result.path)].text(0) == f"Wednesday (today) ({words})"
    plan = wizard.plan
    assert plan.ok and plan.partial == words and "user_permissions" in plan.untouched
    contents = wizard.check_page.contents_value.text()
    assert contents.startswith(f"Partial: 1 of {total} tables")
    assert "The restore leaves these tables as they are" in contents
    assert "User permissions" in contents
    wizard.grab().save(str(tmp_path / "partial-check.png"))
    wizard.reject()


def test_a_server_password_is_saved_replaced_and_forgotten(qtbot, window, env,
                                                          memory_keyring):
    env.settings.profiles[SERVER.name] = SERVER
    window.session.profile = SERVER.name
    dialog = open_settings(qtbot, window)
    dialog.tabs.setCurrentIndex(3)
    assert dialog.keyring_line.kind == "running"  # usable, nothing saved yet
    assert "No password is saved for 'Shop server'" in dialog.keyring_line.message()
    assert not dialog.save_password_button.isEnabled()
    assert not dialog.forget_button.isEnabled()

    qtbot.keyClicks(dialog.password_edit, "first secret")
    qtbot.mouseClick(dialog.save_password_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.session.runner.busy and dialog.forget_button.isEnabled(),
                    timeout=WAIT_MS)
    assert memory_keyring.passwords == {("DesktopBackup", "Shop server"): "first secret"}
    assert dialog.password_result.message().startswith("The password was saved")
    assert dialog.password_edit.text() == ""
    assert dialog.save_password_button.text() == "Re&place password"
    assert dialog.keyring_line.kind == "succeeded"

    dialog.password_edit.setText("second secret")
    dialog.save_password_button.click()
    qtbot.waitUntil(lambda: dialog.password_result.message().startswith(
        "The password was replaced") and not window.session.runner.busy, timeout=WAIT_MS)
    assert memory_keyring.passwords == {("DesktopBackup", "Shop server"): "second secret"}

    dialog.forget_button.click()
    qtbot.waitUntil(lambda: not window.session.runner.busy and not dialog.forget_button.isEnabled(),
                    timeout=WAIT_MS)
    assert memory_keyring.passwords == {}
    assert "the login will ask for it" in dialog.password_result.message()
    assert "secret" not in env.paths.settings_file.read_text()


def test_a_locked_keyring_is_said_plainly_and_nothing_can_be_saved(qtbot, window, env):
    env.settings.profiles[SERVER.name] = SERVER
    window.session.profile = SERVER.name
    with installed(LockedKeyring()):
        dialog = open_settings(qtbot, window)
        assert dialog.keyring_line.kind == "failed"
        assert "locked" in dialog.keyring_line.message()
        assert "you will be asked for them each time" in dialog.keyring_line.message()
        assert not dialog.password_row.isEnabled()
        dialog.password_edit.setText("secret")
        assert dialog.save_password() is None


def test_unusable_keyrings_are_named_in_the_settings(qtbot, window, env, unusable_keyring):
    env.settings.profiles[SERVER.name] = SERVER
    window.session.profile = SERVER.name
    dialog = open_settings(qtbot, window)
    assert dialog.keyring_line.kind == "failed"
    assert "password store (keyring)" in dialog.keyring_line.message()
    assert not dialog.save_password_button.isEnabled()


def test_a_database_file_or_address_has_no_password_page(qtbot, window):
    dialog = open_settings(qtbot, window)  # logged in with --db: no profile
    assert window.session.profile is None
    # An SQLite file: one sentence, no keyring talk.
    assert dialog.password_intro.text() == "An SQLite file needs no password."
    assert not dialog.password_row.isVisibleTo(dialog)
    assert not dialog.password_note.isVisibleTo(dialog)


# --- Help ---------------------------------------------------------------------------------------


def test_help_opens_the_log_folder_and_about_names_every_path(qtbot, window, env, prompts):
    window.findChild(type(window.settings_action), "openLogFolderAction").trigger()
    assert prompts.opened == [env.paths.log_dir] and env.paths.log_dir.is_dir()
    window.findChild(type(window.settings_action), "aboutAction").trigger()
    about = window.findChild(QDialog, "aboutDialog")
    assert about is not None and about.isVisible()
    facts = dict(about.facts)
    assert facts["Version"] == __version__
    assert facts["Settings file"] == str(env.paths.settings_file)
    assert facts["Data folder"] == str(env.paths.data_dir)
    assert facts["Log file"] == str(env.paths.log_dir / LOG_NAME)
    assert facts["Backup folder"] == str(env.backup_folder)
    assert about.values["Log file"].text() == str(env.paths.log_dir / LOG_NAME)
    about.log_button.click()
    assert prompts.opened == [env.paths.log_dir] * 2
    about.copy_button.click()
    assert str(env.paths.settings_file) in QApplication.clipboard().text()
    about.reject()


def test_choosing_another_backup_folder_shows_that_folders_week_at_once(qtbot, window, env,
                                                                         tmp_path):
    """Issue 16, point 10: after Save the week is read again from the new folder; a day
    whose copy is still in the old folder says so instead of passing for the new one's."""
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        window.backup_button.click()
    today = window.grid.cells[window.session.today()]
    qtbot.waitUntil(lambda: today.day.state == "succeeded", timeout=WAIT_MS)
    old_folder = env.backup_folder
    assert Path(today.day.path).parent == old_folder and "In " not in today.summary()

    dialog = open_settings(qtbot, window)
    new_folder = tmp_path / "new-usb-stick"
    dialog.folder_edit.setText(str(new_folder))
    qtbot.waitUntil(lambda: dialog.folder_check is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
        dialog.save_button.click()
    assert str(new_folder) in window.subtitle.text()
    assert today.day.elsewhere == str(old_folder)
    assert f"In {short_paths(str(old_folder))}" in today.summary()
