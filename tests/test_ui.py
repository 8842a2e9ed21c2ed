"""The console window, driven as a shop owner would, against a real SQLite billing database."""

from __future__ import annotations

import functools
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_backup.backup import run_backup
from desktop_backup.busy import WAITING
from desktop_backup.db import open_engine
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.history import AlreadyRunning, claim_today, ensure_tables, recent
from desktop_backup.organizations import find_organization
from desktop_backup.ui.prompts import CLOSE_CANCEL, CLOSE_FINISH
from desktop_backup.work import Actor, Cancelled, Site
from tests.busy_sqlite import billing_program_locks

pytest_plugins = ["tests.ui_support", "tests.keyring_fixtures"]  # ui, env, start_console…
WAIT_MS = 15_000


def today_cell(window):
    return window.grid.cell(window.session.today())


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.session.backup_running and not window.session.runner.busy,
                    timeout=WAIT_MS)


def audit(url: str, org_id: int = 1):
    engine = open_engine(url)
    try:
        return recent(engine, ensure_tables(engine)[1], org_id)
    finally:
        engine.dispose()


# --- first run, login, the day's backup ---------------------------------------------------------


def test_first_run_demo_login_and_the_days_backup(qtbot, start_console, demo_file, env):
    console = start_console()
    first_run = console.first_run
    assert first_run is not None and first_run.objectName() == "firstRunDialog"
    assert first_run.demo_button.isVisible() and first_run.connect_button.isVisible()

    qtbot.mouseClick(first_run.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: console.login is not None and console.login.isVisible(),
                    timeout=WAIT_MS)
    login = console.login
    assert login.objectName() == "loginDialog"
    assert login.profile_combo.currentText() == "Demo database"
    assert login.demo_hint.isVisible()
    login.remember.setChecked(True)

    with qtbot.waitSignal(console.mainWindowShown, timeout=WAIT_MS):
        qtbot.keyClicks(login.username_edit, "medp.admin")
        qtbot.keyClicks(login.password_edit, DEMO_PASSWORD)
        qtbot.keyClick(login.password_edit, Qt.Key.Key_Return)  # Enter submits
    window = console.window
    assert window.objectName() == "mainWindow" and window.isVisible()
    assert window.org_title.text() == "Medplus Pharmacy, Pune"

    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        pass
    result = finished.args[0]
    assert result.ok and result.path == env.backup_folder / "org_MEDP_wednesday_backup.zip"
    assert result.path.is_file()
    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
        pass
    cell = window.grid.findChild(type(today_cell(window)), "dayCell_wednesday")
    assert cell is today_cell(window) and cell.day.is_today
    assert cell.day.state == "succeeded"
    assert cell.state_label.text() == "Backed up"
    assert f"{result.rows:,} rows" in cell.detail_label.text()
    assert window.history.table.objectName() == "historyTable"
    assert window.history.proxy.rowCount() == 1
    status = window.history.proxy.index(0, 5).data()
    assert status == "Backup succeeded"
    assert not window.progress_panel.isVisible()

    saved = json.loads(env.paths.settings_file.read_text())
    assert saved["remembered_username"] == "medp.admin"
    assert saved["last_profile"] == "Demo database"
    assert DEMO_PASSWORD not in env.paths.settings_file.read_text()


def test_progress_panel_shows_table_and_rows_and_grid_shows_running(qtbot, ui, start_console,
                                                                    sqlite_demo_db, env):
    gate = env.backup_runner = ui.Gate()
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: window.session.last_progress is not None, timeout=WAIT_MS)
    panel = window.findChild(type(window.progress_panel), "backupProgress")
    assert panel.isVisible()
    assert panel.table_label.text().startswith("Table 1 of ")
    assert " of " in panel.bar.format() and panel.bar.format().endswith("rows")
    assert panel.cancel_button.isEnabled()
    assert today_cell(window).day.state == "running"
    assert "rows" in today_cell(window).detail_label.text()
    assert not window.backup_button.isEnabled()
    # SQLite takes no write while the backup reads: the actions that write the audit wait.
    assert not window.auto_toggle.isEnabled()
    verify = next(a for a in today_cell(window).menu().actions()
                  if a.objectName() == "verifyAction")
    assert not verify.isEnabled()
    gate.release.set()
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    assert not panel.isVisible() and window.backup_button.isEnabled()
    assert window.auto_toggle.isEnabled()


def test_no_automatic_backup_when_the_settings_say_so(qtbot, ui, start_console, sqlite_demo_db,
                                                     env):
    env.settings.auto_backup_on_login = False
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    assert not env.backup_folder.exists()
    assert today_cell(window).day.state == "none"


# --- refusals -----------------------------------------------------------------------------------


def test_staff_is_refused_with_a_sentence(qtbot, ui, start_console, sqlite_demo_db):
    console = start_console(sqlite_demo_db)
    assert not console.login.profile_combo.isVisible()  # --db skips the profile picker
    message = ui.refused(console, "medp.staff")
    assert message == ("The account 'medp.staff' is a staff account; only admins and "
                       "organization owners can use the backup console.")
    assert console.window is None and console.login.isVisible()
    assert console.login.password_edit.text() == ""


def test_repeated_wrong_passwords_lock_the_username_out(qtbot, ui, start_console, sqlite_demo_db,
                                                       env):
    now = [1_000_000.0]
    env.throttle_clock = lambda: now[0]
    console = start_console(sqlite_demo_db)
    for _ in range(4):
        assert ui.refused(console, "medp.admin", "wrong") == (
            "The username or password is not correct.")
    # The fifth wrong password says so at once, with the clock time (the FakeClock's 10:00).
    locked = "Too many failed attempts for 'medp.admin'; try again in 15 minutes, at 10:15."
    assert ui.refused(console, "medp.admin", "wrong") == locked
    assert console.login.password_edit.text() == ""
    assert ui.refused(console, "medp.admin", DEMO_PASSWORD) == locked
    assert console.login.password_edit.text() == ""  # cleared while locked out too
    now[0] += 15 * 60 + 1
    window = ui.log_in(console, "medp.admin")
    assert window.isVisible()


def test_an_unreachable_database_is_explained(qtbot, ui, start_console, tmp_path):
    console = start_console(f"sqlite:///{tmp_path / 'gone.sqlite'}")
    message = ui.refused(console, "medp.admin")
    assert message == f"There is no SQLite database at {tmp_path / 'gone.sqlite'}."


def test_escape_closes_the_login(qtbot, start_console, sqlite_demo_db):
    console = start_console(sqlite_demo_db)
    with qtbot.waitSignal(console.finished, timeout=WAIT_MS):
        qtbot.keyClick(console.login, Qt.Key.Key_Escape)


# --- cancel, failure, another workstation --------------------------------------------------------


def test_cancel_a_running_backup(qtbot, ui, start_console, sqlite_demo_db, env):
    gate = env.backup_runner = ui.Gate()
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: window.session.last_progress is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS) as failed:
        qtbot.mouseClick(window.progress_panel.cancel_button, Qt.MouseButton.LeftButton)
        assert window.progress_panel.cancel_button.text() == "Cancelling…"
        gate.release.set()
    assert isinstance(failed.args[1], Cancelled)
    assert "cancelled" in window.notice.message()
    wait_idle(qtbot, window)
    assert not (env.backup_folder / "org_MEDP_wednesday_backup.zip").exists()
    assert list(env.backup_folder.iterdir()) == []  # no partial file left behind
    assert audit(sqlite_demo_db)[0].outcome == "cancelled"


def test_a_dead_runs_day_is_never_shown_as_backing_up(qtbot, ui, start_console,
                                                     sqlite_demo_db, env, clock, tmp_path):
    engine = open_engine(sqlite_demo_db)
    try:
        dead = claim_today(engine, ensure_tables(engine)[0], 1, 3,
                           clock().replace(tzinfo=None) - timedelta(minutes=5),
                           username="medp.admin", trigger="login")
    finally:
        engine.dispose()
    dead.release()  # what the OS does when the process is killed
    env.settings.auto_backup_on_login = False
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    cell = today_cell(window)
    assert cell.day.state == "failed" and "stopped before it finished" in cell.day.error
    assert "Backing up" not in cell.summary()
    assert window.history.proxy.index(0, 5).data().startswith("Backup failed: The backup on")
    window.grab().save(str(tmp_path / "dead-run.png"))


@pytest.mark.parametrize("ending", ["too long", "cancelled"])
def test_a_busy_database_is_waited_for_visibly(qtbot, ui, start_console, sqlite_demo_db, env,
                                               tmp_path, ending):
    """The billing program holds BEGIN EXCLUSIVE: the window says it waits, then how it ended;
    the cell never stays on "Backing up…", and the history has the outcome."""
    env.settings.auto_backup_on_login = False
    env.backup_runner = functools.partial(run_backup, busy_wait_s=2 if ending == "too long"
                                          else 60)
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    with billing_program_locks(sqlite_demo_db, 5):
        with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS) as failed:
            qtbot.mouseClick(window.backup_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: window.progress_panel.table_label.text() == WAITING,
                            timeout=WAIT_MS)
            assert WAITING in today_cell(window).summary()
            window.grab().save(str(tmp_path / f"busy-{ending.replace(' ', '-')}.png"))
            if ending == "cancelled":
                qtbot.mouseClick(window.progress_panel.cancel_button,
                                 Qt.MouseButton.LeftButton)
        assert today_cell(window).day.state != "running"  # at once, the database still locked
    if ending == "cancelled":
        assert isinstance(failed.args[1], Cancelled)
        assert window.notice.kind != "error" and "cancelled" in window.notice.message()
    else:
        assert "stayed busy" in failed.args[0] and "try again" in failed.args[0]
        assert "stayed busy" in window.notice.message()
    wait_idle(qtbot, window)
    outcome = "cancelled" if ending == "cancelled" else "failed"
    assert audit(sqlite_demo_db)[0].outcome == outcome
    window.session.refresh()
    wait_idle(qtbot, window)
    status = window.history.proxy.index(0, 5).data()
    assert status.startswith("Backup cancelled" if ending == "cancelled" else "Backup failed"), \
        status
    assert today_cell(window).day.state != "running"
    window.grab().save(str(tmp_path / f"after-{ending.replace(' ', '-')}.png"))


def test_a_failed_backup_shows_in_its_cell_with_last_weeks_copy_kept(
        qtbot, ui, start_console, sqlite_demo_db, env, clock, tmp_path):
    env.prepare_default_folder()
    engine = open_engine(sqlite_demo_db)
    try:
        with engine.connect() as conn:
            org = find_organization(conn, env.settings.mapping, "MEDP")
        last_week = run_backup(Site(engine, env.settings.mapping,
                                    lambda: clock() - timedelta(days=7)),
                               org, Actor(3, "medp.admin"), env.backup_folder, trigger="login")
    finally:
        engine.dispose()
    # The backup folder now points below a regular file: the core says the drive is gone.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder")
    env.settings.backup_dir = str(blocker / "backups")

    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS) as failed:
        pass
    assert "does not exist (is its drive connected?)" in failed.args[0]
    assert window.notice.message().startswith("The backup failed: The backup folder")
    qtbot.waitUntil(lambda: today_cell(window).day.state == "failed", timeout=WAIT_MS)
    cell = today_cell(window)
    assert cell.day.copy_kept and cell.day.path == str(last_week.path)
    assert cell.state_label.text() == "Failed"
    details = cell.detail_label.text().replace("\u200b", "")
    assert "does not exist (is its drive connected?)" in details
    assert "Last week's copy kept (18 Nov 10:00)." in details
    assert "Failed" in cell.accessibleName() and "Last week's copy kept" in cell.toolTip()
    assert last_week.path.is_file()
    wait_idle(qtbot, window)
    statuses = [window.history.proxy.index(r, 5).data()
                for r in range(window.history.proxy.rowCount())]
    assert statuses[0].startswith("Backup failed: The backup folder")


def test_a_failed_retry_leaves_the_day_on_its_good_copy_with_a_warning(
        qtbot, ui, start_console, sqlite_demo_db, env, clock, tmp_path):
    env.prepare_default_folder()
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        pass
    good = finished.args[0].path
    wait_idle(qtbot, window)
    # An hour later the drive is gone and the person tries again.
    clock.advance(minutes=62)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder")
    env.settings.backup_dir = str(blocker / "backups")
    with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS):
        qtbot.mouseClick(window.backup_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: today_cell(window).day.later_failure is not None, timeout=WAIT_MS)
    cell = today_cell(window)
    assert cell.day.state == "succeeded" and cell.day.path == str(good)
    assert cell.state_label.text() == "Backed up"
    assert cell.detail_label.text().startswith("25 Nov 10:00, today")
    assert cell.warning_label.isVisibleTo(window)
    assert cell.warning_label.text() == "A later attempt at 11:02 failed."
    assert "Last week" not in cell.detail_label.text() + cell.toolTip()
    assert "is its drive connected?" in cell.toolTip()
    assert cell.toolTip().startswith("<p>")  # rich text: Qt wraps it to a readable width
    # Nothing in the card is cut: every line of the details and the warning fits.
    window.resize(1000, 700)
    qtbot.waitUntil(lambda: cell.warning_label.height() >= cell.warning_label.heightForWidth(
        cell.warning_label.width()), timeout=WAIT_MS)
    assert cell.detail_label.height() >= cell.detail_label.heightForWidth(
        cell.detail_label.width())
    window.grab().save(str(tmp_path / "retry-failed.png"))
    assert good.is_file()


def test_another_workstation_running_the_backup_is_said_plainly(qtbot, ui, start_console,
                                                                sqlite_demo_db, clock):
    engine = open_engine(sqlite_demo_db)
    try:
        slots, _audit = ensure_tables(engine)
        other = claim_today(engine, slots, 1, 99,
                            clock().replace(tzinfo=None) - timedelta(minutes=3))
    finally:
        engine.dispose()
    try:
        console = start_console(sqlite_demo_db)
        window = ui.log_in(console, "medp.admin")
        with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS) as failed:
            pass
        assert isinstance(failed.args[1], AlreadyRunning)
        assert "already being made on" in window.notice.message()
        assert window.notice.kind == "running"  # news, not an error
        qtbot.waitUntil(lambda: today_cell(window).day.state == "running", timeout=WAIT_MS)
        wait_idle(qtbot, window)
        # It looks again, to show the other run's result.
        assert window.session.watch_timer.isActive()
    finally:
        other.release()


# --- closing during a backup --------------------------------------------------------------------


@pytest.mark.parametrize("answer", [CLOSE_CANCEL, CLOSE_FINISH])
def test_closing_during_a_backup_asks_then_cancels_or_finishes(qtbot, ui, start_console,
                                                               sqlite_demo_db, env, prompts,
                                                               answer):
    gate = env.backup_runner = ui.Gate()
    prompts.close_answer = answer
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: window.session.last_progress is not None, timeout=WAIT_MS)
    window.close()
    assert prompts.asked == ["close"]
    assert window.isVisible()  # not yet: the backup decides
    with qtbot.waitSignal(window.closed, timeout=WAIT_MS):
        gate.release.set()
    assert not window.isVisible()
    slot = env.backup_folder / "org_MEDP_wednesday_backup.zip"
    assert slot.is_file() == (answer == CLOSE_FINISH)


def test_keep_the_window_open_when_asked(qtbot, ui, start_console, sqlite_demo_db, env, prompts):
    gate = env.backup_runner = ui.Gate()
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: window.session.last_progress is not None, timeout=WAIT_MS)
    window.close()  # prompts answers "stay"
    gate.release.set()
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    assert window.isVisible()


# --- the header ---------------------------------------------------------------------------------


def test_super_admin_picks_an_organization_and_backs_it_up(qtbot, ui, start_console,
                                                          sqlite_demo_db, env):
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "superadmin")
    with qtbot.waitSignal(window.session.organizationsLoaded, timeout=WAIT_MS) as loaded:
        pass
    assert [org.code for org in loaded.args[0]] == ["CITY", "GRNL", "MEDP"]
    assert window.picker.isVisible() and window.picker.objectName() == "organizationPicker"
    assert window.org_title.text() == "All organizations"
    assert not window.backup_button.isEnabled()
    wait_idle(qtbot, window)
    assert not window.session.backup_running  # a super admin gets no automatic backup

    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
        window.pick_organization("CITY")
    assert window.org_title.text() == "City Care Chemists"
    assert window.backup_button.isEnabled()
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(window.backup_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].path.name == "org_CITY_wednesday_backup.zip"
    wait_idle(qtbot, window)
    assert today_cell(window).day.state == "succeeded"
    entry = window.history.model.entries[0]
    assert (entry.username, entry.trigger, entry.organization_id) == ("superadmin", "manual", 2)


def test_the_auto_backup_toggle_writes_the_organization_and_the_audit(qtbot, ui, start_console,
                                                                     sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    toggle = window.findChild(type(window.auto_toggle), "autoBackupToggle")
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=WAIT_MS)
    assert toggle.isChecked()
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert done.args[:2] == ["toggle", "success"]
    engine = open_engine(sqlite_demo_db)
    try:
        with engine.connect() as conn:
            assert not find_organization(conn, env.settings.mapping, "MEDP").auto_backup_enabled
    finally:
        engine.dispose()
    entry = audit(sqlite_demo_db)[0]
    assert (entry.action, entry.message) == ("toggle", "Automatic daily backup turned off.")
    wait_idle(qtbot, window)
    assert window.history.proxy.index(0, 5).data() == "Automatic daily backup turned off"


def test_backup_now_makes_a_second_backup_the_same_day(qtbot, ui, start_console, sqlite_demo_db):
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    assert window.backup_action.shortcut().toString() == "Ctrl+B"
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        window.backup_action.trigger()
    assert not finished.args[0].skipped
    wait_idle(qtbot, window)
    assert [e.trigger for e in window.history.model.entries] == ["manual", "login"]


# --- what can be done with a backup -------------------------------------------------------------


def test_history_save_copy_verify_and_delete(qtbot, ui, start_console, sqlite_demo_db, env,
                                            prompts, tmp_path):
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    history = window.history
    slot = env.backup_folder / "org_MEDP_wednesday_backup.zip"
    assert not history.save_button.isEnabled()
    history.select_row(0)
    assert history.save_button.isEnabled() and history.delete_button.isEnabled()
    assert history.restore_button.isEnabled()  # the restore wizard is installed at login

    prompts.copy_to = tmp_path / "usb" / "copy.zip"
    prompts.copy_to.parent.mkdir()
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        qtbot.mouseClick(history.save_button, Qt.MouseButton.LeftButton)
    assert done.args[1] == "success"
    assert prompts.copy_to.read_bytes() == slot.read_bytes()
    # A dated name, so weekly copies to one stick never overwrite each other.
    assert prompts.asked[-1] == "copy org_MEDP_2026-11-25_backup.zip"
    if os.name == "posix":  # as private as the backup itself
        assert stat.S_IMODE(prompts.copy_to.stat().st_mode) == 0o600
    wait_idle(qtbot, window)
    assert window.history.model.entries[0].action == "save_copy"

    row = [e.file for e in history.proxy_entries()].index(str(slot))
    history.select_row(row)
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        qtbot.mouseClick(history.verify_button, Qt.MouseButton.LeftButton)
    assert done.args[1] == "success"
    title, text, ok = prompts.informed[-1]
    assert ok and "complete, undamaged backup of Medplus Pharmacy" in text
    wait_idle(qtbot, window)

    row = [e.file for e in history.proxy_entries()].index(str(slot))
    history.select_row(row)
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        qtbot.mouseClick(history.delete_button, Qt.MouseButton.LeftButton)
    assert prompts.asked[-1] == "delete org_MEDP_wednesday_backup.zip"
    assert done.args[1] == "success" and not slot.exists()
    wait_idle(qtbot, window)
    actions = [e.action for e in audit(sqlite_demo_db)]
    assert actions[:3] == ["delete", "verify", "save_copy"]
    assert today_cell(window).day.state == "none"


def test_a_history_row_acts_on_its_own_backup_or_says_it_was_replaced(
        qtbot, ui, start_console, sqlite_demo_db, env, clock, tmp_path):
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    clock.advance(minutes=42)  # 10:42: a second backup of the day, into the same file
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        qtbot.mouseClick(window.backup_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    history = window.history
    qtbot.waitUntil(lambda: len(history.model.entries) == 2, timeout=WAIT_MS)
    newer, older = history.model.entries
    assert newer.file == older.file and newer.backup_id and older.backup_id
    assert newer.backup_id != older.backup_id  # each backup has its own identity

    rows = {entry.id: row for row, entry in enumerate(history.proxy_entries())}
    status = history.proxy.index(rows[older.id], 5).data()
    assert status == "Backup succeeded; replaced by the 10:42 backup"
    history.select_row(rows[older.id])
    buttons = (history.save_button, history.verify_button, history.delete_button,
               history.restore_button)
    assert not any(button.isEnabled() for button in buttons)
    assert "replaced by the 10:42 backup" in history.verify_button.toolTip()
    window.grab().save(str(tmp_path / "replaced-row.png"))

    history.select_row(rows[newer.id])
    assert history.proxy.index(rows[newer.id], 5).data() == "Backup succeeded"
    assert all(button.isEnabled() for button in buttons)
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS):
        qtbot.mouseClick(history.delete_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: history.model.entries[0].action == "delete", timeout=WAIT_MS)
    rows = {entry.id: row for row, entry in enumerate(history.proxy_entries())}
    assert history.proxy.index(rows[newer.id], 5).data() == "Backup succeeded; deleted since"
    assert history.model.entries[0].backup_id == newer.backup_id  # the delete names it
    history.select_row(rows[newer.id])
    assert not any(button.isEnabled() for button in buttons)


def test_refusing_the_delete_keeps_the_file(qtbot, ui, start_console, sqlite_demo_db, env,
                                            prompts):
    prompts.delete_answer = False
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    slot = env.backup_folder / "org_MEDP_wednesday_backup.zip"
    assert window.file_action("delete", slot) is None
    assert slot.is_file()


def test_day_cell_menu_verifies_and_shows_the_folder(qtbot, ui, start_console, sqlite_demo_db,
                                                    env, prompts):
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    cell = today_cell(window)
    menu = cell.menu()
    actions = {a.objectName(): a for a in menu.actions()}
    restore = actions["restoreAction"]
    assert restore.isEnabled()  # the restore wizard (tests/test_ui_restore.py)
    assert all(actions[n].isEnabled() for n in ("save_copyAction", "verifyAction",
                                                "show_in_folderAction"))
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        actions["verifyAction"].trigger()
    assert done.args[:2] == ["verify", "success"]
    actions["show_in_folderAction"].trigger()
    assert prompts.opened == [env.backup_folder]

    empty = window.grid.cell("monday").menu()
    enabled = [a.objectName() for a in empty.actions() if a.isEnabled()]
    assert enabled == ["show_in_folderAction"]


def test_the_restore_hook_enables_restore_everywhere(qtbot, ui, start_console, sqlite_demo_db):
    console = start_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    window.set_restore_handler(None)  # as before the wizard was installed
    assert not window.restore_action.isEnabled()
    calls = []
    window.set_restore_handler(lambda org, path: calls.append((org.code, path)))
    assert window.restore_action.isEnabled()
    menu = today_cell(window).menu()
    restore = next(a for a in menu.actions() if a.objectName() == "restoreAction")
    assert restore.isEnabled()
    restore.trigger()
    window.restore_action.trigger()
    assert calls == [("MEDP", Path(today_cell(window).day.path)), ("MEDP", None)]


def test_connect_form_tests_a_connection_off_the_ui_thread(qtbot, ui, start_console, env,
                                                          sqlite_demo_db, memory_keyring):
    console = start_console()
    dialog = console.first_run
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    assert dialog.pages.currentWidget() is dialog.form_page

    dialog.kind.setCurrentIndex(dialog.kind.findData("mysql"))
    assert dialog.port_spin.value() == 3306
    dialog.host_edit.setText("127.0.0.1")
    dialog.port_spin.setValue(1)
    dialog.database_edit.setText("billing")
    dialog.user_edit.setText("backup")
    dialog.db_password_edit.setText("s3cret")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.form_message.kind == "failed", timeout=WAIT_MS)
    assert dialog.form_message.message() == (
        "Cannot reach the database 'billing' on 127.0.0.1:1; check that the server is running.")

    dialog.kind.setCurrentIndex(dialog.kind.findData("sqlite"))
    dialog.file_edit.setText(str(Path(sqlite_demo_db.removeprefix("sqlite:///"))))
    dialog.name_edit.setText("Shop")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.form_message.kind == "succeeded", timeout=WAIT_MS)
    assert dialog.form_message.message().startswith("Connected. The SQLite file ")
    with qtbot.waitSignal(dialog.connected, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert console.login.isVisible()
    assert console.login.profile_combo.currentText() == "Shop"
    assert env.settings.profiles["Shop"].url.startswith("sqlite:///")
    window = ui.log_in(console, "medp.admin")
    assert window.isVisible()


def test_connect_form_keeps_a_server_password_in_the_keyring(qtbot, env, memory_keyring):
    from desktop_backup.ui.first_run import FirstRunDialog
    from desktop_backup.ui.workers import TaskRunner

    runner = TaskRunner()
    dialog = FirstRunDialog(env, runner, start_on_form=True)
    qtbot.addWidget(dialog)
    dialog.kind.setCurrentIndex(dialog.kind.findData("postgresql"))
    dialog.host_edit.setText("db.shop.lan")
    dialog.database_edit.setText("billing")
    dialog.user_edit.setText("backup")
    dialog.db_password_edit.setText("s3cret")
    url, password = dialog.connection()
    with qtbot.waitSignal(dialog.connected):
        dialog.save_profile(url, password)
    assert memory_keyring.passwords == {("DesktopBackup", "Billing database"): "s3cret"}
    text = env.paths.settings_file.read_text()
    assert "postgresql://backup@db.shop.lan:5432/billing" in text and "s3cret" not in text


def test_add_a_connection_from_the_login_and_come_back(qtbot, start_console, demo_file):
    console = start_console()
    qtbot.mouseClick(console.first_run.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: console.login is not None and console.login.isVisible(),
                    timeout=WAIT_MS)
    login = console.login
    qtbot.mouseClick(login.add_button, Qt.MouseButton.LeftButton)
    form = console.first_run
    assert not login.isVisible() and form.isVisible()
    assert form.pages.currentWidget() is form.form_page and not form.back_button.isVisible()
    qtbot.keyClick(form, Qt.Key.Key_Escape)
    assert login.isVisible() and not form.isVisible()


@pytest.mark.parametrize("dialect", ["mysql"])
def test_a_server_password_that_is_not_saved_is_asked_for(qtbot, ui, start_console, env,
                                                         memory_keyring, demo_db):
    """The server refuses without a password: the login asks for it, uses it, never saves it."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from desktop_backup.config import Profile

    user = f"clerk_{uuid.uuid4().hex[:8]}"
    admin = create_engine(demo_db)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 's3cret-db'")
        conn.exec_driver_sql(f"GRANT ALL ON {make_url(demo_db).database}.* TO '{user}'@'%%'")
    url = make_url(demo_db).set(username=user).render_as_string(hide_password=False)
    env.settings.profiles = {"Shop server": Profile("Shop server", url)}
    env.settings.last_profile = "Shop server"
    try:
        console = start_console()
        login = console.login
        assert not login.db_password_edit.isVisible()
        message = ui.refused(console, "medp.admin")
        assert message == ("The database password for 'Shop server' is not saved on this "
                           "computer; type it in the Database password box.")
        assert login.db_password_edit.isVisible() and login.db_password_edit.hasFocus()
        login.db_password_edit.setText("wrong")
        assert "refused the database user name or password" in ui.refused(console, "medp.admin")
        login.db_password_edit.setText("s3cret-db")
        window = ui.log_in(console, "medp.admin")
        assert window.isVisible()
        assert memory_keyring.passwords == {}  # typed at the login: used, never saved
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        admin.dispose()


def test_an_unreachable_server_is_named_before_any_password_is_asked(qtbot, ui, start_console,
                                                                     env, memory_keyring):
    from desktop_backup.config import Profile

    env.settings.profiles = {"Shop server": Profile("Shop server",
                                                    "postgresql://backup@127.0.0.1:1/billing")}
    env.settings.last_profile = "Shop server"
    console = start_console()
    message = ui.refused(console, "medp.admin")
    assert message == ("Cannot reach the database 'billing' on 127.0.0.1:1; check that the "
                       "server is running.")


def test_a_bad_sqlite_file_is_reported_in_plain_words(qtbot, start_console, tmp_path):
    console = start_console()
    dialog = console.first_run
    dialog.show_form()
    not_db = tmp_path / "notes.sqlite"
    not_db.write_text("this is not a database " * 100)
    dialog.file_edit.setText(str(not_db))
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.form_message.kind == "failed", timeout=WAIT_MS)
    assert dialog.form_message.message() == (
        f"The SQLite file {not_db} is damaged or is not an SQLite database.")



# --- the same flow on the billing database's own servers ----------------------------------------


def test_login_backup_grid_and_history_on_every_dialect(qtbot, ui, start_console, demo_db, env):
    """The shop's real database is MariaDB (or PostgreSQL): the window works on each."""
    console = start_console(demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS) as finished:
        pass
    result = finished.args[0]
    assert result.path.name == "org_MEDP_wednesday_backup.zip" and result.rows > 0
    wait_idle(qtbot, window)
    cell = today_cell(window)
    assert cell.day.state == "succeeded" and cell.day.is_today
    qtbot.waitUntil(lambda: window.history.model.rowCount() >= 1, timeout=WAIT_MS)
    entry = window.history.model.entries[0]
    assert (entry.action, entry.outcome, entry.username) == ("backup", "success", "medp.admin")
    assert entry.rows == result.rows
    assert audit(demo_db)[0].file == str(result.path)
