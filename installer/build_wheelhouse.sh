#!/usr/bin/env bash
# An offline wheelhouse: every wheel desktop-backup needs on THIS operating system and Python,
# so that on a shop's machine with no internet
#     python -m pip install --no-index --find-links wheelhouse desktop-backup
# works. Run it on the target OS (Windows, macOS, Linux): Qt and the database drivers ship
# platform wheels. With --check, installs from it into a fresh venv offline and self-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${WHEELHOUSE:-wheelhouse}
rm -rf "$OUT"
"$PY" -m pip wheel --quiet --wheel-dir "$OUT" .
echo "wheelhouse: $(ls "$OUT" | wc -l) wheels in $OUT"
if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp -d)
    "$PY" -m venv "$tmp/venv"
    # Nothing but the wheelhouse: no index, no configured find-links or constraints.
    env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT \
        PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/python" -m pip install --quiet --no-index \
        --find-links "$OUT" desktop-backup
    QT_QPA_PLATFORM=offscreen "$tmp/venv/bin/desktop-backup" --self-check
    rm -rf "$tmp"
fi
