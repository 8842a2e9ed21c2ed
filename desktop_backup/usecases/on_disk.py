"""What each backup file on disk holds now, so a history row never acts on a file that
holds another backup since."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from desktop_backup import wording
from desktop_backup.archive import ArchiveError, Manifest, open_zip, read_manifest
from desktop_backup.encryption import is_age_file
from desktop_backup.history import AuditEntry


@dataclass(frozen=True)
class FileNow:
    """What a backup file on disk holds now, by its manifest (for the history's rows)."""

    # "" for a file without an identity (older, or the web app's); None when it cannot be
    # read without decrypting the whole file (encrypted): the history then judges by time.
    backup_id: str | None
    made: datetime | None  # in the workstation's time
    partial: str = ""  # "partial: 1 of 21 tables" (archive.Manifest.scope_words)


def files_now(history: list[AuditEntry], now: datetime, also: list[str] | None = None
              ) -> dict[str, FileNow | None]:
    """Each file the history names (and `also`), read once: what it holds now, or None when
    it is gone. Only manifests are read (a few KB each); the web app's JSON is not parsed."""
    out: dict[str, FileNow | None] = {}
    for path in [entry.file for entry in history] + list(also or []):
        if path and path not in out:
            out[path] = file_now(Path(path), now)
    return out


def file_now(path: Path, now: datetime) -> FileNow | None:
    """What one file holds now (its manifest's identity, time and scope); None when gone."""
    try:
        if not path.is_file():
            return None
        if is_age_file(path):  # its manifest is encrypted with the rest
            return FileNow(None, None)
        with open_zip(path) as zf:
            if "manifest.json" not in zf.namelist():
                return FileNow("", None)
            manifest = read_manifest(zf)
    except (ArchiveError, OSError):
        return FileNow("", None)
    return FileNow(manifest.backup_id, manifest_time(manifest, now), manifest.scope_words)


def history_notes(history: list[AuditEntry], files: dict[str, FileNow | None]
                  ) -> dict[int, str]:
    """Why a history row may not act on its file, per entry id: the file now holds another
    backup ("replaced by the 10:42 backup"), was deleted, or is gone. Rows of the same file
    are told apart by the backup's identity; entries from before identities existed, by
    which successful backup of that file is newest (`history` is newest first)."""
    deleted = {e.file for e in history
               if e.action == "delete" and e.outcome == "success" and e.file}
    newest: dict[str, AuditEntry] = {}
    notes: dict[int, str] = {}
    for entry in history:
        if entry.id is None or not entry.file or entry.action == "delete":
            continue
        note = _note(entry, files.get(entry.file), newest, entry.file in deleted)
        if note:
            notes[entry.id] = note
    return notes


def _note(entry: AuditEntry, now: FileNow | None, newest: dict[str, AuditEntry],
          deleted: bool) -> str:
    if now is None:
        return "deleted since" if deleted else "the file is no longer there"
    if entry.backup_id and now.backup_id is not None:
        if entry.backup_id == now.backup_id:
            return ""
        return f"replaced by the {_when(now.made, entry)} backup" if now.made else \
            "replaced by another backup"
    if entry.action == "backup" and entry.outcome == "success":
        latest = newest.setdefault(entry.file or "", entry)
        if latest is not entry:
            return f"replaced by the {_when(latest.occurred_at, entry)} backup"
    return ""


def _when(made: datetime | None, entry: AuditEntry) -> str:
    """'10:42' on the row's own day, 'Thu 26 Nov, 10:42' on another."""
    if made is None:
        return "newer"
    if entry.occurred_at is not None and made.date() == entry.occurred_at.date():
        return f"{made:%H:%M}"
    return wording.date_time(made)


def manifest_time(manifest: Manifest, now: datetime) -> datetime | None:
    """When the archive was made, in the clock's zone (naive), or None if unreadable."""
    try:
        made = datetime.fromisoformat(manifest.created_at)
    except ValueError:
        return None
    if made.tzinfo is not None:
        made = made.astimezone(now.tzinfo).replace(tzinfo=None)
    return made
