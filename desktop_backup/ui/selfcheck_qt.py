"""The self-check's Qt step: the window platform the app will use, its plugins and icons."""

from __future__ import annotations

import os
import sys

from desktop_backup.qtplatform import HEADLESS, display_available, probe_platform
from desktop_backup.selfcheck import FAIL, PASS, WARN, Step


def qt_step() -> Step:
    """Start the platform a window would use (first in a child process, since a platform
    that cannot load aborts), then draw a widget and every icon with it in this process."""
    asked = os.environ.get("QT_QPA_PLATFORM", "")
    if not asked and not _has_display():  # Linux without a desktop session
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        note = "no display here, so only the offscreen platform was tried"
    else:
        probe = probe_platform()
        if not probe.ok:
            return Step("Qt window toolkit", FAIL, probe.sentence())
        note = (f"QT_QPA_PLATFORM={asked} asks for it; no window platform was tried"
                if asked.startswith(HEADLESS) else "")
    return _draw(note)


def _has_display() -> bool:
    return display_available({k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"})


def _draw(note: str) -> Step:
    import PySide6
    from PySide6.QtCore import qVersion
    from PySide6.QtWidgets import QApplication, QLabel

    from desktop_backup.ui.theme import icon, resources_dir

    app = QApplication.instance() or QApplication(["desktop-backup-self-check"])
    label = QLabel("Desktop Backup")
    label.resize(240, 40)
    image = label.grab()
    icons = sorted(p.stem for p in (resources_dir() / "icons").glob("*.svg"))
    drawn = [name for name in icons if not icon(name).pixmap(32, 32).isNull()]
    detail = (f"PySide6 {PySide6.__version__} (Qt {qVersion()}), platform "
              f"'{app.platformName()}', {len(drawn)} of {len(icons)} icons drawn")
    if image.isNull() or not icons or len(drawn) != len(icons):
        return Step("Qt window toolkit", FAIL, detail)
    if note:
        return Step("Qt window toolkit", WARN, f"{detail} ({note})")
    return Step("Qt window toolkit", PASS, detail)


def run_probe() -> int:
    """``--qt-probe``: start the window platform (this may abort the process), print its name."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    print(app.platformName())
    return 0
