"""The window's parts on their own: the thread helper, the history model, the day cells,
the words, and the command line that starts the window."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication
from sqlalchemy import create_engine, text

from desktop_backup import cli, launcher, usecases
from desktop_backup import wording as words
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import AuditEntry
from desktop_backup.ui.history_table import COLUMNS, SIZE, STATUS, WHEN, HistoryPanel, file_name
from desktop_backup.ui.login import LoginDialog
from desktop_backup.ui.theme import apply_theme, dark_palette, light_palette, state_colour
from desktop_backup.ui.week_grid import WeekGrid, short_paths
from desktop_backup.ui.workers import TaskRunner
from desktop_backup.weekview import DayState
from desktop_backup.work import Progress

pytest_plugins = ["tests.ui_support"]  # env, prompts, clock
WAIT_MS = 15_000


# --- the thread helper --------------------------------------------------------------------------


@pytest.fixture
def runner(qtbot):
    runner = TaskRunner()
    yield runner
    runner.shutdown()


def test_a_task_runs_off_the_ui_thread_and_reports_on_it(qtbot, runner):
    ui_thread = QThread.currentThread()
    seen = {}

    def work(progress):
        seen["worker"] = QThread.currentThread()
        progress(Progress("customers", 0, 2, 5, 10))
        return True  # a bare bool crosses the thread boundary (PySide6 6.12 lost these)

    task = runner.run("work", lambda progress: work(progress), with_progress=True)
    task.on_progress(lambda p: seen.setdefault("progress", (p, QThread.currentThread())))
    task.on_finished(lambda result: seen.setdefault("result", (result,
                                                              QThread.currentThread())))
    with qtbot.waitSignal(task.done, timeout=WAIT_MS):
        pass
    assert seen["worker"] is not ui_thread
    assert seen["progress"][0].table == "customers" and seen["progress"][1] is ui_thread
    assert seen["result"] == (True, ui_thread)
    assert task.ok is True and not runner.busy


def test_a_failure_arrives_as_a_sentence(qtbot, runner):
    def refuse():
        raise DesktopBackupError("The disk is full; the previous copy was kept.")

    task = runner.run("refuse", refuse)
    failures = []
    task.on_failed(lambda message, error: failures.append((message, type(error))))
    with qtbot.waitSignal(task.failed, timeout=WAIT_MS) as failed:
        pass
    assert failed.args == ["The disk is full; the previous copy was kept."]
    assert failures == [("The disk is full; the previous copy was kept.", DesktopBackupError)]


def test_a_bug_is_reported_not_swallowed(qtbot, runner, caplog):
    task = runner.run("bug", lambda: {}["missing"])
    with qtbot.waitSignal(task.failed, timeout=WAIT_MS) as failed:
        pass
    assert failed.args[0].startswith("Something unexpected went wrong (KeyError: 'missing').")
    assert "Background task failed" in caplog.text


def test_none_results_travel_safely(qtbot, runner):
    results = []
    for _ in range(50):
        runner.run("none", lambda: None).on_finished(results.append)
    qtbot.waitUntil(lambda: len(results) == 50 and not runner.busy, timeout=WAIT_MS)
    assert results == [None] * 50


def test_emitting_does_not_eat_references_to_true(qapp):
    class Pinger(QObject):
        ping = Signal(object)

    pinger = Pinger()
    before = sys.getrefcount(True)
    for _ in range(2000):  # more than a fresh interpreter's references to True
        pinger.ping.emit(True)
    assert sys.getrefcount(True) >= before


# --- the words ----------------------------------------------------------------------------------


def test_sizes_durations_and_dates_read_plainly():
    assert [words.human_size(n) for n in (0, 900, 80_509, 1_468_006, 5 * 1024 ** 3)] == [
        "0 bytes", "900 bytes", "78.6 KB", "1.4 MB", "5.0 GB"]
    assert [words.duration(ms) for ms in (None, 80, 12_345, 125_000)] == [
        "", "0.1 s", "12.3 s", "2 min 05 s"]
    assert words.day_date(date(2026, 11, 25)) == "Wed 25 Nov 2026"
    assert words.date_time(datetime(2026, 11, 25, 9, 5)) == "Wed 25 Nov 2026, 09:05"


def entry(**values) -> AuditEntry:
    base = {"action": "backup", "outcome": "success", "organization_id": 1}
    return AuditEntry(**{**base, **values})


def test_status_words():
    assert words.status(entry()) == "Backup succeeded"
    assert words.status(entry(outcome="failed", message="The disk is full.")) == (
        "Backup failed: The disk is full.")
    assert words.status(entry(action="skipped", outcome="skipped")) == (
        "Skipped (already done today)")
    assert words.status(entry(action="verify", outcome="failed")) == (
        "Check: the backup is damaged")
    assert words.status(entry(action="save_copy")) == "Copy saved"
    assert words.status(entry(action="toggle", message="Automatic daily backup turned on.")) \
        == "Automatic daily backup turned on"


def test_file_names_of_the_web_apps_windows_paths():
    assert file_name(r"C:\xampp\htdocs\storage\app\backups\org_MEDP_monday_backup.zip") == (
        "org_MEDP_monday_backup.zip")
    assert file_name("/srv/backups/org_MEDP_monday_backup.zip") == "org_MEDP_monday_backup.zip"


def test_long_paths_in_a_reason_keep_the_end_of_the_sentence():
    assert short_paths("The backup folder /media/shop/usb-drive/backups does not exist "
                       "(is its drive connected?).") == (
        "The backup folder …/usb-drive/backups does not exist (is its drive connected?).")


# --- the history model --------------------------------------------------------------------------


def test_history_sorts_numbers_as_numbers_and_filters(qtbot):
    panel = HistoryPanel()
    qtbot.addWidget(panel)
    panel.set_entries([
        entry(id=3, occurred_at=datetime(2026, 11, 25, 10), bytes=900, rows=10,
              file="/b/org_MEDP_wednesday_backup.zip", username="medp.admin"),
        entry(id=2, occurred_at=datetime(2026, 11, 24, 10), outcome="failed",
              message="The disk holding the backup folder is full.", username="medp.owner"),
        entry(id=1, occurred_at=datetime(2026, 11, 23, 10), bytes=10 * 1024 ** 2, rows=99,
              file="/b/org_MEDP_monday_backup.zip", username="medp.owner"),
        entry(id=4, occurred_at=datetime(2026, 11, 22, 10), bytes=2048,
              action="save_copy", file="/usb/copy.zip", username="medp.admin"),
    ])
    proxy = panel.proxy
    assert proxy.columnCount() == len(COLUMNS) == 9
    assert [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(9)] == [
        "Day", "Date and time", "File", "Size", "Rows", "Status", "Who", "Trigger",
        "Duration"]
    assert [e.id for e in panel.proxy_entries()] == [3, 2, 1, 4]  # newest first
    panel.table.sortByColumn(SIZE, Qt.SortOrder.AscendingOrder)
    assert [e.id for e in panel.proxy_entries()] == [3, 4, 1, 2]  # 900 B, 2 KB, 10 MB, none
    panel.table.sortByColumn(WHEN, Qt.SortOrder.DescendingOrder)

    panel.status_filter.setCurrentIndex(panel.status_filter.findText("Failed"))
    assert [e.id for e in panel.proxy_entries()] == [2]
    assert proxy.index(0, STATUS).data() == (
        "Backup failed: The disk holding the backup folder is full.")
    panel.status_filter.setCurrentIndex(0)
    qtbot.keyClicks(panel.search, "monday")
    assert [e.id for e in panel.proxy_entries()] == [1]
    panel.search.clear()
    qtbot.keyClicks(panel.search, "COPY")
    assert [e.id for e in panel.proxy_entries()] == [4]
    panel.search.clear()
    assert proxy.rowCount() == 4


def test_history_updates_by_model_reset(qtbot):
    panel = HistoryPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.model.modelReset):
        panel.set_entries([entry(id=1, occurred_at=datetime(2026, 11, 25, 10))])
    assert panel.proxy.rowCount() == 1


# --- the week grid ------------------------------------------------------------------------------


def day(weekday: str, state: str, **values) -> DayState:
    base = dict(weekday=weekday, is_today=False, state=state, backup_date=None, size=0,
                filename="", path="", error=None, copy_kept=False, age_days=None)
    return DayState(**{**base, **values})


WEEK = [
    day("monday", "succeeded", backup_date=date(2026, 11, 23), size=1_468_006, age_days=2,
        path="/b/org_MEDP_monday_backup.zip"),
    day("tuesday", "failed", backup_date=date(2026, 11, 24), age_days=1, copy_kept=True,
        copy_made=datetime(2026, 11, 17, 10, 5),
        error="The backup folder /media/usb/backups does not exist (is its drive connected?)."),
    day("wednesday", "running", is_today=True, backup_date=date(2026, 11, 25), age_days=0),
    day("thursday", "none"),
    day("friday", "failed", error="the backup stopped unexpectedly"),
    day("saturday", "none", error="the file is missing from the backup folder"),
    day("sunday", "none"),
]


def test_each_day_says_its_state_in_words_and_icon(qtbot):
    grid = WeekGrid()
    qtbot.addWidget(grid)
    grid.set_days(WEEK, {"/b/org_MEDP_monday_backup.zip": 63_126})
    names = [grid.findChild(QObject, f"dayCell_{d.weekday}") for d in WEEK]
    assert all(names) and grid.objectName() == "weekGrid"
    cells = grid.cells
    assert [cells[d.weekday].state_label.text() for d in WEEK] == [
        "Backed up", "Failed", "Backing up…", "No backup", "Failed", "No backup", "No backup"]
    assert cells["monday"].detail_label.text() == "23 Nov, 2 days ago\n1.4 MB\n63,126 rows"
    tuesday = cells["tuesday"].detail_label.text().replace("\u200b", "")
    assert tuesday.endswith("is its drive connected?).\nLast week's copy kept (17 Nov 10:05).")
    assert "No older copy" in cells["friday"].detail_label.text()
    assert "missing from the backup folder" in cells["saturday"].detail_label.text()
    assert cells["wednesday"].today_label.isVisibleTo(grid)
    assert not cells["monday"].today_label.isVisibleTo(grid)
    assert cells["wednesday"].accessibleName().startswith("Wednesday, today: Backing up…")
    for cell in cells.values():
        assert not cell.icon_label.pixmap().isNull()  # an icon, not colour alone

    grid.show_progress("wednesday", Progress("sale_transactions", 10, 21, 30_000, 63_126))
    assert cells["wednesday"].detail_label.text() == (
        "Table 11 of 21: Sale transactions\n30,000 of 63,126 rows")  # the wizard's words
    assert cells["wednesday"].bar.value() == 30_000


def contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return (0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF())
                + 0.0722 * channel(c.blueF()))
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("palette", [light_palette, dark_palette])
def test_state_words_are_readable_in_light_and_dark(palette):
    pal = palette()
    for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Window):
        for state in ("succeeded", "failed", "running", "none"):
            assert contrast(state_colour(state, pal), pal.color(role)) >= 4.5, state


def test_a_theme_switch_recolours_the_cells(qtbot):
    app = QApplication.instance()
    grid = WeekGrid()
    qtbot.addWidget(grid)
    grid.set_days(WEEK)
    label = grid.cells["monday"].state_label
    dark = state_colour("succeeded", dark_palette()).name()
    light = state_colour("succeeded", light_palette()).name()
    try:
        apply_theme(app, "dark")
        qtbot.waitUntil(lambda: dark in label.styleSheet())
        apply_theme(app, "light")
        qtbot.waitUntil(lambda: light in label.styleSheet())
    finally:
        apply_theme(app, "light")


# --- the login dialog's keyboard ----------------------------------------------------------------


def focus_order(start, count: int) -> list:
    order, widget = [], start
    while len(order) < count:
        widget = widget.nextInFocusChain()
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus and widget.isVisibleTo(
                widget.window()):
            order.append(widget)
    return order


def test_login_tab_order_and_defaults(qtbot, env):
    env.settings.remembered_username = "medp.admin"
    dialog = LoginDialog(env, TaskRunner(), db_url="sqlite:////nowhere/billing.sqlite")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.username_edit.text() == "medp.admin" and dialog.remember.isChecked()
    assert dialog.password_edit.echoMode() == dialog.password_edit.EchoMode.Password
    assert dialog.login_button.isDefault()
    assert focus_order(dialog.username_edit, 3) == [dialog.password_edit, dialog.remember,
                                                    dialog.login_button]
    assert dialog.where_label.text() == "The SQLite file /nowhere/billing.sqlite"


# --- services -----------------------------------------------------------------------------------


def test_connection_addresses_from_the_form(tmp_path):
    assert usecases.build_url("sqlite", path=str(tmp_path / "b.db")) == (
        f"sqlite:///{tmp_path / 'b.db'}")
    assert usecases.build_url("mysql", host="shop-pc", port=3306, database="billing",
                              user="backup") == "mysql://backup@shop-pc:3306/billing"
    with pytest.raises(DesktopBackupError, match="^Fill in the database name and the database "
                                                 "user.$"):
        usecases.build_url("postgresql", host="db", port=5432)
    with pytest.raises(DesktopBackupError, match="Choose the billing database file."):
        usecases.build_url("sqlite", path=" ")


def test_a_database_that_is_not_the_billing_one_is_named(tmp_path, env):
    path = tmp_path / "other.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(DesktopBackupError) as refused:
        usecases.test_connection(f"sqlite:///{path}", None, env.settings.mapping)
    assert str(refused.value) == (
        f"Connected, but the SQLite file {path} does not look like the billing database: it "
        "has no 'organizations' or 'users' table.")


# --- the command line ---------------------------------------------------------------------------


def test_no_subcommand_opens_the_window():
    parser = cli.build_parser()
    assert parser.parse_args([]).handler is cli.cmd_gui
    args = parser.parse_args(["--db", "sqlite:///x.db"])
    assert (args.handler, args.gui_db) == (cli.cmd_gui, "sqlite:///x.db")
    args = parser.parse_args(["gui", "--db", "sqlite:///y.db"])
    assert (args.handler, args.db) == (cli.cmd_gui, "sqlite:///y.db")
    assert parser.parse_args(["demo"]).handler is cli.cmd_demo


def test_make_run_without_a_display_runs_the_job_headless(qapp, app_paths, capsys):
    # conftest sets QT_QPA_PLATFORM=offscreen: no window can be shown, as on a server.
    assert launcher.main(["run-demo"], paths=app_paths) == 0
    out = capsys.readouterr().out
    assert "No display here, so no window" in out
    shot = Path(out.rsplit("Screenshot of the main window: ", 1)[1].strip())
    assert shot == app_paths.data_dir / "screenshots" / "main-window.png"
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert list((app_paths.data_dir / "backups").glob("org_MEDP_*_backup.zip"))
