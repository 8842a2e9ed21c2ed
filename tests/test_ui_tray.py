"""The scheduled backup in the window, the tray icon and its notifications, the warnings.

The schedule runs on a controllable clock (tests/clock.py) and a paused APScheduler: a test
calls the glue's catch-up, its wake tick or the job itself, and waits for what the window
does; nothing sleeps. The warnings rule is a pure function, tested with fixed dates.
"""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from PySide6.QtCore import QObject, Signal

from desktop_backup.backup import run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.errors import DesktopBackupError
from desktop_backup.history import AuditEntry, SlotRecord, ensure_tables, recent
from desktop_backup.organizations import find_organization
from desktop_backup.scheduler import JOB_DEFAULTS
from desktop_backup.ui.app import Console
from desktop_backup.ui.restore_context import RestoreOutcome
from desktop_backup.ui.schedule import BUSY, NOT_DUE, NOT_HERE, STARTED
from desktop_backup.ui.tray import FAILED, IDLE, RUNNING, tray_icon
from desktop_backup.weekview import backup_warnings, last_backup
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock

pytest_plugins = ["tests.ui_support"]  # ui, env, clock, consoles…
WAIT_MS = 15_000
MAPPING = SchemaMapping()
WED = datetime(2026, 11, 25, 10, 0)  # the FakeClock's day, naive as the tables keep it


# --- the warnings rule (pure) -------------------------------------------------------------------


def run(day_offset: int, outcome: str, weekday: str | None = None, message: str | None = None,
        hour: int = 9) -> AuditEntry:
    when = WED + timedelta(days=day_offset, hours=hour - 10)
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return AuditEntry(action="backup", outcome=outcome, organization_id=1, trigger="login",
                      day_of_week=weekday or days[when.weekday()], message=message,
                      occurred_at=when)


def slot(weekday: str, status: str, when: datetime) -> SlotRecord:
    return SlotRecord(1, 1, 3, weekday, "f.zip", "/b/f.zip", 10, status, None,
                      when.replace(hour=0), when)


def test_no_backup_at_all_is_a_warning():
    assert backup_warnings(WED.date(), {}, []) == [
        "No backup of this organization has succeeded yet."]
    assert last_backup({}, []) is None


def test_a_last_success_older_than_two_days_is_a_warning():
    two_days = [run(-2, "success")]  # Monday: two days ago is still fine
    assert backup_warnings(WED.date(), {}, two_days) == []
    three_days = [run(-3, "success")]  # Sunday
    assert backup_warnings(WED.date(), {}, three_days) == [
        "The last successful backup was 3 days ago (Sun 22 Nov 2026)."]
    # The web app's backup (a slot record, no audit entry) counts as a success.
    records = {"tuesday": slot("tuesday", "success", WED - timedelta(days=1))}
    assert backup_warnings(WED.date(), records, three_days) == []


def test_a_weekday_that_failed_twice_in_a_row_is_a_warning():
    audit = [run(-1, "failed", message="The disk is full."),  # this Tuesday
             run(-2, "success"),
             run(-8, "failed", message="The folder is gone.")]  # last Tuesday
    assert backup_warnings(WED.date(), {}, audit) == [
        "Tuesday's backup has failed twice in a row: The disk is full."]
    # A cancel in between is the person's choice, not a run: still twice in a row.
    cancelled = AuditEntry(action="backup", outcome="cancelled", organization_id=1,
                           day_of_week="tuesday", occurred_at=WED - timedelta(days=1, hours=2))
    assert len(backup_warnings(WED.date(), {}, [*audit, cancelled])) == 1
    # A success on Tuesday after the failures (the web app's, say) clears it.
    records = {"tuesday": slot("tuesday", "success", WED - timedelta(hours=12))}
    assert backup_warnings(WED.date(), records, audit) == []
    # Failures on two different weekdays are not "in a row" for either.
    assert backup_warnings(WED.date(), {}, [run(-1, "failed"), run(-2, "failed"),
                                            run(-2, "success", hour=8)]) == []


def test_the_last_outcome_ignores_cancels_and_takes_the_newest():
    audit = [AuditEntry(action="backup", outcome="cancelled", organization_id=1,
                        occurred_at=WED),
             run(-1, "failed", message="The disk is full."), run(-2, "success")]
    last = last_backup({}, audit)
    assert not last.ok and last.message == "The disk is full."
    assert last.when == WED - timedelta(days=1, hours=1)
    # A slot record that says failed is not read as a failure (it is also a cancel's mark).
    records = {"wednesday": slot("wednesday", "failed", WED)}
    assert last_backup(records, audit[2:]).ok


# --- the window: fixtures -----------------------------------------------------------------------


@pytest.fixture
def paused_scheduler():
    """A real APScheduler that never fires on the real clock during a test."""
    scheduler = BackgroundScheduler(job_defaults=dict(JOB_DEFAULTS))
    scheduler.start(paused=True)
    yield scheduler
    if scheduler.running:
        scheduler.shutdown(wait=False)


@pytest.fixture
def open_console(env, consoles, paused_scheduler):
    def start(db_url: str, tray: bool = False) -> Console:
        console = Console(env, db_url, tray_available=lambda: tray,
                          scheduler=lambda: paused_scheduler)
        consoles.append(console)
        console.start()
        return console
    return start


class StandInWizard(QObject):
    restoreDone = Signal(object)


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.session.backup_running and not window.session.runner.busy,
                    timeout=WAIT_MS)


def backups(url: str) -> list[AuditEntry]:
    engine = open_engine(url)
    try:
        return [e for e in recent(engine, ensure_tables(engine)[1], 1) if e.action == "backup"]
    finally:
        engine.dispose()


def decisions(glue) -> list[str]:
    """What each firing of the schedule decided, in order."""
    seen: list[str] = []
    glue.decided.connect(lambda _reason, decision: seen.append(decision))
    return seen


# --- the schedule -------------------------------------------------------------------------------


def test_start_up_catch_up_runs_the_days_backup_once_then_never_again(
        qtbot, ui, open_console, sqlite_demo_db, env, clock):
    env.settings.auto_backup_on_login = False
    env.settings.schedule_time = "09:00"  # passed: the clock says 10:00
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    glue = console.schedule
    seen = decisions(glue)  # before the first overview is read: it starts the schedule
    with qtbot.waitSignal(window.session.backupFinished, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    assert seen == [STARTED]
    assert [e.trigger for e in backups(sqlite_demo_db)] == ["schedule"]

    clock.advance(hours=3)
    with qtbot.waitSignal(glue.decided, timeout=WAIT_MS):
        assert glue.catch_up("wake")
    glue.job("schedule")  # APScheduler's own firing, the same day
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    assert seen == [STARTED, NOT_DUE, NOT_DUE]
    assert len(backups(sqlite_demo_db)) == 1
    assert "Next scheduled backup:" in window.backup_status.text()
    assert "09:00" in window.backup_status.text()


def test_a_wake_after_the_scheduled_time_catches_up_once(qtbot, ui, open_console,
                                                         sqlite_demo_db, env, clock):
    env.settings.auto_backup_on_login = False
    env.settings.schedule_time = "18:00"  # not yet: the clock says 10:00
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    glue = console.schedule
    seen = decisions(glue)  # before the first overview is read: it starts the schedule
    qtbot.waitUntil(lambda: glue.started, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    assert seen == [] and backups(sqlite_demo_db) == []
    assert glue.wake_timer.isActive() and glue.wake_timer.interval() == 60_000

    clock.advance(seconds=60)
    glue.tick()  # a regular minute: no wake, nothing asked
    clock.advance(hours=9, minutes=30)  # the laptop slept through 18:00
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        glue.tick()
    clock.advance(seconds=60)
    glue.tick()
    wait_idle(qtbot, window)
    assert seen == [STARTED]
    assert [e.trigger for e in backups(sqlite_demo_db)] == ["schedule"]


def test_the_job_never_overlaps_a_login_run(qtbot, ui, open_console, sqlite_demo_db, env):
    gate = env.backup_runner = ui.Gate()
    env.settings.schedule_time = "09:00"
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "medp.admin")
    glue = console.schedule
    seen = decisions(glue)  # before the first overview is read: it starts the schedule
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: seen == [BUSY], timeout=WAIT_MS)  # the start-up catch-up
    # APScheduler fires on its own thread while the login's backup runs.
    thread = threading.Thread(target=glue.job, args=("schedule",))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=WAIT_MS)
    assert seen == [BUSY, BUSY] and window.session.backup_task is not None
    gate.release.set()
    wait_idle(qtbot, window)
    with qtbot.waitSignal(glue.decided, timeout=WAIT_MS) as decided:
        glue.job("schedule")
    assert decided.args[1] == NOT_DUE
    assert [e.trigger for e in backups(sqlite_demo_db)] == ["login"]


def test_the_schedule_is_off_by_default_and_not_for_a_super_admin(qtbot, ui, open_console,
                                                                  sqlite_demo_db, env):
    console = open_console(sqlite_demo_db)
    window = ui.log_in(console, "superadmin")
    glue = console.schedule
    assert not glue.enabled and glue.next_run() is None
    env.settings.schedule_time = "09:00"
    window.session.settingsChanged.emit()
    assert glue.enabled
    with qtbot.waitSignal(glue.decided, timeout=WAIT_MS) as decided:
        glue.job("schedule")
    assert decided.args[1] == NOT_HERE
    assert backups(sqlite_demo_db) == []


# --- the tray -----------------------------------------------------------------------------------


def test_tray_icon_and_tooltip_follow_idle_running_and_failed(qtbot, ui, open_console,
                                                              sqlite_demo_db, env, tmp_path):
    gate = env.backup_runner = ui.Gate()
    env.settings.schedule_time = "18:00"
    console = open_console(sqlite_demo_db, tray=True)
    window = ui.log_in(console, "medp.admin")
    tray = console.tray
    assert window.tray_available and tray.icon.isVisible()
    qtbot.waitUntil(lambda: tray.state == RUNNING, timeout=WAIT_MS)
    assert "Backing up now…" in tray.icon.toolTip()
    assert tray.icon.icon().cacheKey() == tray_icon(RUNNING).cacheKey()
    assert not tray.backup_action.isEnabled()
    gate.release.set()
    wait_idle(qtbot, window)
    assert tray.state == IDLE
    tip = tray.icon.toolTip().splitlines()
    assert tip[0] == "Desktop Backup – Medplus Pharmacy, Pune"
    assert tip[1] == "Last backup succeeded today at 10:00."
    assert tip[-1].startswith("Next scheduled backup: ") and tip[-1].endswith(" 18:00.")
    assert tray.icon.icon().cacheKey() == tray_icon(IDLE).cacheKey()

    # The backup folder's drive is unplugged: Back up now from the tray fails.
    blocker = tmp_path / "not-a-drive"
    blocker.write_text("")
    env.settings.backup_dir = str(blocker / "backups")
    env.backup_runner = run_backup
    with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS):
        tray.backup_action.trigger()
    wait_idle(qtbot, window)
    assert tray.state == FAILED
    assert tray.icon.toolTip().splitlines()[1] == "Last backup failed today at 10:00."
    assert len({tray_icon(s).cacheKey() for s in (IDLE, RUNNING, FAILED)}) == 3
    failed = tray.notifications[-1]
    assert failed.kind == "critical" and failed.shown
    assert failed.title == "Backup failed – Medplus Pharmacy, Pune"
    assert "does not exist" in failed.message
    names = [a.objectName() for a in tray.menu.actions() if not a.isSeparator()]
    assert names == ["trayOpenAction", "trayBackupAction", "trayQuitAction"]


def test_notifications_success_by_setting_and_restore_done(qtbot, ui, open_console,
                                                           sqlite_demo_db, env):
    console = open_console(sqlite_demo_db, tray=True)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupDone, timeout=WAIT_MS):
        pass
    tray = console.tray
    assert tray.notifications == []  # success is not notified unless asked for
    env.settings.notify_on_success = True
    wait_idle(qtbot, window)
    with qtbot.waitSignal(tray.notified, timeout=WAIT_MS) as notified:
        window.backup_button.click()
    assert notified.args[0] == "Backup done – Medplus Pharmacy, Pune"
    assert "org_MEDP_wednesday_backup.zip" in notified.args[1]
    wait_idle(qtbot, window)
    # The restore wizard's outcome (a stand-in wizard: the restore itself is tested in
    # test_ui_restore.py) arrives through the session, as the restore launcher hands it on.
    wizard = StandInWizard()
    wizard.restoreDone.connect(window.session.restore_finished)
    wizard.restoreDone.emit(RestoreOutcome(True, "Medplus Pharmacy was restored."))
    assert tray.notifications[-1].title == "Restore done – Medplus Pharmacy, Pune"
    assert tray.notifications[-1].message == "Medplus Pharmacy was restored."
    wizard.restoreDone.emit(RestoreOutcome(False, "Cancelled.", cancelled=True))
    assert len(tray.notifications) == 2  # a cancel is the person's own doing
    wizard.restoreDone.emit(RestoreOutcome(False, "The connection was lost."))
    assert tray.notifications[-1].kind == "critical"
    assert tray.notifications[-1].title == "Restore failed – Medplus Pharmacy, Pune"


def test_closing_hides_in_the_tray_and_quit_quits(qtbot, ui, open_console, sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db, tray=True)
    window = ui.log_in(console, "medp.admin")
    wait_idle(qtbot, window)
    tray = console.tray
    with qtbot.waitSignal(window.hiddenToTray, timeout=WAIT_MS):
        window.close()
    assert not window.isVisible() and not window.session.is_closed
    assert tray.notifications[-1].title == "Desktop Backup is still running"
    tray.open_action.trigger()
    assert window.isVisible()
    with qtbot.waitSignal(console.finished, timeout=WAIT_MS):
        tray.quit_action.trigger()
    assert window.session.is_closed and not tray.icon.isVisible()


def test_without_a_tray_closing_quits_and_notifications_are_only_recorded(
        qtbot, ui, open_console, sqlite_demo_db, env, tmp_path):
    blocker = tmp_path / "not-a-drive"
    blocker.write_text("")
    env.settings.backup_dir = str(blocker / "backups")
    console = open_console(sqlite_demo_db, tray=False)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.backupFailed, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, window)
    tray = console.tray
    assert not tray.icon.isVisible() and not window.tray_available
    assert [(n.title, n.shown) for n in tray.notifications] == [
        ("Backup failed – Medplus Pharmacy, Pune", False)]
    with qtbot.waitSignal(console.finished, timeout=WAIT_MS):
        window.close()
    assert window.session.is_closed


def test_warnings_show_in_a_banner_and_in_the_tooltip(qtbot, ui, open_console, sqlite_demo_db,
                                                      env, tmp_path):
    engine = open_engine(sqlite_demo_db)
    try:
        with engine.connect() as conn:
            org = find_organization(conn, MAPPING, "MEDP")
        actor = Actor(3, "medp.admin")
        env.prepare_default_folder()
        sunday = FakeClock(FakeClock().now - timedelta(days=3))
        run_backup(Site(engine, MAPPING, sunday), org, actor, env.backup_folder, trigger="login")
        blocker = tmp_path / "not-a-drive"
        blocker.write_text("")
        for days in (8, 1):  # last Tuesday and this Tuesday
            with pytest.raises(DesktopBackupError):
                run_backup(Site(engine, MAPPING, FakeClock(FakeClock().now - timedelta(days=days))),
                           org, actor, blocker / "backups", trigger="login")
    finally:
        engine.dispose()
    env.settings.auto_backup_on_login = False
    console = open_console(sqlite_demo_db, tray=True)
    window = ui.log_in(console, "medp.admin")
    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
        pass
    banner = window.warning_banner
    assert banner.isVisible() and banner.kind == "failed"
    assert "The last successful backup was 3 days ago (Sun 22 Nov 2026)." in banner.message()
    assert "Tuesday's backup has failed twice in a row: The backup folder" in banner.message()
    tip = console.tray.icon.toolTip()
    assert "⚠ The last successful backup was 3 days ago (Sun 22 Nov 2026)." in tip
    assert "⚠ Tuesday's backup has failed twice in a row." in tip
    assert console.tray.state == FAILED  # Tuesday's failure is the newest run
    assert "Scheduled daily backup: off" in window.backup_status.text()
    # Today's backup, by hand: the stale warning goes, the Tuesday one stays.
    with qtbot.waitSignal(window.session.overviewLoaded, timeout=WAIT_MS):
        window.backup_button.click()
    wait_idle(qtbot, window)
    assert "3 days ago" not in banner.message() and "Tuesday" in banner.message()
    assert console.tray.state == IDLE


def test_the_schedule_time_from_the_settings_is_planned(qtbot, ui, open_console,
                                                        sqlite_demo_db, env):
    env.settings.auto_backup_on_login = False
    env.settings.schedule_time = "21:15"
    console = open_console(sqlite_demo_db)
    ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: console.schedule.started, timeout=WAIT_MS)
    next_run = console.schedule.next_run()
    assert (next_run.hour, next_run.minute) == (21, 15)
    assert console.schedule.schedule.at == time(21, 15)
    job = console.schedule.schedule.scheduler.get_job("daily-backup")
    assert job.coalesce is True and job.misfire_grace_time == 12 * 3600
