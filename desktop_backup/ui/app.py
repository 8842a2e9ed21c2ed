"""Starting the console: first run, then login, then the main window.

:class:`Console` is the flow; it holds no logic of its own beyond which screen comes next,
so tests drive the very same object the desktop-backup command starts.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.schedulers.base import BaseScheduler
from PySide6.QtCore import (
    QEventLoop,
    QMessageLogContext,
    QObject,
    Qt,
    QtMsgType,
    Signal,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from desktop_backup import usecases
from desktop_backup.auth import Session
from desktop_backup.config import AppPaths, Settings
from desktop_backup.logs import setup_logging
from desktop_backup.ui.env import Env
from desktop_backup.ui.first_run import FirstRunDialog
from desktop_backup.ui.login import LoginDialog
from desktop_backup.ui.main_window import MainWindow
from desktop_backup.ui.restore_wizard import RestoreLauncher
from desktop_backup.ui.schedule import ScheduleGlue
from desktop_backup.ui.session import ConsoleSession
from desktop_backup.ui.single_instance import SingleInstance
from desktop_backup.ui.theme import apply_theme, icon
from desktop_backup.ui.tray import TrayController
from desktop_backup.ui.workers import TaskRunner

if TYPE_CHECKING:
    from desktop_backup.db import Engine  # the core's name for it: ui/ imports no sqlalchemy


class Console(QObject):
    """Which screen is showing. ``finished`` when the person quits or closes the window."""

    mainWindowShown = Signal(object)
    finished = Signal()

    def __init__(self, env: Env, db_url: str | None = None, *,
                 tray_available: Callable[[], bool] = QSystemTrayIcon.isSystemTrayAvailable,
                 scheduler: Callable[[], BaseScheduler | None] = lambda: None,
                 start_scheduler: bool = True) -> None:
        """``tray_available``, ``scheduler`` (a factory; None: a BackgroundScheduler) and
        ``start_scheduler`` are for tests and the screenshots."""
        super().__init__()
        self.env, self.db_url = env, db_url
        self.tray_available = tray_available
        self.scheduler_factory = scheduler
        self.start_scheduler = start_scheduler
        self.session: ConsoleSession | None = None
        self.schedule: ScheduleGlue | None = None
        self.tray: TrayController | None = None
        self.restore_launcher: RestoreLauncher | None = None
        self.runner = TaskRunner(self)
        self.first_run: FirstRunDialog | None = None
        self.login: LoginDialog | None = None
        self.window: MainWindow | None = None

    def start(self) -> None:
        if self.db_url or self.env.settings.profiles:
            self.show_login()
        else:
            self.show_first_run()

    def show_first_run(self, form_only: bool = False) -> FirstRunDialog:
        dialog = FirstRunDialog(self.env, self.runner, start_on_form=form_only)
        self.first_run = dialog
        dialog.connected.connect(self._connected)
        dialog.rejected.connect(self._first_run_closed)
        dialog.show()
        return dialog

    def _connected(self, profile: str) -> None:
        if self.login is not None:
            self.login.reload_profiles(select=profile)
            self.login.show()
            self.login.password_edit.setFocus()
        else:
            self.show_login()

    def _first_run_closed(self) -> None:
        if self.login is None:  # nothing to go back to
            self.finished.emit()
        else:
            self.login.show()

    def show_login(self) -> LoginDialog:
        dialog = LoginDialog(self.env, self.runner, self.db_url)
        self.login = dialog
        dialog.loggedIn.connect(self._logged_in)
        dialog.rejected.connect(self.finished)
        dialog.addConnectionRequested.connect(self._add_connection)
        dialog.show()
        return dialog

    def _add_connection(self) -> None:
        assert self.login is not None
        self.login.hide()
        self.show_first_run(form_only=True)

    def _logged_in(self, result: usecases.LoginResult) -> None:
        """One session, and around it the schedule, the window, the restore wizard and the
        tray, each told what it needs."""
        session = ConsoleSession(self.env, result)
        schedule = ScheduleGlue(session, self.scheduler_factory(), self.start_scheduler)
        tray_available = self.tray_available()
        window = MainWindow(session, schedule, hide_to_tray=tray_available)
        session.setParent(window)  # closed and deleted with it
        launcher = install_restore_wizard(session, window)
        tray = TrayController(session, tray_available, schedule)
        tray.openRequested.connect(window.show_again)
        tray.quitRequested.connect(window.quit)
        window.hiddenToTray.connect(tray.window_hidden)
        self.session, self.schedule, self.tray = session, schedule, tray
        self.restore_launcher, self.window = launcher, window
        window.closed.connect(lambda w=window: self._window_closed(w))
        window.show()
        self.mainWindowShown.emit(window)
        session.start()

    def bring_forward(self) -> None:
        """Another launch asked for the console: show whichever screen is current, on top."""
        for widget in (self.window, self.login, self.first_run):
            if widget is not None and (widget is self.window or widget.isVisible()):
                widget.showNormal()
                widget.raise_()
                widget.activateWindow()
                return

    def _window_closed(self, window: MainWindow) -> None:
        """Quit ends the program; Log out shows the login again, for the same or another
        user (the window's threads are stopped and its engine disposed by then)."""
        if not window.logging_out or self.login is None:
            self.finished.emit()
            return
        window.session.runner.shutdown()
        self.window = None  # nothing for another launch to bring forward but the login
        login = self.login
        login.password_edit.clear()
        login.message.clear()
        login.username_edit.selectAll()
        login.username_edit.setFocus()
        login.show()

    def shutdown(self) -> None:
        """Wait for every thread (tests, and the end of the program)."""
        self.runner.shutdown()
        if self.window is not None:
            self.window.session.runner.shutdown()
        if self.schedule is not None:
            self.schedule.stop()


def install_restore_wizard(session: ConsoleSession, window: MainWindow) -> RestoreLauncher:
    """Make every Restore… of the window open the wizard, modal to the window."""
    launcher = RestoreLauncher(session, window)
    window.set_restore_handler(launcher.open)
    return launcher


def application() -> QApplication:
    """The one QApplication (tests and the headless screenshot reuse an existing one)."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Desktop Backup")
    app.setOrganizationName("DesktopBackup")
    app.setWindowIcon(icon("app"))
    return app


def run_gui(env: Env, db_url: str | None = None) -> int:
    """`desktop-backup [gui]`: the window until the person quits; the exit status."""
    try:
        setup_logging(env.paths)  # once per process: a no-op after the command line's
    except OSError as exc:
        logging.getLogger(__name__).warning("No log file: %s", exc)
    app = application()
    guard = SingleInstance(env.paths.data_dir)
    if not guard.acquire():
        print("Desktop Backup is already running for this user; its window is brought forward.")
        return 0
    apply_theme(app, env.settings.theme)
    # With a notification area, a closed window only hides; a dialog closed meanwhile
    # must not end the program (Console.finished does, on Quit).
    app.setQuitOnLastWindowClosed(not QSystemTrayIcon.isSystemTrayAvailable())
    console = Console(env, db_url)
    console.finished.connect(app.quit)
    guard.showRequested.connect(console.bring_forward)
    if sys.platform == "darwin":  # a click on the Dock icon shows a window hidden in the tray
        app.applicationStateChanged.connect(
            lambda state: state == Qt.ApplicationState.ApplicationActive
            and console.bring_forward())
    console.start()
    status = app.exec()
    console.shutdown()
    guard.release()
    return status


def quiet_offscreen_warnings() -> None:
    """The offscreen platform warns about window hints it ignores; keep the terminal clean."""

    def handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def screenshot_headless(paths: AppPaths, settings: Settings, engine: Engine,
                        session: Session) -> Path:
    """`make run` without a display: the main window drawn offscreen, saved as a PNG."""
    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        quiet_offscreen_warnings()
    path = paths.data_dir / "screenshots" / "main-window.png"
    return screenshot_main_window(Env(paths=paths, settings=settings),
                                  usecases.LoginResult(engine, session), path)


def screenshot_main_window(env: Env, login: usecases.LoginResult, path: Path) -> Path:
    """Draw the main window offscreen, as it is once its week is read, into a PNG."""
    app = application()
    apply_theme(app, env.settings.theme)
    session = ConsoleSession(env, login, owns_engine=False)  # the engine is the caller's
    window = MainWindow(session)
    session.setParent(window)
    install_restore_wizard(session, window)  # as in the console: every Restore… is usable
    window.show()
    loop = QEventLoop()
    session.overviewLoaded.connect(loop.quit)
    task = session.refresh()
    if task is not None:
        task.on_failed(lambda _message, _error: loop.quit())
        loop.exec()
    app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(path))
    session.close()
    window.hide()
    window.deleteLater()
    return path
