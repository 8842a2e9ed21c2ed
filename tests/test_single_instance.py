"""One console per user: a second launch brings the first one's window forward and ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from desktop_backup.ui.app import Console
from desktop_backup.ui.single_instance import SingleInstance

pytest_plugins = ["tests.ui_support"]


def test_a_second_guard_asks_the_first_to_show_and_does_not_start(qtbot, tmp_path):
    first = SingleInstance(tmp_path / "data")
    assert first.acquire()
    second = SingleInstance(tmp_path / "data")
    with qtbot.waitSignal(first.showRequested, timeout=5000):
        assert not second.acquire()
    first.release()
    third = SingleInstance(tmp_path / "data")
    assert third.acquire()  # once the first console ended, the next launch is the console
    third.release()


def test_another_data_folder_is_another_console(tmp_path):
    one, other = SingleInstance(tmp_path / "one"), SingleInstance(tmp_path / "other")
    assert one.acquire() and other.acquire()
    one.release()
    other.release()


def _console(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DESKTOP_BACKUP_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "desktop_backup", "gui", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _log_text(home: Path) -> str:
    return "\n".join(p.read_text() for p in home.rglob("desktop-backup.log*"))


def test_a_second_launch_brings_the_running_console_forward_and_exits(tmp_path):
    home = tmp_path / "home"
    first = _console(home, "--db", "sqlite:///" + str(tmp_path / "none.sqlite"))
    try:
        deadline = time.monotonic() + 60
        while not list(home.rglob("console.lock")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first console never started"
            time.sleep(0.2)
        second = _console(home)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, out + err
        assert "already running for this user" in out
        deadline = time.monotonic() + 30
        while "bringing it forward" not in _log_text(home):
            assert time.monotonic() < deadline, _log_text(home)
            time.sleep(0.2)
        assert first.poll() is None  # the first console is still there, once
    finally:
        first.terminate()
        first.communicate(timeout=30)


def test_a_lock_left_by_a_killed_console_does_not_block_the_next(tmp_path):
    home = tmp_path / "home"
    first = _console(home, "--db", "sqlite:///" + str(tmp_path / "none.sqlite"))
    deadline = time.monotonic() + 60
    while not list(home.rglob("console.lock")):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.2)
    first.kill()
    first.communicate(timeout=30)
    guard = SingleInstance(next(home.rglob("console.lock")).parent)
    assert guard.acquire()
    guard.release()


def test_the_running_console_shows_its_window_hidden_in_the_tray(
        qtbot, ui, env, consoles, sqlite_demo_db):
    env.settings.auto_backup_on_login = False
    console = Console(env, sqlite_demo_db, tray_available=lambda: True, start_scheduler=False)
    consoles.append(console)
    console.start()
    window = ui.log_in(console, "medp.admin")
    qtbot.waitUntil(lambda: not window.session.runner.busy, timeout=ui.WAIT_MS)
    with qtbot.waitSignal(window.hiddenToTray, timeout=ui.WAIT_MS):
        window.close()
    assert not window.isVisible()
    first = SingleInstance(env.paths.data_dir)
    assert first.acquire()
    first.showRequested.connect(console.bring_forward)
    try:
        assert not SingleInstance(env.paths.data_dir).acquire()
        qtbot.waitUntil(window.isVisible, timeout=ui.WAIT_MS)
    finally:
        first.release()
