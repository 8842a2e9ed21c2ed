"""What the window says: calm where nothing is wrong, amber for a risky choice, true about
the tray, friendly words for tables, nothing promised for later (issue 16)."""

from __future__ import annotations

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.organizations import find_organization
from desktop_backup.scheduler import JOB_DEFAULTS
from desktop_backup.ui.app import Console
from desktop_backup.ui.main_window import NO_BACKUP_YET_CALM
from desktop_backup.ui.tray import HIDDEN_NOTE_NO_SCHEDULE

pytest_plugins = ["tests.ui_support"]
WAIT_MS = 15_000
MAPPING = SchemaMapping()


@pytest.fixture
def open_console(env, consoles):
    """A console with or without a notification area, its scheduler paused."""
    scheduler = BackgroundScheduler(job_defaults=dict(JOB_DEFAULTS))
    scheduler.start(paused=True)

    def start(db_url: str, tray: bool = False) -> Console:
        console = Console(env, db_url, tray_available=lambda: tray,
                          scheduler=lambda: scheduler)
        consoles.append(console)
        console.start()
        return console
    yield start
    if scheduler.running:
        scheduler.shutdown(wait=False)


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.backup_running and not window.runner.busy,
                    timeout=WAIT_MS)


def auto_backup_enabled(url: str) -> bool:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return find_organization(conn, MAPPING, "MEDP").auto_backup_enabled
    finally:
        engine.dispose()


def test_a_new_organization_is_told_calmly_and_not_while_its_first_backup_runs(
        qtbot, ui, open_console, sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    gate = env.backup_runner = ui.Gate()
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    banner = window.warning_banner
    assert banner.isVisible() and banner.kind == "running"  # blue and plain, not red
    assert banner.message() == NO_BACKUP_YET_CALM
    window.backup_button.click()
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    assert not banner.isVisible()  # the first backup is being made: nothing to warn about
    with qtbot.waitSignal(window.overviewLoaded, timeout=WAIT_MS):
        gate.release.set()
    wait_idle(qtbot, window)
    assert not banner.isVisible()


def test_turning_automatic_backup_off_is_asked_and_then_stays_in_amber(
        qtbot, ui, open_console, sqlite_demo_db, env, prompts):
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db, tray=True)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    toggle, amber = window.auto_toggle, window.auto_off_line
    assert toggle.isChecked() and not amber.isVisible()

    prompts.auto_off_answer = False  # "Cancel"
    toggle.click()
    assert prompts.asked[-1] == "auto off Medplus Pharmacy, Pune"
    assert toggle.isChecked() and not window.runner.busy
    assert auto_backup_enabled(sqlite_demo_db)

    prompts.auto_off_answer = True
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS):
        toggle.click()
    wait_idle(qtbot, window)
    assert not auto_backup_enabled(sqlite_demo_db)
    assert amber.isVisible() and amber.kind == "warning"
    assert amber.message().startswith("Automatic backup is off for Medplus Pharmacy, Pune")
    assert window.notice.kind != "succeeded"  # no green tick for unprotecting the data
    assert "⚠ Automatic backup is off." in console.tray.icon.toolTip()
    window.refresh()  # lasting: a re-read of the organization keeps it
    wait_idle(qtbot, window)
    assert amber.isVisible()

    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS):
        toggle.click()  # on again: no question, the notice goes
    wait_idle(qtbot, window)
    assert auto_backup_enabled(sqlite_demo_db) and not amber.isVisible()
    assert "Automatic backup is off" not in console.tray.icon.toolTip()
    assert prompts.asked.count("auto off Medplus Pharmacy, Pune") == 2


def test_closing_to_the_tray_promises_a_scheduled_backup_only_when_there_is_one(
        qtbot, ui, open_console, sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db, tray=True)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    tray = console.tray
    assert tray.hidden_note() == HIDDEN_NOTE_NO_SCHEDULE
    with qtbot.waitSignal(window.hiddenToTray, timeout=WAIT_MS):
        window.close()
    assert tray.notifications[-1].message == HIDDEN_NOTE_NO_SCHEDULE
    assert "scheduled" not in tray.notifications[-1].message
    env.settings.schedule_time = "18:30"
    window.settingsChanged.emit()
    assert "the scheduled backup at 18:30 is made on time" in tray.hidden_note()


# --- walking the widgets ------------------------------------------------------------------------


def shown_texts(window) -> list[str]:
    """Every text the window can show: labels, buttons, menus and actions, tooltips."""
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

    texts = []
    for widget in window.findChildren(QWidget):
        if isinstance(widget, QAbstractButton | QLabel):
            texts.append(widget.text())
        texts.append(widget.toolTip())
    for action in window.findChildren(QAction):
        texts += [action.text(), action.toolTip(), action.statusTip()]
    for cell in window.grid.cells.values():
        menu = cell.menu()
        texts += [a.text() for a in menu.actions()] + [a.toolTip() for a in menu.actions()]
        menu.deleteLater()
    return texts


def test_nothing_is_promised_for_later(qtbot, ui, open_console, sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    for handler in (window.restore_handler, None):  # also a window without the wizard
        window.set_restore_handler(handler)
        later = [t for t in shown_texts(window)
                 if "soon" in t.lower() or "comes with" in t.lower()]
        assert later == []


def mnemonics(top) -> list[tuple[str, str]]:
    """(letter, text) of every mnemonic the window `top` offers: labels, buttons, tabs and the
    menu bar (its pages and tabs included, so Alt+letter never depends on the tab shown)."""
    import re

    from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QMenuBar, QTabWidget, QWidget

    texts = []
    for widget in top.findChildren(QWidget):
        if widget.window() is not top:
            continue
        if isinstance(widget, QAbstractButton | QLabel):
            texts.append(widget.text())
        elif isinstance(widget, QGroupBox):
            texts.append(widget.title())
        elif isinstance(widget, QTabWidget):
            texts += [widget.tabText(i) for i in range(widget.count())]
        elif isinstance(widget, QMenuBar):
            texts += [action.text() for action in widget.actions()]
    found = []
    for text in texts:
        match = re.search(r"&([^&\s])", text.replace("&&", ""))
        if match:
            found.append((match.group(1).lower(), text))
    return found


def test_no_two_mnemonics_in_a_window_share_a_letter(qtbot, ui, open_console, sqlite_demo_db,
                                                     env):
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db)
    login = console.login
    windows = [("login", mnemonics(login))]
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    windows.append(("main", mnemonics(window)))
    settings = window.open_settings()
    wait_idle(qtbot, window)
    windows.append(("settings", mnemonics(settings)))
    settings.close()
    about = window.open_about()
    windows.append(("about", mnemonics(about)))
    about.close()
    for name, found in windows:
        letters = [letter for letter, _text in found]
        clashes = [(letter, text) for letter, text in found if letters.count(letter) > 1]
        assert clashes == [], name
    main_letters = {letter for letter, _text in windows[1][1]}
    assert {"f", "v", "h"} <= main_letters  # Alt+H opens Help, not a filter
    assert ("h", "&Help") in windows[1][1]
