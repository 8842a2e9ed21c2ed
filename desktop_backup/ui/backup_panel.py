"""The running backup: which table, how many rows of how many, and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from desktop_backup import wording
from desktop_backup.ui.theme import icon
from desktop_backup.work import Progress


class BackupProgress(QFrame):
    """Shown only while a backup runs; ``cancelRequested`` when the person clicks Cancel."""

    cancelRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("backupProgress")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("BackupProgress { background: palette(base); "
                           "border: 1px solid palette(highlight); border-radius: 6px; }")
        self.icon = QLabel(self)
        size = self.fontMetrics().height() * 2
        self.icon.setPixmap(icon("running").pixmap(QSize(size, size), self.devicePixelRatioF()))
        self.title = QLabel(self)
        self.title.setObjectName("backupTitle")
        bold = QFont(self.title.font())
        bold.setBold(True)
        self.title.setFont(bold)
        self.table_label = QLabel(self)
        self.table_label.setObjectName("backupTable")
        self.bar = QProgressBar(self)
        self.bar.setObjectName("backupBar")
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel bac&kup", self)
        self.cancel_button.setObjectName("cancelBackupButton")
        self.cancel_button.clicked.connect(self._cancel)
        words = QVBoxLayout()
        words.setSpacing(2)
        words.addWidget(self.title)
        words.addWidget(self.table_label)
        layout = QHBoxLayout(self)
        layout.addWidget(self.icon)
        layout.addLayout(words, 2)
        layout.addWidget(self.bar, 3)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, organization: str, trigger: str) -> None:
        why = "Today's backup" if trigger == "login" else "Backup"
        self.title.setText(f"{why} of {organization} is running…")
        self.table_label.setText("Getting ready…")
        self.bar.setRange(0, 0)
        self.bar.setFormat("")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel bac&kup")
        self.show()

    def update_progress(self, progress: Progress) -> None:
        self.table_label.setText(wording.progress_line(progress))
        if progress.waiting:  # no figures while waiting: a moving bar, not a stuck 0 %
            self.bar.setRange(0, 0)
            self.bar.setFormat("")
            self.setAccessibleDescription(progress.waiting)
            return
        total = max(progress.rows_total, 1)
        # QProgressBar holds an int; scale very large organizations to per-mille.
        self.bar.setRange(0, 1000)
        self.bar.setValue(min(1000, progress.rows_done * 1000 // total))
        self.bar.setFormat(wording.rows_line(progress))
        self.setAccessibleDescription(f"{self.table_label.text()}, {self.bar.format()}")

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.table_label.setText("Stopping after the current batch; last week's copy stays.")
        self.cancelRequested.emit()

    def finish(self) -> None:
        self.hide()
