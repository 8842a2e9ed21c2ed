"""The notification-area icon: the backup's state at a glance, a small menu, notifications.

Three states, each with its own icon *and* its own tooltip words (never the icon alone):
idle, running, and "the last backup failed". The state and the tooltip are read from the
session's last overview, which comes from the database records (the slot table and the
audit), never from what this process remembers; only "running" is this session's own.

When the desktop has a notification area, closing the window hides it there and the
scheduled backup keeps running; Quit (in the menu) ends the program. Where there is none
(``QSystemTrayIcon.isSystemTrayAvailable()`` is False, as offscreen), closing quits as
before and notifications are only recorded. Availability is passed in, so tests choose it.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtCore import QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop_backup import wording
from desktop_backup.backup import BackupResult
from desktop_backup.history import AlreadyRunning
from desktop_backup.ui.schedule import ScheduleGlue, last_backup_words, next_run_words
from desktop_backup.ui.session import ConsoleSession
from desktop_backup.ui.theme import icon
from desktop_backup.usecases import Overview
from desktop_backup.weekview import NO_BACKUP_YET
from desktop_backup.work import Cancelled

log = logging.getLogger(__name__)

IDLE, RUNNING, FAILED = "idle", "running", "failed"
_BADGES = {RUNNING: "running", FAILED: "failed"}
MESSAGE_MS = 15_000
HIDDEN_NOTE = ("Desktop Backup is still running here, so the scheduled backup at {time} is made "
               "on time. Quit from this icon's menu.")
HIDDEN_NOTE_NO_SCHEDULE = ("Desktop Backup is still running here, in the notification area. "
                           "Open it or quit from this icon's menu.")


@lru_cache(maxsize=8)
def tray_icon(state: str) -> QIcon:
    """The app's icon, with a badge for running (clock) or failed (cross) in its corner."""
    badge = _BADGES.get(state)
    if badge is None:
        return _menu_bar_template(QIcon(icon("app")))
    result = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        icon("app").paint(painter, QRect(0, 0, size, size))
        side = max(9, round(size * 0.62))
        icon(badge).paint(painter, QRect(QPoint(size - side, size - side), QSize(side, side)))
        painter.end()
        result.addPixmap(pixmap)
    return _menu_bar_template(result)


def _menu_bar_template(tray: QIcon) -> QIcon:
    """On macOS a menu-bar icon is a template image (its shape, recoloured by the system for
    light and dark menu bars); the state stays in the tooltip's words."""
    tray.setIsMask(sys.platform == "darwin")
    return tray


@dataclass(frozen=True)
class Notification:
    title: str
    message: str
    kind: str  # "information", "warning" or "critical"
    shown: bool  # False where there is no notification area: only recorded


class TrayController(QObject):
    """One session's tray icon; follows the session's signals.

    Its Open and Quit are requests (``openRequested``, ``quitRequested``) for whoever shows
    the window; :meth:`window_hidden` is told when the window hid itself here.
    """

    notified = Signal(str, str)  # title, message: each notification, shown or not
    openRequested = Signal()
    quitRequested = Signal()

    def __init__(self, session: ConsoleSession, available: bool,
                 schedule: ScheduleGlue | None = None) -> None:
        """``schedule``: whose next run the tooltip names (None: no schedule)."""
        super().__init__(session)
        self.session = session
        self.schedule = schedule
        self.available = available
        self.state = IDLE
        self.overview: Overview | None = None
        self.notifications: list[Notification] = []
        self._told_hidden = False
        self.icon = QSystemTrayIcon(self)
        self.icon.setObjectName("trayIcon")
        self.menu = QMenu()  # no parent: a tray menu is a top-level popup of its own
        self.menu.setObjectName("trayMenu")
        self.open_action = QAction("&Open Desktop Backup", self.menu)
        self.open_action.setObjectName("trayOpenAction")
        self.backup_action = QAction("Back up &now", self.menu)
        self.backup_action.setObjectName("trayBackupAction")
        self.quit_action = QAction("&Quit", self.menu)
        self.quit_action.setObjectName("trayQuitAction")
        self.menu.addAction(self.open_action)
        self.menu.addAction(self.backup_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon.setContextMenu(self.menu)
        font = self.open_action.font()
        font.setBold(True)  # the default action, as a click on the icon does
        self.open_action.setFont(font)

        self.open_action.triggered.connect(self.openRequested)
        self.backup_action.triggered.connect(self.back_up_now)
        self.quit_action.triggered.connect(self.quitRequested)
        self.icon.activated.connect(self._activated)
        session.backupStarted.connect(lambda _trigger: self.update())
        session.backupDone.connect(self.update)
        session.offsiteStarted.connect(self.update)
        session.offsiteProgress.connect(self.update)
        session.offsiteDone.connect(self.update)
        session.backupFinished.connect(self._backup_finished)
        session.backupFailed.connect(self._backup_failed)
        session.overviewLoaded.connect(self._overview_loaded)
        session.restoreDone.connect(self._restore_done)
        session.closed.connect(self.icon.hide)
        session.closed.connect(self.menu.deleteLater)
        self.update()
        if available:
            self.icon.show()

    # --- state ---------------------------------------------------------------------------------

    def update(self) -> None:
        """Icon, tooltip and menu from the session's state and its last overview."""
        last = self.overview.last_backup if self.overview else None
        if self.session.backup_running:
            self.state = RUNNING
        elif last is not None and not last.ok:
            self.state = FAILED
        else:
            self.state = IDLE
        self.icon.setIcon(tray_icon(self.state))
        self.icon.setToolTip(self.tooltip())
        self.backup_action.setEnabled(self.session.controls().backup)

    def tooltip(self) -> str:
        """Short lines, the state first: Windows cuts a tray tooltip at 127 characters."""
        session = self.session
        org = session.org.name if session.org is not None else "no organization chosen"
        last = self.overview.last_backup if self.overview is not None else None
        today = session.env.clock().date()
        if self.state == RUNNING:
            state = "Backing up now…"
        elif self.overview is not None:
            state = last_backup_words(last, today)
        else:
            state = "Reading the backups…"
        lines = [f"Desktop Backup – {org}", state]
        if session.offsite_words():
            lines.append(session.offsite_words())
        if session.org is not None and not session.org.auto_backup_enabled:
            lines.append("⚠ Automatic backup is off.")  # lasting, like the window's notice
        for warning in self.overview.warnings if self.overview is not None else ():
            if warning != NO_BACKUP_YET:  # "No backup yet." above says it calmly
                lines.append("⚠ " + warning.split(":")[0].rstrip(".") + ".")
        lines.append(next_run_words(self.schedule, today, session.user.is_super_admin,
                                    org_enabled=session.org is None
                                    or session.org.auto_backup_enabled))
        return "\n".join(lines)

    def _overview_loaded(self, overview: Overview) -> None:
        self.overview = overview
        self.update()

    # --- the menu ------------------------------------------------------------------------------

    def back_up_now(self) -> None:
        if self.session.start_backup("manual", force=True) is None:
            self.openRequested.emit()  # it says why (already running, no organization…)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self.openRequested.emit()

    def window_hidden(self) -> None:
        """The window hid itself here (closed while there is a notification area)."""
        if not self._told_hidden:
            self._told_hidden = True
            self.notify("Desktop Backup is still running", self.hidden_note())

    def hidden_note(self) -> str:
        """What closing to the tray means: a scheduled backup only when one is set (and the
        organization's switch lets it run)."""
        glue, org = self.schedule, self.session.org
        if glue is None or not glue.enabled or org is None or not org.auto_backup_enabled \
                or self.session.user.is_super_admin:
            return HIDDEN_NOTE_NO_SCHEDULE
        return HIDDEN_NOTE.format(time=f"{glue.schedule.at:%H:%M}")

    # --- notifications -------------------------------------------------------------------------

    def notify(self, title: str, message: str, kind: str = "information") -> None:
        """A desktop notification (QSystemTrayIcon.showMessage), recorded either way."""
        shown = self.available and self.icon.isVisible()
        self.notifications.append(Notification(title, message, kind, shown))
        if shown:
            icons = {"information": QSystemTrayIcon.MessageIcon.Information,
                     "warning": QSystemTrayIcon.MessageIcon.Warning,
                     "critical": QSystemTrayIcon.MessageIcon.Critical}
            self.icon.showMessage(title, message, icons[kind], MESSAGE_MS)
        self.notified.emit(title, message)

    def _org_name(self) -> str:
        return self.session.org.name if self.session.org is not None else "the organization"

    def _backup_finished(self, result: BackupResult) -> None:
        if result.skipped or not self.session.env.settings.notify_on_success:
            return
        name = result.path.name if result.path else ""
        self.notify(f"Backup done – {self._org_name()}",
                    f"{result.rows:,} rows from {result.tables_words} in {name} "
                    f"({wording.human_size(result.size)}).")

    def _backup_failed(self, message: str, error: object) -> None:
        if isinstance(error, Cancelled | AlreadyRunning):
            return  # the person's own choice, or another workstation doing it
        self.notify(f"Backup failed – {self._org_name()}", message, "critical")

    def _restore_done(self, outcome) -> None:
        """The restore wizard's RestoreOutcome (ok, cancelled, message)."""
        if outcome.ok:
            self.notify(f"Restore done – {self._org_name()}", outcome.message)
        elif not outcome.cancelled:
            self.notify(f"Restore failed – {self._org_name()}", outcome.message, "critical")
