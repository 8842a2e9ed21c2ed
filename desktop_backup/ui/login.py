"""The login dialog: which billing database, who you are, and a plain answer.

The check (keyring, connection, bcrypt at cost 12) takes a noticeable moment, so it runs off
the UI thread behind a busy bar; every refusal is the core's own sentence. Only the username
may be remembered, never a password.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import usecases
from desktop_backup.config import url_database
from desktop_backup.db import describe, parse_url
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.errors import DatabaseUnavailable, DesktopBackupError, LockedOut, UsageError
from desktop_backup.ui.env import Env
from desktop_backup.ui.theme import icon
from desktop_backup.ui.widgets import BusyBar, MessageLine, tab_chain
from desktop_backup.ui.workers import TaskRunner

DEMO_HINT = (f"Demo logins (password <b>{DEMO_PASSWORD}</b>): <b>medp.admin</b> – admin of "
             "Medplus Pharmacy; <b>superadmin</b> – every organization; <b>medp.staff</b> – "
             "refused.")


ORG_ROW = 5  # the form's row of the organization choice


class LoginDialog(QDialog):
    """Emits ``loggedIn(LoginResult)``; ``addConnectionRequested`` opens the connect form."""

    loggedIn = Signal(object)
    addConnectionRequested = Signal()

    def __init__(self, env: Env, runner: TaskRunner, db_url: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env, self.runner, self.db_url = env, runner, db_url
        self.setObjectName("loginDialog")
        self.setWindowTitle("Log in – Desktop Backup")
        self.setWindowIcon(icon("app"))

        title = QLabel("<h2>Log in</h2>", self)
        intro = QLabel("Use your billing software's username (or email) and password. "
                       "Admins and organization owners can log in.", self)
        intro.setWordWrap(True)
        self.profile_combo = QComboBox(self)
        self.profile_combo.setObjectName("profileCombo")
        self.where_label = QLabel(self)
        self.where_label.setObjectName("databaseLabel")
        self.where_label.setWordWrap(True)
        self.add_button = QPushButton("&Add a connection…", self)
        self.add_button.setObjectName("addConnectionButton")
        self.add_button.setAutoDefault(False)
        database_row = QWidget(self)
        row = QHBoxLayout(database_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.profile_combo, 1)
        row.addWidget(self.where_label, 1)
        row.addWidget(self.add_button)
        self.db_password_edit = QLineEdit(self)
        self.db_password_edit.setObjectName("databasePasswordEdit")
        self.db_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.username_edit = QLineEdit(self)
        self.username_edit.setObjectName("usernameEdit")
        self.username_edit.setAccessibleName("Username")
        self.password_edit = QLineEdit(self)
        self.password_edit.setObjectName("passwordEdit")
        self.password_edit.setAccessibleName("Password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.org_combo = QComboBox(self)  # shown only to a user of several organizations
        self.org_combo.setObjectName("organizationCombo")
        self.org_combo.setAccessibleName("Organization")
        self.remember = QCheckBox("&Remember my username on this computer", self)
        self.remember.setObjectName("rememberUsername")
        self.form = QFormLayout()
        self.form.addRow("&Database:", database_row)
        self.form.addRow("Database pass&word:", self.db_password_edit)
        self.form.addRow("&Username:", self.username_edit)
        self.form.addRow("&Password:", self.password_edit)
        self.form.addRow("", self.remember)
        self.form.addRow("&Organization:", self.org_combo)
        self.form.setRowVisible(1, False)
        self.form.setRowVisible(ORG_ROW, False)
        # A good login of a user of several organizations, waiting for their choice.
        self.pending: usecases.LoginResult | None = None
        self.demo_hint = QLabel(DEMO_HINT, self)
        self.demo_hint.setObjectName("demoHint")
        self.demo_hint.setWordWrap(True)
        self.busy = BusyBar(self)
        self.message = MessageLine(self)
        self.message.setObjectName("loginMessage")
        self.quit_button = QPushButton("&Quit", self)
        self.quit_button.setAutoDefault(False)
        self.login_button = QPushButton("&Log in", self)
        self.login_button.setObjectName("loginButton")
        self.login_button.setDefault(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.quit_button)
        buttons.addWidget(self.login_button)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # grows with messages
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(self.form)
        layout.addWidget(self.demo_hint)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.quit_button.clicked.connect(self.reject)
        self.rejected.connect(self._drop_pending)
        self.login_button.clicked.connect(self.submit)
        self.add_button.clicked.connect(self.addConnectionRequested)
        self.profile_combo.currentIndexChanged.connect(self._target_changed)
        tab_chain(self.profile_combo, self.add_button, self.db_password_edit,
                  self.username_edit, self.password_edit, self.remember, self.login_button,
                  self.quit_button)
        self.reload_profiles()
        remembered = env.settings.remembered_username
        self.username_edit.setText(remembered or "")
        self.remember.setChecked(bool(remembered))
        (self.password_edit if remembered else self.username_edit).setFocus()
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 70)

    # --- which database ------------------------------------------------------------------------

    def reload_profiles(self, select: str | None = None) -> None:
        """Fill the profile picker; a --db address replaces it with a plain description."""
        self.profile_combo.blockSignals(True)
        self.profile_combo.clear()
        for name in sorted(self.env.settings.profiles):
            self.profile_combo.addItem(name)
        chosen = select or self.env.settings.last_profile
        index = self.profile_combo.findText(chosen) if chosen else -1
        self.profile_combo.setCurrentIndex(max(index, 0))
        self.profile_combo.blockSignals(False)
        fixed = self.db_url is not None
        self.profile_combo.setVisible(not fixed)
        self.add_button.setVisible(not fixed)
        self.where_label.setVisible(fixed)
        if fixed:
            try:
                where = describe(parse_url(self.db_url))
                self.where_label.setText(where[:1].upper() + where[1:])
            except UsageError as exc:
                self.where_label.setText(str(exc))
        self._target_changed()

    def profile(self) -> str | None:
        """The chosen profile's name (its text: currentData() of an empty picker is None)."""
        return None if self.db_url else (self.profile_combo.currentText() or None)

    def _target_url(self) -> str | None:
        if self.db_url:
            return self.db_url
        profile = self.env.settings.profiles.get(self.profile_combo.currentText())
        return profile.url if profile else None

    def _target_changed(self) -> None:
        self.form.setRowVisible(1, False)
        self.db_password_edit.clear()
        self.demo_hint.setVisible(self._is_demo(self._target_url()))
        self.message.clear()

    def _is_demo(self, url: str | None) -> bool:
        if not url:
            return False
        database = url_database(url)  # None for a bad address: not the demo
        demo = self.env.paths.demo_database
        return bool(database) and Path(database).resolve() == demo.resolve()

    # --- the check -----------------------------------------------------------------------------

    @Slot()
    def submit(self) -> None:
        if self.busy.isVisible():
            return
        if self.pending is not None:
            self._chosen()
            return
        if not self.db_url and self.profile_combo.count() == 0:
            self.message.show_error("Add a connection to the billing database first.")
            return
        self._set_busy(True)
        self.message.clear()
        task = self.runner.run(
            "login", usecases.login, self.env.paths, self.env.settings, self.db_url,
            self.profile(), self.db_password_edit.text() or None, self.username_edit.text(),
            self.password_edit.text(), self.env.throttle())
        task.on_finished(self._succeeded)
        task.on_failed(self._refused)

    def _succeeded(self, result: usecases.LoginResult) -> None:
        self._set_busy(False)
        settings = self.env.settings
        settings.remembered_username = (self.username_edit.text().strip()
                                        if self.remember.isChecked() else None)
        if self.profile():
            settings.last_profile = self.profile()
        try:
            self.env.save()
        except OSError:
            pass  # not remembering a username is no reason to refuse the login
        self.password_edit.clear()
        several = usecases.choices(result)
        if several:
            self._ask_which(result, several)
            return
        self._enter(result)

    def _enter(self, result: usecases.LoginResult) -> None:
        """In, once the database may hold the console's tables: the billing app's always
        may; another asks first (unless the settings allow it), and a no leaves it as it was."""
        tables = list(result.console_tables_missing)
        if not tables:
            self._logged_in(result)
            return
        if not self.env.settings.create_console_tables and \
                not self.env.prompts.confirm_console_tables(
                    self, tables, self.env.settings.console_schema):
            result.engine.dispose()
            self._reset_choice()
            self.message.show_error("Nothing was added to this database, so the console "
                                    "cannot work on it; log in again to be asked again.")
            return
        self._set_busy(True)
        task = self.runner.run("console tables", usecases.allow_console_tables, result.engine)
        task.on_finished(lambda _none: self._logged_in(result))
        task.on_failed(lambda message, _error: self._not_added(result, message))

    def _not_added(self, result: usecases.LoginResult, message: str) -> None:
        result.engine.dispose()
        self._reset_choice()
        self.message.show_error(message)

    def _logged_in(self, result: usecases.LoginResult) -> None:
        self._set_busy(False)
        self.loggedIn.emit(result)
        self.accept()

    def _ask_which(self, result: usecases.LoginResult, several: list) -> None:
        """The password was right and the user administers several organizations: ask which
        one to work on (the list holds only theirs), the rest of the form locked."""
        self.pending = result
        self.org_combo.clear()
        for org in several:
            self.org_combo.addItem(org.label, org)
        for widget in (self.profile_combo, self.add_button, self.db_password_edit,
                       self.username_edit, self.password_edit, self.remember):
            widget.setEnabled(False)
        self.form.setRowVisible(ORG_ROW, True)
        self.login_button.setText("&Continue")
        self.message.show_message("info", (
            f"You look after {len(several)} organizations; choose the one to work on."))
        self.org_combo.setFocus()

    def _chosen(self) -> None:
        result, self.pending = self.pending, None
        assert result is not None
        try:
            chosen = usecases.acting_as(result, self.org_combo.currentData())
        except DesktopBackupError as exc:  # never expected: the list holds only theirs
            result.engine.dispose()
            self._reset_choice()
            self.message.show_error(str(exc))
            return
        self._enter(chosen)

    def _drop_pending(self) -> None:
        """Quit while choosing: the engine opened for the login is closed, nobody is in."""
        if self.pending is not None:
            self.pending.engine.dispose()
            self.pending = None
        self._reset_choice()

    def _reset_choice(self) -> None:
        self.form.setRowVisible(ORG_ROW, False)
        self.login_button.setText("&Log in")
        self._set_busy(False)

    def _refused(self, message: str, error: object) -> None:
        self._set_busy(False)
        if isinstance(error, LockedOut):
            message = lockout_words(message, error.minutes_left, self.env.clock())
        self.message.show_error(message)
        needs_db_password = isinstance(error, usecases.DatabasePasswordNeeded) or (
            isinstance(error, DatabaseUnavailable) and "refused the database" in message)
        if needs_db_password:
            self.form.setRowVisible(1, True)
            self.db_password_edit.setFocus()
            return
        if not self.username_edit.text().strip():
            self.username_edit.setFocus()
            return
        self.password_edit.clear()  # also when locked out: a wrong password is no use kept
        self.password_edit.setFocus()

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.profile_combo, self.add_button, self.db_password_edit,
                       self.username_edit, self.password_edit, self.remember,
                       self.login_button):
            widget.setEnabled(not busy)
        if busy:
            self.busy.start("Checking your username and password…")
        else:
            self.busy.stop()


def lockout_words(message: str, minutes_left: int, now: datetime) -> str:
    """The lockout's sentence with the clock time when a login is possible again."""
    until = now + timedelta(minutes=minutes_left)
    return f"{message.rstrip('.')}, at {until:%H:%M}."
