#!/usr/bin/env bash
# On macOS: build "Desktop Backup.app" (App Nap off, see the spec) and a disk image
# dist/DesktopBackup-<version>.dmg with the app and a link to /Applications.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname)" = "Darwin" ] || { echo "build_dmg.sh runs on macOS only"; exit 2; }
PY=${PY:-.venv/bin/python}
bash installer/build_bundle.sh
VERSION=$("$PY" -c "import desktop_backup; print(desktop_backup.__version__)")
stage=$(mktemp -d)
cp -R "dist/Desktop Backup.app" "$stage/"
ln -s /Applications "$stage/Applications"
hdiutil create -volname "Desktop Backup" -srcfolder "$stage" -ov -format UDZO \
    "dist/DesktopBackup-$VERSION.dmg"
rm -rf "$stage"
echo "dist/DesktopBackup-$VERSION.dmg"
