"""What Linux can check of the installers: the spec's bundle settings, the one version number.

The spec is evaluated as PyInstaller would run it, with recording stand-ins for its build
steps (Analysis, EXE, COLLECT, BUNDLE) and sys.platform set to the target, so the macOS .app's
Info.plist and the Windows version resource are checked here without building on those OSes.
"""

from __future__ import annotations

import re
import sys
import tomllib
import types
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import desktop_backup
from desktop_backup import __version__
from desktop_backup.awake import kept_awake
from desktop_backup.ui.single_instance import WINDOWS_MUTEX

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "installer" / "desktop-backup.spec"


@dataclass
class Built:
    """One build step the spec asked for: its kind, positional and keyword arguments."""

    kind: str
    args: tuple
    kwargs: dict
    pure: list = field(default_factory=list)
    scripts: list = field(default_factory=list)
    binaries: list = field(default_factory=list)
    datas: list = field(default_factory=list)


def _recorder(kind: str, built: list[Built]):
    def step(*args, **kwargs) -> Built:
        built.append(Built(kind, args, kwargs))
        return built[-1]
    return step


def _stub_module(monkeypatch, name: str, **attributes) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    monkeypatch.setitem(sys.modules, name, module)


def evaluate_spec(monkeypatch, target: str) -> list[Built]:
    """Run the spec for `target` (a sys.platform value); what it built, in order."""
    built: list[Built] = []
    for name in ("PyInstaller", "PyInstaller.utils", "PyInstaller.utils.win32"):
        _stub_module(monkeypatch, name)
    _stub_module(monkeypatch, "PyInstaller.utils.hooks", collect_all=lambda _p: ([], [], []),
                 collect_submodules=lambda _p: [], copy_metadata=lambda _p: [])
    _stub_module(monkeypatch, "PyInstaller.utils.win32.versioninfo", **{
        name: _recorder(name, built) for name in (
            "VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct",
            "VarFileInfo", "VarStruct")})
    monkeypatch.setattr(sys, "platform", target)
    monkeypatch.setattr(sys, "path", list(sys.path))
    names = {kind: _recorder(kind, built) for kind in ("Analysis", "PYZ", "EXE", "COLLECT",
                                                       "BUNDLE")}
    exec(compile(SPEC.read_text(), str(SPEC), "exec"),
         {"__name__": "__main__", "SPECPATH": str(SPEC.parent), **names})
    return built


def _one(built: list[Built], kind: str) -> Built:
    found = [b for b in built if b.kind == kind]
    assert len(found) == 1, f"{len(found)} {kind} steps"
    return found[0]


def bundle_info_plist(bundle: Built) -> dict:
    """The Info.plist PyInstaller 6 writes for this BUNDLE (building/osx.py): an executable
    built with console=True makes it LSBackgroundOnly, then the spec's info_plist is merged."""
    executables = [a for part in bundle.args if isinstance(part, Built)
                   for a in ([part] if part.kind == "EXE" else part.args)
                   if isinstance(a, Built) and a.kind == "EXE"]
    plist = {"CFBundleShortVersionString": bundle.kwargs.get("version", "0.0.0")}
    if any(exe.kwargs.get("console", True) for exe in executables):
        plist["LSBackgroundOnly"] = True
    plist.update(bundle.kwargs.get("info_plist") or {})
    return plist


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_macos_app_is_a_normal_window_app(monkeypatch):
    built = evaluate_spec(monkeypatch, "darwin")
    bundle = _one(built, "BUNDLE")
    collected = _one(built, "COLLECT")
    assert bundle.args[0] is collected
    executables = [a for a in collected.args if isinstance(a, Built) and a.kind == "EXE"]
    assert [e.kwargs["name"] for e in executables] == ["desktop-backup"]  # no CLI twin inside
    assert executables[0].kwargs["console"] is False
    plist = bundle_info_plist(bundle)
    assert "LSBackgroundOnly" not in plist
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == __version__
    assert plist["LSAppNapIsDisabled"] is True
    # PySide6-Essentials 6.8+ (the pyproject allows up to 6.11) is built for macOS 13.
    assert _version_tuple(plist["LSMinimumSystemVersion"]) >= (13, 0)
    assert bundle.kwargs["name"] == "Desktop Backup.app"


def test_windows_has_a_window_app_a_console_twin_and_the_version_resource(monkeypatch):
    built = evaluate_spec(monkeypatch, "win32")
    executables = {b.kwargs["name"]: b for b in built if b.kind == "EXE"}
    assert {n: e.kwargs["console"] for n, e in executables.items()} == {
        "desktop-backup": False, "desktop-backup-cli": True}
    assert all(e.kwargs["icon"].endswith("desktop-backup.ico") for e in executables.values())
    resource = executables["desktop-backup"].kwargs["version"]
    assert resource.kind == "VSVersionInfo"
    fixed = resource.kwargs["ffi"]
    expected = _version_tuple(__version__)[:3] + (0,)
    assert fixed.kwargs["filevers"] == fixed.kwargs["prodvers"] == expected
    strings = {b.args[0]: b.args[1] for b in built if b.kind == "StringStruct"}
    assert strings["FileVersion"] == strings["ProductVersion"] == __version__
    assert not any(b.kind == "BUNDLE" for b in built)


def test_linux_builds_the_folder_with_both_executables(monkeypatch):
    built = evaluate_spec(monkeypatch, "linux")
    assert [b.kwargs["name"] for b in built if b.kind == "EXE"] == [
        "desktop-backup", "desktop-backup-cli"]
    assert not any(b.kind in ("BUNDLE", "VSVersionInfo") for b in built)


def test_the_version_is_written_in_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "desktop_backup.__version__"}
    assert version("desktop-backup") == __version__ == desktop_backup.__version__
    # No installer file spells a version of its own.
    literal = re.compile(r"\b\d+\.\d+\.\d+\b")
    for path in ("installer/windows/desktop-backup.iss", "installer/windows/build.ps1",
                 "installer/macos/build_dmg.sh", "installer/build_bundle.sh"):
        text = (ROOT / path).read_text()
        assert __version__ not in literal.findall(text), path
    iss = (ROOT / "installer" / "windows" / "desktop-backup.iss").read_text()
    assert "#error" in iss and "/DAppVersion" in iss
    assert "/DAppVersion=$version" in (ROOT / "installer" / "windows" / "build.ps1").read_text()


def _project_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(line) for line in project["project"]["dependencies"]]


@pytest.mark.parametrize(("target", "wanted"), [("darwin", True), ("win32", False),
                                                ("linux", False)])
def test_appnope_is_installed_on_macos_only(target, wanted):
    appnope = [r for r in _project_dependencies() if r.name == "appnope"]
    assert len(appnope) == 1
    assert appnope[0].marker.evaluate({"sys_platform": target}) is wanted


def test_the_apps_pinned_requirements_satisfy_the_project():
    pins: dict[str, Requirement] = {}
    for line in (ROOT / "installer" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "=="
               for r in pins.values())
    for wanted in _project_dependencies():
        pin = pins.get(canonicalize_name(wanted.name))
        assert pin is not None, f"{wanted.name} is not pinned in installer/requirements.txt"
        assert wanted.specifier.contains(next(iter(pin.specifier)).version), (wanted, pin)
    assert "mysqlclient" not in pins  # a compiled MySQL client library is never bundled


def test_the_inno_setup_script_stays_per_user_and_safe_to_upgrade():
    iss = (ROOT / "installer" / "windows" / "desktop-backup.iss").read_text()
    setup = dict(re.findall(r"^(\w+)=(.*)$", iss, re.MULTILINE))
    assert setup["PrivilegesRequired"] == "lowest"
    assert "PrivilegesRequiredOverridesAllowed" not in setup  # no "all users" choice
    assert setup["AppMutex"] == "{#AppMutexName}"
    assert f'#define AppMutexName "{WINDOWS_MUTEX}"' in iss  # the mutex the console holds
    assert setup["SetupIconFile"] == "desktop-backup.ico"
    assert (ROOT / "installer" / "windows" / setup["SetupIconFile"]).is_file()
    assert 'Type: filesandordirs; Name: "{app}\\_internal"' in iss
    assert "not UninstallSilent()" in iss  # /VERYSILENT never waits for a message box
    # cmd /k keeps a path with spaces, & or ( whole only inside an extra pair of quotes.
    assert 'Parameters: "/k """"{app}\\{#CliExe}"" --self-check"""' in iss


def test_a_mac_install_without_appnope_still_backs_up(monkeypatch):
    # appnope is a macOS-only dependency; a terminal install that lacks it must not stop the
    # scheduled backup, only lose the activity assertion.
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "appnope", None)  # import appnope raises ImportError
    ran = []
    with kept_awake("test"):
        ran.append(True)
    assert ran == [True]
