"""The settings' Encryption page: on or off, whether this workstation holds the key, whom new
backups are encrypted for (support's keys added or removed), and a new recovery sheet.

The setting lives in the billing database (every workstation of the shop agrees); the key
lives in this workstation's keyring; every call runs on a worker thread. Only the
organization's admins and owners (or a super admin) may change it: the others see the
buttons disabled with the reason. A new key shows its recovery sheet at once
(recovery_sheet.RecoverySheetDialog).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import usecases
from desktop_backup.auth import Session
from desktop_backup.organizations import Organization
from desktop_backup.orgkeys import fingerprint
from desktop_backup.ui.env import Env
from desktop_backup.ui.recovery_sheet import RecoverySheetDialog
from desktop_backup.ui.widgets import BusyBar, MessageLine, WrappedLabel
from desktop_backup.ui.workers import Task, TaskRunner
from desktop_backup.work import Site

# Wraps a task's callback so that it does nothing once the settings dialog was closed.
WhileOpen = Callable[[Callable[..., None]], Callable[..., None]]

INTRO = ("Encrypted backups (.zip.age) cannot be read by anyone who copies the backup folder "
         "or finds the USB drive. The key is kept in this computer's password store; its "
         "recovery sheet, printed once, opens the backups on any other computer.")
REMOVE_NOTE = ("Removing a recipient affects new backups only; backups already made can "
               "still be opened with it.")
EXTRA_HELP = ("Support's age public key (age1…), so support can open the backups with its "
              "own key, without the shop's password.")


class EncryptionPage(QWidget):
    """The page; ``changed`` is called after every change (the window's header reloads)."""

    def __init__(self, env: Env, runner: TaskRunner, site: Callable[[], Site], user: Session,
                 org: Organization | None, while_open: WhileOpen,
                 changed: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env, self.runner, self.site, self.user, self.org = env, runner, site, user, org
        self.while_open, self.changed = while_open, changed
        self.status: usecases.EncryptionStatus | None = None
        self.task: Task | None = None
        self.sheet_dialog: RecoverySheetDialog | None = None
        self.refused = usecases.change_refused(user, org)
        self.setObjectName("encryptionPage")

        self.state_line = MessageLine(self)
        self.state_line.setObjectName("encryptionState")
        self.key_line = MessageLine(self)
        self.key_line.setObjectName("encryptionKeyHere")
        self.recipients = QListWidget(self)
        self.recipients.setObjectName("recipientsList")
        self.recipients.itemSelectionChanged.connect(self._update)
        self.recipients.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # until a row can be chosen
        self.recipient_edit = QLineEdit(self)
        self.recipient_edit.setObjectName("recipientEdit")
        self.recipient_edit.setPlaceholderText("age1…")
        self.recipient_edit.setToolTip(EXTRA_HELP)
        self.recipient_edit.textChanged.connect(self._update)
        self.add_button = QPushButton("Add recipient", self)
        self.add_button.setObjectName("addRecipientButton")
        self.add_button.clicked.connect(self.add_recipient)
        self.remove_button = QPushButton("Remove recipient", self)
        self.remove_button.setObjectName("removeRecipientButton")
        self.remove_button.clicked.connect(self.remove_recipient)
        self.on_button = QPushButton("Turn encryption on", self)
        self.on_button.setObjectName("encryptionOnButton")
        self.on_button.clicked.connect(self.turn_on)
        self.off_button = QPushButton("Turn encryption off…", self)
        self.off_button.setObjectName("encryptionOffButton")
        self.off_button.clicked.connect(self.turn_off)
        self.sheet_button = QPushButton("&Write a new recovery sheet…", self)
        self.sheet_button.setObjectName("newSheetButton")
        self.sheet_button.clicked.connect(self.new_sheet)
        self.refused_line = MessageLine(self)
        self.refused_line.setObjectName("encryptionRefused")
        self.busy = BusyBar(self)
        self.result = MessageLine(self)
        self.result.setObjectName("encryptionResult")

        add_row = QHBoxLayout()
        add_row.addWidget(self.recipient_edit, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.remove_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.on_button)
        buttons.addWidget(self.off_button)
        buttons.addWidget(self.sheet_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(WrappedLabel(INTRO, self))
        layout.addWidget(self.state_line)
        layout.addWidget(self.key_line)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("New backups are encrypted for:", self))
        layout.addWidget(self.recipients, 1)
        layout.addLayout(add_row)
        layout.addWidget(WrappedLabel(EXTRA_HELP + " " + REMOVE_NOTE, self))
        layout.addWidget(self.refused_line)
        layout.addWidget(self.busy)
        layout.addWidget(self.result)
        if self.refused:
            self.refused_line.show_note(self.refused)
        self._update()
        self.load()

    # --- what is shown -------------------------------------------------------------------------

    def load(self) -> Task | None:
        if self.org is None:
            self.state_line.show_note("Choose an organization in the window first.")
            return None
        return self._run("encryption-status", "Reading the encryption setting…",
                         self._show, usecases.encryption_status, self.site(), self.org)

    def _show(self, status: usecases.EncryptionStatus) -> None:
        self.status = status
        if status.enabled:
            self.state_line.show_ok(f"Backups of {status.organization.label} are encrypted.")
        else:
            self.state_line.show_note(f"Backups of {status.organization.label} are not "
                                      "encrypted." + (" Those encrypted earlier still need "
                                                      "the key." if status.public_key else ""))
        if status.keyring_problem:
            self.key_line.show_error(status.keyring_problem)
        elif status.key_here:
            self.key_line.show_ok("This workstation holds the key.")
        elif status.enabled:
            self.key_line.show_warning(
                "This workstation does not hold the key: it still makes encrypted backups, "
                "but cannot open them until the recovery sheet is imported (the restore "
                "wizard asks for it).")
        else:
            self.key_line.clear()
        self.recipients.clear()
        if not status.public_key:
            nobody = QListWidgetItem("Nobody yet: turning encryption on makes the "
                                     "organization's key; support's keys can be added then.",
                                     self.recipients)
            nobody.setFlags(Qt.ItemFlag.NoItemFlags)
        if status.public_key:
            own = QListWidgetItem(f"{status.organization.name}'s key · fingerprint "
                                  f"{fingerprint(status.public_key)}", self.recipients)
            own.setFlags(own.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            own.setToolTip(status.public_key)
        for key in status.extra_recipients:
            item = QListWidgetItem(f"{key[:16]}…{key[-6:]} · fingerprint {fingerprint(key)}",
                                   self.recipients)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(key)
        # The keyboard reaches the list only when it has a row to remove.
        self.recipients.setFocusPolicy(Qt.FocusPolicy.StrongFocus if status.extra_recipients
                                       else Qt.FocusPolicy.NoFocus)
        self._update()

    def _update(self) -> None:
        status = self.status
        allowed = self.task is None and status is not None and self.refused is None
        enabled = bool(status and status.enabled)
        self.on_button.setEnabled(allowed and not enabled and not status.keyring_problem)
        self.off_button.setEnabled(allowed and enabled)
        self.sheet_button.setEnabled(allowed and bool(status and status.key_here))
        has_row = status is not None and status.public_key is not None
        self.recipient_edit.setEnabled(allowed and has_row)
        self.add_button.setEnabled(allowed and has_row
                                   and bool(self.recipient_edit.text().strip()))
        self.remove_button.setEnabled(allowed and bool(self._selected_recipient()))

    def _selected_recipient(self) -> str | None:
        chosen = self.recipients.selectedItems()
        return chosen[0].data(Qt.ItemDataRole.UserRole) if chosen else None

    # --- changes -------------------------------------------------------------------------------

    def turn_on(self) -> Task | None:
        if self.org is None or self.refused:
            return None
        return self._run("encryption-on", "Turning encryption on…", self._turned_on,
                         usecases.turn_encryption_on, self.site(), self.user, self.org,
                         None, trigger="manual")

    def _turned_on(self, turned: usecases.EncryptionOn) -> None:
        self.result.show_ok("Backups are encrypted from now on." + (
            "" if turned.created else " The key already on this workstation is used."))
        self._changed()
        if turned.created:
            self.show_sheet(turned.sheet)

    def turn_off(self) -> Task | None:
        if self.org is None or self.refused:
            return None
        if not self.env.prompts.confirm_encryption_off(self, self.org.name):
            return None
        return self._run("encryption-off", "Turning encryption off…",
                         lambda _was: self._done("New backups are written in clear; the "
                                                 "encrypted ones stay readable with the key."),
                         usecases.turn_encryption_off, self.site(), self.user, self.org,
                         trigger="manual")

    def add_recipient(self) -> Task | None:
        typed = self.recipient_edit.text().strip()
        if self.status is None or not typed:
            return None
        return self._set_extras([*self.status.extra_recipients, typed],
                                "Added: new backups can also be opened with that key.")

    def remove_recipient(self) -> Task | None:
        chosen = self._selected_recipient()
        if self.status is None or chosen is None:
            return None
        return self._set_extras([k for k in self.status.extra_recipients if k != chosen],
                                "Removed. " + REMOVE_NOTE)

    def _set_extras(self, keys: list[str], done: str) -> Task:
        def saved(_setting) -> None:
            self.recipient_edit.clear()
            self._done(done)
        return self._run("encryption-recipients", "Saving the recipients…", saved,
                         usecases.set_extra_recipients, self.site(), self.user, self.org,
                         keys, trigger="manual")

    def new_sheet(self) -> Task | None:
        if self.org is None or self.refused:
            return None
        return self._run("encryption-sheet", "Writing the recovery sheet…", self.show_sheet,
                         usecases.new_recovery_sheet, self.site(), self.user, self.org)

    def show_sheet(self, sheet: str) -> RecoverySheetDialog:
        dialog = RecoverySheetDialog(self.env, self.runner, self.site, self.user, self.org,
                                     sheet, self)
        dialog.finished.connect(lambda _r: self._changed())
        dialog.finished.connect(dialog.deleteLater)
        self.sheet_dialog = dialog
        dialog.open()
        return dialog

    def _done(self, message: str) -> None:
        self.result.show_ok(message)
        self._changed()

    def _changed(self) -> None:
        self.changed()
        self.load()

    def _run(self, name: str, busy: str, done: Callable, fn, *args, **kwargs) -> Task:
        if name != "encryption-status":  # reloading after a change keeps its result
            self.result.clear()
        self.busy.start(busy)
        self.task = self.runner.run(name, fn, *args, **kwargs)
        self._update()

        def finished(value) -> None:
            self._ended()
            done(value)

        def failed(message: str, _error) -> None:
            self._ended()
            self.result.show_error(message)

        self.task.on_finished(self.while_open(finished))
        self.task.on_failed(self.while_open(failed))
        return self.task

    def _ended(self) -> None:
        self.task = None
        self.busy.stop()
        self._update()
