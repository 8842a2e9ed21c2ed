"""Help → About: the version, every place the program keeps something, and the notices.

The paths are selectable and can be copied in one go, because the first thing support asks
for is the log file.
"""

from __future__ import annotations

import platform
import sys

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import __version__
from desktop_backup.logs import LOG_NAME
from desktop_backup.notices import LGPL_NOTE, notices_text
from desktop_backup.ui.env import Env
from desktop_backup.ui.theme import icon


def about_facts(env: Env) -> list[tuple[str, str]]:
    """What the About box lists, as (label, value) pairs."""
    paths = env.paths
    return [
        ("Version", __version__),
        ("Settings file", str(paths.settings_file)),
        ("Data folder", str(paths.data_dir)),
        ("Log file", str(paths.log_dir / LOG_NAME)),
        ("Backup folder", str(env.backup_folder)),
        ("Built with", f"Python {platform.python_version()}, Qt {qVersion()}, "
                       f"PySide6 {PySide6.__version__}, on {sys.platform}"),
    ]


class AboutDialog(QDialog):
    """Version, data, settings, log and backup paths; Open log folder; Copy."""

    def __init__(self, env: Env, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env = env
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Desktop Backup")
        self.setWindowIcon(icon("app"))
        logo = QLabel(self)
        size = self.fontMetrics().height() * 3
        logo.setPixmap(icon("app").pixmap(size, size))
        title = QLabel(f"<h2>Desktop Backup {__version__}</h2>"
                       "<p>Keeps each organization's billing data backed up, one copy per "
                       "weekday, and restores it safely.</p>"
                       f"<p><small>{LGPL_NOTE}</small></p>", self)
        title.setWordWrap(True)
        self.facts = about_facts(env)
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        for label, value in self.facts:
            field = QLabel(value, self)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            field.setWordWrap(True)
            field.setObjectName("about" + label.title().replace(" ", ""))
            self.values[label] = field
            form.addRow(f"{label}:", field)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.log_button = QPushButton("Open &log folder", self)
        self.log_button.setObjectName("openLogFolderButton")
        self.copy_button = QPushButton("&Copy details", self)
        self.copy_button.setObjectName("copyDetailsButton")
        self.notices_button = QPushButton("Third-party &notices", self)
        self.notices_button.setObjectName("noticesButton")
        buttons.addButton(self.log_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.notices_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.log_button.clicked.connect(self.open_log_folder)
        self.copy_button.clicked.connect(self.copy_details)
        self.notices_button.clicked.connect(self.show_notices)
        self.notices: NoticesDialog | None = None
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        heading = QHBoxLayout()
        heading.addWidget(logo)
        heading.addWidget(title, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(heading)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 90)

    def details(self) -> str:
        return "\n".join(f"{label}: {value}" for label, value in self.facts)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details())

    def open_log_folder(self) -> bool:
        return open_log_folder(self.env, self)

    def show_notices(self) -> NoticesDialog:
        if self.notices is None:
            self.notices = NoticesDialog(self)
        self.notices.show()
        self.notices.raise_()
        return self.notices


class NoticesDialog(QDialog):
    """Every shipped package's licence, with the full texts, read-only and selectable."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticesDialog")
        self.setWindowTitle("Third-party notices")
        self.text = QPlainTextEdit(notices_text(), self)
        self.text.setObjectName("noticesText")
        self.text.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        metrics = self.fontMetrics()
        self.resize(metrics.averageCharWidth() * 90, metrics.height() * 30)


def open_log_folder(env: Env, parent: QWidget) -> bool:
    """Show the log folder in the file manager (created when it is not there yet)."""
    folder = env.paths.log_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return env.prompts.open_folder(folder)
