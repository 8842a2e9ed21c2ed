"""The scheduled daily backup: a time of day, caught up once after sleep or a closed app.

APScheduler only wakes the console at the chosen time. Whether a backup is still needed is
never remembered here: every firing — the cron job, the catch-up at start-up, the catch-up
after the machine wakes — asks the database (``backup.daily_backup_due``), and the run itself
goes through the same exactly-once claim as a login. So a run missed while the laptop slept
happens once when it wakes, and a run that already happened (here, at login, or on another
workstation) is never repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)

JOB_ID = "daily-backup"
# A missed firing still runs if the scheduler notices it within 12 hours (a machine that
# slept through the night); coalesce turns any number of missed firings into one.
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": 12 * 3600, "max_instances": 1}
# Wall-clock jumps larger than this between two ticks mean the machine slept.
WAKE_GAP = timedelta(minutes=3)


def parse_time(text: str | None) -> time | None:
    """'HH:MM' from the settings, or None when the schedule is off."""
    if not text:
        return None
    try:
        hours, minutes = (int(part) for part in text.strip().split(":"))
        return time(hours, minutes)
    except ValueError:
        return None


def catch_up_due(now: datetime, at: time) -> bool:
    """Has today's scheduled time passed? (Whether a backup is still needed is the
    database's answer, asked by the job itself.)"""
    return now.time() >= at


class WakeDetector:
    """Notices that the machine slept: the clock jumped between two regular ticks."""

    def __init__(self, clock: Callable[[], datetime], gap: timedelta = WAKE_GAP) -> None:
        self.clock = clock
        self.gap = gap
        self.last = clock()

    def tick(self) -> bool:
        now = self.clock()
        woke = now - self.last > self.gap
        self.last = now
        return woke


class DailySchedule:
    """Runs `job(reason)` at the chosen time each day, and catches up once when asked.

    `job` must be cheap when nothing is due: it checks the database and starts the backup
    on the console's worker thread (so a scheduled run never overlaps a login-triggered one
    in this window; the slot claim keeps other workstations out).
    """

    def __init__(self, job: Callable[[str], None], clock: Callable[[], datetime],
                 at: time | None = None, scheduler: BackgroundScheduler | None = None) -> None:
        self.job = job
        self.clock = clock
        self.at = at
        self.scheduler = scheduler or BackgroundScheduler(job_defaults=dict(JOB_DEFAULTS))

    def start(self) -> None:
        """Schedule the job, start the scheduler, and catch up a run missed while closed."""
        self._install()
        if not self.scheduler.running:
            self.scheduler.start()
        self.catch_up("start-up")

    def set_time(self, at: time | None) -> None:
        """The user changed the schedule in the settings (None turns it off)."""
        self.at = at
        self._install()

    def _install(self) -> None:
        if self.scheduler.get_job(JOB_ID):
            self.scheduler.remove_job(JOB_ID)
        if self.at is not None:
            self.scheduler.add_job(self.job, CronTrigger(hour=self.at.hour, minute=self.at.minute),
                                   args=["schedule"], id=JOB_ID, name="Daily backup")

    def next_run(self) -> datetime | None:
        """The next scheduled time after now by `clock`: the same time the scheduler keeps
        (it fires by the wall clock, which `clock` is outside tests), asked of the trigger so
        that a moved clock and a scheduler not yet started answer alike."""
        job = self.scheduler.get_job(JOB_ID)
        if job is None:
            return None
        return job.trigger.get_next_fire_time(None, self.clock())

    def catch_up(self, why: str) -> bool:
        """After start-up or wake: if today's time has passed, let the job decide once."""
        if self.at is None or not catch_up_due(self.clock(), self.at):
            return False
        log.info("Scheduled backup: checking after %s", why)
        self.job(f"catch-up after {why}")
        return True

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
