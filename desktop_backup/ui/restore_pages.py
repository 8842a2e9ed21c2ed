"""The restore wizard's five pages (see :mod:`desktop_backup.ui.restore_wizard`).

Choose → Check (verify and preview) → Confirm (type the code; a commit page: no way back)
→ Restore (progress, Cancel until the commit) → Summary. The pages draw what the core
returns; every sentence that explains a refusal or a failure is the core's own.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from desktop_backup import usecases, wording
from desktop_backup.restore import (
    CHANGE_WORDS,
    NOTHING_WOULD_CHANGE,
    RestorePlan,
    RestoreResult,
    check_restore,
)
from desktop_backup.scratch import ScratchFolder
from desktop_backup.ui.restore_context import (
    RestoreOutcome,
    WizardHost,
    outcome_of_failure,
)
from desktop_backup.ui.restore_key import RecoveryKeyBox
from desktop_backup.ui.theme import icon
from desktop_backup.ui.week_grid import wrappable
from desktop_backup.ui.widgets import BusyBar, MessageLine, tab_chain
from desktop_backup.wording import local_time, table_words
from desktop_backup.work import Progress, Site

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
OFFSITE_ROLE = Qt.ItemDataRole.UserRole + 2  # the weekday of a copy stored off-site
SIZE_ROLE = Qt.ItemDataRole.UserRole + 3  # its size, for the download's bar
PREVIEW_COLUMNS = (
    ("Table", "The organization's data, table by table."),
    ("Now", "Rows the organization has in this table now."),
    ("In the backup", "Rows in the backup; after the restore the table has exactly these."),
    ("Brought back", "Rows in the backup that are not here now: they come back."),
    ("Changed", "Rows here now and in the backup whose values differ: they get the "
                "backup's values."),
    ("Unchanged", "Rows here now that are already exactly as in the backup: left alone."),
    ("Removed", "Rows here now that the backup does not have: they disappear."),
)
LEGEND = ("Brought back: in the backup, not here now. Changed: here and in the backup, with "
          "other values. Unchanged: already as in the backup. Removed: here now, not in the "
          "backup.")
PREVIEW_FIELDS = ("rows_now", "rows_in_backup", "to_insert", "to_update", "unchanged",
                  "to_delete")


def _label(value: str, parent: QWidget, selectable: bool = True) -> QLabel:
    label = QLabel(value, parent)
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _bold(label: QLabel, scale: float = 1.0) -> QLabel:
    font = QFont(label.font())
    font.setBold(True)
    if scale != 1.0:
        font.setPointSizeF(font.pointSizeF() * scale)
    label.setFont(font)
    return label


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


class _Page(QWizardPage):
    def __init__(self, wizard: WizardHost) -> None:
        super().__init__(wizard)
        self.w = wizard
        self.context = wizard.context


# --- 1. choose ---------------------------------------------------------------------------------


class ChoosePage(_Page):
    """The seven weekday slots, the restore points, the copies stored off-site (fetched into
    a private temporary folder on Next, removed when the wizard closes), or any backup file
    on disk."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__(wizard)
        org = self.context.org
        self.setTitle("Choose a backup")
        self.setSubTitle(f"Which copy of {org.name}'s data should come back? Nothing "
                         "changes until you confirm on the third page.")
        list_label = QLabel("Backups &available:", self)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("backupList")
        self.tree.setAccessibleName("Backups available")
        self.tree.setHeaderLabels(["Backup", "Made", "Rows", "Size"])
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        list_label.setBuddy(self.tree)
        self.busy = BusyBar(self)
        self.stop_button = QPushButton("&Stop the download", self)
        self.stop_button.setObjectName("stopDownloadButton")
        self.stop_button.hide()
        self.message = MessageLine(self)
        file_label = QLabel("Or a backup &file on disk – from a USB stick, another computer "
                            "or the web app:", self)
        file_label.setWordWrap(True)
        self.file_edit = QLineEdit(self)
        self.file_edit.setObjectName("backupFileEdit")
        self.file_edit.setPlaceholderText("The backup's .zip file (.zip.age when encrypted)")
        self.file_edit.setClearButtonEnabled(True)
        file_label.setBuddy(self.file_edit)
        self.browse_button = QPushButton("Bro&wse…", self)
        self.browse_button.setObjectName("browseBackupButton")
        self.file_message = MessageLine(self)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(list_label)
        layout.addWidget(self.tree, 1)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy, 1)
        busy_row.addWidget(self.stop_button)
        layout.addLayout(busy_row)
        layout.addWidget(self.message)
        layout.addSpacing(8)
        layout.addWidget(file_label)
        layout.addLayout(file_row)
        layout.addWidget(self.file_message)
        tab_chain(self.tree, self.file_edit, self.browse_button)
        self.sources: list[usecases.RestoreSource] | None = None
        self.items_by_path: dict[str, QTreeWidgetItem] = {}  # the list's line of each path
        self.offsite_day: str | None = None  # an off-site copy chosen (its weekday)
        self.fetched: dict[str, Path] = {}  # weekday -> its copy, fetched and checked
        self.scratch: ScratchFolder | None = None  # where fetched copies wait
        self._download: threading.Event | None = None  # set to stop the running download
        self.stop_button.clicked.connect(self.stop_download)
        self.tree.currentItemChanged.connect(self._item_chosen)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.file_edit.textChanged.connect(self._file_typed)
        self.browse_button.clicked.connect(self._browse)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        if self.sources is None and not self.busy.isVisible():
            self.load()
        self.tree.setFocus()

    def load(self) -> None:
        ctx = self.context
        self.message.clear()
        self.busy.start("Looking for backups…")
        task = self.w.run("restore-sources", usecases.restore_sources,
                          Site(ctx.engine, ctx.env.settings.mapping, ctx.env.clock), ctx.org,
                          ctx.env.backup_folder)
        task.on_finished(self._loaded)
        task.on_failed(lambda message, _e: (self.busy.stop(), self.message.show_error(
            f"The list of backups could not be read: {message} You can still choose a file "
            "below."), self.load_offsite()))

    def _loaded(self, sources: list[usecases.RestoreSource]) -> None:
        self.busy.stop()
        self.sources = sources
        self.tree.blockSignals(True)
        self.tree.clear()
        self.items_by_path.clear()
        week = self._group("This week – one backup per weekday")
        points = self._group("Restore points – the data as it was just before a restore")
        for source in sources:
            parent = week if source.kind == "slot" else points
            self._add(parent, source)
        if points.childCount() == 0:
            none = QTreeWidgetItem(points, ["None yet: one is saved before every restore."])
            none.setFlags(Qt.ItemFlag.NoItemFlags)
        self.tree.expandAll()
        self.tree.blockSignals(False)
        if self.w.path is not None:
            self.choose(self.w.path)
        elif not any(s.available for s in sources):
            self.message.show_info("There are no backups in the backup folder yet; choose a "
                                   "file below.")
        self.load_offsite()

    # --- copies stored off-site ----------------------------------------------------------------

    def load_offsite(self) -> None:
        """List the remote's copies under the local ones, when the organization has one."""
        ctx = self.context
        if str(ctx.org.id) not in ctx.env.settings.offsite_remotes:
            return
        self.busy.start("Looking for copies stored off-site…")
        task = self.w.run("offsite-copies", usecases.offsite_copies.remote_copies,
                          Site(ctx.engine, ctx.env.settings.mapping, ctx.env.clock),
                          ctx.env.settings, ctx.org)
        task.on_finished(self._offsite_loaded)
        task.on_failed(lambda message, _e: (self.busy.stop(), self._offsite_loaded(
            [], f"The copies stored off-site could not be listed: {message}")))

    def _offsite_loaded(self, copies: list[usecases.offsite_copies.OffsiteCopy],
                        failure: str = "") -> None:
        self.busy.stop()
        group = self._group("Stored off-site – fetched from the remote when you go on")
        for copy in copies:
            item = QTreeWidgetItem(group, [copy.weekday.capitalize(),
                                           wording.date_time(copy.made), "",
                                           wording.human_size(copy.size)])
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setData(0, OFFSITE_ROLE, copy.weekday)
            item.setData(0, SIZE_ROLE, copy.size)
            item.setToolTip(0, copy.name)
            item.setIcon(0, icon("database"))
        if group.childCount() == 0:
            none = QTreeWidgetItem(group, [failure or "None yet: every good backup is copied "
                                           "there after it is made."])
            none.setFlags(Qt.ItemFlag.NoItemFlags)
        group.setExpanded(True)

    def validatePage(self) -> bool:  # noqa: N802 - Qt's name (Next)
        """An off-site copy is fetched first; Next goes on by itself once it is checked."""
        day = self.offsite_day
        if day is None:
            return True
        if day in self.fetched:
            self.w.path = self.fetched[day]
            return True
        if self._download is None:
            self.fetch(day)
        return False

    def fetch(self, day: str) -> None:
        """Download the day's off-site copy into the private temporary folder, check it,
        and go on to the check as for a file on disk."""
        ctx = self.context
        if self.scratch is None:
            self.scratch = ScratchFolder()
        self._download = threading.Event()
        item = self.tree.currentItem()
        size = item.data(0, SIZE_ROLE) if item is not None else None
        words = (f"Downloading {day.capitalize()}'s copy"
                 f"{f' ({wording.human_size(size)})' if size else ''} from off-site…")
        self.busy.start(words)
        self.message.show_info(words)  # not every style draws the words on a busy bar
        self.stop_button.show()
        self.completeChanged.emit()
        task = self.w.run("offsite-fetch", usecases.fetch_offsite,
                          Site(ctx.engine, ctx.env.settings.mapping, ctx.env.clock),
                          ctx.env.settings, ctx.org, ctx.actor, day, self.scratch.path,
                          cancel=self._download, with_progress=True)
        task.on_progress(lambda progress: self.busy.show_part(progress.rows_done,
                                                              progress.rows_total))
        task.on_finished(lambda copy: self._fetched(day, copy.path))
        task.on_failed(lambda message, _e: self._fetch_failed(message))

    def stop_download(self) -> None:
        """Stop a running download (the button, Cancel); nothing of it is kept."""
        if self._download is not None:
            self._download.set()

    def _fetch_ended(self) -> None:
        self._download = None
        self.busy.stop()
        self.stop_button.hide()
        self.completeChanged.emit()

    def _fetched(self, day: str, path: Path) -> None:
        self._fetch_ended()
        self.message.clear()
        self.fetched[day] = path
        if self.offsite_day == day and self.isVisible():  # still waiting on this page
            self.w.next()

    def _fetch_failed(self, message: str) -> None:
        self._fetch_ended()
        self.message.show_error(message)

    def forget_fetched(self) -> None:
        """Remove the fetched copies (the wizard closed)."""
        self.stop_download()
        if self.scratch is not None:
            self.scratch.remove()
            self.scratch = None
        self.fetched.clear()

    def _group(self, title: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [title])
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        _bold_item(item)
        item.setFirstColumnSpanned(True)
        return item

    def _add(self, parent: QTreeWidgetItem, source: usecases.RestoreSource) -> None:
        if source.kind == "slot":
            name = source.weekday.capitalize() + (" (today)" if source.is_today else "")
            if source.available and source.copy_kept:
                name += f" – {source.kept_copy[:1].lower()}{source.kept_copy[1:]}"
        else:
            name = "Restore point"
        if source.partial:
            name += f" ({source.partial})"
        made = wording.date_time(source.made) if source.made else ""
        if not source.available:
            made = "No backup"
        rows = wording.count(source.rows) if source.available else ""
        size = wording.human_size(source.size) if source.available else ""
        item = QTreeWidgetItem(parent, [name, made, rows, size])
        item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if source.available:
            item.setData(0, PATH_ROLE, str(source.path))
            item.setToolTip(0, str(source.path))
            item.setIcon(0, icon("succeeded" if source.kind == "slot" else "database"))
            self.items_by_path[str(source.path)] = item
        else:
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            item.setIcon(0, icon("none"))

    def choose(self, path: Path) -> None:
        """Select this backup: its line in the list, else as the file on disk."""
        self.offsite_day = None
        self.w.path = Path(path)
        item = self.items_by_path.get(str(path))
        if item is not None:
            self.tree.setCurrentItem(item)
        else:
            self.file_edit.setText(str(path))
        self.completeChanged.emit()

    def _item_chosen(self, item: QTreeWidgetItem | None, _previous=None) -> None:
        value = item.data(0, PATH_ROLE) if item is not None else None
        day = item.data(0, OFFSITE_ROLE) if item is not None else None
        if not value and not day:
            return
        self.offsite_day = day or None
        self.w.path = Path(value) if value else None
        self.file_edit.blockSignals(True)
        self.file_edit.clear()
        self.file_edit.blockSignals(False)
        self.file_message.clear()
        self.completeChanged.emit()

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, PATH_ROLE) or item.data(0, OFFSITE_ROLE):
            self.w.next()

    def _file_typed(self, value: str) -> None:
        value = value.strip().strip('"')
        self.tree.blockSignals(True)
        self.tree.setCurrentItem(None)
        self.tree.clearSelection()
        self.tree.blockSignals(False)
        self.offsite_day = None
        self.w.path = Path(value).expanduser() if value else None
        if value and not self.w.path.is_file():
            self.file_message.show_error("There is no file at this path.")
        else:
            self.file_message.clear()
        self.completeChanged.emit()

    def _browse(self) -> None:
        start = self.w.path.parent if self.w.path else self.context.env.backup_folder
        chosen = self.context.env.prompts.choose_backup_file(
            self, start if start.is_dir() else None)
        if chosen is not None:
            self.file_edit.setText(str(chosen))

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        if self.offsite_day is not None:
            return self._download is None
        return self.w.path is not None and self.w.path.is_file()


def _bold_item(item: QTreeWidgetItem) -> None:
    font = QFont(item.font(0))
    font.setBold(True)
    item.setFont(0, font)


# --- 2. check and preview ----------------------------------------------------------------------


class CheckPage(_Page):
    """Reads the whole backup against the database: the verdict, the facts, the preview."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__(wizard)
        self.setTitle("Check the backup")
        self.setSubTitle("Every row of the backup is read and compared with the database. "
                         "Nothing is changed yet.")
        self.bar = QProgressBar(self)
        self.bar.setObjectName("checkProgress")
        self.bar.setTextVisible(True)
        self.verdict = MessageLine(self)
        self.verdict.setObjectName("verdictLine")
        self.hint = _label("", self)
        self.retry_button = QPushButton("C&heck again", self)
        self.retry_button.setObjectName("checkAgainButton")
        self.retry_button.setAutoDefault(False)
        self.retry_button.clicked.connect(self.start)

        self.facts = QWidget(self)
        form = QFormLayout(self.facts)
        form.setContentsMargins(0, 0, 0, 0)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.form = form
        self.file_value = _label("", self.facts)
        self.org_value = _label("", self.facts)
        self.made_value = _label("", self.facts)
        self.contents_value = _label("", self.facts)
        self.file_value.setObjectName("checkedFile")
        self.org_value.setObjectName("checkedOrganization")
        self.made_value.setObjectName("checkedMade")
        for title, value in (("File:", self.file_value), ("Organization:", self.org_value),
                             ("Made:", self.made_value), ("Contents:", self.contents_value)):
            form.addRow(_bold(QLabel(title, self.facts)), value)

        self.preview_label = QLabel("&What the restore changes, table by table:", self)
        self.preview = QTableWidget(0, len(PREVIEW_COLUMNS), self)
        self.preview.setObjectName("previewTable")
        self.preview.setAccessibleName("What the restore changes, table by table")
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.preview.setAlternatingRowColors(True)
        self.preview.verticalHeader().hide()
        self.preview.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.preview.setWordWrap(False)
        for column, (title, tip) in enumerate(PREVIEW_COLUMNS):
            item = QTableWidgetItem(title)
            item.setToolTip(tip)
            self.preview.setHorizontalHeaderItem(column, item)
        header = self.preview.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        self.preview_label.setBuddy(self.preview)
        self.legend = _label(LEGEND, self)
        self.legend.setObjectName("previewLegend")

        self.drift = QFrame(self)
        self.drift.setObjectName("driftBox")
        self.drift.setFrameShape(QFrame.Shape.StyledPanel)
        self.drift.setStyleSheet("QFrame#driftBox { border: 1px solid palette(mid); "
                                 "border-radius: 4px; }")
        self.drift_text = _label("", self.drift)
        self.accept_dropped = QCheckBox("I &accept losing the backup's data in these; restore "
                                        "the rest", self.drift)
        self.accept_dropped.setObjectName("acceptDroppedCheck")
        self.accept_dropped.toggled.connect(lambda _on: self.completeChanged.emit())
        drift_layout = QVBoxLayout(self.drift)
        drift_layout.addWidget(self.drift_text)
        drift_layout.addWidget(self.accept_dropped)
        self.notes = _label("", self)
        self.notes.setObjectName("checkNotes")

        hint_row = QHBoxLayout()
        hint_row.addWidget(self.hint, 1)
        hint_row.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)
        self.key_box = RecoveryKeyBox(lambda: self.context, self)
        self.key_box.unlocked.connect(self.start)  # the key is here now: check again
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(self.verdict)
        layout.addLayout(hint_row)
        layout.addWidget(self.key_box)
        layout.addWidget(self.facts)
        layout.addWidget(self.drift)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.notes)
        layout.addStretch(0)
        tab_chain(self.retry_button, self.accept_dropped, self.preview)
        self._cancel: threading.Event | None = None
        self._generation = 0
        self.running = False
        self._show_nothing()

    # --- running the check ---------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.start()

    def cleanupPage(self) -> None:  # noqa: N802 - Qt's name (Back)
        self.stop()
        self.w.plan = None
        self._show_nothing()

    def start(self) -> None:
        self.stop()
        path = self.w.path
        if path is None:
            return
        ctx = self.context
        self._generation += 1
        generation = self._generation
        self._cancel = threading.Event()
        self.w.plan = None
        self._show_nothing()
        self.running = True
        self.bar.setRange(0, 0)
        self.bar.setFormat(f"Opening {path.name}…")
        self.bar.show()
        # The check runs with consent to dropped columns, so that what would be lost can be
        # listed; the tick box below is that consent, and Next waits for it.
        task = self.w.run("restore-check", check_restore,
                          Site(ctx.engine, ctx.env.settings.mapping), ctx.org, path,
                          restorer=ctx.actor,
                          accept_dropped=True,
                          cancel=self._cancel, with_progress=True)
        task.on_progress(lambda p: generation == self._generation and self._progress(p))
        task.on_finished(lambda plan: generation == self._generation and self._checked(plan))
        task.on_failed(lambda message, _e: generation == self._generation and self._failed(
            message))
        self.completeChanged.emit()

    def stop(self) -> None:
        """Stop a running check (Back, Cancel); its late result is ignored."""
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None
        self._generation += 1
        self.running = False
        self.bar.hide()

    def _progress(self, progress: Progress) -> None:
        total = max(progress.rows_total, 1)
        self.bar.setRange(0, 1000)
        self.bar.setValue(min(1000, progress.rows_done * 1000 // total))
        self.bar.setFormat(f"Reading {table_line(progress)} – {wording.rows_line(progress)}")

    def _checked(self, plan: RestorePlan) -> None:
        self.running = False
        self._cancel = None
        self.bar.hide()
        self.w.plan = plan
        self._show_file(plan.archive_path)
        if plan.ok:
            self._show_plan(plan)
        elif plan.key_missing:  # not refused for good: the recovery sheet opens it
            self.verdict.show_warning("This backup is encrypted; its key is needed to check "
                                      "and restore it.")
            self.key_box.ask(plan.archive_path)
        else:
            self.verdict.show_error(plan.message)
            self.hint.setText("This backup cannot be restored, and nothing was changed. Go "
                              "Back to choose another backup.")
            self.hint.show()
            for row in range(1, self.form.rowCount()):
                self.form.setRowVisible(row, False)
            self.facts.show()
        self.completeChanged.emit()
        self.w.checked.emit(plan)

    def _failed(self, message: str) -> None:
        self.running = False
        self._cancel = None
        self.bar.hide()
        self._show_file(self.w.path)
        self.verdict.show_error(f"The backup could not be checked: {message}")
        self.hint.setText("Nothing was changed. Check again once the problem is solved, or "
                          "go Back to choose another backup.")
        self.hint.show()
        self.retry_button.show()
        self.completeChanged.emit()
        self.w.checked.emit(message)

    # --- drawing -------------------------------------------------------------------------------

    def _show_nothing(self) -> None:
        self.verdict.clear()
        self.hint.hide()
        self.key_box.hide()
        self.retry_button.hide()
        for widget in (self.facts, self.preview_label, self.preview, self.legend, self.drift,
                       self.notes):
            widget.hide()
        self.accept_dropped.setChecked(False)
        self.preview.setRowCount(0)

    def _show_file(self, path: Path | None) -> None:
        if path is not None:
            self.file_value.setText(f"{path.name}\nin {wrappable(str(path.parent))}")

    def _show_plan(self, plan: RestorePlan) -> None:
        org = self.context.org
        seed = plan.kind == "seed"
        if plan.dropped:
            self.verdict.show_info(f"This backup is complete and undamaged, and it is "
                                   f"{org.name}'s; but the database has changed since it was "
                                   "made. Read the box below before going on.")
        elif plan.changes_nothing:
            self.verdict.show_info(f"{NOTHING_WOULD_CHANGE}: {org.name}'s data is already "
                                   "exactly as in this backup, so there is nothing to "
                                   "restore.")
            self.hint.setText("No restore point is made and nothing is written. Go Back to "
                              "choose another backup, or Cancel.")
            self.hint.show()
        elif plan.authenticity == "changed":
            self.verdict.show_info(f"This backup is {org.name}'s and passes every check, but "
                                   "it has been changed since this console wrote it. Restore "
                                   "it only if you trust where it came from. Restoring it: "
                                   f"{plan.changes.sentence()}")
        else:
            self.verdict.show_ok(f"This backup is complete and undamaged, and it is "
                                 f"{org.name}'s. It can be restored: "
                                 f"{plan.changes.sentence()}")
        for row in range(self.form.rowCount()):
            self.form.setRowVisible(row, True)
        theirs = plan.organization
        code = theirs.get("code") or "none"
        self.org_value.setText(f"{theirs.get('name') or org.name} (code {code}, "
                               f"id {theirs.get('id')}) – the organization you are restoring")
        made = local_time(plan.created_at, self.context.env.clock())
        when = wording.date_time(made) if made else plan.created_at
        if seed:
            by = plan.made_by or "by the web app"
        else:
            how = wording.TRIGGER_WORDS.get(plan.trigger, plan.trigger).lower()
            by = f"by Desktop Backup ({how})" if how else "by Desktop Backup"
        origin = f"\n{plan.authenticity_message}" if plan.authenticity_message else ""
        self.made_value.setText(f"{when}, {by}{origin}")
        checked = "every table's row count" if seed else "every table's row count and checksum"
        tables = plan.partial.capitalize() if plan.partial else _count(len(plan.tables),
                                                                         "table")
        contents = (f"{tables}, {_count(plan.rows_in_backup, 'row')}; {checked} verified.")
        if plan.untouched:
            contents += ("\nThe restore leaves these tables as they are (the backup does not "
                         "hold them): " + ", ".join(table_words(n) for n in plan.untouched)
                         + ".")
        self.contents_value.setText(contents)
        self._fill_preview(plan)
        if plan.dropped:
            self.drift_text.setText(
                "The backup has data in these tables and columns (table.column), which the "
                "database no longer has, so that data cannot be restored: "
                + ", ".join(plan.dropped) + ".")
            self.drift.show()
        notes = []
        if plan.added_columns:
            notes.append("New since the backup, filled in with their default values: "
                         + ", ".join(plan.added_columns) + ".")
        notes += [f"Note: {warning}" for warning in plan.warnings]
        self.notes.setText("\n".join(notes))
        self.notes.setVisible(bool(notes))
        for widget in (self.facts, self.preview_label, self.preview, self.legend):
            widget.show()

    def _fill_preview(self, plan: RestorePlan) -> None:
        """The totals first, then the tables where rows go or come back, then the rest
        (each group in the restore's own order); tables empty on both sides are left out."""
        shown = [t for t in plan.tables if t.rows_now or t.rows_in_backup]
        shown.sort(key=lambda t: not (t.to_delete or t.to_insert or t.to_update))
        self.preview.setRowCount(len(shown) + 1)
        fields = PREVIEW_FIELDS
        name = QTableWidgetItem(f"All {len(plan.tables)} tables")
        name.setData(PATH_ROLE, "")
        self.preview.setItem(0, 0, name)
        for column, field in enumerate(fields, start=1):
            self.preview.setItem(0, column, _number(sum(getattr(t, field) for t in plan.tables)))
        for column in range(len(PREVIEW_COLUMNS)):
            _bold_cell(self.preview.item(0, column))
        for row, table in enumerate(shown, start=1):
            name = QTableWidgetItem(table_words(table.table))
            name.setToolTip(table.table)
            name.setData(PATH_ROLE, table.table)
            self.preview.setItem(row, 0, name)
            for column, field in enumerate(fields, start=1):
                item = _number(getattr(table, field))
                if field in ("to_delete", "to_insert", "to_update") and getattr(table, field):
                    _bold_cell(item)  # what a shop owner looks for
                self.preview.setItem(row, column, item)

    def row_for(self, table: str) -> dict[str, int] | None:
        """The preview's numbers for one table, as shown (for tests and accessibility)."""
        for row in range(self.preview.rowCount()):
            if self.preview.item(row, 0).data(PATH_ROLE) == table:
                return {title: int(self.preview.item(row, c).text().replace(",", ""))
                        for c, (title, _tip) in enumerate(PREVIEW_COLUMNS) if c}
        return None

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        plan = self.w.plan
        return (not self.running and plan is not None and plan.ok
                and not plan.changes_nothing
                and (not plan.dropped or self.accept_dropped.isChecked()))


def _bold_cell(item: QTableWidgetItem) -> None:
    font = QFont(item.font())
    font.setBold(True)
    item.setFont(font)


def table_line(progress: Progress) -> str:
    """'table 3 of 21: Customers'."""
    return (f"table {progress.table_index + 1} of {progress.table_count}: "
            f"{table_words(progress.table)}")


def _number(value: int) -> QTableWidgetItem:
    item = QTableWidgetItem(f"{value:,}")
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


# --- 3. confirm --------------------------------------------------------------------------------


class ConfirmPage(_Page):
    """What will happen, the safety backup, and the organization's code typed to confirm."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__(wizard)
        code = self.context.confirm_code
        self.setTitle("Confirm the restore")
        self.setSubTitle("Read what will happen, then type the organization's code.")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "&Restore now")
        self.what = _label("", self)
        self.what.setObjectName("confirmWhat")
        self.what.setTextFormat(Qt.TextFormat.RichText)
        self.safety = QFrame(self)
        self.safety.setObjectName("safetyBox")
        self.safety.setStyleSheet("QFrame#safetyBox { background: palette(base); "
                                  "border: 1px solid palette(mid); border-radius: 6px; }")
        safety_icon = QLabel(self.safety)
        size = self.fontMetrics().height() * 2
        safety_icon.setPixmap(icon("succeeded").pixmap(QSize(size, size),
                                                       self.devicePixelRatioF()))
        safety_icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.safety_text = _label("", self.safety)
        self.safety_text.setObjectName("safetyText")
        self.safety_text.setTextFormat(Qt.TextFormat.RichText)
        safety_layout = QHBoxLayout(self.safety)
        safety_layout.addWidget(safety_icon)
        safety_layout.addWidget(self.safety_text, 1)
        self.code_label = QLabel(f"&Type the organization code, {code}, to confirm:", self)
        self.code_edit = QLineEdit(self)
        self.code_edit.setObjectName("confirmCodeEdit")
        self.code_edit.setAccessibleName(f"Type {code} to confirm the restore")
        self.code_edit.setMaxLength(max(64, len(code) * 2))
        self.code_label.setBuddy(self.code_edit)
        self.code_edit.textChanged.connect(self._typed)
        self.code_message = _label("", self, selectable=False)
        self.code_message.setObjectName("confirmCodeMessage")
        code_row = QHBoxLayout()
        code_row.addWidget(self.code_edit)
        code_row.addWidget(self.code_message, 1)
        self.code_edit.setMinimumWidth(self.fontMetrics().averageCharWidth() * 24)
        self.code_edit.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.what)
        layout.addSpacing(6)
        layout.addWidget(self.safety)
        layout.addSpacing(10)
        layout.addWidget(self.code_label)
        layout.addLayout(code_row)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        plan = self.w.plan
        assert plan is not None and plan.ok
        ctx = self.context
        org = ctx.org
        made = local_time(plan.created_at, ctx.env.clock())
        when = wording.date_time(made) if made else plan.created_at
        changes = plan.changes
        lost = ""
        if plan.dropped:
            lost = (f"<li>The backup's data in {', '.join(plan.dropped)} is not restored "
                    "(you accepted this).</li>")
        items = "".join(f"<li><b>{word}:</b> {n:,} {'row' if n == 1 else 'rows'}</li>"
                        for word, n in zip(CHANGE_WORDS, changes.counts(), strict=True))
        self.what.setText(
            f"<p><b>{_html(org.name)}'s data goes back to how it was on {when}</b> "
            f"(from {_html(plan.archive_path.name)}):</p><ul>{items}{lost}</ul>"
            "<p>Other organizations and the shared lists are not touched. The restore is one "
            "transaction: if anything goes wrong, or you cancel, nothing changes. Ask the "
            "other computers to stop billing until it has finished.</p>")
        self.safety_text.setText(self._safety(plan))
        self.code_edit.clear()
        self.code_message.clear()
        self.code_edit.setFocus()

    def _safety(self, plan: RestorePlan) -> str:
        """The restore point the restore saves first, or why it needs none."""
        org = _html(self.context.org.name)
        if plan.nothing_to_save:
            return ("<b>No restore point is needed.</b> "
                    f"{org} has no data here now, so there is nothing to save first, and "
                    "nothing to undo later. If any of its data arrives before the restore "
                    "starts (a sale on another computer), the restore stops and changes "
                    "nothing.")
        folder = self.context.env.backup_folder / "restore-points"
        return ("<b>A safety backup comes first.</b> Before anything changes, "
                f"{org}'s data as it is now is saved as a restore point in "
                f"{_html(wrappable(str(folder)))}. <b>Undo this restore</b>, on the last page "
                "and in the history, puts it back.")

    def _typed(self, value: str) -> None:
        code = self.context.confirm_code
        typed = value.strip()
        if typed and len(typed) >= len(code) and not self._matches(typed):
            self.code_message.setText(f"That is not {code}.")
        else:
            self.code_message.clear()
        self.completeChanged.emit()

    def _matches(self, typed: str) -> bool:
        return typed.strip().casefold() == self.context.confirm_code.casefold()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self._matches(self.code_edit.text())


def _html(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- 4. restore --------------------------------------------------------------------------------

STEPS = ("Save the current data as a restore point",
         "Write the backup's rows, in one transaction",
         "Check the counts and save")
# The first step when the organization has no data here to save (RestorePlan.nothing_to_save).
NO_POINT_STEP = "No restore point: there is no data to save"


class RestorePage(_Page):
    """The restore running: its three steps, the rows written, and Cancel until the commit."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__(wizard)
        self.setTitle("Restoring")
        self.setSubTitle("Cancel stops the restore before it is saved; the database then "
                         "stays exactly as it was.")
        self.source = _label("", self)
        self.source.setObjectName("restoreSource")
        self.step_icons: list[QLabel] = []
        self.step_labels: list[QLabel] = []
        steps = QFormLayout()
        for number, words in enumerate(STEPS, start=1):
            step_icon = QLabel(self)
            label = QLabel(f"{number}. {words}", self)
            self.step_icons.append(step_icon)
            self.step_labels.append(label)
            steps.addRow(step_icon, label)
        self.bar = QProgressBar(self)
        self.bar.setObjectName("restoreProgress")
        self.bar.setTextVisible(True)
        self.status = _label("", self)
        self.status.setObjectName("restoreStatus")
        layout = QVBoxLayout(self)
        layout.addWidget(self.source)
        layout.addSpacing(6)
        layout.addLayout(steps)
        layout.addSpacing(10)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.running = False
        self.cancel_event: threading.Event | None = None
        self.last_progress: Progress | None = None

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        plan = self.w.plan
        assert plan is not None
        ctx = self.context
        env = ctx.env
        self.setTitle(f"Restoring {ctx.org.name}")
        saving = not plan.nothing_to_save
        self.step_labels[0].setText(f"1. {STEPS[0] if saving else NO_POINT_STEP}")
        self._step(0 if saving else 1)
        self.bar.setRange(0, 0)
        self.bar.setFormat("Saving the restore point…" if saving else "Starting the restore…")
        made = local_time(plan.created_at, env.clock())
        when = f", made {wording.date_time(made)}" if made else ""
        where = (f"The restore point is saved in "
                 f"{wrappable(str(env.backup_folder / 'restore-points'))}." if saving else
                 f"{ctx.org.name} has no data here now, so no restore point is saved.")
        self.source.setText(f"From {plan.archive_path.name}{when}. {where}")
        self.status.clear()
        cancel = self.w.button(QWizard.WizardButton.CancelButton)
        cancel.setEnabled(True)
        cancel.setText("Cancel")
        self.cancel_event = threading.Event()
        self.running = True
        try:
            env.prepare_default_folder()
        except OSError as exc:
            self.running = False
            self.w.finish_restore(RestoreOutcome(
                False, f"The backup folder cannot be created ({exc.strerror or exc}), so no "
                "restore point could be saved and nothing was restored."))
            return
        task = self.w.run("restore", env.restore_runner,
                          Site(ctx.engine, env.settings.mapping, env.clock),
                          ctx.org, plan, ctx.actor, env.backup_folder,
                          restore_points_kept=env.settings.restore_points_kept,
                          cancel=self.cancel_event, trigger="manual",
                          with_progress=True)
        task.on_progress(self._progress)
        task.on_finished(self._finished)
        task.on_failed(self._failed)

    def _step(self, current: int, failed: bool = False) -> None:
        size = self.fontMetrics().height() + 4
        for index, (step_icon, label) in enumerate(zip(self.step_icons, self.step_labels,
                                                       strict=True)):
            state = ("succeeded" if index < current else
                     ("failed" if failed else "running") if index == current else "none")
            step_icon.setPixmap(icon(state).pixmap(QSize(size, size), self.devicePixelRatioF()))
            font = QFont(label.font())
            font.setBold(index == current)
            label.setFont(font)
            label.setEnabled(index <= current)

    def _progress(self, progress: Progress) -> None:
        self.last_progress = progress
        if self.cancel_event is not None and self.cancel_event.is_set():
            return
        last = (progress.table_index + 1 == progress.table_count
                and progress.rows_done >= progress.rows_total)
        self._step(2 if last else 1)
        total = max(progress.rows_total, 1)
        self.bar.setRange(0, 1000)
        self.bar.setValue(min(1000, progress.rows_done * 1000 // total))
        self.bar.setFormat(wording.rows_line(progress))
        self.status.setText("Checking the counts, then saving…" if last else
                            f"Writing {table_line(progress)}")

    def cancel(self) -> None:
        if not self.running or self.cancel_event is None:
            return
        self.cancel_event.set()
        button = self.w.button(QWizard.WizardButton.CancelButton)
        button.setEnabled(False)
        button.setText("Cancelling…")
        self.status.setText("Cancelling: what was written is being rolled back…")

    def _finished(self, result: RestoreResult) -> None:
        self.running = False
        self._step(len(STEPS))
        self.w.finish_restore(RestoreOutcome(True, result.message, result))

    def _failed(self, message: str, error: BaseException | None) -> None:
        self.running = False
        self.w.finish_restore(outcome_of_failure(message, error))

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return not self.running


# --- 5. summary --------------------------------------------------------------------------------


class SummaryPage(_Page):
    """What the restore did, and how to undo it; or why nothing changed."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__(wizard)
        self.setFinalPage(True)
        self.verdict = MessageLine(self)
        self.verdict.setObjectName("summaryLine")
        self.facts = QWidget(self)
        form = QFormLayout(self.facts)
        form.setContentsMargins(0, 0, 0, 0)
        self.tables_value = _label("", self.facts)
        self.change_values = {word: _label("", self.facts) for word in CHANGE_WORDS}
        self.duration_value = _label("", self.facts)
        self.point_value = _label("", self.facts)
        self.point_value.setObjectName("restorePointLabel")
        for title, value in (("Tables:", self.tables_value),
                             *((f"{word}:", self.change_values[word]) for word in CHANGE_WORDS),
                             ("Took:", self.duration_value),
                             ("Restore point:", self.point_value)):
            form.addRow(_bold(QLabel(title, self.facts)), value)
        self.undo = _label("", self)
        self.undo.setObjectName("undoText")
        self.undo_button = QPushButton("&Undo this restore", self)
        self.undo_button.setObjectName("undoRestoreButton")
        self.undo_button.setAutoDefault(False)  # Enter still means Close
        self.undo_button.clicked.connect(self._undo)
        self.folder_button = QPushButton("Show the restore point in its &folder", self)
        self.folder_button.setObjectName("showRestorePointButton")
        self.folder_button.setAutoDefault(False)
        self.folder_button.clicked.connect(self._show_folder)
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addSpacing(6)
        layout.addWidget(self.facts)
        layout.addSpacing(6)
        layout.addWidget(self.undo)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        outcome = self.w.outcome
        assert outcome is not None
        result = outcome.result
        if outcome.ok and result is not None:
            self.setTitle("Restore finished")
            self.setSubTitle("The organization's data is back as it was in the backup.")
            self.verdict.show_ok(f"{self.context.org.name} was restored from "
                                 f"{result.archive.name}.")
            self.tables_value.setText(f"{len(result.tables):,}")
            for word, n in zip(CHANGE_WORDS, result.changes.counts(), strict=True):
                self.change_values[word].setText(f"{n:,}")
            self.duration_value.setText(wording.duration(int(result.duration_s * 1000)))
            self._show_restore_point(result)
            return
        for widget in (self.undo_button,):
            widget.hide()
        self.setTitle("Restore cancelled" if outcome.cancelled else "Restore failed")
        self.setSubTitle("The database is exactly as it was before.")
        message = outcome.message
        if "nothing was changed" not in message.lower():
            message += " Nothing was changed."
        if outcome.cancelled:
            self.verdict.show_info(message)
        else:
            self.verdict.show_error(message)
        for widget in (self.facts, self.undo, self.folder_button):
            widget.hide()

    def _show_restore_point(self, result: RestoreResult) -> None:
        """Where the data from before is, and Undo; or, when the organization had no data
        here before, why there is neither."""
        point = result.restore_point
        self.facts.show()
        self.undo.show()
        if point is None:
            name = self.context.org.name
            self.point_value.setText(f"None: {name} had no data here before, so there was "
                                     "nothing to save first.")
            self.undo.setText("There is no Undo for this restore: it only brought data back "
                              "where there was none. Restoring another backup replaces it, "
                              "like any restore.")
            self.undo_button.hide()
            self.folder_button.hide()
            return
        self.point_value.setText(f"{point.name}\nin {wrappable(str(point.parent))}")
        self.undo.setText("Undo this restore checks the restore point, which holds the "
                          "data as it was just before, and restores it the same way. It "
                          "stays offered in the history.")
        self.undo_button.show()
        self.folder_button.show()

    def _undo(self) -> None:
        """Undo this restore: the restore point, through the same check and confirmation."""
        outcome = self.w.outcome
        if outcome is not None and outcome.result is not None and \
                outcome.result.restore_point is not None:
            self.w.undo(outcome.result.restore_point)

    def _show_folder(self) -> None:
        outcome = self.w.outcome
        if outcome is None or outcome.result is None or outcome.result.restore_point is None:
            return
        self.context.env.prompts.open_folder(outcome.result.restore_point.parent)
