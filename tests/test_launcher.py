"""The console script is launcher.main: the command line (core) with the window handed to it;
cli.py itself never loads Qt or the window's package."""

from __future__ import annotations

import subprocess
import sys

from desktop_backup import cli, launcher


def test_the_command_line_loads_no_qt_and_no_window():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, desktop_backup.cli, desktop_backup.usecases; "
         "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', "
         "'desktop_backup.ui'))))"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_without_a_window_the_gui_command_says_so(app_paths, capsys):
    assert cli.main(["gui"], paths=app_paths) == 1
    assert "The console window cannot start from here" in capsys.readouterr().err


def test_the_entry_module_hands_the_window_in(qapp, capsys):
    assert cli.main(["--qt-probe"]) == 1  # no window handed in: nothing to probe with
    assert launcher.main(["--qt-probe"]) == 0
    assert capsys.readouterr().out.strip().endswith("offscreen")  # conftest's platform
