"""Screenshots of the real widgets, drawn offscreen, for the docs and for looking at.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Makes, in light and dark: the first-run screen, the connection form, the login (and a
refusal), the main window during and after the day's backup, the week with a failed day
whose last week's copy was kept, and every page of the restore wizard (choose, check and
preview, another organization's backup refused, confirm, progress, summary) and the window
after the restore; plus the main window at 200% scaling. The clock is fixed
(Wednesday 25 November 2026, 10:00) and a week of history is made with the real backup
engine first, so every run draws the same pictures. Then (shoot_settings_and_tray) the main
window with its warning banner, the tray icon's three states with their tooltips and its
menu, each page of the settings dialog (the password page also with a locked keyring) and
About.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keyring  # noqa: E402
from keyring.backend import KeyringBackend  # noqa: E402
from keyring.errors import KeyringLocked  # noqa: E402
from PySide6.QtCore import QEventLoop, QSize, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402
from sqlalchemy import text  # noqa: E402

from desktop_backup.auth import LoginThrottle, authenticate  # noqa: E402
from desktop_backup.backup import run_backup  # noqa: E402
from desktop_backup.config import AppPaths, Profile, Settings  # noqa: E402
from desktop_backup.db import open_engine  # noqa: E402
from desktop_backup.demo import DEMO_PASSWORD, create_demo_database  # noqa: E402
from desktop_backup.errors import DesktopBackupError  # noqa: E402
from desktop_backup.organizations import find_organization, set_auto_backup_tables  # noqa: E402
from desktop_backup.restore import apply_restore  # noqa: E402
from desktop_backup.ui.app import Console, application, quiet_offscreen_warnings  # noqa: E402
from desktop_backup.ui.env import Env  # noqa: E402
from desktop_backup.ui.prompts import Prompts  # noqa: E402
from desktop_backup.ui.restore_context import SUMMARY  # noqa: E402
from desktop_backup.ui.restore_wizard import RestoreLauncher  # noqa: E402
from desktop_backup.ui.theme import apply_theme  # noqa: E402
from desktop_backup.work import Actor, Site  # noqa: E402

NOW = datetime(2026, 11, 25, 10, 0).astimezone()  # a Wednesday, in local time
UNPLUGGED = Path("/media/usb-backup/backups")  # its drive is "not connected"
# The pictures show folders as a shop owner's computer has them, not a temporary folder.
SHOP_HOME = Path("/home/meera")


@contextlib.contextmanager
def shop_home() -> Iterator[Path]:
    """A shop owner's home folder for one run, removed afterwards. Where it cannot be made
    (it exists already, or /home is not writable) a temporary folder stands in."""
    try:
        SHOP_HOME.mkdir(parents=True)
    except OSError:
        with tempfile.TemporaryDirectory(prefix="desktop-backup-shots-") as tmp:
            print(f"(cannot use {SHOP_HOME}; the pictures show {tmp} instead)")
            yield Path(tmp)
        return
    try:
        yield SHOP_HOME
    finally:
        shutil.rmtree(SHOP_HOME, ignore_errors=True)


def app_paths(home: Path) -> AppPaths:
    """Where Linux keeps the program's things under that home (see the README's table)."""
    return AppPaths(home / ".config" / "DesktopBackup", home / ".local" / "share" / "DesktopBackup",
                    home / ".local" / "state" / "DesktopBackup" / "log")


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


class RestoreGate:
    """A restore that pauses inside its transaction once past `hold` rows."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args, progress=None, **kwargs):
        def paced(p) -> None:
            progress(p)
            if p.rows_done >= self.hold and not self.release.is_set():
                self.reached.set()
                self.release.wait(60)
        return apply_restore(*args, progress=paced, **kwargs)


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
    paths = app_paths(root)
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
            run_backup(Site(engine, Settings().mapping, when), org, actor, folder, trigger="login")
        two_days_ago = Clock(NOW - timedelta(days=2, hours=1, minutes=12))
        run_backup(Site(engine, Settings().mapping, two_days_ago), org, actor, folder,
                   trigger="login")
        try:
            yesterday = Clock(NOW - timedelta(days=1, hours=1, minutes=3))
            run_backup(Site(engine, Settings().mapping, yesterday), org, actor, UNPLUGGED,
                       trigger="login")
        except DesktopBackupError:
            pass  # the failure is what the picture shows
    finally:
        engine.dispose()
    return paths


def other_organizations_backup(usb_stick: Path) -> Path:
    """City Care Chemists' backup, handed to Medplus by mistake (the wizard refuses it)."""
    with tempfile.TemporaryDirectory(prefix="desktop-backup-shots-") as tmp:
        paths = app_paths(Path(tmp))
        engine = open_engine(create_demo_database(paths.demo_database).url)
        try:
            with engine.connect() as conn:
                city = find_organization(conn, Settings().mapping, "CITY")
            usb_stick.mkdir(parents=True, exist_ok=True)
            return run_backup(Site(engine, Settings().mapping, Clock(NOW)), city,
                              Actor(1, "superadmin"), usb_stick, trigger="manual").path
        finally:
            engine.dispose()


def a_bad_morning(engine) -> None:
    """What the restore undoes: sales deleted, customers overwritten, one added."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sale_return_transactions WHERE organization_id = 1 "
                          "AND id % 7 = 0"))
        conn.execute(text("UPDATE customers SET name = 'overwritten' WHERE organization_id = 1 "
                          "AND id % 4 = 0"))
        conn.execute(text("INSERT INTO customers (organization_id, name, opening_balance) "
                          "VALUES (1, 'Typed in by mistake', 0)"))
        conn.execute(text("DELETE FROM stock_ledgers WHERE organization_id = 1 AND id % 3 = 0"))


def shoot_restore(window, gate: RestoreGate, other: Path, out: Path, suffix: str) -> None:
    """Every page of the restore wizard, on today's backup after a bad morning."""
    a_bad_morning(window.session.engine)
    launcher = window.findChild(RestoreLauncher, "restoreLauncher")
    wizard = launcher.open(window.session.org, None)
    choose = wizard.choose_page
    wait_until(lambda: choose.sources is not None)
    today = next(s for s in choose.sources if s.is_today)
    choose.tree.setCurrentItem(choose.items_by_path[str(today.path)])
    save(wizard, out, f"restore-1-choose{suffix}")
    wizard.next()
    wait_until(lambda: wizard.plan is not None and not wizard.check_page.running)
    save(wizard, out, f"restore-2-check{suffix}")
    wizard.next()
    wizard.confirm_page.code_edit.setText(window.session.org.code)
    save(wizard, out, f"restore-3-confirm{suffix}")
    wizard.next()
    page = wizard.restore_page
    wait_until(lambda: gate.reached.is_set() and page.last_progress is not None
               and page.last_progress.rows_done >= gate.hold)
    save(wizard, out, f"restore-4-progress{suffix}")
    gate.release.set()
    wait_until(lambda: wizard.currentId() == SUMMARY and not wizard.busy)
    save(wizard, out, f"restore-5-summary{suffix}")
    wizard.summary_page.undo_button.click()  # Undo: the restore point goes through the check
    wait_until(lambda: wizard.plan is not None and not wizard.check_page.running)
    save(wizard, out, f"restore-6-undo-check{suffix}")
    wizard.reject()
    wait_until(lambda: not wizard.busy)
    wait_until(lambda: not window.session.runner.busy)
    save(window, out, f"main-after-restore{suffix}")
    wizard = launcher.open(window.session.org, other)
    wait_until(lambda: wizard.plan is not None and not wizard.check_page.running)
    save(wizard, out, f"restore-refused{suffix}")
    wizard.reject()
    wait_until(lambda: not window.session.runner.busy)


def shoot_partial_backup(window, out: Path, suffix: str) -> None:
    """The week after a backup that left tables out (Settings ▸ Tables): "partial" shown."""
    session = window.session
    with session.engine.begin() as conn:
        set_auto_backup_tables(conn, session.mapping, session.org,
                               ["customers", "customer_ledgers", "sale_transactions"])
    session.refresh()
    wait_until(lambda: not session.runner.busy)
    session.start_backup("manual")
    wait_until(lambda: not session.backup_running and not session.runner.busy)
    save(window, out, f"main-partial-backup{suffix}")


class QuietPrompts(Prompts):
    """No modal dialogs in a screenshot run."""

    def inform(self, parent, title, text, ok=True) -> None:
        pass

    def confirm_auto_backup_off(self, parent, organization) -> bool:
        return True


def shoot(theme: str, out: Path, scale_suffix: str = "") -> None:
    app = application()
    apply_theme(app, theme)
    suffix = f"-{theme}{scale_suffix}"
    with shop_home() as home:
        paths = prepare(home)
        gate = Gate(hold=30_000)
        restore_gate = RestoreGate(hold=20_000)
        env = Env(paths=paths, settings=Settings(theme=theme), clock=Clock(NOW),
                  backup_runner=gate, restore_runner=restore_gate, prompts=QuietPrompts())
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
        wait_until(lambda: window.session.last_progress is not None
                   and window.session.last_progress.rows_done >= gate.hold
                   and window._drawn_progress is window.session.last_progress)
        wait_until(lambda: not any(name == "overview" for name in window.session.runner.names()))
        save(window, out, f"main-during-backup{suffix}")
        gate.release.set()
        wait_until(lambda: not window.session.backup_running and not window.session.runner.busy)
        save(window, out, f"main-after-backup{suffix}")
        if not scale_suffix:
            save(window.grid, out, f"week-failed-day{suffix}")
            other = other_organizations_backup(home / "USB stick" / "from City Care")
            shoot_restore(window, restore_gate, other, out, suffix)
            shoot_partial_backup(window, out, suffix)
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
        shoot_settings_and_tray(theme, args.out)
    env = {**os.environ, "QT_SCALE_FACTOR": "2"}
    return subprocess.call([sys.executable, __file__, "--out", str(args.out), "--scaled"],
                           env=env)


# --- settings, tray and warnings (issue #6) -----------------------------------------------------


class ShotKeyring(KeyringBackend):
    """An in-memory keyring, so the password page shows a saved password."""

    priority = -10  # never chosen by keyring itself

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        self.passwords.pop((service, username), None)


class LockedShotKeyring(ShotKeyring):
    def get_password(self, service, username):
        raise KeyringLocked("locked")


# Named as the store a Linux desktop has, so the pictures show no test names.
ShotKeyring.__module__ = LockedShotKeyring.__module__ = "keyring.backends.SecretService"


def prepare_warnings(root: Path) -> tuple[AppPaths, str]:
    """A shop whose last success was on Sunday and whose Tuesday failed twice in a row."""
    paths = app_paths(root)
    demo = create_demo_database(paths.demo_database)
    folder = Settings().backup_folder(paths)
    engine = open_engine(demo.url)
    try:
        with engine.connect() as conn:
            org = find_organization(conn, Settings().mapping, "MEDP")
        actor = Actor(3, "medp.admin")
        for days_ago in (9, 7, 6, 5, 4, 3):  # Mon, Wed..Sun of last week
            when = Clock(NOW - timedelta(days=days_ago, hours=1, minutes=5))
            run_backup(Site(engine, Settings().mapping, when), org, actor, folder, trigger="login")
        for days_ago in (8, 1):  # both Tuesdays: the USB drive was not plugged in
            try:
                when = Clock(NOW - timedelta(days=days_ago, hours=1, minutes=3))
                run_backup(Site(engine, Settings().mapping, when), org, actor, UNPLUGGED,
                           trigger="login")
            except DesktopBackupError:
                pass
    finally:
        engine.dispose()
    return paths, demo.url


def tray_preview(tray, tips: dict[str, str]) -> QWidget:
    """What the notification area shows, drawn as a widget: each state's icon with its
    tooltip, and the icon's menu."""
    from PySide6.QtWidgets import QFrame, QGridLayout, QLabel

    from desktop_backup.ui.tray import tray_icon

    preview = QWidget()
    preview.setObjectName("trayPreview")
    grid = QGridLayout(preview)
    for row, (state, tip) in enumerate(tips.items()):
        picture = QLabel(preview)
        picture.setPixmap(tray_icon(state).pixmap(32, 32))
        picture.setAlignment(Qt.AlignmentFlag.AlignTop)
        bubble = QLabel(tip, preview)
        bubble.setFrameShape(QFrame.Shape.Box)
        bubble.setMargin(6)
        bubble.setAutoFillBackground(True)
        bubble.setBackgroundRole(QPalette.ColorRole.ToolTipBase)
        bubble.setForegroundRole(QPalette.ColorRole.ToolTipText)
        grid.addWidget(picture, row, 0)
        grid.addWidget(bubble, row, 1)
    tray.menu.ensurePolished()
    tray.menu.resize(tray.menu.sizeHint())
    menu = QLabel(preview)
    menu.setPixmap(tray.menu.grab())
    menu.setAlignment(Qt.AlignmentFlag.AlignTop)
    grid.addWidget(QLabel("Right-click menu:", preview), 0, 2, Qt.AlignmentFlag.AlignTop)
    grid.addWidget(menu, 1, 2, 2, 1)
    grid.setColumnStretch(1, 1)
    preview.resize(preview.sizeHint().expandedTo(QSize(900, 0)))
    return preview


def shoot_settings_and_tray(theme: str, out: Path) -> None:
    """The main window's warnings, the tray's three states and menu, the settings pages."""
    app = application()
    apply_theme(app, theme)
    suffix = f"-{theme}"
    previous_keyring = keyring.get_keyring()
    with shop_home() as home:
        paths, url = prepare_warnings(home)
        gate = Gate(hold=30_000)
        settings = Settings(theme=theme, auto_backup_on_login=False, schedule_time="18:00")
        env = Env(paths=paths, settings=settings, clock=Clock(NOW), backup_runner=gate,
                  prompts=QuietPrompts())
        console = Console(env, url, tray_available=lambda: True, start_scheduler=False)
        console.start()
        wait_until(lambda: console.login is not None and console.login.isVisible())
        console.login.username_edit.setText("medp.admin")
        console.login.password_edit.setText(DEMO_PASSWORD)
        console.login.login_button.click()
        wait_until(lambda: console.window is not None)
        window, tray = console.window, console.tray
        window.resize(1280, 760)
        wait_until(lambda: window.session.overview is not None and not window.session.runner.busy)
        save(window, out, f"main-warnings{suffix}")
        tips = {"failed": tray.icon.toolTip()}
        window.session.start_backup("manual")
        wait_until(lambda: window.session.last_progress is not None and tray.state == "running")
        tips["running"] = tray.icon.toolTip()
        gate.release.set()
        wait_until(lambda: not window.session.backup_running and not window.session.runner.busy)
        tips["idle"] = tray.icon.toolTip()
        save(tray_preview(tray, {"idle": tips["idle"], "running": tips["running"],
                                 "failed": tips["failed"]}), out, f"tray{suffix}")

        dialog = window.open_settings()
        dialog.schedule_check.setChecked(True)
        wait_until(lambda: not window.session.runner.busy and dialog.folder_check is not None)
        save(dialog, out, f"settings-backups{suffix}")
        dialog.tabs.setCurrentIndex(1)
        for index in range(dialog.tables_list.count()):
            item = dialog.tables_list.item(index)
            if item.data(Qt.ItemDataRole.UserRole) in ("stock_ledgers", "user_permissions"):
                item.setCheckState(Qt.CheckState.Unchecked)
        save(dialog, out, f"settings-tables{suffix}")
        dialog.tabs.setCurrentIndex(2)
        save(dialog, out, f"settings-notifications{suffix}")
        dialog.reject()
        settle()

        env.settings.profiles["Shop server"] = Profile(
            "Shop server", "postgresql+psycopg://backup@192.168.1.20/billing")
        window.session.profile = "Shop server"
        try:
            store = ShotKeyring()
            store.set_password("DesktopBackup", "Shop server", "secret")
            keyring.set_keyring(store)
            dialog = window.open_settings()
            dialog.tabs.setCurrentIndex(3)
            wait_until(lambda: not window.session.runner.busy and dialog.password is not None)
            save(dialog, out, f"settings-password{suffix}")
            dialog.reject()
            keyring.set_keyring(LockedShotKeyring())
            dialog = window.open_settings()
            dialog.tabs.setCurrentIndex(3)
            wait_until(lambda: not window.session.runner.busy and dialog.password is not None)
            save(dialog, out, f"settings-password-locked{suffix}")
            dialog.reject()
            keyring.set_keyring(store)
            dialog = window.open_settings()
            dialog.tabs.setCurrentWidget(dialog.encryption_page)
            page = dialog.encryption_page
            wait_until(lambda: page.status is not None and page.task is None)
            save(dialog, out, f"settings-encryption{suffix}")
            dialog.reject()
        finally:
            keyring.set_keyring(previous_keyring)
        window.auto_toggle.click()  # turned off: the lasting amber notice
        wait_until(lambda: window.auto_off_line.isVisible() and not window.session.runner.busy)
        save(window, out, f"main-automatic-backup-off{suffix}")
        dialog = window.open_about()
        save(dialog, out, f"about{suffix}")
        dialog.reject()
        window.quit()
        console.shutdown()
        settle()


if __name__ == "__main__":
    sys.exit(main())
