"""The scheduled backup: caught up once after sleep or a closed app, never repeated."""

from __future__ import annotations

from datetime import time

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from desktop_backup.backup import daily_backup_due, run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.history import ensure_tables, recent
from desktop_backup.organizations import find_organization
from desktop_backup.scheduler import JOB_DEFAULTS, DailySchedule, WakeDetector, parse_time
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock

MAPPING = SchemaMapping()


@pytest.fixture
def paused_scheduler():
    """A real APScheduler that never fires on the real clock during a test."""
    scheduler = BackgroundScheduler(job_defaults=dict(JOB_DEFAULTS))
    scheduler.start(paused=True)
    yield scheduler
    scheduler.shutdown(wait=False)


@pytest.fixture
def shop(sqlite_demo_db, tmp_path):
    """The console's scheduled job against a real database, as the window wires it."""
    engine = open_engine(sqlite_demo_db)
    clock = FakeClock()
    runs: list[str] = []

    def job(reason: str) -> None:
        with engine.connect() as conn:
            org = find_organization(conn, MAPPING, "MEDP")
        if daily_backup_due(engine, org, is_super_admin=False, clock=clock):
            runs.append(reason)
            run_backup(Site(engine, MAPPING, clock), org, Actor(3, "medp.admin"), tmp_path,
                       trigger="schedule")

    yield engine, clock, job, runs
    engine.dispose()


def _backups(engine):
    return [e for e in recent(engine, ensure_tables(engine)[1], 1) if e.action == "backup"]


def test_a_run_missed_while_closed_happens_once_at_start_up_then_never_again(
        shop, paused_scheduler):
    engine, clock, job, runs = shop
    clock.now = clock.now.replace(hour=11)  # the app opens at 11:00; the schedule said 09:00
    schedule = DailySchedule(job, clock, at=time(9, 0), scheduler=paused_scheduler)
    schedule.start()
    assert runs == ["catch-up after start-up"]
    clock.advance(hours=2)  # the laptop slept and woke: checks again, nothing to do
    assert schedule.catch_up("wake")
    assert runs == ["catch-up after start-up"]
    assert [e.trigger for e in _backups(engine)] == ["schedule"]
    # Tomorrow, before the scheduled time: nothing yet; the next run is at 09:00.
    clock.advance(days=1, hours=-6)  # 07:00 tomorrow
    assert not schedule.catch_up("start-up")
    next_run = schedule.next_run()
    assert (next_run.date(), next_run.hour, next_run.minute) == (clock().date(), 9, 0)


def test_a_backup_made_at_login_satisfies_the_schedule(shop, paused_scheduler, tmp_path):
    engine, clock, job, runs = shop
    with engine.connect() as conn:
        org = find_organization(conn, MAPPING, "MEDP")
    run_backup(Site(engine, MAPPING, clock), org, Actor(3, "medp.admin"), tmp_path, trigger="login")
    clock.now = clock.now.replace(hour=18)
    DailySchedule(job, clock, at=time(17, 30), scheduler=paused_scheduler).start()
    assert runs == []
    assert [e.trigger for e in _backups(engine)] == ["login"]


def test_missed_firings_are_coalesced_with_a_deliberate_grace_time(paused_scheduler):
    schedule = DailySchedule(lambda reason: None, FakeClock(), at=time(13, 15),
                             scheduler=paused_scheduler)
    schedule.start()
    job = paused_scheduler.get_job("daily-backup")
    assert job.coalesce is True and job.misfire_grace_time == 12 * 3600
    assert job.max_instances == 1
    schedule.set_time(None)
    assert schedule.next_run() is None and paused_scheduler.get_job("daily-backup") is None


def test_wake_is_noticed_from_a_jump_of_the_clock():
    clock = FakeClock()
    detector = WakeDetector(clock)
    clock.advance(seconds=30)
    assert not detector.tick()
    clock.advance(hours=7)  # asleep overnight
    assert detector.tick()
    clock.advance(seconds=30)
    assert not detector.tick()


@pytest.mark.parametrize("text, expected", [("09:30", time(9, 30)), ("", None), (None, None),
                                            ("late", None), ("25:00", None)])
def test_schedule_time_from_settings(text, expected):
    assert parse_time(text) == expected
