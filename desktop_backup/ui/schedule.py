"""The scheduled daily backup in the window: APScheduler's firing, handed to the UI thread.

:class:`desktop_backup.scheduler.DailySchedule` owns the timing: a cron job at the chosen
time (coalesced, with a grace time), a catch-up at start-up and one after the machine wakes.
APScheduler calls the job on its own thread, so the job here only emits a signal; the
connection is queued, and the decision runs on the UI thread, where the session's own state
says whether a backup is running. The decision itself is the login's: re-read the
organization and ask ``backup.daily_backup_due`` (through ``ConsoleSession.refresh``), then
start the backup through ``ConsoleSession.start_backup(force=False)``, whose slot claim keeps
every other window and workstation out. Nothing about "done today" is remembered here.

Wake is noticed by a :class:`~desktop_backup.scheduler.WakeDetector` ticked once a minute by
a QTimer: a jump of the wall clock means the machine slept.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from apscheduler.schedulers.base import BaseScheduler
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from desktop_backup import wording
from desktop_backup.scheduler import DailySchedule, WakeDetector, parse_time
from desktop_backup.ui.session import ConsoleSession
from desktop_backup.weekview import LastBackup

log = logging.getLogger(__name__)

WAKE_TICK_MS = 60_000
# What a firing decided, for the log and for tests (strings: see workers._Box on bools).
STARTED, NOT_DUE, BUSY, NOT_HERE, FAILED = "started", "not due", "busy", "not here", "failed"


class ScheduleGlue(QObject):
    """Connects one session to a DailySchedule; lives as long as the session.

    ``decided(reason, decision)`` says what each firing did: started (a backup started),
    not due (today's backup is done or the organization's switch is off), busy (a backup or
    a check is already running in this session: it covers today), not here (no organization,
    a super admin, or the session closed), failed (the database could not be read).
    """

    fired = Signal(str)  # emitted on APScheduler's thread; handled queued on the UI thread
    decided = Signal(str, str)
    nextRunChanged = Signal()

    def __init__(self, session: ConsoleSession, scheduler: BaseScheduler | None = None,
                 start_scheduler: bool = True) -> None:
        super().__init__(session)
        self.session = session
        self.env = session.env
        self.schedule = DailySchedule(self.job, self.env.clock,
                                      parse_time(self.env.settings.schedule_time), scheduler)
        self.start_scheduler = start_scheduler
        self.wake = WakeDetector(self.env.clock)
        self.wake_timer = QTimer(self)
        self.wake_timer.setInterval(WAKE_TICK_MS)
        self.wake_timer.timeout.connect(self.tick)
        self.started = False
        self.checking = False
        self.fired.connect(self._fire, Qt.ConnectionType.QueuedConnection)
        session.overviewLoaded.connect(self._first_overview)
        session.settingsChanged.connect(self.apply_settings)
        session.closed.connect(self.stop)

    # --- timing --------------------------------------------------------------------------------

    def _first_overview(self, _overview: object) -> None:
        """Start once the session has read its organization (and made the login's decision)."""
        if self.started:
            return
        self.start()

    def start(self) -> None:
        """Install the job and catch up once ("start-up"); then watch for wake."""
        self.started = True
        self.wake.last = self.env.clock()
        self.wake_timer.start()
        if self.schedule.at is None:
            return  # no scheduler thread while the schedule is off
        if self.start_scheduler:
            self.schedule.start()  # installs, starts APScheduler, catches up
        else:  # screenshots: the job is planned by the given clock and never fires by itself
            self.schedule.set_time(self.schedule.at)
            self.schedule.catch_up("start-up")
        self.nextRunChanged.emit()

    def apply_settings(self) -> None:
        """The settings dialog saved: a new time, or the schedule switched on or off.

        No catch-up here: saving the settings never starts a backup by itself.
        """
        at = parse_time(self.env.settings.schedule_time)
        if at == self.schedule.at:
            return
        log.info("Scheduled backup: %s", at.strftime("%H:%M") if at else "off")
        self.schedule.set_time(at)
        if (at is not None and self.started and self.start_scheduler
                and not self.schedule.scheduler.running):
            self.schedule.scheduler.start()
        self.nextRunChanged.emit()

    @Slot()
    def tick(self) -> None:
        """Once a minute: a jump of the clock means the machine slept; catch up once."""
        if self.wake.tick():
            log.info("The clock jumped: the computer woke from sleep")
            self.catch_up("wake")

    def catch_up(self, why: str) -> bool:
        return self.schedule.catch_up(why)

    def next_run(self) -> datetime | None:
        return self.schedule.next_run() if self.schedule.at is not None else None

    @property
    def enabled(self) -> bool:
        return self.schedule.at is not None

    def stop(self) -> None:
        self.wake_timer.stop()
        self.schedule.stop()

    # --- firing --------------------------------------------------------------------------------

    def job(self, reason: str) -> None:
        """APScheduler's job (any thread): hand over to the UI thread, nothing else."""
        self.fired.emit(reason)

    @Slot(str)
    def _fire(self, reason: str) -> None:
        session = self.session
        if session.is_closed or session.org is None or session.user.is_super_admin:
            return self._decide(reason, NOT_HERE)
        if session.backup_running or self.checking:
            return self._decide(reason, BUSY)
        task = session.refresh(check_due=True)
        if task is None:
            return self._decide(reason, NOT_HERE)
        self.checking = True
        org_id = session.org.id

        def checked(overview) -> None:
            self.checking = False
            if not overview.backup_due or overview.organization.id != org_id:
                return self._decide(reason, NOT_DUE)
            if session.start_backup("schedule", force=False) is None:
                return self._decide(reason, BUSY)
            self._decide(reason, STARTED)

        def failed(message: str, _error: object) -> None:
            self.checking = False
            log.warning("Scheduled backup (%s): could not check: %s", reason, message)
            self._decide(reason, FAILED)

        task.on_finished(checked)
        task.on_failed(failed)

    def _decide(self, reason: str, decision: str) -> None:
        log.info("Scheduled backup (%s): %s", reason, decision)
        self.decided.emit(reason, decision)


# --- words for the window's status line and the tray's tooltip ---------------------------------


def when_words(when: datetime, today: date) -> str:
    """'today at 10:00', 'yesterday at 08:57', 'tomorrow at 18:00', else the full date."""
    days = (when.date() - today).days
    relative = {0: "today", -1: "yesterday", 1: "tomorrow"}.get(days)
    if relative:
        return f"{relative} at {when:%H:%M}"
    return wording.date_time(when)


def last_backup_words(last: LastBackup | None, today: date) -> str:
    if last is None:
        return "No backup yet."
    outcome = "succeeded" if last.ok else "failed"
    return f"Last backup {outcome} {when_words(last.when, today)}."


def next_run_words(glue: ScheduleGlue | None, today: date, super_admin: bool = False,
                   org_enabled: bool = True) -> str:
    """The next scheduled run, in words; none while the organization's switch is off (the
    scheduled job would find nothing to do, so promising a time would not be true)."""
    if super_admin:
        return "No scheduled backups for a super admin."
    if not org_enabled:
        return "No automatic backup while it is off."
    if glue is None or not glue.enabled:
        return "Scheduled daily backup: off (File → Settings…)."
    next_run = glue.next_run()
    if next_run is None:
        return f"Scheduled daily backup at {glue.schedule.at:%H:%M}."
    return f"Next scheduled backup: {when_words(next_run, today)}."
