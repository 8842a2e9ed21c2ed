"""One logged-in session apart from the window that draws it, so the tray, the schedule and the
dialogs follow its signals instead of reaching into the window.

:class:`ConsoleSession` owns the engine (and disposes of it when closed), the organization and
its last overview, the running backup with its cancel flag, the off-site copy that follows it,
and the TaskRunner all of them run on. It decides and tells; the window, the tray
(ui/tray.py), the schedule glue (ui/schedule.py), the settings dialog and the restore
launcher only listen and ask. Which of the window's controls can be used is a pure function,
:func:`controls_for`, tested without a window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_backup import usecases
from desktop_backup.backup import BackupResult
from desktop_backup.history import weekday_of
from desktop_backup.organizations import Organization
from desktop_backup.ui.env import Env
from desktop_backup.ui.network import watch_reachability
from desktop_backup.ui.workers import Task, TaskRunner
from desktop_backup.weekview import DayState
from desktop_backup.work import Actor, Progress, Site

WATCH_OTHER_RUN_MS = 30_000
OFFSITE_RETRY_MS = 10 * 60_000  # queued off-site copies: another try (backoff permitting)
COPYING_LINE = "Off-site: copying…"  # a day card's off-site line while its copy is sent
WAITING_LINE = "Off-site: waiting"  # how offsite_queue.offsite_line begins for a queued copy
RESTORE_RUNNING = "A restore is running; back up once it has finished."
WAIT_FOR_BACKUP = "Wait for the backup to finish."
# Kinds of `told` sentences, as the window's notice line shows them.
INFO, OK, ERROR = "info", "ok", "error"


@dataclass(frozen=True)
class Controls:
    """Which of the window's controls can be used now."""

    backup: bool  # Back up now: the button, the menu and the tray's
    toggle: bool  # the automatic daily backup switch
    wait_reason: str  # why the switch and the file actions wait ("" when they do not)
    picker: bool  # the super admin's organization picker
    browse: bool  # the week and the history
    restore: bool  # File → Restore…


def controls_for(*, has_org: bool, ready: bool, running: bool, sqlite: bool,
                 restore_available: bool) -> Controls:
    """The enabled-state rules. ``ready``: the organization's week has been read."""
    # Not before the organization's week is read: that read also creates the console's
    # tables, which a backup started at the same moment would race for on SQLite.
    # An SQLite database cannot take a write while the backup's read snapshot is open;
    # the audit writes of the switch and the file actions would wait, then fail as
    # "database is locked".
    blocked = running and sqlite
    return Controls(backup=ready and not running, toggle=has_org and not blocked,
                    wait_reason=WAIT_FOR_BACKUP if blocked else "", picker=not running,
                    browse=has_org, restore=restore_available and has_org)


def copying_days(days: list[DayState], weekdays: tuple[str, ...],
                 progress: Progress | None = None) -> list[DayState]:
    """`days` with those whose copies are being sent off-site saying so; the one on its
    way with how far it got."""
    return [replace(day, offsite=COPYING_LINE + percent_of(progress, day.weekday))
            if day.weekday in weekdays else day for day in days]


def percent_of(progress: Progress | None, weekday: str) -> str:
    """" 42%" while `weekday`'s copy travels and its size is known, else ""."""
    if progress is None or progress.table != weekday or progress.rows_total <= 0:
        return ""
    return f" {min(100, progress.rows_done * 100 // progress.rows_total)}%"


class ConsoleSession(QObject):
    """One login: who, which organization, what runs; told through signals."""

    organizationChanged = Signal(object)  # Organization | None: chosen, or its switch changed
    organizationsLoaded = Signal(list)  # a super admin's choice
    overviewLoaded = Signal(object)  # usecases.Overview
    backupStarted = Signal(str)  # trigger
    backupProgress = Signal(object)  # Progress (every report; drawing is the window's pace)
    backupFinished = Signal(object)  # BackupResult
    backupFailed = Signal(str, object)  # message, exception
    backupDone = Signal()  # after either, once the thread has stopped
    offsiteStarted = Signal()  # copies are being sent off-site (offsite_words says which)
    offsiteProgress = Signal()  # a copy being sent got further (offsite_words says how far)
    offsiteDone = Signal()  # that sending ended, whatever its outcome
    restoreDone = Signal(object)  # the restore wizard's RestoreOutcome
    settingsChanged = Signal()  # the settings were saved (the schedule and tray follow)
    told = Signal(str, str)  # kind (INFO, OK, ERROR), a sentence for the window's notice
    closed = Signal()

    def __init__(self, env: Env, login: usecases.LoginResult, parent: QObject | None = None,
                 *, owns_engine: bool = True) -> None:
        """``owns_engine`` False: the caller disposes of the engine (the screenshots)."""
        super().__init__(parent)
        self.env = env
        self.engine = login.engine
        self.user = login.session  # who logged in (auth.Session)
        self.profile: str | None = login.profile  # the settings' keyring page is for it
        self.mapping = env.settings.mapping
        self.owns_engine = owns_engine
        self.runner = TaskRunner(self)
        self.org: Organization | None = login.session.organization
        self.overview: usecases.Overview | None = None
        self.loaded_org_id: int | None = None  # whose overview was read last
        self.backup_task: Task | None = None
        self.cancel_event: threading.Event | None = None
        self.last_progress: Progress | None = None
        self.offsite_task: Task | None = None  # an upload off-site, after the backup
        self.offsite_days: tuple[str, ...] = ()  # the weekdays it sends, when known
        self.offsite_progress: Progress | None = None  # the copy on its way: its bytes
        self.is_closed = False
        self._generation = 0
        self._restore_guard: Callable[[], bool] = lambda: False
        # While another workstation makes today's backup, re-read now and then so its result
        # appears here, as the AlreadyRunning message promises.
        self.watch_timer = QTimer(self)
        self.watch_timer.setSingleShot(True)
        self.watch_timer.setInterval(WATCH_OTHER_RUN_MS)
        self.watch_timer.timeout.connect(self.refresh)
        # Queued off-site copies are retried now and then (each only when its backoff allows).
        self.offsite_timer = QTimer(self)
        self.offsite_timer.setInterval(OFFSITE_RETRY_MS)
        self.offsite_timer.timeout.connect(lambda: self.send_offsite())
        self.offsite_timer.start()
        # ...and at once when the network comes back, where Qt can tell (not offscreen).
        self.watches_network = watch_reachability(self, self.network_back)

    # --- what is known -------------------------------------------------------------------------

    def site(self) -> Site:
        """Where and how this session's jobs run: its database, mapping and clock."""
        return Site(self.engine, self.mapping, self.env.clock)

    def today(self) -> str:
        return weekday_of(self.env.clock().date())

    def actor(self) -> usecases.ActingUser:
        assert self.org is not None
        return usecases.ActingUser(self.user.user_id, self.user.username, self.org.id)

    @property
    def ready(self) -> bool:
        """An organization whose week has been read (see controls_for)."""
        return self.org is not None and self.loaded_org_id == self.org.id

    @property
    def backup_running(self) -> bool:
        return self.backup_task is not None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def writes_wait(self) -> bool:
        """An SQLite database takes no write while the backup's read snapshot is open."""
        return self.backup_running and self.is_sqlite

    def controls(self, restore_available: bool = False) -> Controls:
        return controls_for(has_org=self.org is not None, ready=self.ready,
                            running=self.backup_running, sqlite=self.is_sqlite,
                            restore_available=restore_available)

    def latest_backup_size(self) -> int:
        """The largest of the week's backups, for the folder check's room estimate."""
        days = self.overview.days if self.overview is not None else []
        return max((day.size for day in days), default=0)

    def set_restore_guard(self, restore_running: Callable[[], bool]) -> None:
        """The restore launcher says how to know that a restore is writing: no backup starts
        then, from the tray or the schedule, so it never reads a half-restored organization."""
        self._restore_guard = restore_running

    def restore_running(self) -> bool:
        return self._restore_guard()

    # --- the organization ----------------------------------------------------------------------

    def start(self) -> None:
        """After the window is shown: read the week, and start the day's backup if due."""
        if self.user.is_super_admin:
            self.load_organizations()
            return
        task = self.refresh(check_due=self.env.settings.auto_backup_on_login)
        if task is not None:
            task.on_finished(lambda overview: self.start_backup("login", force=False)
                             if overview.backup_due else self.send_offsite())

    def load_organizations(self) -> Task:
        task = self.runner.run("organizations", usecases.organizations, self.site())
        task.on_finished(self.organizationsLoaded.emit)
        task.on_failed(lambda message, _e: self.told.emit(ERROR, message))
        return task

    def choose_organization(self, org: Organization | None) -> None:
        """The super admin's choice; its week is read by the next refresh."""
        self.org = org
        self.overview = None
        self.organizationChanged.emit(org)

    def refresh(self, check_due: bool = False) -> Task | None:
        """Re-read the organization, its week and its history (off the UI thread);
        check_due also asks whether the day's backup is due."""
        if self.org is None or self.is_closed:
            return None
        self._generation += 1
        generation, org_id = self._generation, self.org.id
        task = self.runner.run("overview", usecases.load_overview, self.site(), org_id,
                               self.env.backup_folder, check_due=check_due)
        task.on_finished(lambda overview: self._overview_loaded(overview, generation))
        task.on_failed(lambda message, _e: self.told.emit(ERROR, message))
        return task

    def _overview_loaded(self, overview: usecases.Overview, generation: int) -> None:
        if generation != self._generation or self.org is None or (
                overview.organization.id != self.org.id):
            return  # an older read, or another organization since
        self.org = overview.organization
        self.loaded_org_id = overview.organization.id
        self.overview = overview
        today = next((d for d in overview.days if d.is_today), None)
        if self.backup_task is None and today is not None and today.state == "running":
            self.watch_timer.start()  # another workstation's run: look again shortly
        self.overviewLoaded.emit(overview)

    def set_auto_backup(self, enabled: bool) -> Task:
        """Switch the organization's automatic daily backup on or off (audited)."""
        task = self.runner.run("toggle", usecases.toggle_auto_backup, self.site(),
                               self.actor(), enabled)

        def finished(org: Organization) -> None:
            if self.org is not None and org.id == self.org.id:
                self.org = org
            self.organizationChanged.emit(self.org)

        task.on_finished(finished)
        return task

    # --- the backup ----------------------------------------------------------------------------

    def start_backup(self, trigger: str = "manual", force: bool = True) -> Task | None:
        """Back the organization up on a worker thread; cancel_backup sets the event it
        checks. None when it cannot start now (``told`` says why where a person asked)."""
        if self.backup_task is not None or self.org is None or self.is_closed:
            return None
        if self.restore_running():
            self.told.emit(INFO, RESTORE_RUNNING)
            return None
        if not self.ready and trigger != "login":
            return None  # see controls_for
        try:
            self.env.prepare_default_folder()
        except OSError as exc:
            self.told.emit(ERROR, f"The backup folder cannot be created ({exc.strerror}).")
            return None
        self.cancel_event = threading.Event()
        self.last_progress = None
        task = self.runner.run(
            "backup", self.env.backup_runner, self.site(), self.org, Actor.of(self.user),
            self.env.backup_folder, trigger=trigger, force=force, cancel=self.cancel_event,
            with_progress=True)
        self.backup_task = task
        task.on_progress(self._backup_progress)
        task.on_finished(self._backup_finished)
        task.on_failed(self.backupFailed.emit)
        task.done.connect(self._backup_done)
        self.backupStarted.emit(trigger)
        return task

    def cancel_backup(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()

    def _backup_progress(self, progress: Progress) -> None:
        self.last_progress = progress
        self.backupProgress.emit(progress)

    def _backup_finished(self, result: BackupResult) -> None:
        if not result.skipped and result.path is not None:
            self.send_offsite(result)
        self.backupFinished.emit(result)

    def _backup_done(self) -> None:
        self.backup_task, self.cancel_event = None, None
        self.backupDone.emit()  # the window may close now: then no re-read follows
        self.refresh()

    # --- off-site copies -----------------------------------------------------------------------

    def send_offsite(self, result: BackupResult | None = None) -> Task | None:
        """Send the backup just made (or, at start-up and on the timer, what still waits and
        whose backoff allows) off-site on its own thread. The local slot is already in place;
        nothing here can delay or touch it."""
        if not self._offsite_on():
            return None
        return self._start_offsite(usecases.send_offsite, self.site(), self.env.settings,
                                   self.org, Actor.of(self.user), result,
                                   days=(result.weekday,) if result is not None else ())

    def network_back(self) -> Task | None:
        """The network is reachable again: send every waiting copy now, without waiting out
        the backoff of the tries that failed while it was away. Not during a backup: the
        upload that follows it sends what waits."""
        if not self._offsite_on() or self.backup_running:
            return None
        waiting = tuple(day.weekday for day in self.overview.days
                        if day.offsite.startswith(WAITING_LINE)) if self.overview else ()
        return self._start_offsite(usecases.push_offsite, self.site(), self.env.settings,
                                   self.org, Actor.of(self.user), trigger="network",
                                   days=waiting)

    def offsite_words(self) -> str:
        """What is being sent off-site now, for the tray ("" when nothing is, or when the
        timer only looks whether a waiting copy is due)."""
        days = self.offsite_days if self.offsite_task is not None else ()
        progress = self.offsite_progress
        if len(days) == 1:
            return f"Copying {days[0].capitalize()}'s backup off-site…" + percent_of(
                progress, days[0])
        if days and progress is not None:
            return (f"Copying {len(days)} backups off-site… {progress.table.capitalize()}"
                    + percent_of(progress, progress.table))
        return f"Copying {len(days)} backups off-site…" if days else ""

    def days_shown(self) -> list[DayState]:
        """The overview's days, those being copied off-site saying so on their cards."""
        days = self.overview.days if self.overview is not None else []
        return copying_days(days, self.offsite_days if self.offsite_task else (),
                            self.offsite_progress)

    def _offsite_on(self) -> bool:
        org = self.org
        return (org is not None and self.offsite_task is None and not self.is_closed
                and str(org.id) in self.env.settings.offsite_remotes)

    def _start_offsite(self, fn: Callable, *args, days: tuple[str, ...], **kwargs) -> Task:
        task = self.runner.run("offsite", fn, *args, with_progress=True, **kwargs)
        self.offsite_task, self.offsite_days = task, days
        self.offsite_progress = None
        task.on_progress(self._offsite_went_on)
        task.on_finished(self._offsite_finished)
        task.on_failed(lambda message, _error: self.told.emit(
            ERROR, f"The off-site copy failed: {message}"))
        task.done.connect(self._offsite_done)
        self.offsiteStarted.emit()
        return task

    def _offsite_went_on(self, progress: Progress) -> None:
        """A copy got further: told on when the percent shown changes (not every report)."""
        before = self.offsite_progress
        self.offsite_progress = progress
        if before is None or percent_of(before, before.table) != percent_of(
                progress, progress.table) or before.table != progress.table:
            self.offsiteProgress.emit()

    def _offsite_finished(self, report) -> None:
        if report is not None and report.failed:
            self.told.emit(INFO, report.message())

    def _offsite_done(self) -> None:
        self.offsite_task, self.offsite_days, self.offsite_progress = None, (), None
        self.offsiteDone.emit()
        self.refresh()

    # --- one backup file -----------------------------------------------------------------------

    def save_copy(self, path: Path, destination: Path) -> Task:
        return self.runner.run("save_copy", usecases.save_copy, self.site(), self.actor(),
                               path, destination)

    def verify(self, path: Path) -> Task:
        return self.runner.run("verify", usecases.verify, self.site(), self.actor(), path)

    def delete(self, path: Path) -> Task:
        return self.runner.run("delete", usecases.delete_backup, self.site(), self.actor(),
                               path)

    # --- what others report ---------------------------------------------------------------------

    def tell(self, kind: str, message: str) -> None:
        """A sentence for the window's notice line (kind: INFO, OK or ERROR)."""
        self.told.emit(kind, message)

    def restore_finished(self, outcome: object) -> None:
        """The restore wizard ended (a RestoreOutcome): tell, then re-read the week and the
        history with the restore in it."""
        self.restoreDone.emit(outcome)
        self.refresh()

    def settings_saved(self) -> None:
        """The settings dialog wrote the settings: the schedule, the tray and the window
        follow; the week is re-read as the (maybe new) folder has it."""
        self.settingsChanged.emit()
        self.refresh()

    # --- the end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the timers, wait for every thread and dispose of the engine (once)."""
        if self.is_closed:
            return
        self.is_closed = True
        self.watch_timer.stop()
        self.offsite_timer.stop()
        self.runner.shutdown()
        if self.owns_engine:
            self.engine.dispose()
        self.closed.emit()
