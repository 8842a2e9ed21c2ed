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


@pytest.fixture
def keep_theme(qapp):
    """The application's palette and style as they were before the test chose a theme."""
    palette, style = qapp.palette(), qapp.style().name()
    yield
    qapp.setPalette(palette)
    if style:
        qapp.setStyle(style)


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.session.backup_running and not window.session.runner.busy,
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
    assert banner.isVisible() and banner.kind == "info"  # a plain note, not red
    assert banner.message() == NO_BACKUP_YET_CALM
    window.backup_button.click()
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    assert not banner.isVisible()  # the first backup is being made: nothing to warn about
    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
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
    assert toggle.isChecked() and not window.session.runner.busy
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
    # No scheduled time is promised while the switch is off, in the window or the tray.
    assert "No automatic backup while it is off." in window.backup_status.text()
    assert "No automatic backup while it is off." in console.tray.icon.toolTip()
    window.session.refresh()  # lasting: a re-read of the organization keeps it
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
    window.session.settingsChanged.emit()
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
    import re

    for menu_action in window.menuBar().actions():  # and inside each menu
        texts = [a.text() for a in menu_action.menu().actions() if not a.isSeparator()]
        letters = [m.group(1).lower() for t in texts if (m := re.search(r"&([^&\s])", t))]
        assert len(letters) == len(set(letters)), texts
    main_letters = {letter for letter, _text in windows[1][1]}
    assert {"f", "v", "h"} <= main_letters  # Alt+H opens Help, not a filter
    assert ("h", "&Help") in windows[1][1]


def focus_shows(qtbot, window, widget) -> bool:
    """Whether `widget` looks different with the keyboard focus than without it, in a window
    where the person uses the keyboard. (A Tab press marks the window so; focus moved from
    code clears that mark, so the test sets it as the Tab key would.)"""
    from PySide6.QtCore import Qt

    keyboard = Qt.WidgetAttribute.WA_KeyboardFocusChange
    widget.clearFocus()
    window.setAttribute(keyboard, True)
    without = widget.grab().toImage()
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=WAIT_MS)
    window.setAttribute(keyboard, True)
    return widget.grab().toImage() != without


def focusable(window) -> list:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QWidget

    return [w for w in window.findChildren(QWidget)
            if w.isVisible() and w.isEnabled() and w.window() is window
            and w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.focusProxy() is None]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_control_shows_the_keyboard_focus(qtbot, ui, open_console, sqlite_demo_db, env,
                                                 keep_theme, theme):
    from PySide6.QtWidgets import QApplication

    from desktop_backup.ui.theme import apply_theme

    apply_theme(QApplication.instance(), theme)
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    silent = [w.objectName() or type(w).__name__ for w in focusable(window)
              if not focus_shows(qtbot, window, w)]
    assert silent == []
    settings = window.open_settings()
    wait_idle(qtbot, window)
    settings.activateWindow()
    qtbot.waitUntil(settings.isActiveWindow, timeout=WAIT_MS)
    for page in range(settings.tabs.count()):
        settings.tabs.setCurrentIndex(page)
        silent = [w.objectName() or type(w).__name__ for w in focusable(settings)
                  if not focus_shows(qtbot, settings, w)]
        assert silent == [], settings.tabs.tabText(page)
    settings.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_first_run_choices_show_which_one_enter_activates(qtbot, env, keep_theme, theme):
    from PySide6.QtWidgets import QApplication

    from desktop_backup.ui.first_run import FirstRunDialog
    from desktop_backup.ui.theme import apply_theme
    from desktop_backup.ui.workers import TaskRunner

    apply_theme(QApplication.instance(), theme)
    runner = TaskRunner()
    dialog = FirstRunDialog(env, runner)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=WAIT_MS)
    # As a person does it: Tab from one choice to the other; the focused one is marked.
    from PySide6.QtCore import Qt

    assert dialog.demo_button.hasFocus()  # Enter would open the demo
    without = dialog.connect_button.grab().toImage()
    qtbot.keyClick(dialog.demo_button, Qt.Key.Key_Tab)
    assert dialog.connect_button.hasFocus()
    assert dialog.connect_button.grab().toImage() != without
    for button in (dialog.demo_button, dialog.connect_button):
        assert focus_shows(qtbot, dialog, button)
    runner.shutdown()


# --- contrast ------------------------------------------------------------------------------------


def contrast(a, b) -> float:
    """WCAG 2 contrast ratio of two QColors (1 to 21)."""
    def luminance(colour) -> float:
        def channel(value: int) -> float:
            v = value / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return (0.2126 * channel(colour.red()) + 0.7152 * channel(colour.green())
                + 0.0722 * channel(colour.blue()))
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_state_colour_and_text_meets_wcag_aa_on_its_backgrounds(theme):
    from PySide6.QtGui import QColor, QPalette

    from desktop_backup.ui.theme import dark_palette, light_palette, state_colour

    palette = dark_palette() if theme == "dark" else light_palette()
    role = QPalette.ColorRole
    backgrounds = [palette.color(r) for r in (role.Window, role.Base, role.AlternateBase)]
    texts = [state_colour(s, palette) for s in ("succeeded", "failed", "running", "warning",
                                                "info", "none")]
    texts += [palette.color(r) for r in (role.WindowText, role.Text, role.ButtonText,
                                         role.PlaceholderText, role.Link)]
    low = [(t.name(), b.name(), round(contrast(t, b), 2)) for t in texts for b in backgrounds
           if contrast(t, b) < 4.5]
    assert low == []
    assert contrast(palette.color(role.HighlightedText), palette.color(role.Highlight)) >= 4.5
    assert contrast(palette.color(role.ToolTipText), palette.color(role.ToolTipBase)) >= 4.5
    # The focus ring and a box's outline are drawn in these: 3:1 for parts of a control.
    for part in (role.Highlight, role.PlaceholderText):
        assert contrast(palette.color(part), palette.color(role.Window)) >= 3
    assert contrast(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21)


def test_a_message_already_shown_takes_the_new_themes_colour(qtbot, qapp, keep_theme):
    from desktop_backup.ui.theme import apply_theme, dark_palette, light_palette, state_colour
    from desktop_backup.ui.widgets import MessageLine

    apply_theme(qapp, "light")
    line = MessageLine()
    qtbot.addWidget(line)
    line.show_ok("Backed up.")
    assert state_colour("succeeded", light_palette()).name() in line.text.styleSheet()
    apply_theme(qapp, "dark")
    qtbot.waitUntil(lambda: state_colour("succeeded", dark_palette()).name()
                    in line.text.styleSheet(), timeout=WAIT_MS)


# --- verify and the history ---------------------------------------------------------------------


def test_verify_speaks_local_time_and_its_row_reads_as_a_check(qtbot, ui, open_console,
                                                                sqlite_demo_db, env, prompts):
    import re

    from desktop_backup.ui.history_table import ROWS, SIZE, STATUS

    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    notice_when_told = []
    prompts.inform = lambda _parent, title, text, ok=True: notice_when_told.append(
        (window.notice.message(), text))
    slot = env.backup_folder / "org_MEDP_wednesday_backup.zip"
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        window.file_action("verify", slot)
    message = done.args[2]
    assert "made Wed 25 Nov 2026, 10:00" in message  # the FakeClock's local time, not UTC
    assert not re.search(r"\d{4}-\d\d-\d\dT", message)  # no ISO timestamp
    assert re.search(r"\d,\d{3} rows\. ", message)  # thousands separated
    assert notice_when_told == [(message, message)]  # "Checking…" gone before the dialog
    wait_idle(qtbot, window)
    history = window.history
    audited = next(e for e in history.model.entries if e.action == "verify").message
    assert message.endswith(audited.split(" rows. ", 1)[1])  # whether it is as written
    history.status_filter.setCurrentIndex(history.status_filter.findText("Checks"))
    assert [e.action for e in history.proxy_entries()] == ["verify"]
    proxy = history.proxy
    assert proxy.index(0, STATUS).data() == "Check: the backup is intact"
    assert proxy.index(0, SIZE).data() == "" and proxy.index(0, ROWS).data() == ""
    history.status_filter.setCurrentIndex(history.status_filter.findText("Backups"))
    assert [e.action for e in history.proxy_entries()] == ["backup"]
    offered = [history.status_filter.itemText(i) for i in range(history.status_filter.count())]
    assert {"Backups", "Restores", "Checks", "Settings changes", "Failed"} <= set(offered)


def test_an_sqlite_file_needs_no_password_and_the_tab_says_only_that(qtbot, ui, open_console,
                                                                     sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    settings = window.open_settings()
    wait_idle(qtbot, window)
    settings.tabs.setCurrentIndex(2)
    assert settings.password_intro.text() == "An SQLite file needs no password."
    assert not settings.password_row.isVisible() and not settings.password_note.isVisible()
    settings.close()


def test_the_week_by_keyboard_and_restore_in_sight(qtbot, ui, open_console, sqlite_demo_db,
                                                   env):
    from PySide6.QtCore import Qt

    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    grid = window.grid
    wednesday = grid.cell("wednesday")  # today, with the day's backup
    assert wednesday.restore_button.isVisible()
    assert not grid.cell("tuesday").restore_button.isVisible()  # nothing to restore there
    wednesday.setFocus()
    qtbot.keyClick(wednesday, Qt.Key.Key_Right)
    assert grid.cell("thursday").hasFocus()
    qtbot.keyClick(grid.cell("thursday"), Qt.Key.Key_Left)
    qtbot.keyClick(grid.cell("wednesday"), Qt.Key.Key_Left)
    assert grid.cell("tuesday").hasFocus()
    qtbot.keyClick(grid.cell("tuesday"), Qt.Key.Key_End)
    assert grid.cell("sunday").hasFocus()
    qtbot.keyClick(grid.cell("sunday"), Qt.Key.Key_Home)
    assert grid.cell("monday").hasFocus()
    asked = []
    window.set_restore_handler(lambda org, path: asked.append(path))
    wednesday.restore_button.click()
    assert asked == [env.backup_folder / "org_MEDP_wednesday_backup.zip"]


def test_log_out_shows_the_login_for_another_user_and_help_has_a_guide(
        qtbot, ui, open_console, sqlite_demo_db, env, prompts):
    from desktop_backup.ui.guide import LOG_LINK, GuideDialog

    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    names = [a.objectName() for a in window.menuBar().actions()[0].menu().actions()]
    assert "logOutAction" in names
    window.logout_action.trigger()
    assert window.session.is_closed and not window.isVisible()
    login = console.login
    assert login.isVisible() and login.password_edit.text() == ""
    other = ui.log_in(console, "medp.owner")
    assert other is not window and other.session.user.username == "medp.owner"
    assert console.window is other
    wait_idle(qtbot, other)

    guide = other.open_guide()
    assert isinstance(guide, GuideDialog) and guide.isVisible()
    words = guide.text.toPlainText()
    assert "How to restore a day" in words and "Restore this day…" in words
    assert str(env.backup_folder) in words and str(env.paths.log_dir) in words
    from PySide6.QtCore import QUrl

    assert guide.follow(QUrl(LOG_LINK)) and prompts.opened[-1] == env.paths.log_dir
    guide.close()
    with qtbot.waitSignal(console.finished, timeout=WAIT_MS):
        other.quit()  # Quit still ends the program


def test_the_super_admins_picker_shows_whole_names_and_asks_plainly(qtbot, ui, open_console,
                                                                    sqlite_demo_db, env):
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "superadmin")
    picker = window.picker
    qtbot.waitUntil(lambda: picker.count() > 1, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    assert window.notice.kind == "info"  # a prompt, not the running clock
    assert window.notice.message() == "Choose the organization to look after."
    texts = [picker.itemText(i) for i in range(picker.count())]
    longest = max(texts, key=picker.fontMetrics().horizontalAdvance)
    assert "suspended" in longest
    qtbot.waitUntil(lambda: picker.width() > picker.fontMetrics().horizontalAdvance(longest),
                    timeout=WAIT_MS)


def test_the_log_tells_support_who_did_what_to_whose_data(qtbot, ui, open_console,
                                                         sqlite_demo_db, env, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="desktop_backup")
    console = open_console(sqlite_demo_db)
    assert "not correct" in ui.refused(console, "medp.admin", "Wrong-Secret-1")
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    slot = env.backup_folder / "org_MEDP_wednesday_backup.zip"
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS):
        window.file_action("delete", slot)
    wait_idle(qtbot, window)
    lines = [r.getMessage() for r in caplog.records]
    assert any("Login refused for 'medp.admin'" in line for line in lines)
    assert not any("Wrong-Secret-1" in line for line in lines)  # never the password
    assert any(line.startswith("Audit: backup success, organization 1, by medp.admin (login)")
               for line in lines)
    assert any(line.startswith("Audit: delete success, organization 1, by medp.admin")
               and str(slot) in line for line in lines)


def test_the_folder_error_is_one_line_with_its_icon_and_notes_leave_no_gaps(
        qtbot, ui, open_console, sqlite_demo_db, env, tmp_path):
    from desktop_backup.ui.widgets import WrappedLabel

    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    dialog = window.open_settings()
    wait_idle(qtbot, window)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    dialog.folder_edit.setText(str(blocker / "backups"))
    qtbot.waitUntil(lambda: dialog.folder_check is not None, timeout=WAIT_MS)
    line = dialog.folder_result
    assert line.kind == "failed"
    qtbot.waitUntil(lambda: abs(line.text.y() - line.icon.y()) <= 2, timeout=WAIT_MS)
    page = dialog.tabs.widget(0)
    notes = [n for n in page.findChildren(WrappedLabel) if n.isVisible()]
    assert len(notes) >= 3
    for note in notes:  # each as tall as its wrapped text, no taller
        qtbot.waitUntil(lambda n=note: n.height() <= n.heightForWidth(n.width()) + 2,
                        timeout=WAIT_MS)
    dialog.close()
