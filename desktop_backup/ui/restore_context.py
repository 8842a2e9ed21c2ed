"""What the restore wizard and its pages share: whose data, who restores it, how it ended.

The wizard (:mod:`desktop_backup.ui.restore_wizard`) builds its pages
(:mod:`desktop_backup.ui.restore_pages`); the pages only need the few things of the wizard
that :class:`WizardHost` names, so they import this module and never the wizard back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtWidgets import QAbstractButton, QWizard

from desktop_backup.organizations import Organization
from desktop_backup.restore import RestorePlan, RestoreResult
from desktop_backup.ui.env import Env
from desktop_backup.ui.workers import Task, TaskRunner
from desktop_backup.work import Actor, Cancelled

if TYPE_CHECKING:
    from desktop_backup.db import Engine  # the core's name for it: ui/ imports no sqlalchemy

CHOOSE, CHECK, CONFIRM, RESTORE, SUMMARY = range(5)  # the wizard's page ids, in order


@dataclass(frozen=True)
class RestoreContext:
    """Whose data, who restores it, and through what: everything the pages need."""

    env: Env
    engine: Engine
    org: Organization
    actor: Actor
    runner: TaskRunner

    @property
    def confirm_code(self) -> str:
        """What the person types to confirm: the organization's code (its id without one)."""
        return self.org.slot_key


@dataclass(frozen=True)
class RestoreOutcome:
    """How the restore ended, for the summary page and the main window."""

    ok: bool
    message: str
    result: RestoreResult | None = None
    cancelled: bool = False
    error: BaseException | None = None


def outcome_of_failure(message: str, error: BaseException | None) -> RestoreOutcome:
    if isinstance(error, Cancelled):
        return RestoreOutcome(False, message, cancelled=True, error=error)
    return RestoreOutcome(False, message, error=error)


class WizardHost(Protocol):
    """What a page uses of the wizard it sits in (RestoreWizard provides it)."""

    context: RestoreContext
    path: Path | None
    plan: RestorePlan | None
    outcome: RestoreOutcome | None
    checked: object  # Signal(object): the plan, or the sentence saying why the check failed

    def run(self, name: str, fn: Callable, *args, with_progress: bool = False,
            **kwargs) -> Task: ...
    def finish_restore(self, outcome: RestoreOutcome) -> None: ...
    def undo(self, restore_point: Path) -> None: ...
    def next(self) -> None: ...
    def button(self, which: QWizard.WizardButton) -> QAbstractButton: ...
