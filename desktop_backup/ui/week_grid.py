"""The seven-day grid: Monday to Sunday, today marked, each day's state in words and icon.

The grid only draws: the states come from :func:`desktop_backup.weekview.week_states`, and the
one thing added here is the live progress of a backup that is running now. Colour repeats
what the icon and the words say, so the grid reads the same in greyscale, in a dark theme and
through a screen reader.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import wording
from desktop_backup.encryption import is_encrypted_name
from desktop_backup.history import WEEKDAYS
from desktop_backup.ui.theme import icon, state_colour
from desktop_backup.weekview import DayState
from desktop_backup.work import Progress

RESTORE_LATER = "Restoring is not available in this window."
ACTIONS = ("restore", "save_copy", "verify", "show_in_folder")
_REASON_CHARS = 120


def wrappable(value: str) -> str:
    """Let long paths wrap: a zero-width space before each separator inside a path."""
    return re.sub(r"(?<=[^\s])([/\\])", "\u200b\\1", value)


def short_paths(value: str, keep: int = 2) -> str:
    """Long paths cut to their last parts ('…/usb/backups'): the cell is narrow, and the end
    of a sentence ('is its drive connected?') matters more than the start of a path."""

    def shorten(match: re.Match) -> str:
        path = match.group(0)
        sep = "\\" if "\\" in path and "/" not in path else "/"
        parts = [p for p in re.split(r"[/\\]", path) if p]
        if len(path) <= 24 or len(parts) <= keep:
            return path
        return "…" + sep + sep.join(parts[-keep:])

    return re.sub(r"(?:[A-Za-z]:)?[/\\][^\s]*[/\\][^\s]*", shorten, value)


def blank_day(weekday: str, is_today: bool = False) -> DayState:
    return DayState(weekday=weekday, is_today=is_today, state="none", backup_date=None,
                    size=0, filename="", path="", error=None, copy_kept=False, age_days=None)


class DayCell(QFrame):
    """One weekday. Right-click (or the Menu key) offers what can be done with its backup."""

    actionRequested = Signal(str, object)  # action name, DayState
    moveRequested = Signal(int)  # days to move the focus by (arrow keys)

    def __init__(self, weekday: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"dayCell_{weekday}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.day = blank_day(weekday)
        self.rows: int | None = None
        self.partial = ""  # "partial: 1 of 21 tables" when the day's backup left tables out
        self.restore_available = False
        self.blocked_reason = ""  # set while file actions must wait (see MainWindow)
        self.progress: Progress | None = None

        self.name_label = QLabel(weekday.capitalize(), self)
        bold = QFont(self.name_label.font())
        bold.setBold(True)
        self.name_label.setFont(bold)
        self.today_label = QLabel("Today", self)
        self.today_label.setObjectName("todayBadge")
        self.today_label.setStyleSheet(
            "QLabel#todayBadge { background: palette(highlight); color: palette(highlighted-text);"
            " border-radius: 3px; padding: 0px 4px; font-weight: bold; }")
        # The badge keeps its place when hidden, so the seven cells line up.
        keep = self.today_label.sizePolicy()
        keep.setRetainSizeWhenHidden(True)
        self.today_label.setSizePolicy(keep)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.name_label)
        header.addStretch(1)
        badge_row = QHBoxLayout()
        badge_row.setContentsMargins(0, 0, 0, 0)
        badge_row.addWidget(self.today_label)
        badge_row.addStretch(1)
        self.icon_label = QLabel(self)
        self.icon_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.state_label = QLabel(self)
        self.state_label.setObjectName("stateLabel")
        state_font = QFont(bold)
        state_font.setPointSizeF(bold.pointSizeF() * 1.1)
        self.state_label.setFont(state_font)
        # Never "Backing / up…": the state is a few words, and the cell is at least that wide.
        self.state_label.setWordWrap(False)
        state_row = QHBoxLayout()
        state_row.setContentsMargins(0, 0, 0, 0)
        state_row.addWidget(self.icon_label)
        state_row.addWidget(self.state_label, 1)
        self.detail_label = QLabel(self)
        self.detail_label.setObjectName("detailLabel")
        self.detail_label.setWordWrap(True)
        self.detail_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.detail_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.MinimumExpanding)
        # Room for the longest state (a failure: date, three lines of reason, the copy kept)
        # without relying on height-for-width, which a row of word-wrapped labels lacks.
        self.detail_label.setMinimumHeight(self.fontMetrics().lineSpacing() * 6)
        # A later attempt that failed, under the day's good copy: said apart from its state.
        self.warning_label = QLabel(self)
        self.warning_label.setObjectName("warningLabel")
        self.warning_label.setWordWrap(True)
        self.warning_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.MinimumExpanding)
        self.warning_label.setMinimumHeight(self.fontMetrics().lineSpacing() * 2)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(max(6, self.fontMetrics().height() // 2))
        # The day's main action in sight, not only in the context menu (Enter opens the rest).
        self.restore_button = QPushButton("Restore this day…", self)
        self.restore_button.setObjectName(f"restoreDayButton_{weekday}")
        self.restore_button.setAccessibleName(f"Restore {weekday.capitalize()}'s backup")
        self.restore_button.clicked.connect(lambda: self.request("restore"))
        keep = self.restore_button.sizePolicy()
        keep.setRetainSizeWhenHidden(True)  # the seven cells keep one height
        self.restore_button.setSizePolicy(keep)
        layout = QVBoxLayout(self)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addLayout(badge_row)
        layout.addLayout(state_row)
        layout.addWidget(self.detail_label, 1)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.bar)
        layout.addWidget(self.restore_button)
        # Wide enough for the longest state beside its icon ("Backing up…" on one line).
        widest = max(QFontMetrics(state_font).horizontalAdvance(words)
                     for words in wording.STATE_WORDS.values())
        margins = layout.contentsMargins()
        self.setMinimumWidth(max(self.fontMetrics().averageCharWidth() * 17,
                                 widest + self.fontMetrics().height() * 2 + state_row.spacing()
                                 + margins.left() + margins.right() + 8))
        self._draw()

    # --- state ---------------------------------------------------------------------------------

    def set_day(self, day: DayState, rows: int | None = None, partial: str = "") -> None:
        self.day, self.rows, self.progress, self.partial = day, rows, None, partial
        self._draw()

    def set_progress(self, progress: Progress) -> None:
        self.day = replace(self.day, state="running")
        self.progress = progress
        self._draw()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """A theme switch changes the palette: pick the state colour for the new one."""
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange,
                            QEvent.Type.StyleChange):
            self._draw()
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """The frame, and the keyboard focus as a dashed ring once the keyboard is used in
        the window (a mouse click or a screenshot shows no stray frame)."""
        super().paintEvent(event)
        keyboard = self.window().testAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange)
        if not (self.hasFocus() and keyboard):
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 6, 6)
        painter.end()

    def summary(self) -> str:
        """Everything the cell says, as one sentence (accessible name and tooltip)."""
        return f"{self.day.label}{', today' if self.day.is_today else ''}: " + " ".join(
            line for line in (self.state_label.text(), self.detail_label.text(),
                              self.day.later_attempt) if line
        ).replace("\n", "; ").replace("\u200b", "")

    def _draw(self) -> None:
        day = self.day
        self.today_label.setVisible(day.is_today)
        size = self.fontMetrics().height() * 2
        self.icon_label.setPixmap(icon(day.state).pixmap(QSize(size, size),
                                                         self.devicePixelRatioF()))
        self.icon_label.setFixedSize(size, size)
        self.state_label.setText(wording.STATE_WORDS[day.state])
        colour = state_colour(day.state, QApplication.palette()).name()
        _set_sheet(self.state_label, f"color: {colour};")
        self.detail_label.setText(self._details())
        self.warning_label.setText(day.later_attempt)
        self.warning_label.setVisible(bool(day.later_attempt))
        warn = state_colour("failed", QApplication.palette()).name()
        _set_sheet(self.warning_label, f"color: {warn};")
        self.bar.setVisible(day.state == "running")
        self.restore_button.setVisible(self.restore_available and self.has_file
                                       and day.state != "running")
        self.restore_button.setEnabled(not self.blocked_reason)
        self.restore_button.setToolTip(self.blocked_reason or "Check this backup, see what "
                                       "changes, then restore it; a restore point undoes it.")
        if self.progress is not None and self.progress.rows_total:
            self.bar.setRange(0, self.progress.rows_total)
            self.bar.setValue(self.progress.rows_done)
        elif day.state == "running":
            self.bar.setRange(0, 0)
        border = "2px solid palette(highlight)" if day.is_today else "1px solid palette(mid)"
        _set_sheet(self,
                   f"DayCell {{ background: palette(base); border: {border}; "
                   "border-radius: 6px; }")
        summary = self.summary()
        self.setAccessibleName(summary)
        reason = day.error or day.later_failure
        self.setToolTip(_wrapped_tip(summary if not reason else f"{summary}\n\n{reason}"))

    def _details(self) -> str:
        day = self.day
        lines: list[str] = []
        if day.state == "running":
            if self.progress is not None:
                lines += [line for line in (wording.progress_line(self.progress),
                                            wording.rows_line(self.progress)) if line]
            else:
                lines.append("Starting…")
            return "\n".join(lines)
        if day.backup_date is not None:
            at = f" {day.copy_made:%H:%M}" if day.state == "succeeded" and day.copy_made else ""
            lines.append(f"{day.backup_date.day} {day.backup_date:%b}{at}, "
                         f"{_age(day.age_days)}")
        if day.state == "succeeded":
            lines.append(wording.human_size(day.size)
                         + (" · encrypted" if is_encrypted_name(day.filename) else ""))
            if self.rows:
                lines.append(f"{self.rows:,} rows")
            if self.partial:
                lines.append(self.partial[:1].upper() + self.partial[1:])
        elif day.state == "failed":
            reason = short_paths(day.error or "unknown reason")
            if len(reason) > _REASON_CHARS:
                reason = reason[:_REASON_CHARS].rsplit(" ", 1)[0] + "…"
            lines.append(wrappable(reason))
            lines.append(_kept_line(day))
        elif day.error:
            lines.append(wrappable(day.error[:1].upper() + day.error[1:] + "."))
        else:
            lines.append("Nothing saved for this day yet.")
        if day.elsewhere:  # e.g. made before the shop chose another backup folder
            lines.append(wrappable(f"In {short_paths(day.elsewhere)}"))
        if day.offsite:
            lines.append(wrappable(day.offsite))
        return "\n".join(lines)

    @property
    def has_file(self) -> bool:
        return self.day.state in ("succeeded", "failed") and (
            self.day.state == "succeeded" or self.day.copy_kept)

    # --- actions -------------------------------------------------------------------------------

    def menu(self) -> QMenu:
        """The cell's actions; what cannot be done now is disabled with the reason why."""
        menu = QMenu(self)
        entries = (("restore", "&Restore…"), ("save_copy", "&Save a copy…"),
                   ("verify", "&Verify"), ("show_in_folder", "Show in &folder"))
        for name, label in entries:
            action = QAction(label, menu)
            action.setObjectName(f"{name}Action")
            if name == "restore" and not self.restore_available:
                action.setEnabled(False)
                action.setToolTip(RESTORE_LATER)
            elif name != "show_in_folder" and not self.has_file:
                action.setEnabled(False)
            elif name != "show_in_folder" and self.blocked_reason:
                action.setEnabled(False)
                action.setToolTip(self.blocked_reason)
            action.triggered.connect(lambda _checked=False, n=name: self.request(n))
            menu.addAction(action)
        menu.setToolTipsVisible(True)
        return menu

    def request(self, action: str) -> None:
        self.actionRequested.emit(action, self.day)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 - Qt's name
        menu = self.menu()
        menu.exec(event.globalPos())
        menu.deleteLater()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        """Enter (or Space) opens the day's actions; the arrow keys, Home and End move
        between the days."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            menu = self.menu()
            menu.exec(self.mapToGlobal(self.rect().center()))
            menu.deleteLater()
            return
        steps = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Home: -7,
                 Qt.Key.Key_End: 7}
        if event.key() in steps:
            self.moveRequested.emit(steps[event.key()])
            return
        super().keyPressEvent(event)


def _kept_line(day: DayState) -> str:
    """What a failed day still has: which copy, and when it was made."""
    if not day.copy_kept:
        return "No older copy for this day."
    made = f" ({day.copy_made.day} {day.copy_made:%b %H:%M})" if day.copy_made else ""
    return f"{day.kept_copy} kept{made}."


def _wrapped_tip(value: str) -> str:
    """A tooltip as rich text, which Qt wraps to a readable width instead of one long line
    (a long path or reason would otherwise run off the screen)."""
    body = "<br>".join(html.escape(line, quote=False) for line in value.split("\n"))
    return f"<p>{body}</p>"


def _set_sheet(widget: QWidget, sheet: str) -> None:
    """Restyling is slow; during a backup the sheet rarely changes, so skip when it did not."""
    if widget.styleSheet() != sheet:
        widget.setStyleSheet(sheet)


def _age(days: int | None) -> str:
    if not days:
        return "today"
    if days == 1:
        return "yesterday"
    return f"{days} days ago"


class WeekGrid(QWidget):
    """Seven day cells in a row; ``dayAction(action, DayState)`` when one is asked for."""

    dayAction = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("weekGrid")
        self.setAccessibleName("This week's backups, Monday to Sunday")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.cells: dict[str, DayCell] = {}
        for weekday in WEEKDAYS:
            cell = DayCell(weekday, self)
            cell.actionRequested.connect(self.dayAction)
            cell.moveRequested.connect(lambda step, w=weekday: self.focus_day(w, step))
            layout.addWidget(cell, 1)
            self.cells[weekday] = cell

    def cell(self, weekday: str) -> DayCell:
        return self.cells[weekday]

    def focus_day(self, weekday: str, step: int) -> None:
        """Move the keyboard focus `step` days from `weekday`, stopping at Monday and Sunday."""
        index = min(max(WEEKDAYS.index(weekday) + step, 0), len(WEEKDAYS) - 1)
        self.cells[WEEKDAYS[index]].setFocus(Qt.FocusReason.TabFocusReason)

    def set_days(self, days: list[DayState], rows_by_file: dict[str, int] | None = None,
                 partial_by_file: dict[str, str] | None = None) -> None:
        rows_by_file, partial_by_file = rows_by_file or {}, partial_by_file or {}
        for day in days:
            self.cells[day.weekday].set_day(day, rows_by_file.get(day.path),
                                            partial_by_file.get(day.path, ""))

    def clear(self, today: str | None = None) -> None:
        for weekday, cell in self.cells.items():
            cell.set_day(blank_day(weekday, weekday == today))

    def show_progress(self, weekday: str, progress: Progress) -> None:
        self.cells[weekday].set_progress(progress)

    def set_restore_available(self, available: bool) -> None:
        for cell in self.cells.values():
            cell.restore_available = available
            cell.set_day(cell.day, cell.rows)

    def block_file_actions(self, reason: str) -> None:
        """Disable Restore, Save a copy and Verify with this reason ("" to allow again)."""
        for cell in self.cells.values():
            if cell.blocked_reason != reason:
                cell.blocked_reason = reason
                if cell.progress is None:
                    cell.set_day(cell.day, cell.rows)
