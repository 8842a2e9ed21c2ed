"""The text of a PDF that Qt's printing wrote, for tests to read what a printed page says.

Qt draws each line of a QTextDocument as one BT … ET block of ``<glyph> Tj`` operators in
a Flate-compressed content stream, and maps glyphs back to characters in a ToUnicode CMap.
This reads exactly that (not PDFs in general); no PDF library is needed for it.
"""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_RANGE_LIST = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*\[([^\]]*)\]")
_RANGE_STEP = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_CHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_HEX = re.compile(rb"<([0-9A-Fa-f]+)>")


def _streams(pdf: bytes) -> list[bytes]:
    found = []
    for match in _STREAM.finditer(pdf):
        raw = match.group(1)
        try:
            found.append(zlib.decompress(raw))
        except zlib.error:
            found.append(raw)
    return found


def _glyph_map(streams: list[bytes]) -> dict[int, str]:
    glyphs: dict[int, str] = {}
    for stream in streams:
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", stream, re.S):
            for first, _last, targets in _RANGE_LIST.findall(block):
                for offset, target in enumerate(_HEX.findall(targets)):
                    glyphs[int(first, 16) + offset] = chr(int(target, 16))
            for first, last, target in _RANGE_STEP.findall(_RANGE_LIST.sub(b"", block)):
                for offset in range(int(last, 16) - int(first, 16) + 1):
                    glyphs[int(first, 16) + offset] = chr(int(target, 16) + offset)
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.S):
            for glyph, target in _CHAR.findall(block):
                glyphs[int(glyph, 16)] = chr(int(target, 16))
    return glyphs


def pdf_lines(pdf: bytes) -> list[str]:
    """Each drawn line of text, in drawing order."""
    streams = _streams(pdf)
    glyphs = _glyph_map(streams)
    lines = []
    for stream in streams:
        for block in re.findall(rb"BT(.*?)ET", stream, re.S):
            shown = re.findall(rb"<([0-9A-Fa-f]+)>\s*Tj", block)
            if shown:
                # Qt's CMap gives the space glyph as a tab (U+0009); read it as the space
                line = "".join(glyphs.get(int(g, 16), "?") for g in shown)
                lines.append(line.replace("\t", " "))
    return lines
