"""Can Qt open a window here? Asked in a child process, because a failing platform aborts.

A Qt platform plugin that cannot load (on Linux, usually a missing xcb library) ends the
process inside ``QApplication()``; nothing can catch that. So ``make run`` and the self-check
start this same program with ``--qt-probe`` first (``ui/selfcheck_qt.run_probe``); when it
dies they name the exact ``apt-get install`` line. Qt's own message names xcb-cursor0 even
when another library is the one missing, so the plugin's libraries are asked of ``ldd``.
Qt-free on purpose.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROBE_ARG = "--qt-probe"
PROBE_TIMEOUT_S = 60
HEADLESS = ("offscreen", "minimal")
NOT_FOUND = re.compile(r"^\s*(\S+\.so[.\d]*)\s+=>\s+not found", re.MULTILINE)
FAILED_PLUGIN = re.compile(r'platform plugin "([\w-]+)"')
# Qt opens these with dlopen, so ldd does not list them; missing, the plugin refuses to load.
DLOPENED = {"xcb": ["xcb-cursor"]}
# Debian/Ubuntu packages whose names do not follow the soname (libfoo.so.N -> libfooN).
PACKAGE_EXCEPTIONS = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
                      "libgobject-2.0.so.0": "libglib2.0-0", "libz.so.1": "zlib1g"}


@dataclass(frozen=True)
class PlatformProbe:
    """What starting Qt's window platform did: its name, or why it could not start."""

    ok: bool
    platform: str
    missing_packages: tuple[str, ...] = ()
    error: str = ""

    @property
    def apt_line(self) -> str:
        return "sudo apt-get install -y " + " ".join(self.missing_packages)

    def sentence(self) -> str:
        """One sentence a person at this desktop can act on."""
        if self.ok:
            return f"Qt's '{self.platform}' window platform starts here."
        if self.missing_packages:
            return (f"The window cannot open: Qt's '{self.platform}' platform needs system "
                    f"libraries this machine lacks; install them with `{self.apt_line}`.")
        return (f"The window cannot open: Qt's '{self.platform}' platform did not start "
                f"({self.error or 'no reason given'}).")


def display_available(env: dict[str, str] | None = None) -> bool:
    """Whether a window could be shown: always on Windows and macOS, else DISPLAY/Wayland;
    never when QT_QPA_PLATFORM asks for a platform without windows."""
    env = os.environ if env is None else env
    if env.get("QT_QPA_PLATFORM", "").startswith(HEADLESS):
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def self_command() -> list[str]:
    """This program, as the frozen app or as ``python -m desktop_backup``."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "desktop_backup"]


def probe_platform(env: dict[str, str] | None = None) -> PlatformProbe:
    """Start Qt's window platform in a child process and report how that went."""
    env = dict(os.environ if env is None else env)
    try:
        run = subprocess.run([*self_command(), PROBE_ARG], capture_output=True, text=True,
                             env=env, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return PlatformProbe(False, requested_platform(env), error=str(exc))
    if run.returncode == 0 and run.stdout.strip():
        return PlatformProbe(True, run.stdout.strip().splitlines()[-1])
    plugin = _failed_plugin(run.stderr) or requested_platform(env)
    missing = missing_packages(plugin)
    return PlatformProbe(False, plugin, tuple(missing), _last_line(run.stderr))


def requested_platform(env: dict[str, str]) -> str:
    """The platform Qt picks without being told: QT_QPA_PLATFORM, else per OS and session."""
    if env.get("QT_QPA_PLATFORM"):
        return env["QT_QPA_PLATFORM"].split(":")[0].split(";")[0]
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "cocoa"
    return "wayland" if env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY") else "xcb"


def missing_packages(plugin: str) -> list[str]:
    """The Debian/Ubuntu packages that would let ``plugin`` load (empty off Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    sonames = missing_libraries(plugin_files(plugin))
    sonames += [f"lib{name}.so.0" for name in DLOPENED.get(plugin, [])
                if ctypes.util.find_library(name) is None]
    return sorted({debian_package(soname) for soname in sonames})


def plugin_files(plugin: str) -> list[Path]:
    """The platform plugin's shared objects inside PySide6 (frozen or installed)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return []
    qt = Path(next(iter(spec.submodule_search_locations))) / "Qt"
    base = plugin.split("-")[0]  # wayland-egl is in libqwayland*.so
    return sorted((qt / "plugins" / "platforms").glob(f"libq{base}*.so"))


def missing_libraries(files: list[Path]) -> list[str]:
    """Sonames ``ldd`` cannot find for these files (their own and their libraries')."""
    found: list[str] = []
    for path in files:
        try:
            run = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for name in NOT_FOUND.findall(run.stdout):
            if name not in found:
                found.append(name)
    return found


def debian_package(soname: str) -> str:
    """``libxcb-icccm.so.4`` -> ``libxcb-icccm4``; a name ending in a digit gets a hyphen."""
    if soname in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[soname]
    stem, _, version = soname.partition(".so.")
    stem = stem.lower()
    major = version.split(".")[0]
    return f"{stem}-{major}" if stem[-1].isdigit() else f"{stem}{major}"


def _failed_plugin(stderr: str) -> str | None:
    match = FAILED_PLUGIN.search(stderr)
    return match.group(1) if match else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if "could not" in line.lower()), lines[-1] if lines
                else "")
