"""Whether a backup is exactly as this console wrote it: a keyed tag in the zip's comment.

A backup's checksums only show that its parts agree with its manifest; whoever can restore
can also edit a backup and recompute them. So every archive the console writes also carries
an HMAC-SHA256 of its manifest (which lists every member's SHA-256), keyed with a secret
that lives in the console's own table of the billing database (``desktop_backup_keys``):
shared by every workstation of the shop, never shown in the window, never in an archive.

The verdict is information for the person restoring, never a permission: a changed or
foreign backup (the web app's have no tag) is still restored under the same content rules
(restore.privileges, restore.check), with the difference shown before anyone confirms.

The same table keeps the database's own random id (``database_identity``), which names this
database where a workstation keeps things for several, such as its encryption keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from desktop_backup.db import console_metadata, console_schema, console_table_names, create_once
from desktop_backup.errors import DesktopBackupError

log = logging.getLogger(__name__)

KEY_TABLE = "desktop_backup_keys"
KEY_NAME = "archive-tag"
DATABASE_ID_NAME = "database-id"  # a random name this database keeps for itself
BILLING_DATABASE_NAME = "billing-database"  # MySQL: whose console tables a console schema has
TAG_MAGIC = b"desktop-backup-tag/1 "

AUTHENTIC = "authentic"  # exactly as this console (this database's key) wrote it
CHANGED = "changed"  # sealed with this database's key, but not what was sealed
FOREIGN = "foreign"  # no seal (the web app, an older console) or another database's
UNCHECKED = "unchecked"  # sealed, but the key was not at hand (verify without --db)


@dataclass(frozen=True)
class Authenticity:
    """The verdict, and the sentence the window and the command line show."""

    state: str
    message: str

    @property
    def authentic(self) -> bool:
        return self.state == AUTHENTIC


def _key_table(metadata: MetaData) -> Table:
    return Table(KEY_TABLE, metadata,
                 Column("name", String(50), primary_key=True),
                 Column("value", String(128), nullable=False),
                 Column("created_at", DateTime, nullable=True))


def key_id(key: bytes) -> str:
    """A short public name of a key, so a tag says which database sealed it."""
    return hashlib.sha256(b"desktop-backup key id\n" + key).hexdigest()[:16]


def read_key(conn: Connection) -> bytes | None:
    """This database's archive key, or None when no archive was ever sealed here."""
    if KEY_TABLE not in console_table_names(conn):
        return None
    table = _key_table(console_metadata(conn))
    value = conn.execute(select(table.c.value).where(table.c.name == KEY_NAME)).scalar()
    return bytes.fromhex(value) if value else None


def archive_key(engine: Engine) -> bytes | None:
    """The key new archives are sealed with, created on first use; None (and a line in the
    log) when the database does not let the console keep it: the archive is then unsealed,
    which makes it "foreign" to a later check, never unreadable."""
    try:
        with engine.connect() as conn:
            key = read_key(conn)
        if key is not None:
            return key
        return _create_key(engine)
    except SQLAlchemyError as exc:
        log.warning("Backups are written without their authenticity tag: the console could "
                    "not keep its key in the database (%s).", type(exc).__name__)
        return None


def _create_key(engine: Engine) -> bytes | None:
    table = _key_table(console_metadata(engine))
    create_once(engine, table)
    new = secrets.token_bytes(32)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(name=KEY_NAME, value=new.hex(),
                                              created_at=datetime.now(UTC).replace(tzinfo=None)))
        return new
    except SQLAlchemyError:  # another workstation's key won the race: use that one
        with engine.connect() as conn:
            return read_key(conn)


def seal(key: bytes, manifest_bytes: bytes) -> bytes:
    """The zip comment that carries the tag of a manifest."""
    tag = hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()
    return TAG_MAGIC + f"{key_id(key)} {tag}".encode("ascii")


def judge(zf: zipfile.ZipFile, manifest_member: str, key: bytes | None,
          manifest_limit: int) -> Authenticity:
    """Compare an archive's tag with its manifest as it is now."""
    comment = zf.comment or b""
    if not comment.startswith(TAG_MAGIC):
        return Authenticity(FOREIGN, "It carries no seal of this console (the web app's "
                                     "backups, backups in the web app's format and files made "
                                     "by hand have none), so its contents are checked but its "
                                     "origin is unknown.")
    try:
        their_id, tag = comment[len(TAG_MAGIC):].decode("ascii").split()
    except (UnicodeDecodeError, ValueError):
        return Authenticity(CHANGED, "Its seal is damaged: it has been changed since it was "
                                     "written.")
    if key is None:
        return Authenticity(UNCHECKED, "It carries the console's seal; connect to the billing "
                                       "database (--db) to check that it is unchanged.")
    if not hmac.compare_digest(their_id, key_id(key)):
        return Authenticity(FOREIGN, "It was sealed by the console of another billing "
                                     "database, so its origin cannot be confirmed here.")
    try:
        with zf.open(manifest_member) as member:
            manifest_bytes = member.read(manifest_limit + 1)
    except (KeyError, OSError, zipfile.BadZipFile, EOFError, ValueError):
        manifest_bytes = b""
    expected = hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected, tag):
        return Authenticity(AUTHENTIC, "It is exactly as this console wrote it.")
    return Authenticity(CHANGED, "It has been changed since this console wrote it (its "
                                 "seal no longer matches); check the changes below before "
                                 "restoring.")


def database_identity(engine: Engine) -> str:
    """A random id this billing database keeps for itself in ``desktop_backup_keys``, made on
    first use (the first workstation to ask wins a race): what names this database where a
    workstation keeps things for several databases, such as the keyring's encryption keys
    (two databases may both have an organization 1). Not a secret."""
    return _kept(engine, DATABASE_ID_NAME, lambda: uuid.uuid4().hex)


def check_console_schema_serves(engine: Engine) -> None:
    """A console schema on MySQL/MariaDB is a database of the whole server, so a second
    billing database given the same name would share its slots, history and keys: the first
    billing database to use it is noted there, and any other is refused with a sentence.
    (A PostgreSQL schema is inside its billing database; an SQLite file is named after it.)"""
    schema = console_schema(engine)
    if schema is None or engine.dialect.name != "mysql":
        return
    billing = engine.url.database or ""
    served = _kept(engine, BILLING_DATABASE_NAME, lambda: billing)
    if served and served != billing:
        raise DesktopBackupError(
            f"The console's tables in '{schema}' belong to the billing database '{served}', "
            f"not '{billing}'; choose another console schema for this one, so that their "
            "backup histories are never mixed.")


def _kept(engine: Engine, name: str, make: Callable[[], str]) -> str:
    """The value kept under `name`, stored as make() on first use; "" where it cannot be
    kept. Two workstations racing: the first insert wins, and both read it."""
    table = _key_table(console_metadata(engine))
    with engine.connect() as conn:
        found = _read_value(conn, name)
    if found:
        return found
    try:
        create_once(engine, table)
    except SQLAlchemyError:
        pass  # the insert below fails too, and the read says ""
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(name=name, value=make(),
                                              created_at=datetime.now(UTC).replace(tzinfo=None)))
    except SQLAlchemyError:
        pass  # another workstation's value won the race: read it below
    with engine.connect() as conn:
        return _read_value(conn, name) or ""


def _read_value(conn: Connection, name: str) -> str | None:
    if KEY_TABLE not in console_table_names(conn):
        return None
    table = _key_table(console_metadata(conn))
    return conn.execute(select(table.c.value).where(table.c.name == name)).scalar()
