"""`desktop-backup --self-check`: the installation proves itself, step by step."""

from __future__ import annotations

import os
import subprocess
import sys

from tzlocal import get_localzone

from desktop_backup.qtplatform import missing_packages
from desktop_backup.selfcheck import (
    FAIL,
    PASS,
    Step,
    drivers_step,
    hashing_step,
    run_self_check,
    schedule_step,
)


def test_self_check_runs_every_step_and_passes_here():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-m", "desktop_backup", "--self-check"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    names = [line.split(":")[0].split("  ", 1)[1] for line in lines[:-1]]
    assert names == ["Version", "Qt window toolkit", "Password store", "Database drivers",
                     "Password hashing", "Scheduler", "Licence notices", "Off-site transport",
                     "Demo database",
                     "Login", "Backup", "Verify", "Restore"]
    assert all(line.startswith(("PASS", "WARN")) for line in lines[:-1])
    assert lines[-1].startswith("Self-check passed")


def test_a_failing_step_fails_the_verdict():
    printed: list[str] = []
    report = run_self_check(lambda: Step("Qt window toolkit", FAIL, "no platform plugin"),
                            emit=printed.append)
    assert not report.ok
    assert "FAIL  Qt window toolkit: no platform plugin" in printed
    assert printed[-1].startswith("Self-check FAILED: Qt window toolkit")
    assert [s.outcome for s in report.steps if s.name == "Restore"] == [PASS]


def test_the_new_steps_load_drivers_hash_and_schedule_without_a_server():
    drivers, hashing, schedule = drivers_step(), hashing_step(), schedule_step()
    assert drivers.outcome == PASS, drivers.detail
    assert "PostgreSQL (psycopg)" in drivers.detail and "(PyMySQL)" in drivers.detail
    assert hashing.outcome == PASS and "argon2" in hashing.detail, hashing.detail
    assert schedule.outcome == PASS, schedule.detail
    zone = str(get_localzone())
    assert f"time zone {zone}" in schedule.detail


def _self_check(env_changes: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {**os.environ}
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-m", "desktop_backup", "--self-check"],
                          capture_output=True, text=True, env=env, timeout=300)


def _qt_line(run: subprocess.CompletedProcess) -> str:
    return next(line for line in run.stdout.splitlines() if "Qt window toolkit" in line)


def test_without_a_display_the_qt_step_says_only_offscreen_was_tried():
    run = _self_check({"QT_QPA_PLATFORM": None, "DISPLAY": None, "WAYLAND_DISPLAY": None})
    assert run.returncode == 0, run.stdout + run.stderr
    assert _qt_line(run).startswith("WARN") and "only the offscreen platform" in _qt_line(run)


def test_with_a_display_the_qt_step_tries_the_real_window_platform():
    # A display that does not exist: the xcb platform cannot start, and the self-check must
    # say so (before this, it drew offscreen and passed).
    run = _self_check({"QT_QPA_PLATFORM": None, "DISPLAY": ":97", "WAYLAND_DISPLAY": None})
    assert run.returncode == 1, run.stdout + run.stderr
    line = _qt_line(run)
    assert line.startswith("FAIL  Qt window toolkit: The window cannot open: Qt's 'xcb'"), line
    missing = missing_packages("xcb")
    if missing:  # this machine lacks xcb libraries: the exact apt-get line is named
        assert f"`sudo apt-get install -y {' '.join(missing)}`" in line
    assert run.stdout.strip().splitlines()[-1].startswith("Self-check FAILED: Qt window")
