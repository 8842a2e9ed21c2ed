"""The recovery sheet, shown once when encryption is turned on (or again on request): its text,
"print or save this now", Save as PDF / Save as text / Print, and the retype check.

The sheet is the only copy of the key outside this workstation's keyring, so the dialog can
only be closed *as confirmed* once the last characters of the key are typed back from what
was printed or saved; the confirmation is recorded (usecases.confirm_sheet) and ends the
header's warning on every workstation. Closing without confirming is allowed: the header
then keeps warning.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF
from PySide6.QtGui import QFontDatabase, QPageLayout, QPageSize, QPdfWriter, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import usecases
from desktop_backup.config import write_private_text
from desktop_backup.organizations import Organization
from desktop_backup.orgkeys import RETYPE_CHARS, parse_recovery_text, retyped_correctly
from desktop_backup.ui.env import Env
from desktop_backup.ui.theme import icon
from desktop_backup.ui.widgets import MessageLine, WrappedLabel
from desktop_backup.ui.workers import Task, TaskRunner
from desktop_backup.work import Site

KEEP_IT = "Print or save this now; without it an encrypted backup cannot be opened."


def sheet_document(text: str) -> QTextDocument:
    """The sheet as a printable page: the text in a fixed-width font, so the key reads
    character by character."""
    document = QTextDocument()
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSize(9)  # the longest line (80 characters) fits A4 between 20 mm margins
    document.setDefaultFont(font)
    document.setPlainText(text)
    return document


def sheet_pdf(text: str) -> bytes:
    """The sheet as an A4 PDF, made in memory (Qt's printing)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle("Desktop Backup recovery sheet")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait,
                                     QMarginsF(20, 20, 20, 20), QPageLayout.Unit.Millimeter))
    document = sheet_document(text)
    # Lay the text out at the PDF's resolution, not the screen's: otherwise a 10 pt font is
    # measured in screen pixels and printed at 1200 dpi, a smudge in the page's corner.
    document.documentLayout().setPaintDevice(writer)
    document.setPageSize(writer.pageLayout().paintRectPixels(writer.resolution()).size()
                         .toSizeF())
    document.print_(writer)
    del writer  # ends the PDF: it is written when the writer goes
    buffer.close()
    return bytes(data.data())


def write_sheet_pdf(text: str, path: Path) -> None:
    """Save the sheet as a PDF readable by its owner only (it holds the secret key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as out:
        out.write(sheet_pdf(text))


class RecoverySheetDialog(QDialog):
    """Accepted only once the sheet was confirmed (retyped and recorded)."""

    def __init__(self, env: Env, runner: TaskRunner, site: Callable[[], Site], actor,
                 org: Organization, sheet: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env, self.runner, self.site, self.actor, self.org = env, runner, site, actor, org
        self.sheet = sheet
        self.key = parse_recovery_text(sheet).identity
        self.task: Task | None = None
        self.setObjectName("recoverySheetDialog")
        self.setWindowTitle("Recovery sheet – Desktop Backup")
        self.setWindowIcon(icon("app"))

        warning = MessageLine(self)
        warning.setObjectName("recoverySheetWarning")
        warning.show_warning(KEEP_IT)
        self.text = QPlainTextEdit(sheet, self)
        self.text.setObjectName("recoverySheetText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.pdf_button = QPushButton("Save as &PDF…", self)
        self.pdf_button.setObjectName("saveSheetPdfButton")
        self.pdf_button.clicked.connect(lambda: self.save(".pdf"))
        self.text_button = QPushButton("Save as &text…", self)
        self.text_button.setObjectName("saveSheetTextButton")
        self.text_button.clicked.connect(lambda: self.save(".txt"))
        self.print_button = QPushButton("P&rint…", self)
        self.print_button.setObjectName("printSheetButton")
        self.print_button.clicked.connect(self.print_sheet)
        keep_row = QHBoxLayout()
        for button in (self.pdf_button, self.text_button, self.print_button):
            keep_row.addWidget(button)
        keep_row.addStretch(1)
        self.saved = MessageLine(self)
        self.saved.setObjectName("recoverySheetSaved")

        retype_label = QLabel(f"Then type the &last {RETYPE_CHARS} characters of the key "
                              "from the printed or saved sheet:", self)
        self.retype_edit = QLineEdit(self)
        self.retype_edit.setObjectName("retypeKeyEdit")
        self.retype_edit.setMaxLength(RETYPE_CHARS + 4)
        self.retype_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        retype_label.setBuddy(self.retype_edit)
        self.retype_edit.textChanged.connect(self._update)
        self.done_button = QPushButton("I have &kept the sheet", self)
        self.done_button.setObjectName("sheetKeptButton")
        self.done_button.setDefault(True)
        self.done_button.clicked.connect(self.confirm)
        self.later_button = QPushButton("Close &without confirming", self)
        self.later_button.setObjectName("sheetLaterButton")
        self.later_button.setToolTip("The window keeps warning until a sheet is confirmed.")
        self.later_button.clicked.connect(self.reject)
        retype_row = QHBoxLayout()
        retype_row.addWidget(self.retype_edit)
        retype_row.addStretch(1)
        retype_row.addWidget(self.later_button)
        retype_row.addWidget(self.done_button)
        self.message = MessageLine(self)
        self.message.setObjectName("recoverySheetMessage")

        layout = QVBoxLayout(self)
        layout.addWidget(warning)
        layout.addWidget(self.text, 1)
        layout.addLayout(keep_row)
        layout.addWidget(self.saved)
        layout.addWidget(WrappedLabel("Keep it locked away, apart from the computer and the "
                                      "backups: anyone who holds it can read them.", self))
        layout.addWidget(retype_label)
        layout.addLayout(retype_row)
        layout.addWidget(self.message)
        fixed = self.text.fontMetrics()  # the sheet's widest line fits without scrolling
        self.resize(fixed.horizontalAdvance("M" * 104), fixed.height() * 34)
        self._update()

    def retyped(self) -> bool:
        return retyped_correctly(self.key, self.retype_edit.text())

    def _update(self) -> None:
        self.done_button.setEnabled(self.task is None and self.retyped())

    def _suggested(self, suffix: str) -> Path:
        code = self.org.code or str(self.org.id)
        return Path.home() / f"recovery_sheet_{code}{suffix}"

    def save(self, suffix: str) -> Path | None:
        """Save as PDF (Qt's printing) or as text (an age identity file), owner-only."""
        path = self.env.prompts.save_recovery_sheet(self, self._suggested(suffix))
        if path is None:
            return None
        try:
            if suffix == ".pdf":
                write_sheet_pdf(self.sheet, path)
            else:
                write_private_text(path, self.sheet)
        except OSError as exc:
            self.saved.show_error(f"The sheet could not be saved in {path} "
                                  f"({exc.strerror or exc}); choose another place.")
            return None
        self.saved.show_ok(f"Saved in {path} (only you can read it). Print it or copy it "
                           "somewhere safe, away from this computer.")
        return path

    def print_sheet(self) -> bool:
        printed = self.env.prompts.print_document(self, sheet_document(self.sheet))
        if printed:
            self.saved.show_ok("Sent to the printer.")
        return printed

    def confirm(self) -> Task | None:
        """Record that the sheet was kept (off the UI thread), then close as confirmed."""
        if not self.retyped() or self.task is not None:
            return None
        self.message.show_info("Recording that the sheet was kept…")
        self.task = self.runner.run("sheet-confirm", usecases.confirm_sheet, self.site(),
                                    self.actor, self.org, self.retype_edit.text())
        self._update()
        self.task.on_finished(self._confirmed)
        self.task.on_failed(lambda message, _e: self._failed(message))
        return self.task

    def _confirmed(self, recorded: bool) -> None:
        self.task = None
        if recorded:
            self.accept()
            return
        self._failed("These characters are not the end of the key on this workstation; "
                     "compare them with the sheet.")

    def _failed(self, message: str) -> None:
        self.task = None
        self.message.show_error(message)
        self._update()
