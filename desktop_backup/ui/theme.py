"""Look and feel: Fusion with a light or dark palette, the state icons, the state colours.

Fusion looks the same on Windows, macOS and Linux, so what the screenshots show is what a
shop owner sees. Colours only ever repeat what words and icons already say; each state colour
is picked per palette so that text drawn in it stays readable on the window background.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QProxyStyle,
    QStyle,
    QStyleFactory,
    QStyleOption,
    QStyleOptionComplex,
    QWidget,
)

THEMES = ("system", "light", "dark")

# Text colours for the state words: dark enough on white, light enough on near-black.
_STATE_COLOURS = {
    "light": {"succeeded": "#1b5e20", "failed": "#b71c1c", "running": "#0d47a1",
              "warning": "#8a4600", "info": "#0d47a1", "none": "#5f6368"},
    "dark": {"succeeded": "#81c784", "failed": "#ef9a9a", "running": "#90caf9",
             "warning": "#ffcc80", "info": "#90caf9", "none": "#b0b0b0"},
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
        QPalette.ColorRole.PlaceholderText: "#5c636b", QPalette.ColorRole.Text: "#1f2328",
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
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Highlight: "#3271d6",
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
        global _STYLE
        _STYLE = ClearStyle()  # kept here too: the application does not keep Python's wrapper
        app.setStyle(_STYLE)
    return chosen


_STYLE: QProxyStyle | None = None
_BOXES = (QStyle.PrimitiveElement.PE_IndicatorCheckBox,
          QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck)


class ClearStyle(QProxyStyle):
    """Fusion, with what Fusion draws too faintly made visible in both themes: the keyboard
    focus (faint, and not at all on push buttons and command links) and the outline of an
    unticked box or radio button (near-invisible on a dark window)."""

    def __init__(self) -> None:
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(self, element: QStyle.PrimitiveElement, option: QStyleOption,  # noqa: N802
                      painter: QPainter, widget: QWidget | None = None) -> None:
        if element == QStyle.PrimitiveElement.PE_FrameFocusRect:
            _ring(painter, option, widget)
            return
        super().drawPrimitive(element, option, painter, widget)
        if element in _BOXES or element == QStyle.PrimitiveElement.PE_IndicatorRadioButton:
            _outline(painter, option, round_=element not in _BOXES)

    def drawControl(self, element: QStyle.ControlElement, option: QStyleOption,  # noqa: N802
                    painter: QPainter, widget: QWidget | None = None) -> None:
        super().drawControl(element, option, painter, widget)
        # Push buttons (and the first-run's command links) draw no focus frame of their own.
        if (element == QStyle.ControlElement.CE_PushButton
                and option.state & QStyle.StateFlag.State_HasFocus):
            _ring(painter, option, widget)
        # A tab bar with the focus: Fusion marks its current tab only after a Tab press.
        elif (element == QStyle.ControlElement.CE_TabBarTabLabel and widget is not None
              and widget.hasFocus() and option.state & QStyle.StateFlag.State_Selected):
            _ring(painter, option, widget)


    def drawComplexControl(self, control: QStyle.ComplexControl,  # noqa: N802 - Qt's name
                           option: QStyleOptionComplex, painter: QPainter,
                           widget: QWidget | None = None) -> None:
        super().drawComplexControl(control, option, painter, widget)
        # Fusion marks a focused drop-down or spin box only after a Tab, and faintly.
        if control in _FRAMED and option.state & QStyle.StateFlag.State_HasFocus:
            _ring(painter, option, widget)


_FRAMED = (QStyle.ComplexControl.CC_ComboBox, QStyle.ComplexControl.CC_SpinBox)


def _ring(painter: QPainter, option: QStyleOption, widget: QWidget | None = None) -> None:
    """A 2-pixel ring in the highlight colour: the focus, the same in every widget. Drawn
    once the keyboard moves the focus in that window (Tab, a shortcut), as Fusion does, so a
    mouse click or a screenshot shows no stray frame."""
    keyboard = bool(option.state & QStyle.StateFlag.State_KeyboardFocusChange) or (
        widget is not None
        and widget.window().testAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange))
    if not keyboard:  # (a command link's option never carries the flag: ask its window)
        return
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(option.palette.color(QPalette.ColorRole.Highlight), 2)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(QRectF(option.rect).adjusted(1, 1, -1, -1), 3, 3)
    painter.restore()


def _outline(painter: QPainter, option: QStyleOption, round_: bool) -> None:
    """The box's edge in the placeholder-text colour, which has contrast on either palette."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(option.palette.color(QPalette.ColorRole.PlaceholderText), 1))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    rect = QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5)
    if round_:
        painter.drawEllipse(rect)
    else:
        painter.drawRoundedRect(rect, 2, 2)
    painter.restore()


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
