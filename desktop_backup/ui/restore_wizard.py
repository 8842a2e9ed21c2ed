"""The restore wizard (``restoreWizard``): choose a backup, check it, confirm, restore, summary.

Every Restore… of the main window (the File menu, a day cell, a history row) opens it
through :class:`RestoreLauncher`, which is the window's restore handler and tells the
session how each restore ended. The pages live in
:mod:`desktop_backup.ui.restore_pages`; this module holds what they share: the organization
and who restores it, the backup chosen, the plan the check returned and the outcome.

The check and the restore run on the session's TaskRunner (``restore.check_restore`` and
``Env.restore_runner``, which is ``restore.apply_restore``); the wizard only draws. Cancel
during the check stops the reading and closes the wizard; Cancel during the restore sets the
event the core polls between batches and just before the commit, and the wizard stays open
until the transaction has been rolled back, then says so on its last page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QWidget, QWizard

from desktop_backup.organizations import Organization
from desktop_backup.restore import RestorePlan
from desktop_backup.ui import restore_pages as pages
from desktop_backup.ui.restore_context import (
    CHECK,
    CHOOSE,
    CONFIRM,
    RESTORE,
    SUMMARY,
    RestoreContext,
    RestoreOutcome,
)
from desktop_backup.ui.session import INFO, ConsoleSession
from desktop_backup.ui.theme import icon
from desktop_backup.ui.workers import Task
from desktop_backup.work import Actor


class RestoreWizard(QWizard):
    """Five pages; ``checked`` after each check, ``restoreDone`` once the restore ended."""

    checked = Signal(object)  # RestorePlan, or the sentence saying why the check failed
    restoreDone = Signal(object)  # RestoreOutcome
    idle = Signal()  # no check or restore of this wizard is running any more

    def __init__(self, context: RestoreContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.path: Path | None = None  # the backup chosen
        self.plan: RestorePlan | None = None  # the check's verdict on it
        self.outcome: RestoreOutcome | None = None
        self._tasks: set[Task] = set()
        self._when_idle: list[Callable[[], None]] = []
        self.setObjectName("restoreWizard")
        self.setWindowTitle(f"Restore {context.org.name} – Desktop Backup")
        self.setWindowIcon(icon("app"))
        # One look on Windows, macOS and Linux, drawn with the app's light or dark palette.
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setButtonText(QWizard.WizardButton.BackButton, "< &Back")
        self.setButtonText(QWizard.WizardButton.NextButton, "&Next >")
        self.setButtonText(QWizard.WizardButton.CommitButton, "&Restore now")
        self.setButtonText(QWizard.WizardButton.FinishButton, "&Close")
        self.setButtonText(QWizard.WizardButton.CancelButton, "Cancel")
        self.choose_page = pages.ChoosePage(self)
        self.check_page = pages.CheckPage(self)
        self.confirm_page = pages.ConfirmPage(self)
        self.restore_page = pages.RestorePage(self)
        self.summary_page = pages.SummaryPage(self)
        for page_id, page in ((CHOOSE, self.choose_page), (CHECK, self.check_page),
                              (CONFIRM, self.confirm_page), (RESTORE, self.restore_page),
                              (SUMMARY, self.summary_page)):
            self.setPage(page_id, page)
        self.setStartId(CHOOSE)
        # A copy fetched from off-site lives as long as the wizard (a running download is
        # stopped first).
        self.finished.connect(lambda _code: self.when_idle(self.choose_page.forget_fetched))
        metrics = self.fontMetrics()
        self.resize(metrics.averageCharWidth() * 132, metrics.lineSpacing() * 42)

    # --- starting ------------------------------------------------------------------------------

    def check_file(self, path: Path) -> None:
        """Choose this backup and go straight to its check (opened from a day or a history
        row); Back still leads to the list of backups."""
        self.choose_page.choose(Path(path))
        if self.currentId() == CHOOSE:
            self.next()

    def undo(self, restore_point: Path) -> None:
        """Undo the restore just made: its restore point goes through the same check,
        preview and confirmation as any backup (and gets its own restore point)."""
        self.outcome = None
        self.plan = None
        self.restart()
        self.check_file(restore_point)

    # --- background work -----------------------------------------------------------------------

    def run(self, name: str, fn: Callable, *args, with_progress: bool = False,
            **kwargs) -> Task:
        """Run a core call on the session's runner; the wizard outlives it (see when_idle)."""
        task = self.context.runner.run(name, fn, *args, with_progress=with_progress, **kwargs)
        self._tasks.add(task)
        task.done.connect(lambda t=task: self._task_done(t))
        return task

    def _task_done(self, task: Task) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            callbacks, self._when_idle = self._when_idle, []
            for callback in callbacks:
                callback()
            self.idle.emit()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def when_idle(self, callback: Callable[[], None]) -> None:
        if self._tasks:
            self._when_idle.append(callback)
        else:
            callback()

    # --- ending --------------------------------------------------------------------------------

    def finish_restore(self, outcome: RestoreOutcome) -> None:
        """The restore page's result: show the summary, then tell the window."""
        self.outcome = outcome
        if self.currentId() == RESTORE:
            self.next()
        self.restoreDone.emit(outcome)

    def reject(self) -> None:
        """Cancel and Escape. During the restore: stop it and stay until it rolled back."""
        if self.restore_page.running:
            self.restore_page.cancel()
            return
        self.check_page.stop()
        self.choose_page.stop_download()
        super().reject()


class RestoreLauncher(QObject):
    """The main window's restore handler: one wizard at a time, modal to ``parent``.

    No backup starts while a restore writes: the session asks :meth:`restore_running`.
    """

    wizardOpened = Signal(object)  # RestoreWizard

    def __init__(self, session: ConsoleSession, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("restoreLauncher")
        self.session = session
        self.parent_widget = parent
        self.wizard: RestoreWizard | None = None
        session.set_restore_guard(self.restore_running)

    def restore_running(self) -> bool:
        return self.wizard is not None and self.wizard.restore_page.running

    def open(self, org: Organization, path: Path | None) -> RestoreWizard | None:
        session = self.session
        if session.backup_running:
            session.tell(INFO, "A backup is running; restore once it has finished.")
            return None
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            self.wizard.activateWindow()
            return self.wizard
        context = RestoreContext(session.env, session.engine, org, Actor.of(session.user),
                                 session.runner)
        wizard = RestoreWizard(context, self.parent_widget)
        wizard.setWindowModality(Qt.WindowModality.WindowModal)
        wizard.restoreDone.connect(session.restore_finished)
        wizard.finished.connect(lambda _code, w=wizard: self._closed(w))
        self.wizard = wizard
        wizard.open()
        if path is not None:
            wizard.check_file(path)
        self.wizardOpened.emit(wizard)
        return wizard

    def _closed(self, wizard: RestoreWizard) -> None:
        if self.wizard is wizard:
            self.wizard = None
        wizard.when_idle(wizard.deleteLater)  # a cancelled check may still be stopping
