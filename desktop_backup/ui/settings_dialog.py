"""The settings: where backups go and when, which tables, notifications, look, the password.

Workstation settings are written to the settings file (``config.save_settings``) when Save
is pressed; the tables a backup holds are the organization's own setting
(``organizations.auto_backup_tables``, which the web app reads too) and are written to the
database by a worker. The database password is kept in the keyring at once by its own
buttons, never in the settings file. Everything that may wait — the folder check, the
database, the keyring — runs on the session's TaskRunner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTime, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import keystore, usecases, wording
from desktop_backup.config import save_settings
from desktop_backup.organizations import Organization
from desktop_backup.scheduler import parse_time
from desktop_backup.ui.encryption_page import EncryptionPage
from desktop_backup.ui.env import Env
from desktop_backup.ui.offsite_page import OffsitePage
from desktop_backup.ui.scope_page import ScopePage
from desktop_backup.ui.session import ConsoleSession
from desktop_backup.ui.theme import THEMES, icon
from desktop_backup.ui.widgets import BusyBar, MessageLine, WrappedLabel
from desktop_backup.ui.workers import Task

FOLDER_CHECK_DELAY_MS = 400
DEFAULT_SCHEDULE = "18:00"
THEME_NAMES = {"system": "Same as the system", "light": "Light", "dark": "Dark"}
ORG_SWITCH_NOTE = ("Both happen only while “Automatic daily backup” is ticked at the top of "
                   "the window, and at most once a day.")
NO_TRAY_NOTE = ("This desktop has no notification area, so no notifications appear; the "
                "window says how each backup went.")
TRAY_NOTE = "Failed backups and finished restores are always notified."


def _check_folder(env: Env, folder: Path, latest_backup: int) -> usecases.FolderCheck:
    """The default folder's parent is the app's own data folder, made when needed."""
    if folder == env.paths.default_backup_dir:
        try:
            env.prepare_default_folder()
        except OSError:
            pass  # the check says why
    return usecases.check_backup_folder(folder, latest_backup)


class SettingsDialog(QDialog):
    """Emits ``saved`` once the settings file (and the tables, when changed) are written."""

    saved = Signal()

    def __init__(self, session: ConsoleSession, parent: QWidget | None = None, *,
                 tray_available: bool = False) -> None:
        """``tray_available``: whether notifications can appear (the page says so)."""
        super().__init__(parent)
        self.session = session
        self.env = session.env
        self.runner = session.runner
        self.org: Organization | None = session.org
        self.profile: str | None = session.profile
        self.tray_available = tray_available
        self.folder_check: usecases.FolderCheck | None = None
        self.folder_task: Task | None = None
        self._folder_generation = 0
        self.table_choices: usecases.TableChoices | None = None
        self.password: usecases.PasswordState | None = None
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings – Desktop Backup")
        self.setWindowIcon(icon("app"))
        self.setWindowModality(Qt.WindowModality.WindowModal)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("settingsTabs")
        self.tabs.addTab(self._backups_page(), "&Backups")
        self.tabs.addTab(self._tables_page(), "&Tables")
        self.tabs.addTab(self._notifications_page(), "&Notifications and look")
        self.tabs.addTab(self._password_page(), "Database &password")
        self.offsite_page = OffsitePage(self.env, self.org, self.runner, self.while_open, self)
        self.tabs.addTab(self.offsite_page, "&Off-site")
        self.encryption_page = EncryptionPage(self.env, self.runner, session.site, session.user,
                                              self.org, self.while_open, session.refresh, self)
        self.tabs.addTab(self.encryption_page, "Encryption")  # every letter is taken
        self.scope_page = ScopePage(session.site, self.org, self.runner, self.while_open, self)
        self.tabs.addTab(self.scope_page, "Scope")  # none free either; Ctrl+Tab reaches both
        self.message = MessageLine(self)
        self.message.setObjectName("settingsMessage")
        self.busy = BusyBar(self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setObjectName("saveSettingsButton")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(self.fontMetrics().averageCharWidth() * 96, self.fontMetrics().height() * 30)

        self.closed = False  # a task may end after the dialog is gone: see while_open
        self.finished.connect(self._mark_closed)
        self.check_folder()
        self.load_tables()
        self.load_password_state()
        self.scope_page.load()

    def _mark_closed(self) -> None:
        self.closed = True

    def while_open(self, callback: Callable[..., None]) -> Callable[..., None]:
        """A task's callback that does nothing once the dialog was closed (and deleted)."""
        return lambda *args: None if self.closed else callback(*args)

    # --- the Backups page ----------------------------------------------------------------------

    def _backups_page(self) -> QWidget:
        settings, paths = self.env.settings, self.env.paths
        page = QWidget(self)
        self.folder_edit = QLineEdit(str(settings.backup_folder(paths)), page)
        self.folder_edit.setObjectName("backupFolderEdit")
        self.folder_edit.setPlaceholderText(str(paths.default_backup_dir))
        self.folder_edit.setToolTip("Empty: the default folder, "
                                    f"{paths.default_backup_dir}")
        browse = QPushButton("C&hoose…", page)
        browse.setObjectName("chooseFolderButton")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.folder_result = MessageLine(page)
        self.folder_result.setObjectName("folderCheck")
        self.folder_note = WrappedLabel("Backups already made stay where they are; the week "
                                        "shows the new folder's backups.", page)
        self.folder_note.hide()
        self._folder_timer = QTimer(self)
        self._folder_timer.setSingleShot(True)
        self._folder_timer.setInterval(FOLDER_CHECK_DELAY_MS)
        self._folder_timer.timeout.connect(self.check_folder)
        self.folder_edit.textChanged.connect(self._folder_edited)

        self.login_check = QCheckBox("Make the day's backup when an admin or owner &logs in "
                                     "on this computer", page)
        self.login_check.setObjectName("autoBackupOnLogin")
        self.login_check.setChecked(settings.auto_backup_on_login)
        self.schedule_check = QCheckBox("Also make it every day &at", page)
        self.schedule_check.setObjectName("scheduleCheck")
        at = parse_time(settings.schedule_time)
        self.schedule_check.setChecked(at is not None)
        self.time_edit = QTimeEdit(page)
        self.time_edit.setObjectName("scheduleTime")
        self.time_edit.setDisplayFormat("HH:mm")
        start = at or parse_time(DEFAULT_SCHEDULE)
        self.time_edit.setTime(QTime(start.hour, start.minute))
        self.time_edit.setEnabled(at is not None)
        self.schedule_check.toggled.connect(self.time_edit.setEnabled)
        schedule_row = QHBoxLayout()
        schedule_row.addWidget(self.schedule_check)
        schedule_row.addWidget(self.time_edit)
        schedule_row.addWidget(QLabel("while this program runs (also when it is hidden in "
                                      "the notification area)", page), 1)
        when_note = WrappedLabel(ORG_SWITCH_NOTE + " A time missed while the computer was off "
                                 "is made up when it is back.", page)

        self.points_spin = QSpinBox(page)
        self.points_spin.setObjectName("restorePointsKept")
        self.points_spin.setRange(1, 50)
        self.points_spin.setValue(max(1, settings.restore_points_kept))
        self.points_spin.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        points_note = WrappedLabel("Before every restore the organization's data is saved as "
                                   "a restore point; this many of the newest are kept.", page)

        folder_label = QLabel("Backup &folder:", page)
        folder_label.setBuddy(self.folder_edit)
        form = QFormLayout(page)
        form.addRow(folder_label, folder_row)
        form.addRow("", self.folder_result)
        form.addRow("", self.folder_note)
        form.addRow("Automatic backup:", self.login_check)
        form.addRow("", schedule_row)
        form.addRow("", when_note)
        form.addRow("&Restore points kept:", self.points_spin)
        form.addRow("", points_note)
        return page

    def _choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Choose the backup folder",
                                                  self.folder_edit.text() or str(Path.home()))
        if chosen:
            self.folder_edit.setText(chosen)

    def _folder_edited(self) -> None:
        self.folder_check = None
        self.folder_note.setVisible(self.chosen_folder() != self.env.backup_folder)
        self.folder_result.show_info("Checking the folder…")
        self._folder_timer.start()
        self._update_save()

    def chosen_folder(self) -> Path:
        typed = self.folder_edit.text().strip()
        return Path(typed).expanduser() if typed else self.env.paths.default_backup_dir

    def check_folder(self) -> Task:
        """Try the folder off the UI thread (a network drive may take its time)."""
        self._folder_timer.stop()
        self._folder_generation += 1
        generation, folder = self._folder_generation, self.chosen_folder()
        self.folder_result.show_info("Checking the folder…")
        task = self.runner.run("folder-check", _check_folder, self.env, folder,
                               self.session.latest_backup_size())
        self.folder_task = task

        def finished(check: usecases.FolderCheck) -> None:
            if generation != self._folder_generation:
                return
            self.folder_check = check
            if not check.ok:
                self.folder_result.show_error(check.message)
            elif check.low:
                self.folder_result.show_info(check.message)
            else:
                self.folder_result.show_ok(check.message)
            self._update_save()

        task.on_finished(self.while_open(finished))
        task.on_failed(self.while_open(
            lambda message, _e: finished(usecases.FolderCheck(False, message))))
        self._update_save()
        return task

    # --- the Tables page -----------------------------------------------------------------------

    def _tables_page(self) -> QWidget:
        page = QWidget(self)
        name = self.org.name if self.org is not None else "the organization"
        intro = QLabel(f"Choose the tables that go into the backup of {name}. With every table "
                       "ticked, the backup also takes tables added to the database later. The "
                       "web app uses the same choice.", page)
        intro.setWordWrap(True)
        self.tables_list = QListWidget(page)
        self.tables_list.setObjectName("tablesList")
        self.tables_list.itemChanged.connect(lambda _item: self._tables_changed())
        self.tables_busy = BusyBar(page)
        self.tables_message = MessageLine(page)
        self.tables_message.setObjectName("tablesMessage")
        self.all_button = QPushButton("Tic&k all", page)
        self.all_button.setObjectName("tickAllTables")
        self.none_button = QPushButton("&Untick all", page)
        self.all_button.clicked.connect(lambda: self._tick_all(True))
        self.none_button.clicked.connect(lambda: self._tick_all(False))
        self.tables_count = QLabel(page)
        self.tables_count.setObjectName("tablesCount")
        row = QHBoxLayout()
        row.addWidget(self.all_button)
        row.addWidget(self.none_button)
        row.addStretch(1)
        row.addWidget(self.tables_count)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addWidget(self.tables_busy)
        layout.addWidget(self.tables_list, 1)
        layout.addLayout(row)
        layout.addWidget(self.tables_message)
        for widget in (self.tables_list, self.all_button, self.none_button):
            widget.setEnabled(False)
        return page

    def load_tables(self) -> Task | None:
        if self.org is None:
            self.tables_message.show_info("Choose an organization in the window first.")
            return None
        self.tables_busy.start("Reading the database's tables…")
        task = self.runner.run("tables", usecases.backup_table_choices, self.session.site(),
                               self.org.id)
        task.on_finished(self.while_open(self._tables_loaded))
        task.on_failed(self.while_open(self._tables_failed))
        return task

    def _tables_loaded(self, choices: usecases.TableChoices) -> None:
        self.tables_busy.stop()
        self.table_choices = choices
        chosen = set(choices.chosen) if choices.chosen is not None else set(choices.tables)
        self.tables_list.blockSignals(True)
        self.tables_list.clear()
        for name in choices.tables:
            item = QListWidgetItem(wording.table_words(name), self.tables_list)
            item.setData(Qt.ItemDataRole.UserRole, name)  # the real name, for saving
            item.setToolTip(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in chosen
                               else Qt.CheckState.Unchecked)
        self.tables_list.blockSignals(False)
        blocked = self.session.writes_wait
        for widget in (self.tables_list, self.all_button, self.none_button):
            widget.setEnabled(not blocked)
        if blocked:
            self.tables_message.show_info("Wait for the backup to finish to change the tables.")
        self._tables_changed()

    def _tables_failed(self, message: str, _error: object) -> None:
        self.tables_busy.stop()
        self.tables_message.show_error(f"The tables could not be read: {message}")

    def _tick_all(self, checked: bool) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        self.tables_list.blockSignals(True)
        for index in range(self.tables_list.count()):
            self.tables_list.item(index).setCheckState(state)
        self.tables_list.blockSignals(False)
        self._tables_changed()

    def ticked_tables(self) -> list[str]:
        return [self.tables_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.tables_list.count())
                if self.tables_list.item(i).checkState() == Qt.CheckState.Checked]

    def tables_to_save(self) -> list[str] | None:
        """The column's new value: None when every table is ticked (also future ones)."""
        ticked = self.ticked_tables()
        if self.table_choices is not None and len(ticked) == len(self.table_choices.tables):
            return None
        return ticked

    def tables_changed(self) -> bool:
        """Whether Save must write the column ("every table" differs from a list of all of
        today's tables: tables added later)."""
        if self.table_choices is None:
            return False
        before, after = self.table_choices.chosen, self.tables_to_save()
        if before is None or after is None:
            return (before is None) != (after is None)
        return set(after) != set(before)

    def tables_left_out(self) -> list[str]:
        """Tables the backup holds now and would no longer hold with this choice (what a
        shop owner must confirm: the next backup replaces a day's copy with less)."""
        if self.table_choices is None or not self.tables_changed():
            return []
        chosen = self.table_choices.chosen
        before = set(self.table_choices.tables if chosen is None else chosen)
        return sorted(before - set(self.ticked_tables()))

    def _tables_changed(self) -> None:
        if self.table_choices is None:
            return
        ticked, total = len(self.ticked_tables()), len(self.table_choices.tables)
        if ticked == total:
            self.tables_count.setText(f"All {wording.plural(total, 'table')}, and tables added "
                                      "later")
        else:
            self.tables_count.setText(f"{ticked:,} of {wording.plural(total, 'table')}")
        if ticked == 0:
            self.tables_message.show_error("Tick at least one table.")
        elif self.tables_message.kind == "failed":
            self.tables_message.clear()
        self._update_save()

    # --- the Notifications and look page -------------------------------------------------------

    def _notifications_page(self) -> QWidget:
        settings = self.env.settings
        page = QWidget(self)
        self.notify_check = QCheckBox("Notify me when a backup &succeeds", page)
        self.notify_check.setObjectName("notifyOnSuccess")
        self.notify_check.setChecked(settings.notify_on_success)
        notify_note = QLabel(TRAY_NOTE if self.tray_available else NO_TRAY_NOTE, page)
        notify_note.setObjectName("notifyNote")
        notify_note.setWordWrap(True)
        self.theme_combo = QComboBox(page)
        self.theme_combo.setObjectName("themeCombo")
        for theme in THEMES:
            self.theme_combo.addItem(THEME_NAMES[theme], theme)
        self.theme_combo.setCurrentIndex(max(0, THEMES.index(settings.theme)
                                             if settings.theme in THEMES else 0))
        self.theme_combo.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        form = QFormLayout(page)
        form.addRow("Notifications:", self.notify_check)
        form.addRow("", notify_note)
        form.addRow("The&me:", self.theme_combo)
        return page

    def chosen_theme(self) -> str:
        return THEMES[self.theme_combo.currentIndex()]

    # --- the Database password page ------------------------------------------------------------

    def _password_page(self) -> QWidget:
        page = QWidget(self)
        self.password_intro = QLabel(page)
        self.password_intro.setObjectName("passwordIntro")
        self.password_intro.setWordWrap(True)
        self.keyring_line = MessageLine(page)
        self.keyring_line.setObjectName("keyringStatus")
        self.password_busy = BusyBar(page)
        self.password_edit = QLineEdit(page)
        self.password_edit.setObjectName("keyringPasswordEdit")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("The database server's password")
        self.save_password_button = QPushButton("Sa&ve password", page)
        self.save_password_button.setObjectName("savePasswordButton")
        self.forget_button = QPushButton("Forg&et password", page)
        self.forget_button.setObjectName("forgetPasswordButton")
        self.password_result = MessageLine(page)
        self.password_result.setObjectName("passwordResult")
        self.save_password_button.clicked.connect(self.save_password)
        self.forget_button.clicked.connect(self.forget_password)
        self.password_edit.textChanged.connect(lambda _t: self._update_password_buttons())
        self.password_edit.returnPressed.connect(self.save_password)
        row = QHBoxLayout()
        row.addWidget(self.password_edit, 1)
        row.addWidget(self.save_password_button)
        row.addWidget(self.forget_button)
        self.password_row = QWidget(page)
        self.password_row.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        note = self.password_note = QLabel(
            "The password is kept in this computer's password store (keyring), never in a "
            "file. Saving or forgetting it takes effect at once, without Save below.", page)
        note.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addWidget(self.password_intro)
        layout.addWidget(self.keyring_line)
        layout.addWidget(self.password_busy)
        layout.addWidget(self.password_row)
        layout.addWidget(self.password_result)
        layout.addWidget(note)
        layout.addStretch(1)
        self.password_row.setEnabled(False)
        return page

    def _profile_url(self) -> str | None:
        profile = self.env.settings.profiles.get(self.profile or "")
        return profile.url if profile else None

    def load_password_state(self) -> Task | None:
        url = self._profile_url()
        sqlite = url.startswith("sqlite") if url else self.session.is_sqlite
        if sqlite:  # nothing to say about keyrings
            self.password_intro.setText("An SQLite file needs no password.")
            self.password_row.hide()
            self.password_note.hide()
            return None
        if self.profile is None or url is None:
            self.password_intro.setText(
                "This session was opened with a database address rather than a saved "
                "connection, so there is no password to keep for it.")
            self.password_row.hide()
            self.password_note.hide()
            return None
        self.password_intro.setText(f"The database password of the connection "
                                    f"'{self.profile}'.")
        self.password_busy.start("Asking the password store…")
        task = self.runner.run("keyring", usecases.password_state, self.profile)
        task.on_finished(self.while_open(self._password_loaded))
        task.on_failed(self.while_open(self._password_failed))
        return task

    def _password_loaded(self, state: usecases.PasswordState) -> None:
        self.password_busy.stop()
        self.password = state
        if not state.status.usable:  # its sentence says the login will ask each time
            self.keyring_line.show_error(state.status.message)
        elif state.saved:
            self.keyring_line.show_ok(f"{state.status.message} A password for "
                                      f"'{self.profile}' is saved.")
        else:
            self.keyring_line.show_info(f"{state.status.message} No password is saved for "
                                        f"'{self.profile}'; the login asks for it.")
        self.password_row.setEnabled(state.status.usable)
        self.save_password_button.setText("Re&place password" if state.saved
                                          else "Sa&ve password")
        self.password_edit.setPlaceholderText(
            "Type a new password to replace the saved one" if state.saved
            else "The database server's password")
        self._update_password_buttons()

    def _password_failed(self, message: str, _error: object) -> None:
        self.password_busy.stop()
        self.keyring_line.show_error(message)

    def _update_password_buttons(self) -> None:
        usable = self.password is not None and self.password.status.usable
        self.save_password_button.setEnabled(usable and bool(self.password_edit.text()))
        self.forget_button.setEnabled(usable and bool(self.password and self.password.saved))

    def save_password(self) -> Task | None:
        password = self.password_edit.text()
        if not password or self.profile is None or not self.save_password_button.isEnabled():
            return None
        replacing = bool(self.password and self.password.saved)
        return self._keyring_call(
            "keyring-save", keystore.set_password, self.profile, password,
            done=("The password was replaced" if replacing else "The password was saved")
            + "; the next login uses it.")

    def forget_password(self) -> Task | None:
        if self.profile is None:
            return None
        return self._keyring_call("keyring-forget", keystore.forget_password, self.profile,
                                  done="The password was forgotten; the login will ask for it.")

    def _keyring_call(self, name: str, fn, *args, done: str) -> Task:
        self.password_row.setEnabled(False)
        self.password_result.clear()
        task = self.runner.run(name, fn, *args)

        def finished(_result: object) -> None:
            self.password_edit.clear()
            self.password_result.show_ok(done)
            self.load_password_state()

        def failed(message: str, _error: object) -> None:
            self.password_result.show_error(message)
            self.load_password_state()

        task.on_finished(self.while_open(finished))
        task.on_failed(self.while_open(failed))
        return task

    # --- saving --------------------------------------------------------------------------------

    def _folder_changed(self) -> bool:
        return self.chosen_folder() != self.env.backup_folder

    def _update_save(self) -> None:
        folder_ok = not self._folder_changed() or (
            self.folder_check is not None and self.folder_check.ok)
        tables_ok = self.table_choices is None or bool(self.ticked_tables())
        self.save_button.setEnabled(folder_ok and tables_ok and not self.busy.isVisible())

    def settings_changes(self) -> dict:
        folder = self.chosen_folder()
        default = folder == self.env.paths.default_backup_dir
        at = self.time_edit.time()
        return {
            "backup_dir": None if default else str(folder),
            "auto_backup_on_login": self.login_check.isChecked(),
            "schedule_time": (f"{at.hour():02d}:{at.minute():02d}"
                              if self.schedule_check.isChecked() else None),
            "restore_points_kept": self.points_spin.value(),
            "notify_on_success": self.notify_check.isChecked(),
            "theme": self.chosen_theme(),
            "offsite_monthly": self.offsite_page.monthly_setting(),
        }

    def save(self) -> None:
        """Write the settings file, then the tables (when changed); close when both are."""
        if not self.save_button.isEnabled():
            return
        left_out = self.tables_left_out()
        if left_out and not self.env.prompts.confirm_fewer_tables(
                self, left_out, len(self.ticked_tables()), len(self.table_choices.tables)):
            self.tabs.setCurrentIndex(1)  # the Tables page, to tick them again
            return
        changes = self.settings_changes()
        try:
            save_settings(self.env.paths, replace(self.env.settings, **changes))
        except OSError as exc:
            self.message.show_error(f"The settings could not be saved "
                                    f"({exc.strerror or exc}); nothing was changed.")
            return
        for key, value in changes.items():
            setattr(self.env.settings, key, value)
        if not self.tables_changed() or self.org is None:
            self._done()
            return
        self.busy.start("Saving the tables…")
        self._update_save()
        task = self.runner.run("save-tables", usecases.save_backup_tables, self.session.site(),
                               self.session.actor(), self.tables_to_save())

        def failed(message: str, _error: object) -> None:
            self.busy.stop()
            self._update_save()
            self.tabs.setCurrentIndex(1)
            self.message.show_error(f"The other settings were saved, but the tables were "
                                    f"not changed: {message}")

        def finished(_org: Organization) -> None:
            self.busy.stop()
            self._done()

        task.on_finished(self.while_open(finished))
        task.on_failed(self.while_open(failed))

    def _done(self) -> None:
        self.saved.emit()
        self.accept()
