"""The `desktop-backup` program: the command line, with the window handed to it.

The one module outside desktop_backup.ui that may import the window (and so Qt): cli.py is
core and never does. Qt is imported only when a command needs the window, so the command
line keeps working on a machine where PySide6 cannot load.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from desktop_backup import cli
from desktop_backup.auth import Session
from desktop_backup.config import AppPaths, Settings
from desktop_backup.errors import DesktopBackupError
from desktop_backup.selfcheck import FAIL, Step


def open_window(paths: AppPaths, settings: Settings, db_url: str | None) -> int:
    """The console window until it is closed; its exit status."""
    try:
        # Imported here, not above: loading Qt must not stop the command line (see module).
        from desktop_backup.ui.app import run_gui
        from desktop_backup.ui.env import Env
    except ImportError as exc:
        raise DesktopBackupError(
            f"The console window cannot start here ({exc}); the command line still works."
        ) from exc
    return run_gui(Env(paths=paths, settings=settings), db_url)


def screenshot(paths: AppPaths, settings: Settings, engine: Engine, session: Session) -> Path:
    """`make run` without a display: the main window drawn offscreen, saved as a PNG."""
    from desktop_backup.ui.app import screenshot_headless  # Qt only when asked (see module)

    return screenshot_headless(paths, settings, engine, session)


def qt_probe() -> int:
    """``--qt-probe``: can Qt's window platform start here (qtplatform.probe_platform)."""
    from desktop_backup.ui.selfcheck_qt import run_probe  # Qt only when asked (see module)

    return run_probe()


def qt_step() -> Step:
    """The self-check's step for the window toolkit."""
    try:
        from desktop_backup.ui.selfcheck_qt import qt_step as step  # Qt only when asked
    except ImportError as exc:
        return Step("Qt window toolkit", FAIL, f"PySide6 cannot be loaded ({exc})")
    return step()


WINDOW = cli.Window(run=open_window, screenshot=screenshot, qt_probe=qt_probe, qt_step=qt_step)


def main(argv: Sequence[str] | None = None, paths: AppPaths | None = None) -> int:
    """The console script's entry (pyproject's [project.scripts], the frozen app)."""
    return cli.main(argv, paths, window=WINDOW)


if __name__ == "__main__":
    sys.exit(main())
