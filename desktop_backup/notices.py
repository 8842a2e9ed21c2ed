"""Third-party licence notices: what the app ships, under which licence, with the full texts.

Qt for Python (PySide6, shiboken6) and psycopg are LGPL-3.0: the app must say so and ship the
licence texts, and the user may replace those libraries (the one-folder app keeps them as
separate files). The texts come from each package's own metadata (the spec copies it into the
frozen app); PySide6's wheels carry none, so the GNU texts ship in resources/licenses.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

LICENSES_DIR = Path(__file__).resolve().parent / "resources" / "licenses"
# Every distribution the installers bundle (installer/desktop-backup.spec copies their metadata).
SHIPPED = ("PySide6-Essentials", "shiboken6", "psycopg", "psycopg-binary", "SQLAlchemy",
           "keyring", "APScheduler", "tzlocal", "bcrypt", "argon2-cffi", "PyMySQL", "orjson",
           "ijson", "platformdirs")
# Licences whose texts we ship ourselves, for packages whose metadata has none.
BUNDLED_TEXTS = {"LGPL-3.0-only": ("LGPL-3.0.txt", "GPL-3.0.txt")}
LGPL_NOTE = ("Qt for Python (PySide6, with Qt) and psycopg are used under the GNU Lesser General "
             "Public License v3: you may replace them with your own builds of the same "
             "version; their sources are at https://code.qt.io and "
             "https://github.com/psycopg/psycopg.")


@dataclass(frozen=True)
class Notice:
    """One shipped package: its version, licence expression and the licence texts."""

    package: str
    version: str
    licence: str
    texts: tuple[tuple[str, str], ...]  # (file name, text)


def third_party_notices() -> list[Notice]:
    """The notices of every shipped package this installation has."""
    notices = []
    for name in SHIPPED:
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        licence = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
        notices.append(Notice(name, dist.version, licence.strip() or "see its licence text",
                              _texts(dist, licence)))
    return notices


def _texts(dist, licence: str) -> tuple[tuple[str, str], ...]:
    texts = []
    for entry in dist.files or ():
        inside_metadata = ".dist-info" in str(entry)
        named = entry.parent.name == "licenses" or entry.name.upper().startswith(
            ("LICENSE", "COPYING", "NOTICE"))
        if inside_metadata and named:
            path = Path(dist.locate_file(entry))
            if path.is_file():
                texts.append((entry.name, path.read_text(encoding="utf-8", errors="replace")))
    if not texts:
        for key, files in BUNDLED_TEXTS.items():
            if key in licence:
                texts += [(f, (LICENSES_DIR / f).read_text(encoding="utf-8")) for f in files]
    return tuple(texts)


def notices_text(notices: list[Notice] | None = None) -> str:
    """Everything as one plain text: a summary line per package, then the full texts."""
    notices = third_party_notices() if notices is None else notices
    lines = ["Desktop Backup includes these third-party packages.", "", LGPL_NOTE, ""]
    lines += [f"- {n.package} {n.version}: {n.licence}" for n in notices]
    for notice in notices:
        for name, text in notice.texts:
            lines += ["", "=" * 60, f"{notice.package} {notice.version}: {name}", "=" * 60,
                      text.rstrip()]
    return "\n".join(lines) + "\n"
