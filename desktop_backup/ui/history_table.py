"""The history: the audit trail as a table model, sorted and filtered by a proxy.

The model is the one source the table reads (as in Vorta): a refresh replaces its entries
with a model reset, sorting and the status and text filters live in the proxy, and the
panel's buttons act on the entry under the selection.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PureWindowsPath
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import wording
from desktop_backup.history import AuditEntry
from desktop_backup.ui.theme import icon
from desktop_backup.ui.week_grid import RESTORE_LATER

COLUMNS = ("Day", "Date and time", "File", "Size", "Rows", "Status", "Who", "Trigger",
           "Duration")
(DAY, WHEN, FILE, SIZE, ROWS, STATUS, WHO, TRIGGER, DURATION) = range(len(COLUMNS))
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
# What the Show filter offers: by what was done, then by how it ended ("" for everything).
STATUS_FILTERS = (("All activity", ""), ("Backups", "action:backup"),
                  ("Restores", "action:restore"), ("Checks", "action:verify"),
                  ("Settings changes", "action:toggle"), ("Succeeded", "success"),
                  ("Failed", "failed"), ("Cancelled", "cancelled"), ("Skipped", "skipped"))
_KINDS = {"backup": ("backup", "skipped"), "restore": ("restore",), "verify": ("verify",),
          "toggle": ("toggle",)}
_CHECK_BLANK = {"verify": (SIZE, ROWS)}  # a check made nothing: no size or rows of its own
_OUTCOME_ICONS = {"success": "succeeded", "failed": "failed", "cancelled": "none",
                  "skipped": "none"}
Index = QModelIndex | QPersistentModelIndex


def file_name(path: str | None) -> str:
    """The file's name, also for the web app's Windows paths (C:\\xampp\\...)."""
    if not path:
        return ""
    return PureWindowsPath(path).name if "\\" in path else Path(path).name


def has_file(entry: AuditEntry | None, note: str = "") -> bool:
    """The row's file actions may run: its file is there and still holds the row's backup
    (`note` says otherwise: services.history_notes)."""
    return bool(entry and entry.file and entry.action != "delete" and not note
                and Path(entry.file).is_file())


def can_undo(entry: AuditEntry | None) -> bool:
    """A restore that succeeded and whose restore point is still there can be undone."""
    return bool(entry and entry.action == "restore" and entry.outcome == "success"
                and entry.restore_point and Path(entry.restore_point).is_file())


class HistoryModel(QAbstractTableModel):
    """Audit entries, newest first as the core returns them."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.entries: list[AuditEntry] = []
        self.notes: dict[int, str] = {}  # entry id -> why its file is not its backup now

    def set_entries(self, entries: list[AuditEntry], notes: dict[int, str] | None = None
                    ) -> None:
        self.beginResetModel()
        self.entries = list(entries)
        self.notes = dict(notes or {})
        self.endResetModel()

    def note(self, entry: AuditEntry | None) -> str:
        return self.notes.get(entry.id, "") if entry is not None and entry.id is not None \
            else ""

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self.entries[index.row()]
        column = index.column()
        note = self.note(entry)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == STATUS and note:
                return f"{display(entry, column)}; {note}"
            return display(entry, column)
        if role == ENTRY_ROLE:
            return entry
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == FILE:
                return entry.file or None
            if note:  # the row's status, whole: the column may cut it
                return f"{display(entry, STATUS)}; {note}." + (
                    f"\n{entry.message}" if entry.message else "")
            return entry.message or display(entry, column) or None
        if role == Qt.ItemDataRole.ForegroundRole and note:
            # Greyed like a disabled item: the row's file no longer holds its backup.
            return QApplication.palette().color(QPalette.ColorGroup.Disabled,
                                                 QPalette.ColorRole.Text)
        if role == Qt.ItemDataRole.DecorationRole and column == STATUS:
            if entry.action == "toggle" and entry.outcome == "success":
                # A setting changed: a note, and turning protection off is no success.
                off = "turned off" in (entry.message or "")
                return icon("warning" if off else "info")
            return icon(_OUTCOME_ICONS.get(entry.outcome, "none"))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (SIZE, ROWS, DURATION):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def display(entry: AuditEntry, column: int) -> str:
    if column in _CHECK_BLANK.get(entry.action, ()):
        return ""
    if column == DAY:
        day = entry.day_of_week or (entry.occurred_at.strftime("%A").lower()
                                    if entry.occurred_at else "")
        return day.capitalize()
    if column == WHEN:
        return wording.date_time(entry.occurred_at)
    if column == FILE:
        return file_name(entry.file)
    if column == SIZE:
        return wording.human_size(entry.bytes)
    if column == ROWS:
        return wording.count(entry.rows)
    if column == STATUS:
        return wording.status(entry)
    if column == WHO:
        return entry.username or ""
    if column == TRIGGER:
        return wording.TRIGGER_WORDS.get(entry.trigger or "", entry.trigger or "")
    if column == DURATION:
        return wording.duration(entry.duration_ms)
    return ""


def sort_key(entry: AuditEntry, column: int) -> tuple:
    """Numbers and times sort as numbers and times, not as the text that shows them."""
    when = (entry.occurred_at or datetime.min, entry.id or 0)
    values = {SIZE: entry.bytes, ROWS: entry.rows, DURATION: entry.duration_ms, WHEN: when}
    value = values.get(column, display(entry, column).casefold())
    return (value is None, value if value is not None else 0, when)


class HistoryFilter(QSortFilterProxyModel):
    """Filters by outcome and by text found anywhere in the row or its message."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.outcome = ""
        self.needle = ""

    def set_outcome(self, outcome: str) -> None:
        """Only entries with this outcome, or of this kind ("action:backup"); "" for all."""
        self.outcome = outcome
        self._refilter()

    def set_text(self, needle: str) -> None:
        self.needle = needle.strip().casefold()
        self._refilter()

    def _refilter(self) -> None:
        # Qt 6.9 replaced invalidateFilter() with begin/endFilterChange(); support both.
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802 - Qt API
        model = self.sourceModel()
        entry: AuditEntry = model.entries[row]
        if self.outcome.startswith("action:"):
            if entry.action not in _KINDS.get(self.outcome[7:], ()):
                return False
        elif self.outcome and entry.outcome != self.outcome:
            return False
        if not self.needle:
            return True
        haystack = " ".join([*(display(entry, c) for c in range(len(COLUMNS))),
                             entry.message or "", entry.file or "", entry.action])
        return self.needle in haystack.casefold()

    def lessThan(self, left: Index, right: Index) -> bool:  # noqa: N802 - Qt API
        model = self.sourceModel()
        column = left.column()
        return (sort_key(model.entries[left.row()], column)
                < sort_key(model.entries[right.row()], column))

    def entry_at(self, index: Index) -> AuditEntry | None:
        if not index.isValid():
            return None
        return self.data(index, ENTRY_ROLE)


class HistoryPanel(QWidget):
    """Filter controls, the table and the actions on the selected backup."""

    entryAction = Signal(str, object)  # save_copy/restore/delete/verify/undo, AuditEntry
    openFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyPanel")
        self.model = HistoryModel(self)
        self.proxy = HistoryFilter(self)
        self.proxy.setSourceModel(self.model)
        self.restore_available = False
        self.blocked_reason = ""

        self.status_filter = QComboBox(self)
        self.status_filter.setObjectName("historyStatusFilter")
        for label, outcome in STATUS_FILTERS:
            self.status_filter.addItem(label, outcome)
        self.search = QLineEdit(self)
        self.search.setObjectName("historySearch")
        self.search.setPlaceholderText("Search files, people, messages…")
        self.search.setClearButtonEnabled(True)
        show_label = QLabel("Sho&w:", self)
        show_label.setBuddy(self.status_filter)
        search_label = QLabel("Fin&d:", self)
        search_label.setBuddy(self.search)
        filters = QHBoxLayout()
        filters.addWidget(show_label)
        filters.addWidget(self.status_filter)
        filters.addSpacing(12)
        filters.addWidget(search_label)
        filters.addWidget(self.search, 1)

        self.table = QTableView(self)
        self.table.setObjectName("historyTable")
        self.table.setAccessibleName("Backup history")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(WHEN, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STATUS, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)

        self.save_button = QPushButton("Save a &copy…", self)
        self.save_button.setObjectName("historySaveCopyButton")
        self.verify_button = QPushButton("Verif&y", self)
        self.verify_button.setObjectName("historyVerifyButton")
        self.delete_button = QPushButton("De&lete…", self)
        self.delete_button.setObjectName("historyDeleteButton")
        self.restore_button = QPushButton("&Restore…", self)
        self.restore_button.setObjectName("historyRestoreButton")
        self.undo_button = QPushButton("&Undo this restore", self)
        self.undo_button.setObjectName("historyUndoRestoreButton")
        self.undo_button.setToolTip("Restore the restore point this restore saved first: it "
                                    "is checked and confirmed like any backup.")
        self.folder_button = QPushButton("Open backup fold&er", self)
        self.folder_button.setObjectName("openBackupFolderButton")
        buttons = QHBoxLayout()
        for button in (self.save_button, self.verify_button, self.delete_button,
                       self.restore_button, self.undo_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.folder_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.status_filter.currentIndexChanged.connect(
            lambda _i: self.proxy.set_outcome(self.status_filter.currentData()))
        self.search.textChanged.connect(self.proxy.set_text)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.save_button.clicked.connect(lambda: self._request("save_copy"))
        self.verify_button.clicked.connect(lambda: self._request("verify"))
        self.delete_button.clicked.connect(lambda: self._request("delete"))
        self.restore_button.clicked.connect(lambda: self._request("restore"))
        self.undo_button.clicked.connect(lambda: self._request("undo"))
        self.folder_button.clicked.connect(self.openFolderRequested)
        self._update_buttons()

    def set_entries(self, entries: list[AuditEntry], notes: dict[int, str] | None = None
                    ) -> None:
        self.model.set_entries(entries, notes)

    def selected(self) -> AuditEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.entry_at(rows[0]) if rows else None

    def proxy_entries(self) -> list[AuditEntry]:
        """The entries in the order the table shows them (sorted and filtered)."""
        return [self.proxy.entry_at(self.proxy.index(row, 0))
                for row in range(self.proxy.rowCount())]

    def select_row(self, proxy_row: int) -> None:
        self.table.selectRow(proxy_row)

    def set_restore_available(self, available: bool) -> None:
        self.restore_available = available
        self._update_buttons()

    def block_file_actions(self, reason: str) -> None:
        """Disable the actions on the selected backup with this reason ("" to allow again)."""
        self.blocked_reason = reason
        self._update_buttons()

    def _update_buttons(self, *_args: object) -> None:
        entry = self.selected()
        note = self.model.note(entry)
        usable = has_file(entry, note) and not self.blocked_reason
        for button in (self.save_button, self.verify_button, self.delete_button):
            button.setEnabled(usable)
            button.setToolTip(self.blocked_reason or (f"This row's backup was {note}."
                                                      if note.startswith(("replaced", "deleted"))
                                                      else note))
        self.restore_button.setEnabled(usable and self.restore_available)
        self.undo_button.setVisible(can_undo(entry))
        self.undo_button.setEnabled(can_undo(entry) and self.restore_available
                                    and not self.blocked_reason)
        self.restore_button.setToolTip("" if self.restore_available else RESTORE_LATER)

    def _request(self, action: str) -> None:
        entry = self.selected()
        if entry is not None:
            self.entryAction.emit(action, entry)

    def _context_menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        self.table.selectRow(index.row())
        entry = self.selected()
        menu = QMenu(self)
        usable = has_file(entry, self.model.note(entry)) and not self.blocked_reason
        for name, label in (("save_copy", "Save a &copy…"), ("verify", "&Verify"),
                            ("delete", "De&lete…"), ("restore", "&Restore…")):
            action = QAction(label, menu)
            action.setEnabled(usable and (name != "restore" or self.restore_available))
            action.triggered.connect(lambda _c=False, n=name: self._request(n))
            menu.addAction(action)
        if can_undo(entry):
            undo = QAction("&Undo this restore", menu)
            undo.setEnabled(self.restore_available and not self.blocked_reason)
            undo.triggered.connect(lambda _c=False: self._request("undo"))
            menu.addAction(undo)
        menu.addSeparator()
        menu.addAction("Open backup &folder", self.openFolderRequested.emit)
        menu.exec(self.table.viewport().mapToGlobal(pos))
        menu.deleteLater()
