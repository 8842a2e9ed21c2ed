"""The restore wizard's question for the recovery key: shown when the chosen backup is
encrypted and this workstation has no key that opens it (a second workstation, a machine
rebuilt after a disaster).

The recovery sheet's text is pasted (the whole sheet or its AGE-SECRET-KEY-1… line) or its
file is picked; the key is kept only once it has opened the chosen backup
(usecases.unlock_backup), so a wrong sheet, a damaged key or another organization's sheet is
one sentence and the page stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout

from desktop_backup import usecases
from desktop_backup.ui.restore_context import RestoreContext
from desktop_backup.ui.widgets import MessageLine, WrappedLabel
from desktop_backup.ui.workers import Task
from desktop_backup.work import Site

ASK = ("This backup is encrypted and this workstation does not have its key. Paste the "
       "recovery sheet here (the whole page or only its line that starts with "
       "AGE-SECRET-KEY-1), or choose the sheet's file; the key is then kept on this "
       "workstation and the check goes on.")
SHEET_FILE_LIMIT = 64 * 1024  # a recovery sheet is a page of text; anything bigger is not one


class RecoveryKeyBox(QFrame):
    """Emits ``unlocked`` once the key opened the backup and was kept."""

    unlocked = Signal()

    def __init__(self, context: Callable[[], RestoreContext], parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.path: Path | None = None
        self.task: Task | None = None
        self.setObjectName("recoveryKeyBox")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.paste_edit = QPlainTextEdit(self)
        self.paste_edit.setObjectName("recoveryKeyEdit")
        self.paste_edit.setPlaceholderText("AGE-SECRET-KEY-1…")
        self.paste_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.paste_edit.setTabChangesFocus(True)
        self.paste_edit.setMaximumHeight(self.fontMetrics().height() * 6)
        self.paste_edit.textChanged.connect(self._update)
        self.file_button = QPushButton("Choose the sheet's f&ile…", self)
        self.file_button.setObjectName("recoverySheetFileButton")
        self.file_button.setAutoDefault(False)
        self.file_button.clicked.connect(self.choose_file)
        self.use_button = QPushButton("Use this &key", self)
        self.use_button.setObjectName("useRecoveryKeyButton")
        self.use_button.setAutoDefault(False)
        self.use_button.clicked.connect(self.use_key)
        self.message = MessageLine(self)
        self.message.setObjectName("recoveryKeyMessage")
        buttons = QHBoxLayout()
        buttons.addWidget(self.file_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addWidget(WrappedLabel(ASK, self))
        layout.addWidget(self.paste_edit)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self._update()

    def ask(self, path: Path) -> None:
        """Show the question for the backup at `path`."""
        self.path = path
        self.message.clear()
        self.show()
        self.paste_edit.setFocus()

    def _update(self) -> None:
        idle = self.task is None
        self.paste_edit.setReadOnly(not idle)
        self.file_button.setEnabled(idle)
        self.use_button.setEnabled(idle and bool(self.paste_edit.toPlainText().strip()))

    def choose_file(self) -> None:
        ctx = self.context()
        chosen = ctx.env.prompts.choose_recovery_sheet(self, None)
        if chosen is None:
            return
        try:
            with open(chosen, encoding="utf-8", errors="replace") as sheet:
                text = sheet.read(SHEET_FILE_LIMIT + 1)
        except OSError as exc:
            self.message.show_error(f"{chosen.name} cannot be read "
                                    f"({exc.strerror or exc}).")
            return
        if len(text) > SHEET_FILE_LIMIT:
            self.message.show_error(f"{chosen.name} is not a recovery sheet (it is far "
                                    "longer than one page).")
            return
        self.paste_edit.setPlainText(text)
        self.use_key()

    def use_key(self) -> Task | None:
        text = self.paste_edit.toPlainText()
        if self.path is None or not text.strip() or self.task is not None:
            return None
        ctx = self.context()
        self.message.show_info("Trying the key on the backup…")
        self.task = ctx.runner.run("unlock-backup", usecases.unlock_backup,
                                   Site(ctx.engine, ctx.env.settings.mapping), ctx.actor,
                                   ctx.org, self.path, text)
        self._update()
        self.task.on_finished(self._unlocked)
        self.task.on_failed(lambda message, _e: self._refused(message))
        return self.task

    def _unlocked(self, _added: bool) -> None:
        self.task = None
        self.paste_edit.clear()  # the secret does not stay on screen
        self.message.show_ok("The key opens this backup and is now kept on this workstation.")
        self._update()
        self.unlocked.emit()

    def _refused(self, message: str) -> None:
        self.task = None
        self.message.show_error(message)
        self._update()
