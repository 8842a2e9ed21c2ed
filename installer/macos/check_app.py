"""Check a built "Desktop Backup.app" on macOS: a normal app, one version, an honest floor.

Run by the release workflow after the build:  python3 installer/macos/check_app.py APP VERSION
- Info.plist has no LSBackgroundOnly (a console executable would add it: no Dock icon),
  keeps App Nap off, and carries VERSION in CFBundleVersion and CFBundleShortVersionString;
- LSMinimumSystemVersion is at least the newest minimum any bundled Mach-O file was built for
  (the Qt libraries'), so macOS never offers the app to a system it cannot run on.
"""

from __future__ import annotations

import plistlib
import re
import subprocess
import sys
from pathlib import Path

MINOS = re.compile(r"cmd LC_BUILD_VERSION.*?minos (\d+(?:\.\d+)*)"
                   r"|cmd LC_VERSION_MIN_MACOSX.*?version (\d+(?:\.\d+)*)", re.DOTALL)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def minimum_versions(otool_output: str) -> list[str]:
    """The minimum macOS versions in ``otool -l`` output (one per architecture)."""
    return [a or b for a, b in MINOS.findall(otool_output)]


def newest_minimum(app: Path) -> tuple[str, Path] | None:
    """The highest minimum macOS of any Mach-O file in the app, and that file."""
    best: tuple[str, Path] | None = None
    for path in app.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic not in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xce\xfa\xed\xfe"):
            continue
        run = subprocess.run(["otool", "-l", str(path)], capture_output=True, text=True)
        for found in minimum_versions(run.stdout):
            if best is None or version_tuple(found) > version_tuple(best[0]):
                best = (found, path)
    return best


def problems(app: Path, version: str) -> list[str]:
    plist = plistlib.loads((app / "Contents" / "Info.plist").read_bytes())
    found = []
    if plist.get("LSBackgroundOnly"):
        found.append("Info.plist has LSBackgroundOnly: the app would have no Dock icon")
    if plist.get("LSAppNapIsDisabled") is not True:
        found.append("Info.plist does not disable App Nap (LSAppNapIsDisabled)")
    for key in ("CFBundleVersion", "CFBundleShortVersionString"):
        if plist.get(key) != version:
            found.append(f"Info.plist {key} is {plist.get(key)!r}, not {version!r}")
    floor = plist.get("LSMinimumSystemVersion", "0")
    newest = newest_minimum(app)
    if newest and version_tuple(newest[0]) > version_tuple(floor):
        found.append(f"LSMinimumSystemVersion is {floor} but {newest[1].name} needs macOS "
                     f"{newest[0]}")
    return found


def main(argv: list[str]) -> int:
    app, version = Path(argv[1]), argv[2]
    found = problems(app, version)
    for line in found:
        print(f"FAIL  {line}")
    if not found:
        print(f"{app.name}: a normal app, version {version}, minimum macOS agrees with Qt")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
