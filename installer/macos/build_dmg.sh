#!/usr/bin/env bash
# On macOS: build "Desktop Backup.app" and the disk image dist/DesktopBackup-<version>.dmg (the
# app and a link to /Applications), from a clean python.org Python 3.11 environment installed
# from installer/requirements.txt (wheels only). Nothing from `make`'s .venv or from Homebrew
# goes into the app. The result runs on the CPU of the Python used (arm64 or Intel) and on
# macOS 13 or later (the spec's LSMinimumSystemVersion).
#
#   bash installer/macos/build_dmg.sh
#   CODESIGN_IDENTITY="Developer ID Application: …" bash installer/macos/build_dmg.sh  # signed
#
# Notarization (notarytool, stapler) runs in .github/workflows/release.yml when its secrets exist.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname)" = "Darwin" ] || { echo "build_dmg.sh runs on macOS only"; exit 2; }
PYTHON=${PYTHON:-/Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11}
[ -x "$PYTHON" ] || { echo "needs python.org's Python 3.11 at $PYTHON (or set PYTHON=…)"; exit 2; }
case "$("$PYTHON" -c 'import sys; print(sys.base_prefix)')" in
    */homebrew/*|*/Cellar/*) echo "$PYTHON is Homebrew's Python: its libraries would ship" \
                                  "inside the app; use python.org's"; exit 2 ;;
esac
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || { echo "$PYTHON is not Python 3.11"; exit 2; }

VENV=build/venv-macos
rm -rf dist build/pyinstaller "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --only-binary=:all: -r installer/requirements.txt
"$VENV/bin/python" -m pip install --quiet --no-deps .
PY="$VENV/bin/python" bash installer/build_bundle.sh
VERSION=$("$VENV/bin/python" -c "import desktop_backup; print(desktop_backup.__version__)")
APP="dist/Desktop Backup.app"

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
fi

stage=$(mktemp -d)
cp -R "$APP" "$stage/"
ln -s /Applications "$stage/Applications"
hdiutil create -volname "Desktop Backup" -srcfolder "$stage" -ov -format UDZO \
    "dist/DesktopBackup-$VERSION.dmg"
rm -rf "$stage"
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "dist/DesktopBackup-$VERSION.dmg"
fi
echo "dist/DesktopBackup-$VERSION.dmg"
