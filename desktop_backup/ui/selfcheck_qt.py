"""The self-check's Qt step: the toolkit, its platform plugin and the app's icons load."""

from __future__ import annotations

import os

from desktop_backup.selfcheck import FAIL, PASS, Step


def qt_step() -> Step:
    """Draw a widget offscreen: proves PySide6, a platform plugin and the SVG icon plugin."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
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
    return Step("Qt window toolkit", PASS, detail)
