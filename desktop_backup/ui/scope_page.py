"""The settings' Scope page: read-only, what `desktop-backup scope --org` prints — every table
of the database, whether a backup holds it (and how its rows are found), shares it or leaves
it out (and why), with the organization's row counts. Read on a worker thread."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_backup import usecases, wording
from desktop_backup.organizations import Organization
from desktop_backup.ui.widgets import BusyBar, MessageLine
from desktop_backup.ui.workers import Task, TaskRunner
from desktop_backup.work import Site

WhileOpen = Callable[[Callable[..., None]], Callable[..., None]]
HEADERS = ("Table", "Status", "Rows", "How its rows are found, or why not")
INTRO = ("Every table of the database and what the backup does with it. Tables left out are "
         "named at every backup; a support engineer can declare how a table belongs to an "
         "organization in the settings file (\"ownership\").")


class ScopeModel(QAbstractTableModel):
    """The report's lines, one row each (the one source the view reads)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lines: list[usecases.ScopeLine] = []

    def set_report(self, report: usecases.ScopeReport) -> None:
        self.beginResetModel()
        self.lines = list(report.lines)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.lines)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        line = self.lines[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            rows = "" if line.rows is None else f"{line.rows:,}"
            return (line.table, line.status, rows, line.how)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return line.how
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ScopePage(QWidget):
    """Lives in the SettingsDialog; nothing here is changed from the window."""

    def __init__(self, site: Callable[[], Site], org: Organization | None, runner: TaskRunner,
                 while_open: WhileOpen, parent: QWidget) -> None:
        super().__init__(parent)
        self.site = site
        self.org = org
        self.runner = runner
        self.while_open = while_open
        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)
        self.model = ScopeModel(self)
        self.view = QTableView(self)
        self.view.setObjectName("scopeTable")
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.summary = QLabel(self)
        self.summary.setObjectName("scopeSummary")
        self.summary.setWordWrap(True)
        self.busy = BusyBar(self)
        self.message = MessageLine(self)
        self.message.setObjectName("scopeMessage")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)

    def load(self) -> Task | None:
        if self.org is None:
            self.message.show_info("Choose an organization in the window first.")
            return None
        self.busy.start("Reading which tables the backup holds…")
        task = self.runner.run("scope", usecases.ownership_report, self.site(), self.org.id)
        task.on_finished(self.while_open(self._loaded))
        task.on_failed(self.while_open(self._failed))
        return task

    def _loaded(self, report: usecases.ScopeReport) -> None:
        self.busy.stop()
        self.model.set_report(report)
        left_out = report.left_out
        said = f"{wording.plural(len(report.backed_up), 'table')} backed up; "
        if left_out or report.stranded:
            said += (f"{wording.plural(len(left_out), 'table')} left out: "
                     + ", ".join(line.table for line in left_out) + "." if left_out
                     else "no table left out.")
            self.message.show_warning(" ".join([said, *(f"{s[0].upper()}{s[1:]}."
                                                         for s in report.stranded)]))
            self.summary.setText(report.console_apart)
        else:
            self.summary.setText(" ".join(filter(None, [said + "no table left out.",
                                                        report.console_apart])))

    def _failed(self, message: str, _error: object) -> None:
        self.busy.stop()
        self.message.show_error(f"The tables could not be read: {message}")
