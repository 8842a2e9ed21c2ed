"""The main window: the organization's header, the running backup, the week and the history.

It appears at once after the login and draws what its :class:`ConsoleSession` says: the
session owns the engine, the organization, the overview and the running backup, and runs
everything that touches the database or the disk on its TaskRunner, so the window keeps
answering while a backup of a million rows is written. The restore wizard plugs in through
:meth:`MainWindow.set_restore_handler`; until then every Restore… is visibly disabled and says
why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QFont, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import usecases, wording
from desktop_backup.backup import BackupResult
from desktop_backup.history import AlreadyRunning, AuditEntry
from desktop_backup.organizations import Organization
from desktop_backup.ui.about import AboutDialog, open_log_folder
from desktop_backup.ui.backup_panel import BackupProgress
from desktop_backup.ui.guide import GuideDialog
from desktop_backup.ui.history_table import HistoryPanel
from desktop_backup.ui.prompts import CLOSE_CANCEL, CLOSE_STAY
from desktop_backup.ui.schedule import ScheduleGlue, last_backup_words, next_run_words
from desktop_backup.ui.session import ERROR, INFO, OK, ConsoleSession
from desktop_backup.ui.settings_dialog import SettingsDialog
from desktop_backup.ui.theme import THEMES, apply_theme, icon
from desktop_backup.ui.week_grid import RESTORE_LATER, WeekGrid
from desktop_backup.ui.widgets import MessageLine
from desktop_backup.ui.workers import Task
from desktop_backup.weekview import NO_BACKUP_YET, DayState
from desktop_backup.work import Cancelled, Progress

RestoreHandler = Callable[[Organization, Path | None], None]
PROGRESS_REDRAW_MS = 100
AUTO_TIP = ("Back this organization up once a day, by itself: when an admin or owner logs "
            "in, here or in the web app.")
THEME_LABELS = {"system": "Same as the &system", "light": "&Light", "dark": "&Dark"}

NO_BACKUP_YET_CALM = "This organization has no backup yet; Back up now makes the first one."


class MainWindow(QMainWindow):
    """One logged-in session's window; closing it closes the session (and its engine)."""

    actionDone = Signal(str, str, str)  # action, outcome (success/failed), message
    hiddenToTray = Signal()  # closed while a notification area is there: hidden, still running
    closed = Signal()

    def __init__(self, session: ConsoleSession, schedule: ScheduleGlue | None = None, *,
                 hide_to_tray: bool = False, parent: QWidget | None = None) -> None:
        """``schedule``: whose next run the status line names (None: no schedule here);
        ``hide_to_tray``: a notification area is there, so closing hides the window."""
        super().__init__(parent)
        self.session = session
        self.env = session.env
        self.schedule = schedule
        self.tray_available = hide_to_tray  # then closing hides the window; Quit quits
        # Progress arrives per batch (hundreds a minute); the window redraws at most ten times
        # a second. Each redraw costs the UI thread the GIL several times over while the
        # backup's threads run, so fewer redraws means shorter stalls (bench/ui_responsiveness).
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_REDRAW_MS)
        self._progress_timer.timeout.connect(self._draw_progress)
        self._drawn_progress: Progress | None = None
        self.restore_handler: RestoreHandler | None = None
        self._close_when_done = False
        self._quitting = False
        self.logging_out = False  # closed by Log out: the console shows the login again
        self.setObjectName("mainWindow")
        self.setWindowTitle("Desktop Backup")
        self.setWindowIcon(icon("app"))
        self._build()
        self._build_menus()
        self._follow_session()
        self._show_organization()
        self.grid.clear(session.today())
        self.resize(self.fontMetrics().averageCharWidth() * 170,
                    self.fontMetrics().height() * 44)

    # --- building ------------------------------------------------------------------------------

    # --- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget(self)
        header = QFrame(central)
        header.setObjectName("header")
        self.org_title = QLabel(central)
        self.org_title.setObjectName("organizationName")
        title_font = QFont(self.org_title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.5)
        title_font.setBold(True)
        self.org_title.setFont(title_font)
        self.org_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.picker_label = QLabel("Or&ganization:", central)
        self.picker = QComboBox(central)
        self.picker.setObjectName("organizationPicker")
        self.picker.setMinimumContentsLength(28)
        # As wide as the longest name with its status: "Greenleaf Medicals (GRNL) – suspended".
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.picker_label.setBuddy(self.picker)
        self.picker.addItem("Choose an organization…")
        self.subtitle = QLabel(central)
        self.subtitle.setObjectName("sessionLabel")
        self.subtitle.setWordWrap(True)
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.backup_status = QLabel(central)
        self.backup_status.setObjectName("backupStatus")
        self.backup_status.setWordWrap(True)
        self.backup_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.auto_toggle = QCheckBox("&Automatic daily backup", central)
        self.auto_toggle.setObjectName("autoBackupToggle")
        self.auto_toggle.setToolTip(AUTO_TIP)
        self.backup_button = QPushButton("Back up &now", central)
        self.backup_button.setObjectName("backupNowButton")
        self.backup_button.setIcon(icon("app"))
        self.backup_button.setToolTip("Make a backup of this organization now; it replaces "
                                      "today's copy.")
        title_row = QHBoxLayout()
        title_row.addWidget(self.org_title)
        title_row.addWidget(self.picker_label)
        title_row.addWidget(self.picker)
        title_row.addStretch(1)
        title_row.addWidget(self.auto_toggle)
        title_row.addSpacing(12)
        title_row.addWidget(self.backup_button)
        header_layout = QVBoxLayout(header)
        header_layout.setContentsMargins(0, 0, 0, 0)
        header_layout.addLayout(title_row)
        header_layout.addWidget(self.subtitle)
        header_layout.addWidget(self.backup_status)

        self.warning_banner = MessageLine(central)
        self.warning_banner.setObjectName("warningBanner")
        # Amber and lasting while the organization's automatic backup is off: a decision
        # that leaves its data unprotected, shown until the switch is back on.
        self.auto_off_line = MessageLine(central)
        self.auto_off_line.setObjectName("autoBackupOffNotice")
        self.notice = MessageLine(central)
        self.notice.setObjectName("noticeLine")
        self.progress_panel = BackupProgress(central)
        self.grid = WeekGrid(central)
        self.history = HistoryPanel(central)
        week_title = _section("This week", central)
        history_title = _section("History", central)

        layout = QVBoxLayout(central)
        layout.addWidget(header)
        layout.addWidget(self.auto_off_line)
        layout.addWidget(self.warning_banner)
        layout.addWidget(self.notice)
        layout.addWidget(self.progress_panel)
        layout.addSpacing(6)
        layout.addWidget(week_title)
        layout.addWidget(self.grid)
        layout.addSpacing(6)
        layout.addWidget(history_title)
        layout.addWidget(self.history, 1)
        self.setCentralWidget(central)

        self.backup_button.clicked.connect(self._back_up_now)
        self.auto_toggle.toggled.connect(self._toggle_auto_backup)
        self.picker.currentIndexChanged.connect(self._picked)
        self.progress_panel.cancelRequested.connect(self.session.cancel_backup)
        self.grid.dayAction.connect(self._day_action)
        self.history.entryAction.connect(self._entry_action)
        self.history.openFolderRequested.connect(lambda: self.open_folder(None))

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.setToolTipsVisible(True)
        self.backup_action = QAction("Back up &now", self)
        self.backup_action.setShortcut(QKeySequence("Ctrl+B"))
        self.backup_action.triggered.connect(self._back_up_now)
        self.restore_action = QAction("&Restore…", self)
        self.restore_action.setObjectName("restoreAction")
        self.restore_action.setEnabled(False)
        self.restore_action.setToolTip(RESTORE_LATER)
        self.restore_action.setStatusTip(RESTORE_LATER)
        self.restore_action.triggered.connect(lambda: self.request_restore(None))
        folder_action = QAction("Open backup &folder", self)
        folder_action.triggered.connect(lambda: self.open_folder(None))
        self.logout_action = QAction("&Log out and switch user", self)
        self.logout_action.setObjectName("logOutAction")
        self.logout_action.setToolTip("Close this session and show the login again; a "
                                      "running backup is asked about first.")
        self.logout_action.triggered.connect(self.log_out)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.quit)
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setObjectName("settingsAction")
        self.settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        self.settings_action.triggered.connect(self.open_settings)
        for action in (self.backup_action, self.restore_action, folder_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.logout_action)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        group = self.theme_group = QActionGroup(self)
        for theme in THEMES:
            action = QAction(THEME_LABELS[theme], self, checkable=True)
            action.setChecked(self.env.settings.theme == theme)
            action.triggered.connect(lambda _c=False, t=theme: self.set_theme(t))
            group.addAction(action)
            view_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        guide_action = QAction("&Guide: backups and restores", self)
        guide_action.setObjectName("guideAction")
        guide_action.setShortcut(QKeySequence.StandardKey.HelpContents)
        guide_action.triggered.connect(self.open_guide)
        help_menu.addAction(guide_action)
        log_action = QAction("Open the &log folder", self)
        log_action.setObjectName("openLogFolderAction")
        log_action.triggered.connect(self.open_log_folder)
        about_action = QAction("&About Desktop Backup", self)
        about_action.setObjectName("aboutAction")
        about_action.triggered.connect(self.open_about)
        help_menu.addAction(log_action)
        help_menu.addAction(about_action)


    def _follow_session(self) -> None:
        session = self.session
        session.organizationChanged.connect(lambda _org: self._show_organization())
        session.organizationsLoaded.connect(self._organizations_loaded)
        session.overviewLoaded.connect(self._overview_loaded)
        session.backupStarted.connect(self._backup_started)
        session.backupProgress.connect(self._backup_progress)
        session.backupFinished.connect(self._backup_finished)
        session.backupFailed.connect(self._backup_failed)
        session.backupDone.connect(self._backup_done)
        session.offsiteStarted.connect(self._offsite_started)
        session.offsiteProgress.connect(self._offsite_started)
        session.restoreDone.connect(self._restore_done)
        session.settingsChanged.connect(self._settings_changed)
        session.told.connect(self._tell)
        if self.schedule is not None:
            self.schedule.nextRunChanged.connect(self.show_backup_status)

    def _tell(self, kind: str, message: str) -> None:
        shows = {INFO: self.notice.show_info, OK: self.notice.show_ok,
                 ERROR: self.notice.show_error}
        shows[kind](message)

    # --- the organization ----------------------------------------------------------------------

    def _show_organization(self) -> None:
        user = self.session.user
        super_admin = user.is_super_admin
        self.picker_label.setVisible(super_admin)
        self.picker.setVisible(super_admin)
        org = self.session.org
        if org is None:
            self.org_title.setText("All organizations" if super_admin else "No organization")
        else:
            self.org_title.setText(org.name)
        self.setWindowTitle(f"{org.name} – Desktop Backup" if org else "Desktop Backup")
        who = user.full_name
        role = "super admin" if super_admin else (
            "owner" if user.is_owner else user.role.replace("_", " "))
        folder = self.env.backup_folder
        line = f"Signed in as {who} ({role}). Backups are kept in {folder}."
        if super_admin:
            line += " As super admin you choose the organization; nothing is backed up " \
                    "automatically."
        self.subtitle.setText(line)
        self._set_toggle(bool(org and org.auto_backup_enabled))
        if org is not None and not org.auto_backup_enabled:
            self.auto_off_line.show_warning(auto_off_words(org))
        else:
            self.auto_off_line.clear()
        self._update_enabled()

    def _update_enabled(self) -> None:
        controls = self.session.controls(restore_available=self.restore_handler is not None)
        self.backup_button.setEnabled(controls.backup)
        self.backup_action.setEnabled(controls.backup)
        self.auto_toggle.setEnabled(controls.toggle)
        self.auto_toggle.setToolTip(controls.wait_reason or AUTO_TIP)
        self.grid.block_file_actions(controls.wait_reason)
        self.history.block_file_actions(controls.wait_reason)
        self.picker.setEnabled(controls.picker)
        self.grid.setEnabled(controls.browse)
        self.history.setEnabled(controls.browse)
        self.restore_action.setEnabled(controls.restore)
        tip = ("Restore this organization from a backup: checked and previewed first, with a "
               "restore point to undo it." if self.restore_handler else RESTORE_LATER)
        self.restore_action.setToolTip(tip)
        self.restore_action.setStatusTip(tip)

    def _organizations_loaded(self, orgs: list[Organization]) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        self.picker.addItem("Choose an organization…")  # index 0: no data, see _picked
        for org in orgs:
            suffix = "" if org.status.lower() == "active" else f" – {org.status}"
            self.picker.addItem(org.label + suffix, org)
        self.picker.blockSignals(False)
        self.notice.show_note("Choose the organization to look after.")

    def pick_organization(self, key: str | int) -> None:
        """Select an organization in the super admin's picker by id or code."""
        for index in range(1, self.picker.count()):
            org = self.picker.itemData(index)
            if str(org.id) == str(key) or org.code == key:
                self.picker.setCurrentIndex(index)
                return
        raise KeyError(key)

    def _picked(self, index: int) -> None:
        # Never ask Qt for the placeholder's (empty) data: PySide6 6.12 hands back a None it
        # does not own a reference to (6.12 is excluded in pyproject.toml; kept cautious).
        self.session.choose_organization(self.picker.itemData(index) if index > 0 else None)
        self.notice.clear()
        self.show_backup_status()
        self.grid.clear(self.session.today())
        self.history.set_entries([])
        self.session.refresh()

    # --- the week and the history --------------------------------------------------------------

    def _overview_loaded(self, overview: usecases.Overview) -> None:
        self._show_organization()
        self._show_days(overview)
        if self.session.backup_running:
            self._show_running(self.session.last_progress)
        self.history.set_entries(overview.history, overview.notes)
        self.show_backup_status()

    def _show_days(self, overview: usecases.Overview) -> None:
        """The week's cards (the day being copied off-site says so)."""
        self.grid.set_days(self.session.days_shown(), overview.rows_by_file,
                           overview.partial_by_file)

    def _offsite_started(self) -> None:
        if self.session.overview is not None and not self.session.backup_running:
            self._show_days(self.session.overview)

    # --- the backup ----------------------------------------------------------------------------

    def _back_up_now(self) -> None:
        self.session.start_backup("manual", force=True)

    def _backup_started(self, trigger: str) -> None:
        self._drawn_progress = None
        self.notice.clear()
        self.progress_panel.start(self.session.org.name, trigger)
        self._show_running(None)
        self._update_enabled()
        self.show_backup_status()

    def _show_running(self, progress: Progress | None) -> None:
        cell = self.grid.cell(self.session.today())
        if progress is None:
            cell.set_day(replace(cell.day, state="running", error=None))
        else:
            cell.set_progress(progress)

    def _backup_progress(self, _progress: Progress) -> None:
        if self._drawn_progress is None:
            self._draw_progress()  # the first report at once: the table being read
        elif not self._progress_timer.isActive():
            self._progress_timer.start()

    def _draw_progress(self) -> None:
        progress = self.session.last_progress
        if progress is None or progress is self._drawn_progress or (
                not self.session.backup_running):
            return
        self._drawn_progress = progress
        self.progress_panel.update_progress(progress)
        self._show_running(progress)

    def _backup_finished(self, result: BackupResult) -> None:
        if result.skipped or result.path is None:
            self.notice.show_ok(result.message)
        else:  # the core's sentence, with the numbers written as the grid writes them
            org = self.session.org.name if self.session.org else "the organization"
            self.notice.show_ok(
                f"Backed up {org}: {result.rows:,} rows from {result.tables_words} into "
                f"{result.path.name} ({wording.human_size(result.size)}) in "
                f"{result.duration_s:.1f} s.")

    def _backup_failed(self, message: str, error: object) -> None:
        self._show_ended(message, error)
        if isinstance(error, AlreadyRunning | Cancelled):
            self.notice.show_info(message)
        else:
            self.notice.show_error(f"The backup failed: {message}")

    def _show_ended(self, message: str, error: object) -> None:
        """Today's cell stops saying "Backing up…" at once, whatever the re-read that
        follows finds (it may fail too, on a database that is still locked)."""
        if isinstance(error, AlreadyRunning):
            return  # the other run is what the cell shows
        overview = self.session.overview
        day = next((d for d in overview.days if d.is_today), None) if (
            overview is not None) else None
        cell = self.grid.cell(self.session.today())
        if isinstance(error, Cancelled) or day is None:
            cell.set_day(day or replace(cell.day, state="none", error=None))
        else:
            cell.set_day(replace(day, state="failed", error=message,
                                 copy_kept=day.state == "succeeded"))

    def _backup_done(self) -> None:
        self._progress_timer.stop()
        self.progress_panel.finish()
        self._update_enabled()
        if self._close_when_done:
            self.close()  # the session is closed with it: no re-read follows

    # --- what can be done with a backup --------------------------------------------------------

    def _day_action(self, action: str, day: DayState) -> None:
        path = Path(day.path) if day.path else None
        if action == "show_in_folder":
            self.open_folder(path)
        elif path is not None:
            self.file_action(action, path, made=day.backup_date)

    def _entry_action(self, action: str, entry: AuditEntry) -> None:
        if action == "undo":  # a restore's row: its restore point, through the wizard
            if entry.restore_point:
                self.request_restore(Path(entry.restore_point))
            return
        if entry.file:
            made = entry.occurred_at.date() if entry.occurred_at else None
            self.file_action(action, Path(entry.file), made=made)

    def file_action(self, action: str, path: Path, made: date | None = None) -> Task | None:
        """save_copy, verify, delete or restore one backup file (made: the backup's day, for
        the copy's suggested name; else the file's own date)."""
        session = self.session
        if session.org is None:
            return None
        if action == "restore":
            self.request_restore(path)
            return None
        if action == "save_copy":
            if made is None:
                made = (datetime.fromtimestamp(path.stat().st_mtime) if path.is_file()
                        else self.env.clock()).date()
            destination = self.env.prompts.save_copy_to(
                self, Path.home() / usecases.copy_name(path, made))
            if destination is None:
                return None
            self.notice.show_info(f"Copying {path.name}…")
            return self._report("save_copy", session.save_copy(path, destination),
                                done=lambda dest: f"A copy of {path.name} was saved as {dest}.")
        if action == "verify":
            self.notice.show_info(f"Checking {path.name}…")
            return self._report("verify", session.verify(path))
        if action == "delete":
            if not self.env.prompts.confirm_delete(self, path):
                return None
            self.notice.show_info(f"Deleting {path.name}…")
            return self._report("delete", session.delete(path),
                                done=lambda _r: f"{path.name} was deleted.")
        raise ValueError(action)

    def _report(self, name: str, task: Task,
                done: Callable[[object], str] | None = None) -> Task:
        """Say how a file action ended, then re-read the week and the history."""

        def finished(result: object) -> None:
            if name == "verify":
                ok, message = bool(result.ok), wording.verify_words(result, self.env.clock())
            else:
                ok, message = True, done(result) if done else "Done."
            # The result replaces "Checking…" before any dialog opens over the window.
            (self.notice.show_ok if ok else self.notice.show_error)(message)
            if name == "verify":
                title = "The backup is intact" if ok else "The backup is damaged"
                self.env.prompts.inform(self, title, message, ok=ok)
            self.actionDone.emit(name, "success" if ok else "failed", message)
            self.session.refresh()

        def failed(message: str, _error: object) -> None:
            self.notice.show_error(message)
            self.actionDone.emit(name, "failed", message)
            self.session.refresh()

        task.on_finished(finished)
        task.on_failed(failed)
        return task

    def open_folder(self, path: Path | None) -> None:
        folder = path.parent if path is not None and path.parent.is_dir() else (
            self.env.backup_folder)
        if not folder.is_dir():
            self.notice.show_error(f"The backup folder {folder} does not exist yet; it is "
                                   "created by the first backup.")
            return
        if not self.env.prompts.open_folder(folder):
            self.notice.show_error(f"No file manager could open {folder}.")

    def _toggle_auto_backup(self, enabled: bool) -> None:
        org = self.session.org
        if org is None:
            return
        if not enabled and not self.env.prompts.confirm_auto_backup_off(self, org.name):
            self._set_toggle(True)  # nothing changed
            return
        task = self.session.set_auto_backup(enabled)

        def finished(org: Organization) -> None:
            if org.auto_backup_enabled:
                message = f"Automatic daily backup is on for {org.name}."
                self.notice.show_ok(message)
            else:  # not good news: the lasting amber line above says it (no green tick)
                message = auto_off_words(org)
                self.notice.clear()
            self.actionDone.emit("toggle", "success", message)
            self.session.refresh()

        def failed(message: str, _error: object) -> None:
            self._set_toggle(not enabled)
            self.notice.show_error(f"The setting was not changed: {message}")
            self.actionDone.emit("toggle", "failed", message)

        task.on_finished(finished)
        task.on_failed(failed)

    def _set_toggle(self, checked: bool) -> None:
        """Put the switch back without asking or writing anything."""
        self.auto_toggle.blockSignals(True)
        self.auto_toggle.setChecked(checked)
        self.auto_toggle.blockSignals(False)

    # --- the restore hook ----------------------------------------------------------------------

    def set_restore_handler(self, handler: RestoreHandler | None) -> None:
        """Where the restore wizard plugs in: called with the organization and the file
        chosen (None from the menu, meaning 'let the wizard ask')."""
        self.restore_handler = handler
        self.grid.set_restore_available(handler is not None)
        self.history.set_restore_available(handler is not None)
        self._update_enabled()

    def request_restore(self, path: Path | None) -> None:
        if self.restore_handler is None or self.session.org is None:
            self.notice.show_info(RESTORE_LATER)
            return
        self.restore_handler(self.session.org, path)

    def _restore_done(self, outcome) -> None:
        """The restore wizard's RestoreOutcome (ok, cancelled, message)."""
        if outcome.ok:
            self.notice.show_ok(outcome.message)
        elif outcome.cancelled:
            self.notice.show_info(outcome.message)
        else:
            self.notice.show_error(f"The restore failed: {outcome.message}")

    # --- status, settings, help ----------------------------------------------------------------

    def show_backup_status(self) -> None:
        """The last outcome and the warnings (from the database, via the overview) and the
        next scheduled run (from the schedule)."""
        session = self.session
        overview = session.overview
        if overview is None:
            self.backup_status.clear()
            self.warning_banner.clear()
            return
        today = self.env.clock().date()
        self.backup_status.setText(last_backup_words(overview.last_backup, today) + " " + (
            next_run_words(self.schedule, today, session.user.is_super_admin,
                           org_enabled=bool(session.org and session.org.auto_backup_enabled))))
        warnings = list(overview.warnings)
        if NO_BACKUP_YET in warnings:  # not alarming: a new organization, said calmly
            warnings.remove(NO_BACKUP_YET)
        if warnings == [usecases.SHEET_NOT_CONFIRMED]:  # nothing failed: a step to do, amber
            self.warning_banner.show_warning(usecases.SHEET_NOT_CONFIRMED)
        elif warnings:
            self.warning_banner.show_error("\n".join(warnings))
        elif NO_BACKUP_YET in overview.warnings and not session.backup_running:
            self.warning_banner.show_note(NO_BACKUP_YET_CALM)
        else:
            self.warning_banner.clear()

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.session, self, tray_available=self.tray_available)
        dialog.saved.connect(self._settings_saved)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _settings_saved(self) -> None:
        theme = self.env.settings.theme
        for action in self.theme_group.actions():
            action.setChecked(action.text() == THEME_LABELS.get(theme))
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)
        self.session.settings_saved()

    def _settings_changed(self) -> None:
        self._show_organization()  # the folder named in the subtitle
        self.show_backup_status()

    def open_about(self) -> AboutDialog:
        dialog = AboutDialog(self.env, self)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def open_guide(self) -> GuideDialog:
        dialog = GuideDialog(self.env, self)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def open_log_folder(self) -> None:
        if not open_log_folder(self.env, self):
            self.notice.show_error(f"No file manager could open {self.env.paths.log_dir}.")

    # --- look ----------------------------------------------------------------------------------

    def set_theme(self, theme: str) -> None:
        self.env.settings.theme = theme
        try:
            self.env.save()
        except OSError:
            pass  # the theme still changes for this session
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)

    # --- closing -------------------------------------------------------------------------------

    def show_again(self) -> None:
        """The tray's Open: the window, normal and in front."""
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def quit(self) -> None:
        """File → Quit and the tray's Quit: really close (asking first during a backup)."""
        self._quitting = True
        self.close()

    def log_out(self) -> None:
        """File → Log out: close this session for real (as Quit does, asking first during
        a backup); the console then shows the login again instead of ending."""
        self.logging_out = True
        self.quit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.tray_available and not self._quitting:
            event.ignore()  # the notification area keeps it running; the schedule goes on
            self.hide()
            self.hiddenToTray.emit()
            return
        if self.session.backup_running:
            choice = self.env.prompts.ask_close_during_backup(self)
            if choice == CLOSE_STAY:
                self._quitting = self.logging_out = False
                event.ignore()
                return
            if choice == CLOSE_CANCEL:
                self.session.cancel_backup()
                self.notice.show_info("Cancelling the backup; the window closes when it has "
                                      "stopped. Last week's copy is kept.")
            else:
                self.notice.show_info("The window closes when the backup has finished.")
            self._close_when_done = True
            event.ignore()
            return
        self.session.close()
        event.accept()
        self.closed.emit()


def auto_off_words(org: Organization) -> str:
    """The lasting notice while an organization's automatic backup is off."""
    return (f"Automatic backup is off for {org.name}: nothing is backed up by itself until "
            "you tick “Automatic daily backup” again.")


def _section(title: str, parent: QWidget) -> QLabel:
    label = QLabel(title, parent)
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.15)
    label.setFont(font)
    return label
