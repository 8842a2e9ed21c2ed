"""The settings dialog's questions and changes: the folder's check, the tables a backup
holds, the daily switch, the keyring."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup import keystore, wording
from desktop_backup.audit import audit_entry, write_audit
from desktop_backup.db import friendly_error, reflect
from desktop_backup.keystore import KeyringStatus, keyring_status
from desktop_backup.organizations import (
    Organization,
    find_organization,
    set_auto_backup,
    set_auto_backup_tables,
)
from desktop_backup.tenancy import discover_scope
from desktop_backup.usecases.session import ActingUser
from desktop_backup.work import Site


def _update_organization(site: Site, actor: ActingUser,
                         write: Callable[[Connection, Organization], None]) -> Organization:
    """Change one of the organization's own settings, then read it back as stored."""
    try:
        with site.engine.begin() as conn:
            write(conn, find_organization(conn, site.mapping, actor.organization_id))
        with site.engine.connect() as conn:
            return find_organization(conn, site.mapping, actor.organization_id)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc


def toggle_auto_backup(site: Site, actor: ActingUser, enabled: bool) -> Organization:
    """Switch the organization's daily backup on or off (the web app reads the same column)."""
    org = _update_organization(
        site, actor, lambda conn, org: set_auto_backup(conn, site.mapping, org, enabled))
    state = "on" if enabled else "off"
    write_audit(site.engine, audit_entry("toggle", org.id, actor, trigger="manual",
                                         message=f"Automatic daily backup turned {state}."),
                site.clock())
    return org


@dataclass(frozen=True)
class FolderCheck:
    """Whether backups can be written to a folder, in one sentence for the settings dialog."""

    ok: bool
    message: str
    free: int | None = None  # bytes free on the folder's drive, when known
    low: bool = False  # writable, but little room left


LOW_SPACE = 200 * 1024 * 1024  # below this (or twice the latest backup) the space is "low"


def check_backup_folder(folder: Path, latest_backup: int = 0) -> FolderCheck:
    """Try the folder as a backup would: write, sync and delete a small file; measure space.

    A missing folder whose parent exists is fine (the first backup creates it, as
    backup.prepare_folder does); a missing parent usually means an unplugged drive.
    """
    folder = Path(folder).expanduser()
    if not folder.is_absolute():
        return FolderCheck(False, "Give the folder's full path (or choose it with Choose…).")
    if folder.is_dir():
        probe, note = folder, ""
    elif folder.exists():
        return FolderCheck(False, f"{folder} is a file, not a folder.")
    elif folder.parent.is_dir():
        probe, note = folder.parent, " It does not exist yet; the first backup creates it."
    else:
        return FolderCheck(False, f"{folder} does not exist, nor does the folder it would be "
                                  "made in (is its drive connected?).")
    try:
        fd, name = tempfile.mkstemp(prefix=".desktop-backup-check-", dir=probe)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        return FolderCheck(False, f"Backups cannot be written to {probe} "
                                  f"({exc.strerror or exc}); choose another folder.")
    free_words = wording.human_size(free)
    if latest_backup and free < latest_backup:
        return FolderCheck(False, f"Only {free_words} free there, less than the latest backup "
                                  f"({wording.human_size(latest_backup)}); choose another folder "
                                  "or free some space.", free)
    if free < max(LOW_SPACE, 2 * latest_backup):
        return FolderCheck(True, f"Writable, but only {free_words} free; free some space "
                                 "soon." + note, free, low=True)
    return FolderCheck(True, f"Writable; {free_words} free." + note, free)


@dataclass(frozen=True)
class TableChoices:
    """The tables an organization's backup can hold, and which of them it holds now."""

    tables: list[str]  # by name
    chosen: tuple[str, ...] | None  # organizations.auto_backup_tables; None: every table


def backup_table_choices(site: Site, org_id: int) -> TableChoices:
    """Every table tenancy finds for the organization (not narrowed), and its current choice."""
    try:
        with site.engine.connect() as conn:
            org = find_organization(conn, site.mapping, org_id)
            scope = discover_scope(reflect(conn), site.mapping)
    except SQLAlchemyError as exc:
        raise friendly_error(exc, site.engine.url) from exc
    return TableChoices(sorted(scope.names()), org.auto_backup_tables)


def save_backup_tables(site: Site, actor: ActingUser, tables: list[str] | None
                       ) -> Organization:
    """Write organizations.auto_backup_tables (None: every table) and say so in the audit."""
    org = _update_organization(
        site, actor, lambda conn, org: set_auto_backup_tables(conn, site.mapping, org, tables))
    if tables is None:
        message = "The backup holds every table again, also tables added later."
    else:
        names = ", ".join(tables)
        message = (f"The backup now holds {len(tables)} chosen tables: "
                   f"{names if len(names) < 300 else names[:297] + '…'}.")
    write_audit(site.engine, audit_entry("toggle", org.id, actor, trigger="manual",
                                         message=message), site.clock())
    return org


@dataclass(frozen=True)
class PasswordState:
    """The settings dialog's keyring page: can a password be kept, and is one kept."""

    status: KeyringStatus
    saved: bool


def password_state(profile: str) -> PasswordState:
    """Ask the keyring once (it may show a prompt or wait, so never on the UI thread)."""
    status = keyring_status()
    saved = status.usable and keystore.get_password(profile) is not None
    return PasswordState(status, saved)
