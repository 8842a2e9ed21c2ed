"""Every question the window asks and every file chooser it opens, in one replaceable object.

Modal dialogs block a test, and opening a folder starts another program; the window calls
these methods instead, and tests pass a subclass that answers at once. Nothing is patched.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QTextDocument
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox, QWidget

from desktop_backup.wording import table_words

CLOSE_FINISH, CLOSE_CANCEL, CLOSE_STAY = "finish", "cancel", "stay"


class Prompts:
    """The real dialogs."""

    def ask_close_during_backup(self, parent: QWidget) -> str:
        """finish: close once the backup is done; cancel: stop it cleanly; stay: keep open."""
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("A backup is running")
        box.setText("A backup is running. What should happen to it?")
        box.setInformativeText(
            "If you cancel it, last week's copy for today is kept and nothing is lost.")
        finish = box.addButton("&Let it finish, then close", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("&Cancel the backup and close",
                               QMessageBox.ButtonRole.DestructiveRole)
        stay = box.addButton("&Keep the window open", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(finish)
        box.setEscapeButton(stay)
        box.exec()
        clicked = box.clickedButton()
        if clicked is finish:
            return CLOSE_FINISH
        if clicked is cancel:
            return CLOSE_CANCEL
        return CLOSE_STAY

    def confirm_delete(self, parent: QWidget, path: Path) -> bool:
        return _confirm(parent, "Delete this backup?", f"Delete {path.name}?",
                        f"The file is removed from {path.parent}; this cannot be undone. The "
                        "other days' backups are not touched.", "&Delete")

    def confirm_auto_backup_off(self, parent: QWidget, organization: str) -> bool:
        return _confirm(parent, "Turn automatic backup off?",
                        f"Turn automatic daily backup off for {organization}?",
                        "Its data is then only backed up when someone clicks Back up now, "
                        "until the switch is ticked again.", "&Turn it off")

    def confirm_fewer_tables(self, parent: QWidget, left_out: list[str], kept: int,
                             total: int) -> bool:
        """Narrowing the backup's tables: the next backup leaves these out."""
        shown = ", ".join(map(table_words, left_out[:20])) + (
            f" and {len(left_out) - 20} more"
                                            if len(left_out) > 20 else "")
        return _confirm(
            parent, "Back up fewer tables?",
            f"From the next backup on, only {kept} of {total} tables are saved; "
            f"{len(left_out)} {'is' if len(left_out) == 1 else 'are'} left out.",
            f"Left out: {shown}.\n\nThe next backup of each day replaces that day's full "
            "copy with this partial one, and restoring it leaves the tables left out as "
            "they are then.", "&Back up fewer tables", keep="&Keep every table")

    def confirm_console_tables(self, parent: QWidget, tables: list[str],
                               schema: str = "") -> bool:
        """A database that is not the billing app's, or a console schema (the setting
        console_schema) still to be made: may the console add its own tables?"""
        where = (f"in '{schema}', apart from the billing tables (made now if missing)"
                 if schema else "to it")
        return _confirm(
            parent, "Add the console's tables?",
            ("This database is not the billing app's. " if not schema else "")
            + "To keep its backup history and settings, the backup console adds "
            f"{len(tables)} tables of its own {where}.",
            f"The console's tables: {', '.join(tables)}.\n\nThey hold only the console's "
            "bookkeeping, never your data, and are never backed up or restored. Without them "
            "the console cannot work on this database.", "&Add the console's tables",
            keep="&Leave the database as it is", icon=QMessageBox.Icon.Question)

    def save_copy_to(self, parent: QWidget, suggested: Path) -> Path | None:
        chosen, _filter = QFileDialog.getSaveFileName(
            parent, "Save a copy of the backup", str(suggested), "Backups (*.zip *.zip.age)")
        return Path(chosen) if chosen else None

    def choose_sqlite_file(self, parent: QWidget, start: Path | None) -> Path | None:
        chosen, _filter = QFileDialog.getOpenFileName(
            parent, "Choose the billing database file", str(start or Path.home()),
            "SQLite databases (*.sqlite *.sqlite3 *.db);;All files (*)")
        return Path(chosen) if chosen else None

    def choose_backup_file(self, parent: QWidget, start: Path | None) -> Path | None:
        chosen, _filter = QFileDialog.getOpenFileName(
            parent, "Choose a backup file", str(start or Path.home()),
            "Backups (*.zip *.zip.age);;All files (*)")
        return Path(chosen) if chosen else None

    def confirm_encryption_off(self, parent: QWidget, organization: str) -> bool:
        return _confirm(parent, "Turn encryption off?",
                        f"Write new backups of {organization} in clear?",
                        "Anyone who copies the backup folder can then read them. Backups "
                        "already encrypted stay encrypted and can still be opened with the "
                        "organization's key or its recovery sheet.", "&Turn encryption off")

    def save_recovery_sheet(self, parent: QWidget, suggested: Path) -> Path | None:
        """Where to save the recovery sheet (its suffix says PDF or text)."""
        kind = "PDF documents (*.pdf)" if suggested.suffix == ".pdf" else "Text files (*.txt)"
        chosen, _filter = QFileDialog.getSaveFileName(
            parent, "Save the recovery sheet", str(suggested), kind)
        return Path(chosen) if chosen else None

    def choose_recovery_sheet(self, parent: QWidget, start: Path | None) -> Path | None:
        chosen, _filter = QFileDialog.getOpenFileName(
            parent, "Choose the recovery sheet", str(start or Path.home()),
            "Recovery sheets (*.txt);;All files (*)")
        return Path(chosen) if chosen else None

    def print_document(self, parent: QWidget, document: QTextDocument) -> bool:
        """Print `document` on a printer the user picks; False when they cancel."""
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        dialog = QPrintDialog(printer, parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        document.print_(printer)
        return True

    def inform(self, parent: QWidget, title: str, text: str, ok: bool = True) -> None:
        if ok:
            QMessageBox.information(parent, title, text)
        else:
            QMessageBox.warning(parent, title, text)

    def open_folder(self, folder: Path) -> bool:
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def _confirm(parent: QWidget, title: str, question: str, details: str, verb: str, *,
             keep: str | None = None, icon: QMessageBox.Icon = QMessageBox.Icon.Warning
             ) -> bool:
    """A question whose buttons say what they do (Delete / Cancel, or the two choices named
    by `verb` and `keep`), the harmless one the default and the Escape key."""
    box = QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setText(question)
    box.setInformativeText(details)
    if keep is None:
        act = box.addButton(verb, QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    else:
        act = box.addButton(verb, QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(keep, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return box.clickedButton() is act
