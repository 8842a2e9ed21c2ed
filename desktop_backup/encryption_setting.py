"""Whether an organization's backups are encrypted, and for whom, kept in the billing database
so every workstation of the shop agrees: public keys only, so a workstation without the secret
key still makes encrypted backups (it never needs the key to write one).

One row per organization in the console's own table ``desktop_backup_encryption`` (never
backed up or restored as the organization's: tenancy.CONSOLE_TABLES). Turning encryption off
keeps the row (enabled false) so the status can still say which key the old backups need.

Whether someone proved they kept the recovery sheet (retyped its last characters) is kept in
``desktop_backup_recovery_sheets``, one row per organization naming the public key whose sheet
was confirmed: per organization, shared by every workstation, surviving restarts, and holding
no secret. A new key needs a new confirmation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pyrage import x25519
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.db import console_metadata, console_table, defined, friendly_error
from desktop_backup.orgkeys import fingerprint, parse_recipient

ENCRYPTION_TABLE = "desktop_backup_encryption"
SHEETS_TABLE = "desktop_backup_recovery_sheets"
SHEET_NOT_CONFIRMED = ("Encryption is on but its recovery sheet was never confirmed; write "
                       "one in Settings ▸ Encryption.")


@dataclass(frozen=True)
class EncryptionSetting:
    """An organization's encryption as the database keeps it."""

    organization_id: int
    enabled: bool
    public_key: str  # the organization's own age1… key
    extra_recipients: tuple[str, ...] = ()  # support's age1… keys
    changed_by: str | None = None
    changed_at: datetime | None = None

    def recipients(self) -> list[x25519.Recipient]:
        """Whom a backup is encrypted for: the organization's key, then each extra key once."""
        found: list[x25519.Recipient] = []
        for text in (self.public_key, *self.extra_recipients):
            recipient = parse_recipient(text)
            if str(recipient) not in {str(r) for r in found}:
                found.append(recipient)
        return found

    def fingerprints(self) -> list[str]:
        return [fingerprint(recipient) for recipient in self.recipients()]


def _metadata(engine: Engine) -> MetaData:
    """The console's two encryption tables, in its schema (console_metadata)."""
    md = console_metadata(engine)
    Table(ENCRYPTION_TABLE, md,
          Column("organization_id", BigInteger, primary_key=True, autoincrement=False),
          Column("enabled", Boolean, nullable=False),
          Column("public_key", String(100), nullable=False),
          Column("extra_recipients", Text, nullable=False),  # a JSON list of age1… keys
          Column("changed_by", String(255), nullable=True),
          Column("changed_by_id", BigInteger, nullable=True),
          Column("changed_at", DateTime, nullable=True))
    Table(SHEETS_TABLE, md,
          Column("organization_id", BigInteger, primary_key=True, autoincrement=False),
          Column("public_key", String(100), nullable=False),  # the key whose sheet was kept
          Column("confirmed_by", String(255), nullable=True),
          Column("confirmed_at", DateTime, nullable=True))
    return md


def ensure_encryption_table(engine: Engine) -> Table:
    """Create the console's encryption table when missing; reflect it otherwise."""
    return console_table(engine, defined(_metadata(engine), ENCRYPTION_TABLE))


def read_encryption(engine: Engine, org_id: int) -> EncryptionSetting | None:
    """The organization's setting, or None when encryption was never turned on for it."""
    row = _get_row(engine, ensure_encryption_table(engine), org_id)
    if row is None:
        return None
    return EncryptionSetting(int(row["organization_id"]), bool(row["enabled"]),
                             row["public_key"], tuple(json.loads(row["extra_recipients"] or "[]")),
                             row["changed_by"], row["changed_at"])


def encryption_recipients(engine: Engine, org_id: int) -> list[x25519.Recipient] | None:
    """Whom the organization's backups are encrypted for, or None when encryption is off."""
    setting = read_encryption(engine, org_id)
    return setting.recipients() if setting is not None and setting.enabled else None


def save_encryption(engine: Engine, setting: EncryptionSetting, changed_by_id: int | None
                    ) -> None:
    """Store the organization's setting (one row per organization, replaced)."""
    table = ensure_encryption_table(engine)
    values = {"enabled": setting.enabled, "public_key": setting.public_key,
              "extra_recipients": json.dumps(list(setting.extra_recipients)),
              "changed_by": setting.changed_by, "changed_by_id": changed_by_id,
              "changed_at": setting.changed_at.replace(tzinfo=None)
              if setting.changed_at else None}
    _put_row(engine, table, setting.organization_id, values)


@dataclass(frozen=True)
class SheetConfirmed:
    """Someone retyped the end of the key from its recovery sheet: the sheet exists."""

    organization_id: int
    public_key: str
    confirmed_by: str | None
    confirmed_at: datetime | None


def read_sheet_confirmed(engine: Engine, org_id: int) -> SheetConfirmed | None:
    """The organization's last confirmed recovery sheet, or None when none was ever confirmed."""
    row = _get_row(engine, console_table(engine, defined(_metadata(engine), SHEETS_TABLE)), org_id)
    if row is None:
        return None
    return SheetConfirmed(int(row["organization_id"]), row["public_key"], row["confirmed_by"],
                          row["confirmed_at"])


def save_sheet_confirmed(engine: Engine, confirmed: SheetConfirmed) -> None:
    """Record that the sheet of `confirmed.public_key` was kept (one row per organization)."""
    table = console_table(engine, defined(_metadata(engine), SHEETS_TABLE))
    values = {"public_key": confirmed.public_key, "confirmed_by": confirmed.confirmed_by,
              "confirmed_at": confirmed.confirmed_at.replace(tzinfo=None)
              if confirmed.confirmed_at else None}
    _put_row(engine, table, confirmed.organization_id, values)


def _get_row(engine: Engine, table: Table, org_id: int):
    """The organization's one row of `table` (a mapping), or None."""
    try:
        with engine.connect() as conn:
            return conn.execute(select(table).where(
                table.c.organization_id == org_id)).mappings().first()
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def _put_row(engine: Engine, table: Table, org_id: int, values: dict) -> None:
    """The organization's one row of `table`, replaced, or added when it has none."""
    try:
        with engine.begin() as conn:
            where = table.c.organization_id == org_id
            if conn.execute(update(table).where(where).values(**values)).rowcount == 0:
                conn.execute(insert(table).values(organization_id=org_id, **values))
    except SQLAlchemyError as exc:
        raise friendly_error(exc, engine.url) from exc


def sheet_warning(engine: Engine, org_id: int) -> str | None:
    """The header's amber line while encryption is on but the current key's recovery sheet
    was never confirmed (a key nobody wrote down is a backup nobody can open)."""
    setting = read_encryption(engine, org_id)
    if setting is None or not setting.enabled:
        return None
    confirmed = read_sheet_confirmed(engine, org_id)
    if confirmed is not None and confirmed.public_key == setting.public_key:
        return None
    return SHEET_NOT_CONFIRMED
