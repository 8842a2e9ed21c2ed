"""The settings' Off-site page: where copies go, a "Test connection", and turning it off.

The remote is typed as rclone takes it (a connection string, a remote of rclone.conf, or a
folder); its keys and passwords go to the keyring when it is saved (offsite_queue), so the
box shows the address without them afterwards. Every call runs on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import offsite_queue
from desktop_backup.offsite_monthly import months_kept
from desktop_backup.organizations import Organization
from desktop_backup.ui.env import Env
from desktop_backup.ui.widgets import BusyBar, MessageLine
from desktop_backup.ui.workers import Task, TaskRunner

# Wraps a task's callback so that it does nothing once the settings dialog was closed.
WhileOpen = Callable[[Callable[..., None]], Callable[..., None]]

HELP = ("Every good backup is also copied here, checked, under a folder for this "
        "organization. Examples: :s3,provider=Minio,endpoint='https://host:9000',"
        "access_key_id=…,secret_access_key=…:bucket/shop · :sftp,host=nas,user=shop,"
        "pass=…:backups · :webdav,url='https://cloud.example/remote.php/dav/files/shop',"
        "vendor=nextcloud,user=shop,pass=…:backups · a remote of rclone.conf such as "
        "onedrive:Backups · a network folder such as \\\\nas\\backups. Keys and passwords "
        "are kept in this computer's password store, never in a file.")
MONTHLY_DEFAULT = 12  # what the box offers when monthly copies are first turned on


class OffsitePage(QWidget):
    """Lives in the SettingsDialog; saving here takes effect at once (like the password)."""

    def __init__(self, env: Env, org: Organization | None, runner: TaskRunner,
                 while_open: WhileOpen, parent: QWidget) -> None:
        super().__init__(parent)
        self.env = env
        self.org = org
        self.runner = runner
        self.while_open = while_open
        self.task: Task | None = None
        self.intro = QLabel(self)
        self.intro.setWordWrap(True)
        self.remote_edit = QLineEdit(self)
        self.remote_edit.setObjectName("offsiteRemoteEdit")
        self.remote_edit.setPlaceholderText(":s3,provider=…,endpoint=…,access_key_id=…,"
                                            "secret_access_key=…:bucket/folder")
        self.test_button = QPushButton("Test &connection", self)
        self.test_button.setObjectName("testOffsiteButton")
        self.save_button = QPushButton("Save th&is remote", self)
        self.save_button.setObjectName("saveOffsiteButton")
        self.off_button = QPushButton("&Disconnect remote", self)
        self.off_button.setObjectName("offsiteOffButton")
        self.busy = BusyBar(self)
        self.result = MessageLine(self)
        self.result.setObjectName("offsiteResult")
        help_label = QLabel(HELP, self)
        help_label.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.test_button, self.save_button, self.off_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        for widget in (self.intro, self.remote_edit):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        for widget in (self.busy, self.result):
            layout.addWidget(widget)
        layout.addLayout(self._monthly_row())
        layout.addWidget(help_label)
        layout.addStretch(1)
        self.test_button.clicked.connect(self.test_connection)
        self.save_button.clicked.connect(self.save_remote)
        self.off_button.clicked.connect(self.turn_off)
        self.remote_edit.textChanged.connect(lambda _t: self._update())
        self._show_saved()

    def _monthly_row(self) -> QHBoxLayout:
        """Monthly copies (off by default): saved with the dialog's Save, like the folder."""
        kept = months_kept(self.env.settings, self.org.id) if self.org else 0
        self.monthly_check = QCheckBox("Keep a monthl&y copy (the last backup of each month) "
                                       "for", self)
        self.monthly_check.setObjectName("offsiteMonthlyCheck")
        self.monthly_check.setChecked(kept > 0)
        self.monthly_spin = QSpinBox(self)
        self.monthly_spin.setObjectName("offsiteMonthlySpin")
        self.monthly_spin.setRange(1, 120)
        self.monthly_spin.setSuffix(" months")
        self.monthly_spin.setValue(kept or MONTHLY_DEFAULT)
        self.monthly_spin.setAccessibleName("Months of monthly copies kept off-site")
        self.monthly_check.toggled.connect(lambda _on: self._update())
        row = QHBoxLayout()
        row.addWidget(self.monthly_check)
        row.addWidget(self.monthly_spin)
        row.addStretch(1)
        return row

    def monthly_months(self) -> int:
        """Months of monthly copies as chosen on the page (0: none)."""
        return self.monthly_spin.value() if self.monthly_check.isChecked() else 0

    def monthly_setting(self) -> dict[str, int]:
        """The settings' offsite_monthly with this organization's choice in it."""
        kept = dict(self.env.settings.offsite_monthly)
        if self.org is not None:
            kept.pop(str(self.org.id), None)
            if self.monthly_months():
                kept[str(self.org.id)] = self.monthly_months()
        return kept

    def saved_address(self) -> str:
        if self.org is None:
            return ""
        return self.env.settings.offsite_remotes.get(str(self.org.id), "")

    def _show_saved(self) -> None:
        saved = self.saved_address()
        if self.org is None:
            self.intro.setText("Choose an organization first: each has its own remote.")
        elif saved:
            self.intro.setText(f"Backups of {self.org.name} are copied off-site to:")
        else:
            self.intro.setText(f"Backups of {self.org.name} stay on this computer only. "
                               "Give a remote to copy each one off-site:")
        self.remote_edit.setText(saved)
        self._update()

    def _update(self) -> None:
        idle = self.task is None and self.org is not None
        typed = self.remote_edit.text().strip()
        self.remote_edit.setEnabled(idle)
        self.test_button.setEnabled(idle and bool(typed))
        self.save_button.setEnabled(idle and bool(typed) and typed != self.saved_address())
        self.off_button.setEnabled(idle and bool(self.saved_address()))
        self.monthly_check.setEnabled(self.org is not None)
        self.monthly_spin.setEnabled(self.org is not None and self.monthly_check.isChecked())

    def test_connection(self) -> Task | None:
        """Write, read back and delete a small file on the typed (or the saved) remote."""
        typed = self.remote_edit.text().strip()
        if self.org is None or not typed:
            return None
        if typed == self.saved_address():  # its keys are in the keyring
            return self._run("offsite-test", "Testing the connection…",
                             "The connection works: a test file was written, read back and "
                             "deleted.", offsite_queue.check_remote, self.env.settings,
                             self.org.id)
        return self._run("offsite-test", "Testing the connection…",
                         "The connection works: a test file was written, read back and "
                         "deleted. Save the remote to use it.", offsite_queue.try_remote,
                         typed)

    def save_remote(self) -> Task | None:
        typed = self.remote_edit.text().strip()
        if self.org is None or not typed:
            return None
        return self._run("offsite-save", "Testing and saving the remote…",
                         "Saved: each good backup is now also copied off-site.",
                         offsite_queue.set_remote, self.env.paths, self.env.settings,
                         self.org, typed, reload=True)

    def turn_off(self) -> Task | None:
        if self.org is None:
            return None
        return self._run("offsite-off", "Turning off-site copies off…",
                         "Off-site copies are off; the remote's keys were removed from this "
                         "computer.", offsite_queue.remove_remote, self.env.paths,
                         self.env.settings, self.org, reload=True)

    def _run(self, name: str, busy: str, done: str, fn, *args, reload: bool = False) -> Task:
        """Run `fn` off the UI thread; `reload` (save, turn off) then shows what the settings
        keep: the address without its secrets."""
        self.result.clear()
        self.busy.start(busy)
        self.task = self.runner.run(name, fn, *args)
        self._update()
        self.task.on_finished(self.while_open(
            lambda _r: self._ended(done, True, reload)))
        self.task.on_failed(self.while_open(
            lambda message, _e: self._ended(message, False)))
        return self.task

    def _ended(self, message: str, ok: bool, reload: bool = False) -> None:
        self.task = None
        self.busy.stop()
        if ok:
            if reload:
                self._show_saved()
            self._update()
            self.result.show_ok(message)
        else:
            self._update()
            self.result.show_error(message)
