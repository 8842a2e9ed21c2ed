"""Fixtures for the window's tests: answering dialogs, a fixed clock, a pausable backup.

Loaded with ``pytest_plugins = ["tests.ui_support"]``. Everything the window depends on is
passed in through :class:`desktop_backup.ui.env.Env`; nothing here patches a global.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from desktop_backup.backup import run_backup
from desktop_backup.config import AppPaths, Settings
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.ui.app import Console
from desktop_backup.ui.env import Env
from desktop_backup.ui.main_window import MainWindow
from desktop_backup.ui.prompts import CLOSE_STAY, Prompts
from tests.clock import FakeClock

WAIT_MS = 15_000


class FakePrompts(Prompts):
    """Answers at once and remembers what was asked."""

    def __init__(self) -> None:
        self.close_answer = CLOSE_STAY
        self.delete_answer = True
        self.fewer_tables_answer = True
        self.auto_off_answer = True
        self.console_tables_answer = True
        self.copy_to: Path | None = None
        self.sqlite_file: Path | None = None
        self.backup_file: Path | None = None
        self.encryption_off_answer = True
        self.sheet_to: Path | None = None
        self.sheet_file: Path | None = None
        self.printed: list[str] = []
        self.asked: list[str] = []
        self.informed: list[tuple[str, str, bool]] = []
        self.opened: list[Path] = []

    def ask_close_during_backup(self, parent) -> str:
        self.asked.append("close")
        return self.close_answer

    def confirm_delete(self, parent, path: Path) -> bool:
        self.asked.append(f"delete {path.name}")
        return self.delete_answer

    def confirm_fewer_tables(self, parent, left_out: list[str], kept: int, total: int) -> bool:
        self.asked.append(f"fewer tables {kept} of {total}: {', '.join(left_out)}")
        return self.fewer_tables_answer
    def confirm_console_tables(self, parent, tables: list[str], schema: str = "") -> bool:
        where = f" in {schema}" if schema else ""
        self.asked.append(f"console tables{where}: {', '.join(tables)}")
        return self.console_tables_answer

    def confirm_auto_backup_off(self, parent, organization: str) -> bool:
        self.asked.append(f"auto off {organization}")
        return self.auto_off_answer

    def save_copy_to(self, parent, suggested: Path) -> Path | None:
        self.asked.append(f"copy {suggested.name}")
        return self.copy_to

    def choose_sqlite_file(self, parent, start: Path | None) -> Path | None:
        return self.sqlite_file

    def choose_backup_file(self, parent, start: Path | None) -> Path | None:
        self.asked.append("backup file")
        return self.backup_file

    def confirm_encryption_off(self, parent, organization: str) -> bool:
        self.asked.append(f"encryption off {organization}")
        return self.encryption_off_answer

    def save_recovery_sheet(self, parent, suggested: Path) -> Path | None:
        self.asked.append(f"save sheet {suggested.suffix}")
        return None if self.sheet_to is None else self.sheet_to.with_suffix(suggested.suffix)

    def choose_recovery_sheet(self, parent, start: Path | None) -> Path | None:
        self.asked.append("recovery sheet")
        return self.sheet_file

    def print_document(self, parent, document) -> bool:
        self.printed.append(document.toPlainText())
        return True

    def inform(self, parent, title: str, text: str, ok: bool = True) -> None:
        self.informed.append((title, text, ok))

    def open_folder(self, folder: Path) -> bool:
        self.opened.append(folder)
        return True


class Gate:
    """A backup runner that stops at its first progress report until released.

    Lets a test click Cancel or close the window while the backup is certainly running,
    without sleeping and without a race against a fast backup.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reached = threading.Event()

    def __call__(self, *args, progress=None, **kwargs):
        def held(p) -> None:
            progress(p)
            self.reached.set()
            self.release.wait(WAIT_MS / 1000)
        return run_backup(*args, progress=held, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # Wednesday 25 November 2026, 10:00 in India


@pytest.fixture
def prompts() -> FakePrompts:
    return FakePrompts()


@pytest.fixture
def env(app_paths: AppPaths, clock: FakeClock, prompts: FakePrompts) -> Env:
    return Env(paths=app_paths, settings=Settings(), clock=clock, prompts=prompts)


@pytest.fixture
def demo_file(app_paths: AppPaths, sqlite_demo_db: str) -> Path:
    """The small test database placed where the demo lives, so 'Open the demo' is quick
    (create_demo_database keeps an existing demo file as it is)."""
    target = app_paths.demo_database
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(make_url(sqlite_demo_db).database, target)
    return target


@pytest.fixture
def consoles(qtbot) -> Iterator[list[Console]]:
    """Consoles a test started; afterwards every backup is released, every window closed
    and every thread waited for."""
    started: list[Console] = []
    yield started
    for console in started:
        window = console.window
        if window is not None and not window.session.is_closed:
            if window.session.backup_running:
                window.session.cancel_backup()
                runner = window.env.backup_runner
                if isinstance(runner, Gate):
                    runner.release.set()
                qtbot.waitUntil(lambda w=window: not w.session.backup_running, timeout=WAIT_MS)
            window.close()
        for widget in (console.first_run, console.login):
            if widget is not None:
                widget.close()
        console.shutdown()


@pytest.fixture
def start_console(qtbot, env: Env, consoles: list[Console]):
    def start(db_url: str | None = None) -> Console:
        console = Console(env, db_url)
        consoles.append(console)
        console.start()
        return console
    return start


class UiHelper:
    """The login steps every flow test repeats, bound to the test's qtbot.

    A fixture rather than importable functions: importing this plugin module from a test
    module would keep pytest from rewriting its asserts.
    """

    Gate = Gate
    WAIT_MS = WAIT_MS

    def __init__(self, qtbot) -> None:
        self.qtbot = qtbot

    def log_in(self, console: Console, username: str, password: str = DEMO_PASSWORD
               ) -> MainWindow:
        """Type into the real login dialog, press Enter, and return the main window."""
        qtbot = self.qtbot
        dialog = console.login
        assert dialog is not None and dialog.isVisible()
        dialog.username_edit.clear()
        qtbot.keyClicks(dialog.username_edit, username)
        dialog.password_edit.clear()
        qtbot.keyClicks(dialog.password_edit, password)
        with qtbot.waitSignal(console.mainWindowShown, timeout=WAIT_MS) as shown:
            qtbot.keyClick(dialog.password_edit, "\r")
        return shown.args[0]

    def refused(self, console: Console, username: str, password: str = DEMO_PASSWORD) -> str:
        """Try a login that must fail; the sentence the dialog shows."""
        dialog = console.login
        assert dialog is not None
        dialog.username_edit.setText(username)
        dialog.password_edit.setText(password)
        dialog.message.clear()
        dialog.login_button.click()
        self.qtbot.waitUntil(
            lambda: not dialog.busy.isVisible() and bool(dialog.message.message()),
            timeout=WAIT_MS)
        return dialog.message.message()


@pytest.fixture
def quiet_window(qtbot, ui, env, consoles, sqlite_demo_db):
    """medp.admin logged in with no automatic backup, no tray and no scheduler; the week read."""
    env.settings.auto_backup_on_login = False
    console = Console(env, sqlite_demo_db, tray_available=lambda: False,
                      start_scheduler=False)
    consoles.append(console)
    console.start()
    window = ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: window.session.overview is not None and not window.session.runner.busy,
                    timeout=WAIT_MS)
    return window


@pytest.fixture
def ui(qtbot) -> UiHelper:
    return UiHelper(qtbot)
