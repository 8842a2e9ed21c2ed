"""Look and feel: Fusion with a light or dark palette, the state icons, the state colours.

Fusion looks the same on Windows, macOS and Linux, so what the screenshots show is what a
shop owner sees. Colours only ever repeat what words and icons already say; each state colour
is picked per palette so that text drawn in it stays readable on the window background.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = ("system", "light", "dark")

# Text colours for the state words: dark enough on white, light enough on near-black.
_STATE_COLOURS = {
    "light": {"succeeded": "#1b5e20", "failed": "#b71c1c", "running": "#0d47a1",
              "warning": "#8a4600", "none": "#5f6368"},
    "dark": {"succeeded": "#81c784", "failed": "#ef9a9a", "running": "#90caf9",
             "warning": "#ffcc80", "none": "#b0b0b0"},
}


def resources_dir() -> Path:
    """The package's resources/ folder: shipped inside the wheel and the PyInstaller bundle
    (where the spec copies it to the same relative place)."""
    return Path(__file__).resolve().parents[1] / "resources"


@lru_cache(maxsize=16)
def icon(name: str) -> QIcon:
    """An icon from resources/icons; an empty icon (words still say it) when missing."""
    path = resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def light_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#f3f4f6", QPalette.ColorRole.WindowText: "#1f2328",
        QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f6f8fa",
        QPalette.ColorRole.ToolTipBase: "#ffffdc", QPalette.ColorRole.ToolTipText: "#1f2328",
        QPalette.ColorRole.PlaceholderText: "#6e7781", QPalette.ColorRole.Text: "#1f2328",
        QPalette.ColorRole.Button: "#e9ebee", QPalette.ColorRole.ButtonText: "#1f2328",
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Highlight: "#1565c0",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#0b57d0",
        QPalette.ColorRole.Mid: "#c4c8cc", QPalette.ColorRole.Midlight: "#e1e4e8",
        QPalette.ColorRole.Dark: "#8c959f", QPalette.ColorRole.Shadow: "#6e7781",
        QPalette.ColorRole.Light: "#ffffff",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    _disabled(palette, "#8c959f")
    return palette


def dark_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#2a2b2e", QPalette.ColorRole.AlternateBase: "#303134",
        QPalette.ColorRole.ToolTipBase: "#3c4043", QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6", QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#35363a", QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Highlight: "#4a8fe7",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.Mid: "#5f6368", QPalette.ColorRole.Midlight: "#4a4b4f",
        QPalette.ColorRole.Dark: "#17181a", QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Light: "#505155",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    _disabled(palette, "#7f8388")
    return palette


def _disabled(palette: QPalette, colour: str) -> None:
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))


def apply_theme(app: QApplication, theme: str = "system") -> str:
    """Fusion plus the chosen palette; returns the theme actually used (light or dark)."""
    chosen = theme if theme in ("light", "dark") else _system_theme()
    # Palette first: setting the style then repolishes every widget with the new palette
    # already in place, so widgets that pick colours by palette (the day cells) see it.
    app.setPalette(dark_palette() if chosen == "dark" else light_palette())
    if "fusion" in QStyleFactory.keys() or "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    return chosen


def _system_theme() -> str:
    hints = QGuiApplication.styleHints()
    try:
        from PySide6.QtCore import Qt

        if hints.colorScheme() == Qt.ColorScheme.Dark:
            return "dark"
    except AttributeError:  # Qt before 6.5 cannot tell
        pass
    return "light"


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def state_colour(state: str, palette: QPalette | None = None) -> QColor:
    """The colour for a state's words, readable on this palette's window background."""
    scheme = _STATE_COLOURS["dark" if is_dark(palette) else "light"]
    return QColor(scheme.get(state, scheme["none"]))
