"""Opening any backup file, ours or the web app's, and verifying one: the door every reader uses.

A file is either this console's format (:mod:`desktop_backup.archive`: a manifest and a member
of rows per table) or the web app's layout (:mod:`desktop_backup.seedformat`); both are
opened here, above the two, so neither format module needs the other's reader. An encrypted
backup (an age file, :mod:`desktop_backup.encryption`) is either of them inside: it is
decrypted as it is opened, with the identities given or the organizations' keys this
workstation holds, into a scratch file no other process can read.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyrage import x25519

from desktop_backup.archive import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    ArchiveError,
    Manifest,
    SeedRows,
    TableEntry,
    iter_batches,
    left_out_words,
    open_zip,
    read_manifest,
    scope_words,
)
from desktop_backup.authenticity import judge
from desktop_backup.collector import rarer_passes
from desktop_backup.encryption import KeyMissing, is_age_file, open_decrypted
from desktop_backup.errors import DesktopBackupError
from desktop_backup.orgkeys import held_keys
from desktop_backup.seedformat import SEED_METADATA_MEMBER, find_seed_member, read_seed


class OpenArchive:
    """A backup opened for reading: its manifest and its rows, whichever layout it has.

    `unlisted` names the zip's members the backup does not account for (junk slipped in,
    the web app's source code): reported, never read."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, manifest: Manifest,
                 seed_tables: SeedRows | None = None, unlisted: list[str] | None = None,
                 encrypted: bool = False) -> None:
        self.path = path
        self.zip = zf
        self.manifest = manifest
        self._seed_tables = seed_tables
        self.unlisted = unlisted or []
        self.encrypted = encrypted  # an age file, decrypted as it is read
        self.on_close: list[Callable[[], None]] = []  # the decrypted stream's close

    def batches(self, entry: TableEntry) -> Iterator[list[list]]:
        if self._seed_tables is None:
            yield from iter_batches(self.zip, entry)
        else:
            yield from self._seed_tables.batches(entry)

    def close(self) -> None:
        try:
            if self._seed_tables is not None:
                self._seed_tables.close()
            self.zip.close()
        finally:
            for close in self.on_close:
                close()

    def __enter__(self) -> OpenArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_archive(path: Path, org_ids: Iterable[int] = (),
                 identities: Sequence[x25519.Identity] = ()) -> OpenArchive:
    """Open a native or web-app backup; the structure is checked, rows are read lazily.

    An encrypted one is opened with `identities` and the keys this workstation holds of
    the organizations `org_ids` (the keyring is asked only for an encrypted file); none
    that opens it is the KeyMissing sentence."""
    path = Path(path)
    if not is_age_file(path):
        return _open_zip(path, open_zip(path))
    stream = open_decrypted(path, [*identities, *held_keys(org_ids)])
    try:
        archive = _open_zip(path, open_zip(path, stream), encrypted=True)
    except BaseException:
        stream.close()
        raise
    archive.on_close.append(stream.close)
    return archive


def _open_zip(path: Path, zf: zipfile.ZipFile, encrypted: bool = False) -> OpenArchive:
    try:
        names = zf.namelist()
        if MANIFEST in names:
            manifest = read_manifest(zf)
            known = {MANIFEST, *(t.member for t in manifest.tables)}
            return OpenArchive(path, zf, manifest, None, [n for n in names if n not in known],
                               encrypted)
        member = find_seed_member(zf)
        if member is None:
            raise ArchiveError(f"{path.name} is a zip file but not a backup: it has neither a "
                               "Desktop Backup manifest nor the web app's backup JSON.")
        manifest, tables = read_seed(zf, member)
        known = {member, SEED_METADATA_MEMBER}
        return OpenArchive(path, zf, manifest, tables, [n for n in names if n not in known],
                           encrypted)
    except BaseException:
        zf.close()
        raise


def unlisted_note(names: list[str]) -> str:
    """One sentence on the members a backup does not account for, which were not read."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"The archive also holds {len(names)} file{'s' if len(names) != 1 else ''} that "
            f"are not part of the backup ({shown}); they were not read.")


@dataclass
class VerifyReport:
    """The verdict on one backup file, for a shop owner and for tools (--json)."""

    path: str
    ok: bool
    message: str
    kind: str = ""
    organization: dict = field(default_factory=dict)
    created_at: str = ""
    weekday: str = ""
    trigger: str = ""
    tables: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    authenticity: str = ""  # authenticity.AUTHENTIC, CHANGED, FOREIGN or UNCHECKED
    authenticity_message: str = ""
    unlisted: list[str] = field(default_factory=list)  # members not read (OpenArchive)
    backup_id: str = ""
    scope: dict = field(default_factory=dict)  # Manifest.scope
    encrypted: bool = False
    recipients: list[str] = field(default_factory=list)  # Manifest.encryption's fingerprints

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "path": self.path, "kind": self.kind,
                "organization": self.organization, "created_at": self.created_at,
                "weekday": self.weekday, "trigger": self.trigger, "tables": self.tables,
                "rows": self.rows, "authenticity": self.authenticity,
                "authenticity_message": self.authenticity_message, "unlisted": self.unlisted,
                "backup_id": self.backup_id, "scope": self.scope,
                "partial": bool(scope_words(self.scope)), "encrypted": self.encrypted,
                "recipients": self.recipients}


def made_by(manifest: Manifest) -> str:
    """Who made a backup, in words: this console (in either format) or the web app."""
    if manifest.kind != "seed":
        return "by Desktop Backup"
    if str(manifest.source.get("app") or "").startswith("Desktop Backup"):
        return "by Desktop Backup in the web app's format"
    return "by the web app"


def verify_archive(path: Path, key: bytes | None = None, org_ids: Iterable[int] = (),
                   written: Callable[[], str | None] | None = None) -> VerifyReport:
    """Read every byte of a backup, check structure, counts and checksums; never raise.

    With the database's archive key (authenticity.read_key) the verdict also says whether
    the file is exactly as this console wrote it; without, only whether it carries a seal.
    An encrypted backup is opened with the keys this workstation holds of `org_ids`; when
    none opens it, `written` (asked only then: when the database's history recorded this very
    file, same SHA-256) lets the verdict still say the file is intact, though its contents
    wait for the key."""
    path = Path(path)
    try:
        with rarer_passes(), open_archive(path, org_ids) as archive:
            manifest = archive.manifest
            unlisted = archive.unlisted
            encrypted = archive.encrypted
            for entry in manifest.tables:
                for _batch in archive.batches(entry):
                    pass
            origin = judge(archive.zip, MANIFEST, key, MAX_MANIFEST_BYTES)
    except KeyMissing as exc:
        written_on = written() if written else None
        message = (f"{path.name} is intact: it is the very file the console wrote {written_on}. "
                   "Its contents can be checked only with the organization's key: import its "
                   "recovery sheet (desktop-backup key import FILE --org ORG), then verify "
                   "again." if written_on else f"{path.name} cannot be used: {exc}")
        return VerifyReport(str(path), False, message, encrypted=True)
    except ArchiveError as exc:
        return VerifyReport(str(path), False, f"{path.name} cannot be used: {exc}",
                            encrypted=is_age_file(path))
    except DesktopBackupError as exc:  # the keyring could not be asked for the key
        return VerifyReport(str(path), False, f"{path.name} cannot be opened: {exc}",
                            encrypted=True)
    org = {k: manifest.organization.get(k) for k in ("id", "code", "name")}
    who = org.get("name") or f"organization {org.get('id')}"
    made = made_by(manifest)
    if manifest.partial:
        message = (f"{path.name} is an undamaged backup of {who} ({manifest.scope_words}), "
                   f"made {made} on {manifest.created_at}: {manifest.total_rows:,} rows; "
                   f"{left_out_words(manifest.scope)}. {origin.message}")
    else:
        message = (f"{path.name} is a complete, undamaged backup of {who}, made {made} on "
                   f"{manifest.created_at}: {len(manifest.tables)} tables, "
                   f"{manifest.total_rows:,} rows. {origin.message}")
    if unlisted:
        message += " " + unlisted_note(unlisted)
    recipients = manifest.encryption.get("recipients", [])
    if encrypted:
        message += (" It is encrypted" + (f" for the keys {', '.join(recipients)}."
                                          if recipients else "."))
    return VerifyReport(str(path), True, message, manifest.kind, org, manifest.created_at,
                        manifest.weekday, manifest.trigger,
                        {t.name: t.rows for t in manifest.tables}, manifest.total_rows,
                        origin.state, origin.message, unlisted, manifest.backup_id,
                        manifest.scope, encrypted, list(recipients))
