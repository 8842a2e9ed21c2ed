"""Reading what a backup holds, for assertions: rows as dicts per table."""

from __future__ import annotations

from pathlib import Path

from desktop_backup.opening import open_archive


def archive_rows(path: Path) -> dict[str, list[dict]]:
    """Every table's rows in the archive, as {column: value} dicts in file order."""
    with open_archive(path) as archive:
        out = {}
        for entry in archive.manifest.tables:
            names = [c["name"] for c in entry.columns]
            out[entry.name] = [dict(zip(names, row, strict=True))
                               for batch in archive.batches(entry) for row in batch]
        return out


def archive_manifest(path: Path):
    with open_archive(path) as archive:
        return archive.manifest
