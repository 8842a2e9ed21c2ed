#!/usr/bin/env bash
# Build the one-folder app with PyInstaller into dist/desktop-backup (Linux, macOS), then run
# its self-check. On macOS the spec also makes "dist/Desktop Backup.app".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m pip install --quiet "pyinstaller>=6.10,<7"
"$PY" -m PyInstaller installer/desktop-backup.spec --noconfirm --clean \
    --distpath dist --workpath build/pyinstaller
QT_QPA_PLATFORM=offscreen dist/desktop-backup/desktop-backup --self-check
# The console twin (the command line on Windows) runs the same program.
dist/desktop-backup/desktop-backup-cli --version
