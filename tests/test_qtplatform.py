"""`make run` on a Linux desktop: a Qt platform that cannot start is named, with its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_backup.qtplatform import (
    debian_package,
    missing_libraries,
    missing_packages,
    plugin_files,
    probe_platform,
)


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libEGL.so.1", "libegl1"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libz.so.1", "zlib1g"),
    ("libX11.so.6", "libx11-6"),
])
def test_a_missing_library_is_named_by_its_debian_package(soname, package):
    assert debian_package(soname) == package


def test_ldd_finds_what_a_plugin_lacks(tmp_path):
    # The xcb plugin of the installed PySide6, checked as it is on this machine.
    files = plugin_files("xcb")
    assert [f.name for f in files] == ["libqxcb.so"]
    run = subprocess.run(["ldd", str(files[0])], capture_output=True, text=True)
    expected = sorted({line.split()[0] for line in run.stdout.splitlines()
                       if "not found" in line})
    assert sorted(missing_libraries(files)) == expected


def test_a_platform_that_starts_is_reported_by_name():
    probe = probe_platform({**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert probe.ok and probe.platform == "offscreen"


def test_a_platform_that_aborts_is_caught_and_explained():
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    probe = probe_platform({**env, "DISPLAY": ":97"})  # no X server answers there
    assert not probe.ok and probe.platform == "xcb"
    assert probe.sentence().startswith("The window cannot open: Qt's 'xcb' platform")
    assert list(probe.missing_packages) == missing_packages("xcb")


def test_make_run_with_a_broken_display_falls_back_to_the_headless_job(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":97", DESKTOP_BACKUP_HOME=str(tmp_path / "home"),
               DESKTOP_BACKUP_PASSWORD="unused")
    run = subprocess.run([sys.executable, "-m", "desktop_backup", "run-demo"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "The window cannot open: Qt's 'xcb' platform" in run.stdout
    assert "Meanwhile the same job runs headless" in run.stdout
    shots = list((tmp_path / "home").rglob("main-window.png"))
    assert len(shots) == 1 and shots[0].stat().st_size > 10_000


def test_the_window_command_explains_a_platform_that_cannot_start(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":97", DESKTOP_BACKUP_HOME=str(tmp_path / "home"))
    run = subprocess.run([sys.executable, "-m", "desktop_backup", "gui"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # not an abort (-6) inside Qt
    assert run.stderr.startswith("desktop-backup: The window cannot open: Qt's 'xcb' platform")
