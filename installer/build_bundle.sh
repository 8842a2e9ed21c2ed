#!/usr/bin/env bash
# Build the one-folder app with PyInstaller into dist/desktop-backup (Linux, macOS), then run
# its self-check. On macOS the spec also makes "dist/Desktop Backup.app" (the window app only;
# no console twin), which is self-checked instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m pip install --quiet "pyinstaller>=6.10,<7"
"$PY" -m PyInstaller installer/desktop-backup.spec --noconfirm --clean \
    --distpath dist --workpath build/pyinstaller
# No QT_QPA_PLATFORM: the self-check starts the window platform the app will use (cocoa on a
# Mac; xcb or wayland on a Linux desktop), and says so when there is no display (CI).
if [ "$(uname)" = "Darwin" ]; then
    "dist/Desktop Backup.app/Contents/MacOS/desktop-backup" --self-check
else
    dist/desktop-backup/desktop-backup --self-check
    # Help ▸ Guide links the restore documentation shipped beside the program.
    test -f dist/desktop-backup/_internal/docs/restore.md \
        || { echo "the bundle lacks docs/restore.md (Help ▸ Guide links it)" >&2; exit 1; }
    # The console twin (the command line on Windows) runs the same program.
    dist/desktop-backup/desktop-backup-cli --version
fi
