"""The tenant: looking an organization up by id or code, and its backup settings.

Table and column names come from the :class:`SchemaMapping`, never from literals, so a shop
whose tenant table is called something else changes one setting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import JSON, MetaData, Table, func, null, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from desktop_backup.config import SchemaMapping
from desktop_backup.errors import OrganizationNotFound, SchemaError, UsageError

# A code that can name files as it is (the web app's org_{code}_{weekday}_backup.zip): no path
# characters, no spaces. "id-" is kept for the names made from an organization's id.
_FILE_SAFE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ID_KEY_PREFIX = "id-"


@dataclass(frozen=True)
class Organization:
    """One tenant of the billing database, as the console needs it."""

    id: int
    code: str | None
    name: str
    status: str
    auto_backup_enabled: bool
    auto_backup_tables: tuple[str, ...] | None
    row: dict  # the whole organizations row, kept for the archive's metadata

    @property
    def slot_key(self) -> str:
        """How a person names it (typed to confirm a restore): the code, or the id."""
        return (self.code or str(self.id)).strip()

    @property
    def file_key(self) -> str:
        """What names its backup files, unique per organization id whatever the codes are.

        The code where it is safe in a file name (as the web app names its backups); else
        ``id-{id}``, which no code used as a name can spell, so an organization without a
        code never shares file names with one whose code is its id, and a code holding '/'
        or '..' never reaches the path.
        """
        code = str(self.code or "").strip()
        if _FILE_SAFE_CODE.fullmatch(code) and not code.lower().startswith(ID_KEY_PREFIX):
            return code
        return f"{ID_KEY_PREFIX}{self.id}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})" if self.code else f"{self.name} (#{self.id})"


def tenant_table(conn: Connection, mapping: SchemaMapping) -> Table:
    """The reflected tenant table, or a sentence saying the mapping does not fit."""
    try:
        return Table(mapping.tenant_table, MetaData(), autoload_with=conn)
    except NoSuchTableError:
        raise SchemaError(
            f"The database has no '{mapping.tenant_table}' table; check the schema mapping "
            "in the settings (or --tenant-table)."
        ) from None


def _from_row(row: dict, mapping: SchemaMapping) -> Organization:
    tables = row.get(mapping.auto_backup_tables_column)
    if isinstance(tables, str):
        try:
            tables = json.loads(tables)
        except ValueError:
            tables = None
    enabled = row.get(mapping.auto_backup_enabled_column)
    return Organization(
        id=int(row[mapping.tenant_id_column]),
        code=row.get(mapping.tenant_code_column),
        name=str(row.get(mapping.tenant_name_column) or f"Organization {row['id']}"),
        status=str(row.get(mapping.tenant_status_column) or "active"),
        auto_backup_enabled=True if enabled is None else bool(enabled),
        auto_backup_tables=tuple(tables) if isinstance(tables, list) and tables else None,
        row=dict(row),
    )


def find_organization(conn: Connection, mapping: SchemaMapping, key: str | int) -> Organization:
    """An organization by id or code (an all-digit key is tried as an id first, then a code;
    a code matches without regard to case when no code matches exactly)."""
    table = tenant_table(conn, mapping)
    id_col = table.c[mapping.tenant_id_column]
    code_col = table.c.get(mapping.tenant_code_column)
    text_key = str(key).strip()
    row = None
    if text_key.isdigit():
        row = conn.execute(select(table).where(id_col == int(text_key))).mappings().first()
    if row is None and code_col is not None:
        row = conn.execute(select(table).where(code_col == text_key)).mappings().first()
    if row is None and code_col is not None:  # 'medp' finds MEDP, as the wizard compares
        row = conn.execute(select(table).where(func.lower(code_col) == text_key.lower())
                           .order_by(id_col)).mappings().first()
    if row is None:
        raise OrganizationNotFound(f"No organization has the id or code '{text_key}'.")
    return _from_row(dict(row), mapping)


def list_organizations(conn: Connection, mapping: SchemaMapping) -> list[Organization]:
    """Every organization, by name: the super admin's picker."""
    table = tenant_table(conn, mapping)
    order = table.c.get(mapping.tenant_name_column, table.c[mapping.tenant_id_column])
    rows = conn.execute(select(table).order_by(order)).mappings()
    return [_from_row(dict(row), mapping) for row in rows]


def set_auto_backup(conn: Connection, mapping: SchemaMapping, org: Organization,
                    enabled: bool) -> None:
    """Write organizations.auto_backup_enabled (the header's toggle)."""
    table = tenant_table(conn, mapping)
    conn.execute(update(table).where(table.c[mapping.tenant_id_column] == org.id)
                 .values({mapping.auto_backup_enabled_column: enabled}))


def set_auto_backup_tables(conn: Connection, mapping: SchemaMapping, org: Organization,
                           tables: list[str] | None) -> None:
    """Write organizations.auto_backup_tables: the tables the backup holds, or NULL for all
    of them (tables added to the database later included). The web app reads the same column.

    A JSON column gets the list itself and a text column its JSON text (as the web app
    writes it); None is SQL NULL, never the JSON text 'null'. An empty list is refused: it
    would be a backup of nothing.
    """
    if tables is not None and not tables:
        raise UsageError("Choose at least one table for the backup.")
    table = tenant_table(conn, mapping)
    column = table.c.get(mapping.auto_backup_tables_column)
    if column is None:
        raise SchemaError(
            f"The '{mapping.tenant_table}' table has no '{mapping.auto_backup_tables_column}' "
            "column, so the tables to back up cannot be chosen; every table is backed up.")
    if tables is None:
        value = null()
    elif isinstance(column.type, JSON):
        value = list(tables)
    else:
        value = json.dumps(list(tables), separators=(",", ":"))
    conn.execute(update(table).where(table.c[mapping.tenant_id_column] == org.id)
                 .values({column.name: value}))
