"""The session without a window: the enabled-state rules, the scheduled backup's decision and
the tray's state and tooltip, each driven through a ConsoleSession on the real demo database.

No MainWindow is built here; what the window draws is tested in test_ui.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_backup import usecases
from desktop_backup.demo import DEMO_PASSWORD
from desktop_backup.history import ensure_tables, recent
from desktop_backup.ui.schedule import BUSY, NOT_DUE, NOT_HERE, STARTED, ScheduleGlue
from desktop_backup.ui.session import (
    COPYING_LINE,
    INFO,
    RESTORE_RUNNING,
    WAIT_FOR_BACKUP,
    ConsoleSession,
    Controls,
    controls_for,
)
from desktop_backup.ui.tray import (
    HIDDEN_NOTE,
    HIDDEN_NOTE_NO_SCHEDULE,
    IDLE,
    RUNNING,
    TrayController,
)
from desktop_backup.work import Actor
from tests.rclone_servers import Server

pytest_plugins = ["tests.ui_support", "tests.keyring_fixtures"]  # env, clock, ui…
WAIT_MS = 15_000


# --- the enabled-state rules (pure) -------------------------------------------------------------


def rules(has_org=True, ready=True, running=False, sqlite=True,
          restore_available=True) -> Controls:
    return controls_for(has_org=has_org, ready=ready, running=running, sqlite=sqlite,
                        restore_available=restore_available)


def test_nothing_but_the_picker_without_an_organization():
    assert rules(has_org=False, ready=False) == Controls(
        backup=False, toggle=False, wait_reason="", picker=True, browse=False, restore=False)


def test_back_up_now_waits_for_the_organizations_week_to_be_read():
    not_read = rules(ready=False)
    assert not not_read.backup
    assert not_read.toggle and not_read.browse and not_read.restore  # the rest can be used
    assert rules().backup


def test_a_running_backup_disables_back_up_now_and_the_picker():
    running = rules(running=True, sqlite=False)
    assert not running.backup and not running.picker
    # A server database takes the switch's and the file actions' writes meanwhile.
    assert running.toggle and running.wait_reason == ""


def test_on_sqlite_the_switch_and_the_file_actions_wait_for_the_backup():
    running = rules(running=True, sqlite=True)
    assert not running.toggle and running.wait_reason == WAIT_FOR_BACKUP
    assert running.browse and running.restore  # the week stays readable; restore says why


def test_restore_needs_the_wizard_and_an_organization():
    assert not rules(restore_available=False).restore
    assert not rules(has_org=False, restore_available=True).restore


# --- a session on the demo database ------------------------------------------------------------


@pytest.fixture
def log_in(qtbot, env, sqlite_demo_db):
    """Log in as the real login does and hand back the session (no window)."""
    made: list[ConsoleSession] = []

    def start(username: str = "medp.admin") -> ConsoleSession:
        result = usecases.login(env.paths, env.settings, sqlite_demo_db, None, None, username,
                                DEMO_PASSWORD, env.throttle())
        session = ConsoleSession(env, result)
        made.append(session)
        return session

    yield start
    for session in made:
        session.cancel_backup()
        qtbot.waitUntil(lambda s=session: not s.backup_running, timeout=WAIT_MS)
        session.close()


def read_week(qtbot, session: ConsoleSession) -> usecases.Overview:
    with qtbot.waitSignal(session.overviewLoaded, timeout=WAIT_MS) as loaded:
        session.refresh()
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    return loaded.args[0]


def back_up(qtbot, session: ConsoleSession) -> None:
    with qtbot.waitSignal(session.overviewLoaded, timeout=WAIT_MS):  # the re-read after it
        assert session.start_backup("manual") is not None
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)


def test_the_session_enables_back_up_now_once_the_week_is_read(qtbot, log_in):
    session = log_in()
    assert session.org is not None and not session.ready
    assert not session.controls().backup
    assert session.start_backup("manual") is None  # as the disabled button says
    read_week(qtbot, session)
    assert session.ready and session.controls().backup
    assert session.latest_backup_size() == 0  # no backup yet
    back_up(qtbot, session)
    sizes = [day.size for day in session.overview.days]
    assert session.latest_backup_size() == max(sizes) > 0


def test_no_backup_starts_while_a_restore_writes(qtbot, log_in):
    session = log_in()
    read_week(qtbot, session)
    writing = [True]
    session.set_restore_guard(lambda: writing[0])
    with qtbot.waitSignal(session.told, timeout=WAIT_MS) as told:
        assert session.start_backup("manual") is None
    assert told.args == [INFO, RESTORE_RUNNING]
    writing[0] = False
    back_up(qtbot, session)


# --- the scheduled backup's decision ------------------------------------------------------------


def decide(qtbot, glue: ScheduleGlue, reason: str = "schedule") -> str:
    """Fire the job as APScheduler does; what the firing decided."""
    with qtbot.waitSignal(glue.decided, timeout=WAIT_MS) as decided:
        glue.job(reason)
    return decided.args[1]


def test_the_scheduled_backup_starts_when_due_then_finds_nothing_to_do(qtbot, log_in):
    session = log_in()
    glue = ScheduleGlue(session, start_scheduler=False)
    with qtbot.waitSignal(session.backupDone, timeout=WAIT_MS):
        assert decide(qtbot, glue) == STARTED
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    assert session.overview.last_backup.ok
    assert decide(qtbot, glue, "wake") == NOT_DUE


def test_the_schedule_is_busy_during_a_backup(qtbot, ui, env, log_in):
    gate = env.backup_runner = ui.Gate()
    session = log_in()
    glue = ScheduleGlue(session, start_scheduler=False)
    read_week(qtbot, session)
    session.start_backup("manual")
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    assert decide(qtbot, glue) == BUSY
    gate.release.set()
    qtbot.waitUntil(lambda: not session.backup_running and not session.runner.busy,
                    timeout=WAIT_MS)
    assert decide(qtbot, glue) == NOT_DUE  # the manual backup covers today


def test_a_due_backup_waits_for_the_restore(qtbot, log_in):
    session = log_in()
    session.set_restore_guard(lambda: True)
    glue = ScheduleGlue(session, start_scheduler=False)
    assert decide(qtbot, glue) == BUSY
    assert not session.backup_running


def test_the_schedule_is_not_for_a_super_admin_nor_a_closed_session(qtbot, log_in):
    admin = log_in("superadmin")
    assert decide(qtbot, ScheduleGlue(admin, start_scheduler=False)) == NOT_HERE
    session = log_in()
    glue = ScheduleGlue(session, start_scheduler=False)
    session.close()
    assert decide(qtbot, glue) == NOT_HERE


# --- the tray -----------------------------------------------------------------------------------


def test_the_tray_follows_the_session(qtbot, ui, env, log_in):
    gate = env.backup_runner = ui.Gate()
    env.settings.schedule_time = "18:00"
    session = log_in()
    glue = ScheduleGlue(session, start_scheduler=False)
    tray = TrayController(session, available=False, schedule=glue)
    assert tray.state == IDLE and not tray.backup_action.isEnabled()  # the week not read yet
    assert tray.tooltip().splitlines()[:2] == ["Desktop Backup – Medplus Pharmacy, Pune",
                                               "Reading the backups…"]
    read_week(qtbot, session)
    tip = tray.tooltip().splitlines()
    assert tip[1] == "No backup yet."
    assert tip[-1] == "Next scheduled backup: today at 18:00."
    assert tray.backup_action.isEnabled()
    assert tray.hidden_note() == HIDDEN_NOTE.format(time="18:00")

    tray.backup_action.trigger()
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    assert tray.state == RUNNING and not tray.backup_action.isEnabled()
    assert tray.icon.toolTip().splitlines()[1] == "Backing up now…"
    with qtbot.waitSignal(session.overviewLoaded, timeout=WAIT_MS):
        gate.release.set()
    assert tray.state == IDLE and tray.backup_action.isEnabled()
    assert tray.icon.toolTip().splitlines()[1] == "Last backup succeeded today at 10:00."


def test_the_tray_asks_for_the_window_when_it_cannot_back_up(qtbot, log_in):
    session = log_in()
    tray = TrayController(session, available=False)
    assert tray.hidden_note() == HIDDEN_NOTE_NO_SCHEDULE  # no schedule given
    with qtbot.waitSignal(tray.openRequested, timeout=WAIT_MS):
        tray.back_up_now()  # the week is not read yet: the window says why
    assert not session.backup_running


# --- off-site copies: what the tray and the cards say, and the network coming back ---------------


@pytest.fixture
def s3_server(tmp_path, memory_keyring):
    server = Server("s3", tmp_path / "server").start()
    yield server
    server.stop()


def set_remote(session: ConsoleSession, remote: str) -> None:
    usecases.set_offsite_remote(session.site(), session.env.paths, session.env.settings,
                                session.org, Actor.of(session.user), remote, test=False)


def remote_copy(server: Server) -> Path:
    return server.shop / "org_1_MEDP" / "org_MEDP_wednesday_backup.zip"


def test_the_tray_and_the_day_card_say_while_a_backup_is_copied_off_site(qtbot, log_in,
                                                                         s3_server):
    session = log_in()
    tray = TrayController(session, available=False)
    set_remote(session, s3_server.remote)
    read_week(qtbot, session)
    assert session.offsite_words() == "" and "off-site" not in tray.icon.toolTip()
    seen = []
    session.offsiteStarted.connect(lambda: seen.append((
        tray.icon.toolTip().splitlines()[2],
        [d.offsite for d in session.days_shown() if d.weekday == "wednesday"])))
    with qtbot.waitSignal(session.offsiteDone, timeout=WAIT_MS):
        back_up(qtbot, session)
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    assert seen == [("Copying Wednesday's backup off-site…", [COPYING_LINE])]
    assert remote_copy(s3_server).is_file()
    assert "Copying" not in tray.icon.toolTip() and session.offsite_words() == ""
    [wednesday] = [d for d in session.days_shown() if d.weekday == "wednesday"]
    assert wednesday.offsite == "Off-site: copied 10:00"


def test_the_tray_and_the_day_card_show_how_far_the_copy_got(qtbot, log_in, s3_server,
                                                            monkeypatch):
    session = log_in()
    tray = TrayController(session, available=False)
    set_remote(session, s3_server.remote)
    read_week(qtbot, session)
    s3_server.stop()
    back_up(qtbot, session)  # the copy waits for the server
    s3_server.start()
    local = session.env.paths.data_dir  # the slot is somewhere under the data folder
    [slot] = [p for p in local.rglob("*wednesday_backup.zip")]
    # rclone reads its flags from RCLONE_* variables: the upload takes about four seconds.
    monkeypatch.setenv("RCLONE_BWLIMIT", f"{max(slot.stat().st_size // 4, 4096)}B")
    seen = []
    session.offsiteProgress.connect(lambda: seen.append((
        tray.icon.toolTip().splitlines()[2],
        next(d.offsite for d in session.days_shown() if d.weekday == "wednesday"))))
    with qtbot.waitSignal(session.offsiteDone, timeout=WAIT_MS):
        session.network_back()
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    assert remote_copy(s3_server).is_file()
    percents = [int(card.rsplit(" ", 1)[1].rstrip("%")) for _tip, card in seen]
    assert len(percents) >= 3 and percents == sorted(percents) and percents[-1] == 100, seen
    assert percents[0] < 100 and any(0 < p < 100 for p in percents)
    tip, card = seen[0]
    assert tip == f"Copying Wednesday's backup off-site… {percents[0]}%"
    assert card == f"{COPYING_LINE} {percents[0]}%"
    assert session.offsite_words() == ""


def test_when_the_network_returns_waiting_copies_go_at_once(qtbot, log_in, s3_server):
    session = log_in()
    set_remote(session, s3_server.remote)
    read_week(qtbot, session)
    s3_server.stop()
    back_up(qtbot, session)  # the upload after it fails: the backoff holds the next try
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    s3_server.start()
    with qtbot.waitSignal(session.offsiteDone, timeout=WAIT_MS):
        session.send_offsite()  # the timer's try: not due yet
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    assert not remote_copy(s3_server).exists()
    with qtbot.waitSignal(session.offsiteDone, timeout=WAIT_MS):
        assert session.network_back() is not None
    qtbot.waitUntil(lambda: not session.runner.busy, timeout=WAIT_MS)
    assert remote_copy(s3_server).is_file()
    [latest] = [e for e in recent(session.engine, ensure_tables(session.engine)[1], 1)
                if e.action == "upload"][:1]
    assert (latest.outcome, latest.trigger) == ("success", "network")
    assert not session.watches_network  # offscreen: the timer alone (and this test) retry


def test_without_a_remote_the_network_coming_back_sends_nothing(log_in):
    assert log_in().network_back() is None
