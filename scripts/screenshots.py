"""Screenshots of the real widgets, drawn offscreen, for the docs and for looking at.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Makes, in light and dark: the first-run screen, the connection form, the login (and a
refusal), the main window during and after the day's backup, and the week with a failed day
whose last week's copy was kept; plus the main window at 200% scaling. The clock is fixed
(Wednesday 25 November 2026, 10:00) and a week of history is made with the real backup
engine first, so every run draws the same pictures.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from desktop_backup.auth import LoginThrottle, authenticate  # noqa: E402
from desktop_backup.backup import Actor, run_backup  # noqa: E402
from desktop_backup.config import AppPaths, Settings  # noqa: E402
from desktop_backup.db import open_engine  # noqa: E402
from desktop_backup.demo import DEMO_PASSWORD, create_demo_database  # noqa: E402
from desktop_backup.errors import DesktopBackupError  # noqa: E402
from desktop_backup.ui.app import Console, application, quiet_offscreen_warnings  # noqa: E402
from desktop_backup.ui.env import Env  # noqa: E402
from desktop_backup.ui.prompts import Prompts  # noqa: E402
from desktop_backup.ui.theme import apply_theme  # noqa: E402

NOW = datetime(2026, 11, 25, 10, 0).astimezone()  # a Wednesday, in local time
UNPLUGGED = Path("/media/usb-backup/backups")  # its drive is "not connected"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Gate:
    """A backup runner that pauses once past `hold` rows, so 'during' can be drawn."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.release = threading.Event()

    def __call__(self, *args, progress=None, **kwargs):
        def paced(p) -> None:
            progress(p)
            if p.rows_done >= self.hold:
                self.release.wait(60)
        return run_backup(*args, progress=paced, **kwargs)


def wait_until(condition: Callable[[], bool], timeout_ms: int = 30_000) -> None:
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start()
    QTimer.singleShot(timeout_ms, loop.quit)
    if not condition():
        loop.exec()
    poll.stop()
    if not condition():
        raise TimeoutError("the window did not get there in time")
    settle()


def settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def save(widget: QWidget, out: Path, name: str) -> Path:
    settle()
    path = out / f"{name}.png"
    widget.grab().save(str(path))
    print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return path


def prepare(root: Path) -> AppPaths:
    """The demo database with a week of history: last week's copies, Monday and Tuesday of
    this week, and Tuesday's run failing on an unplugged drive (last week's copy kept)."""
    paths = AppPaths(root / "config", root / "data", root / "logs")
    demo = create_demo_database(paths.demo_database)
    folder = Settings().backup_folder(paths)
    engine = open_engine(demo.url)
    try:
        owner = authenticate(engine, Settings().mapping, "medp.owner", DEMO_PASSWORD,
                             LoginThrottle(paths.login_throttle_file))
        org = owner.organization
        actor = Actor(owner.user_id, owner.username)
        for days_ago in (8, 7, 6, 5, 4, 3):  # Tue..Sun of last week
            when = Clock(NOW - timedelta(days=days_ago, hours=1, minutes=days_ago * 7))
            run_backup(engine, Settings().mapping, org, actor, folder, trigger="login",
                       clock=when)
        run_backup(engine, Settings().mapping, org, actor, folder, trigger="login",
                   clock=Clock(NOW - timedelta(days=2, hours=1, minutes=12)))
        try:
            run_backup(engine, Settings().mapping, org, actor, UNPLUGGED, trigger="login",
                       clock=Clock(NOW - timedelta(days=1, hours=1, minutes=3)))
        except DesktopBackupError:
            pass  # the failure is what the picture shows
    finally:
        engine.dispose()
    return paths


class QuietPrompts(Prompts):
    """No modal dialogs in a screenshot run."""

    def inform(self, parent, title, text, ok=True) -> None:
        pass


def shoot(theme: str, out: Path, scale_suffix: str = "") -> None:
    app = application()
    apply_theme(app, theme)
    suffix = f"-{theme}{scale_suffix}"
    with tempfile.TemporaryDirectory(prefix="desktop-backup-shots-") as tmp:
        paths = prepare(Path(tmp))
        gate = Gate(hold=30_000)
        env = Env(paths=paths, settings=Settings(theme=theme), clock=Clock(NOW),
                  backup_runner=gate, prompts=QuietPrompts())
        console = Console(env)
        console.start()
        first_run = console.first_run
        assert first_run is not None
        if not scale_suffix:
            save(first_run, out, f"first-run{suffix}")
            first_run.show_form()
            first_run.kind.setCurrentIndex(1)
            first_run.host_edit.setText("192.168.1.20")
            first_run.database_edit.setText("billing")
            first_run.user_edit.setText("backup")
            save(first_run, out, f"connect-form{suffix}")
            first_run.reject()  # back to the choice
        first_run.demo_button.click()
        wait_until(lambda: console.login is not None and console.login.isVisible())
        login = console.login
        login.username_edit.setText("medp.admin")
        login.password_edit.setText(DEMO_PASSWORD)
        if not scale_suffix:
            save(login, out, f"login{suffix}")
            login.username_edit.setText("medp.staff")
            login.login_button.click()
            wait_until(lambda: bool(login.message.message()))
            save(login, out, f"login-refused{suffix}")
            login.username_edit.setText("medp.admin")
            login.password_edit.setText(DEMO_PASSWORD)
            login.message.clear()
        login.login_button.click()
        wait_until(lambda: console.window is not None)
        window = console.window
        window.resize(1280, 760)
        wait_until(lambda: window.last_progress is not None
                   and window.last_progress.rows_done >= gate.hold
                   and window._drawn_progress is window.last_progress)
        wait_until(lambda: not any(name == "overview" for name in window.runner.names()))
        save(window, out, f"main-during-backup{suffix}")
        gate.release.set()
        wait_until(lambda: not window.backup_running and not window.runner.busy)
        save(window, out, f"main-after-backup{suffix}")
        if not scale_suffix:
            save(window.grid, out, f"week-failed-day{suffix}")
        window.close()
        console.shutdown()
        settle()


def main() -> int:
    logging.basicConfig(level=logging.ERROR)  # the planned failure is no news here
    quiet_offscreen_warnings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--theme", choices=("light", "dark"), action="append")
    parser.add_argument("--scaled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scaled:  # the child run: QT_SCALE_FACTOR was set before Qt started
        shoot("light", args.out, scale_suffix="-200pct")
        return 0
    for theme in args.theme or ("light", "dark"):
        shoot(theme, args.out)
    env = {**os.environ, "QT_SCALE_FACTOR": "2"}
    return subprocess.call([sys.executable, __file__, "--out", str(args.out), "--scaled"],
                           env=env)


if __name__ == "__main__":
    sys.exit(main())
