"""The first screen: try the demo database, or say where the real billing database is.

The connection's password goes to the keyring through ``profiles.add_profile``, never to the
settings file. Testing a connection can take a network timeout, so it runs off the UI
thread, and its verdict is one sentence: what was found, or what to check.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QCommandLinkButton,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import keystore, profiles, usecases
from desktop_backup.demo import create_demo_database
from desktop_backup.errors import DesktopBackupError, KeyringUnavailable
from desktop_backup.ui.env import Env
from desktop_backup.ui.theme import icon
from desktop_backup.ui.widgets import BusyBar, MessageLine, tab_chain
from desktop_backup.ui.workers import TaskRunner

DEMO_PROFILE = "Demo database"


class FirstRunDialog(QDialog):
    """Choose the demo or a real database; emits ``connected(profile_name)`` when done."""

    connected = Signal(str)

    def __init__(self, env: Env, runner: TaskRunner, parent: QWidget | None = None,
                 start_on_form: bool = False) -> None:
        super().__init__(parent)
        self.env, self.runner = env, runner
        self.setObjectName("firstRunDialog")
        self.setWindowTitle("Desktop Backup – where is the billing data?")
        self.setWindowIcon(icon("app"))
        self.pages = QStackedWidget(self)
        self.choice_page = self._build_choice()
        self.form_page = self._build_form()
        self.pages.addWidget(self.choice_page)
        self.pages.addWidget(self.form_page)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # grows with messages
        layout.addWidget(self.pages)
        self._kind_changed()
        self._form_only = start_on_form
        if start_on_form:
            self.back_button.hide()
            self.show_form()
        self.resize(self.sizeHint().expandedTo(self.minimumSizeHint()))

    # --- the choice ----------------------------------------------------------------------------

    def _build_choice(self) -> QWidget:
        page = QWidget(self)
        title = QLabel("<h2>Welcome to Desktop Backup</h2>", page)
        intro = QLabel(
            "Desktop Backup keeps a copy of your shop's billing data for each day of the week "
            "and makes today's copy when you log in. First, tell it where the billing data "
            "is.", page)
        intro.setWordWrap(True)
        self.demo_button = QCommandLinkButton(
            "Open the &demo database",
            "Try the console with three sample pharmacies. Nothing real is touched.", page)
        self.demo_button.setObjectName("openDemoButton")
        self.demo_button.setIcon(icon("demo"))
        self.connect_button = QCommandLinkButton(
            "&Connect to the billing database",
            "The database your billing software uses: an SQLite file, or a MySQL, MariaDB or "
            "PostgreSQL server.", page)
        self.connect_button.setObjectName("connectDatabaseButton")
        self.connect_button.setIcon(icon("database"))
        self.choice_busy = BusyBar(page)
        self.choice_message = MessageLine(page)
        self.demo_button.clicked.connect(self.open_demo)
        self.connect_button.clicked.connect(self.show_form)
        layout = QVBoxLayout(page)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(8)
        layout.addWidget(self.demo_button)
        layout.addWidget(self.connect_button)
        layout.addWidget(self.choice_busy)
        layout.addWidget(self.choice_message)
        layout.addStretch(1)
        return page

    @Slot()
    def open_demo(self) -> None:
        """Create the demo database (or keep the one there is) and save it as a profile."""
        self._set_busy(True, "Preparing the demo database (a few seconds)…")
        task = self.runner.run("create-demo", create_demo_database,
                               self.env.paths.demo_database)
        task.on_finished(self._demo_ready)
        task.on_failed(self._demo_failed)

    def _demo_ready(self, result) -> None:
        self._set_busy(False)
        try:
            profiles.add_profile(self.env.paths, self.env.settings, DEMO_PROFILE, result.url)
        except DesktopBackupError as exc:
            self.choice_message.show_error(str(exc))
            return
        self._finish(DEMO_PROFILE)

    def _demo_failed(self, message: str, _error: object) -> None:
        self._set_busy(False)
        self.choice_message.show_error(message)

    # --- the connection form -------------------------------------------------------------------

    def _build_form(self) -> QWidget:
        page = QWidget(self)
        title = QLabel("<h2>Connect to the billing database</h2>", page)
        self.kind = QComboBox(page)
        self.kind.setObjectName("databaseKind")
        self.kind.addItem("SQLite file", "sqlite")
        for kind, (label, _port) in usecases.SERVER_KINDS.items():
            self.kind.addItem(label, kind)
        self.file_edit = QLineEdit(page)
        self.file_edit.setObjectName("sqliteFileEdit")
        self.file_edit.setPlaceholderText("for example C:\\Billing\\billing.sqlite")
        browse = QPushButton("&Browse…", page)
        browse.clicked.connect(self._browse)
        file_row = QWidget(page)
        file_layout = QHBoxLayout(file_row)
        file_layout.setContentsMargins(0, 0, 0, 0)
        file_layout.addWidget(self.file_edit, 1)
        file_layout.addWidget(browse)
        self.host_edit = QLineEdit("localhost", page)
        self.host_edit.setObjectName("hostEdit")
        self.port_spin = QSpinBox(page)
        self.port_spin.setObjectName("portSpin")
        self.port_spin.setRange(1, 65535)
        self.port_spin.setGroupSeparatorShown(False)
        self.database_edit = QLineEdit(page)
        self.database_edit.setObjectName("databaseEdit")
        self.user_edit = QLineEdit(page)
        self.user_edit.setObjectName("databaseUserEdit")
        self.db_password_edit = QLineEdit(page)
        self.db_password_edit.setObjectName("databasePasswordEdit")
        self.db_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.name_edit = QLineEdit("Billing database", page)
        self.name_edit.setObjectName("profileNameEdit")
        self.form = QFormLayout()
        self.form.addRow("K&ind of database:", self.kind)
        self.form.addRow("&File:", file_row)
        self.form.addRow("Ser&ver:", self.host_edit)
        self.form.addRow("P&ort:", self.port_spin)
        self.form.addRow("D&atabase:", self.database_edit)
        self.form.addRow("&User:", self.user_edit)
        self.form.addRow("&Password:", self.db_password_edit)
        self.form.addRow("&Name this connection:", self.name_edit)
        self._file_row, self._server_rows = 1, (2, 3, 4, 5, 6)
        status = keystore.keyring_status()
        keyring_note = QLabel(
            "The password is kept in this computer's password store, never in a file."
            if status.usable else status.message, page)
        keyring_note.setWordWrap(True)
        keyring_note.setObjectName("keyringNote")
        self.form_busy = BusyBar(page)
        self.form_message = MessageLine(page)
        self.form_message.setObjectName("connectionResult")
        self.back_button = QPushButton("← Bac&k", page)
        self.test_button = QPushButton("&Test connection", page)
        self.test_button.setObjectName("testConnectionButton")
        self.save_button = QPushButton("&Save and continue", page)
        self.save_button.setObjectName("saveConnectionButton")
        self.save_button.setDefault(True)
        self.back_button.clicked.connect(lambda: self.pages.setCurrentWidget(self.choice_page))
        self.test_button.clicked.connect(self.test_connection)
        self.save_button.clicked.connect(self.save_connection)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.test_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(page)
        layout.addWidget(title)
        layout.addLayout(self.form)
        layout.addWidget(keyring_note)
        layout.addWidget(self.form_busy)
        layout.addWidget(self.form_message)
        layout.addStretch(1)
        layout.addLayout(buttons)
        tab_chain(self.kind, self.file_edit, browse, self.host_edit, self.port_spin,
                  self.database_edit, self.user_edit, self.db_password_edit, self.name_edit,
                  self.test_button, self.save_button, self.back_button)
        return page

    @Slot()
    def show_form(self) -> None:
        self.pages.setCurrentWidget(self.form_page)
        self.kind.setFocus()

    def reject(self) -> None:
        """Escape on the form goes back to the choice (unless the form is all there is)."""
        if self.pages.currentWidget() is self.form_page and not self._form_only:
            self.pages.setCurrentWidget(self.choice_page)
            self.demo_button.setFocus()
            return
        super().reject()

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        server = kind != "sqlite"
        self.form.setRowVisible(self._file_row, not server)
        for row in self._server_rows:
            self.form.setRowVisible(row, server)
        if server:
            self.port_spin.setValue(usecases.SERVER_KINDS[kind][1])
        self.form_message.clear()

    def _browse(self) -> None:
        start = Path(self.file_edit.text()).parent if self.file_edit.text() else None
        chosen = self.env.prompts.choose_sqlite_file(self, start)
        if chosen is not None:
            self.file_edit.setText(str(chosen))

    def connection(self) -> tuple[str, str | None]:
        """The address (without password) and the password, from the form."""
        kind = self.kind.currentData()
        url = usecases.build_url(kind, path=self.file_edit.text(), host=self.host_edit.text(),
                                 port=self.port_spin.value(), database=self.database_edit.text(),
                                 user=self.user_edit.text())
        password = self.db_password_edit.text() if kind != "sqlite" else None
        return url, password or None

    @Slot()
    def test_connection(self, then_save: bool = False) -> None:
        try:
            url, password = self.connection()
        except DesktopBackupError as exc:
            self.form_message.show_error(str(exc))
            return
        self.form_message.clear()
        self._set_busy(True, "Connecting…")
        task = self.runner.run("test-connection", usecases.test_connection, url, password,
                               self.env.settings.mapping)
        task.on_finished(lambda text: self._tested(text, url, password, then_save))
        task.on_failed(self._test_failed)

    @Slot()
    def save_connection(self) -> None:
        """Test first: a profile that cannot connect would only fail again at the login."""
        self.test_connection(then_save=True)

    def _tested(self, text: str, url: str, password: str | None, then_save: bool) -> None:
        self._set_busy(False)
        self.form_message.show_ok(text)
        if then_save:
            self.save_profile(url, password)

    def _test_failed(self, message: str, _error: object) -> None:
        self._set_busy(False)
        self.form_message.show_error(message)

    def save_profile(self, url: str, password: str | None) -> None:
        """Keep a tested connection as a profile, its password in the keyring."""
        name = self.name_edit.text().strip() or "Billing database"
        try:
            profiles.add_profile(self.env.paths, self.env.settings, name, url, password)
        except KeyringUnavailable as exc:
            # Saved, but the password will be asked for at each login: say so, then go on.
            self.env.prompts.inform(self, "Password not saved", str(exc), ok=False)
        except DesktopBackupError as exc:
            self.form_message.show_error(str(exc))
            return
        self._finish(name)

    # --- common --------------------------------------------------------------------------------

    def _finish(self, profile: str) -> None:
        self.env.settings.last_profile = profile
        try:
            self.env.save()
        except OSError as exc:
            self.form_message.show_error(f"The settings could not be saved ({exc.strerror}).")
            return
        self.connected.emit(profile)
        self.accept()

    def _set_busy(self, busy: bool, text: str = "") -> None:
        for widget in (self.demo_button, self.connect_button, self.test_button,
                       self.save_button, self.back_button):
            widget.setEnabled(not busy)
        for bar in (self.choice_busy, self.form_busy):
            if busy:
                bar.start(text)
            else:
                bar.stop()
