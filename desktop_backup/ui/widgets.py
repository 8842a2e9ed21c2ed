"""Small widgets the dialogs share: a busy bar and a one-sentence message with its icon."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFont, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QWidget,
)

from desktop_backup.ui.theme import icon, state_colour


def tab_chain(*widgets: QWidget) -> None:
    """Tab moves through `widgets` in this order (the reading order of the form)."""
    for first, second in zip(widgets, widgets[1:], strict=False):
        QWidget.setTabOrder(first, second)


def grow_to_fit(window: QWidget) -> None:
    """Make a dialog tall enough for its word-wrapped text at its current width.

    Layouts size a top-level window without height-for-width, so a long message would
    squeeze the form above it instead of making the dialog taller.
    """
    layout = window.layout()
    if layout is None:
        return
    layout.activate()
    needed = window.heightForWidth(window.width())
    if needed > window.height():
        window.resize(window.width(), needed)


class WrappedLabel(QLabel):
    """A word-wrapped label that asks for the height its text needs at its real width.

    A plain wrapped QLabel hints a narrow, tall size; form layouts (in tab pages) keep that
    height, which leaves big gaps under short sentences.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        width = self.width()
        if width > hint.width() and self.isVisible():
            return QSize(width, self.heightForWidth(width))
        return hint

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()  # the hint above changed with the width


class BusyBar(QProgressBar):
    """An indeterminate bar with words on it, shown only while something runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(0, 0)
        self.setTextVisible(True)
        self.setFormat("")
        self.words = ""
        self.setMaximumHeight(self.fontMetrics().height() + 8)
        self.hide()

    def start(self, text: str) -> None:
        self.words = text
        self.setRange(0, 0)
        self.setFormat(text)
        self.setAccessibleName(text)
        self.setToolTip(text)
        self.show()

    def show_part(self, done: int, total: int) -> None:
        """How far it is, once that is known (a download's bytes): the bar fills, the
        words end with the percent."""
        if total <= 0:
            return
        self.setFormat(f"{self.words} {min(100, done * 100 // total)}%")
        self.setRange(0, 1000)
        self.setValue(min(1000, done * 1000 // total))

    def stop(self) -> None:
        self.hide()


class MessageLine(QWidget):
    """A sentence with an icon saying whether it is good news or bad (never colour alone)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.icon = QLabel(self)
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = WrappedLabel("", self)
        # Top-aligned like the icon: in a tall row the two stay on one line.
        self.text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, text: str) -> None:
        """kind: succeeded, failed, running, warning or info (the state icons double as
        message icons; warning is amber: a choice that leaves data unprotected, not an
        error; info is a plain note or a prompt)."""
        self.kind = kind
        size = self.fontMetrics().height() + 4
        self.icon.setPixmap(icon(kind).pixmap(QSize(size, size), self.devicePixelRatioF()))
        self.text.setText(text)
        self._colour()
        font = QFont(self.text.font())
        font.setBold(kind == "failed")
        self.text.setFont(font)
        self.setAccessibleName(text)
        self.show()
        grow_to_fit(self.window())

    def _colour(self) -> None:
        """The state's colour for the current palette (the light one is unreadable on dark)."""
        colour = state_colour(self.kind, QApplication.palette()).name()
        sheet = f"color: {colour};"
        if self.text.styleSheet() != sheet:
            self.text.setStyleSheet(sheet)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """A theme switch: a message already shown takes the new palette's colour."""
        if self.kind and event.type() in (QEvent.Type.PaletteChange,
                                          QEvent.Type.ApplicationPaletteChange):
            self._colour()
        super().changeEvent(event)

    def show_ok(self, text: str) -> None:
        self.show_message("succeeded", text)

    def show_error(self, text: str) -> None:
        self.show_message("failed", text)

    def show_info(self, text: str) -> None:
        self.show_message("running", text)

    def show_warning(self, text: str) -> None:
        self.show_message("warning", text)

    def show_note(self, text: str) -> None:
        """Plain information or a prompt: an "i", not the running clock."""
        self.show_message("info", text)

    def clear(self) -> None:
        self.kind = ""
        self.text.clear()
        self.hide()

    def message(self) -> str:
        return self.text.text()
