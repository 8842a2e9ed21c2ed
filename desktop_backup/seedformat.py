"""The web app's backup layout, read and written so either side can restore the other's.

Two layouts exist in the wild (shared/DESIGN.md):

* the plan's: ``org_{code}_{day}_backup.zip`` with one root-level JSON
  ``{metadata, tables: {name: {count, data: [row objects]}}, organization}``;
* the app's current one: ``org_{code}_{day}_full_backup.zip`` with
  ``database/database_backup.json`` (same structure), ``_backup_metadata.json`` and possibly
  the app's source under ``code/`` — which is never extracted or run.

Values are as PHP's ``json_encode`` writes a PDO row: DECIMAL as strings, datetimes as
``"Y-m-d H:i:s"`` strings, ``/`` escaped as ``\\/`` and non-ASCII as ``\\uXXXX``.
"""

from __future__ import annotations

import json
import zipfile
from decimal import Decimal
from typing import IO, Any

from desktop_backup.archive import (
    ArchiveError,
    Manifest,
    TableEntry,
    encode_value,
    read_member_limited,
)

APP_DATABASE_MEMBER = "database/database_backup.json"
MAX_SEED_JSON_BYTES = 4 * 1024**3


def find_seed_member(zf: zipfile.ZipFile) -> str | None:
    """The JSON that holds the web app's database backup, if this zip is one."""
    names = zf.namelist()
    if APP_DATABASE_MEMBER in names:
        return APP_DATABASE_MEMBER
    root_json = [n for n in names if "/" not in n and n.endswith(".json")
                 and not n.startswith("_")]
    return root_json[0] if len(root_json) == 1 else None


def read_seed(zf: zipfile.ZipFile, member: str) -> tuple[Manifest, dict[str, list[list]]]:
    """Parse and check a web-app backup; rows come back as arrays in column order."""
    raw = read_member_limited(zf, member, MAX_SEED_JSON_BYTES)
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise ArchiveError("The web app's backup JSON is damaged (not valid JSON).") from None
    del raw
    if not isinstance(data, dict):
        raise ArchiveError("The web app's backup JSON has the wrong shape (not an object).")
    metadata = _expect(data, "metadata", dict)
    tables = _expect(data, "tables", dict)
    org_id = metadata.get("organization_id")
    if not isinstance(org_id, int) or isinstance(org_id, bool):
        raise ArchiveError("The web app's backup does not say which organization it belongs to.")
    organization = data.get("organization") if isinstance(data.get("organization"), dict) else {}
    entries, rows_by_table = [], {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ArchiveError(f"Table {name} in the web app's backup has the wrong shape.")
        count = table.get("count")
        rows = table.get("data")
        if not isinstance(count, int) or not isinstance(rows, list):
            raise ArchiveError(f"Table {name} in the web app's backup lacks its count or data.")
        if count != len(rows):
            raise ArchiveError(f"Table {name} has {len(rows)} rows but the backup says {count}; "
                               "the backup is incomplete.")
        columns: list[str] = []
        for row in rows:
            if not isinstance(row, dict):
                raise ArchiveError(f"Table {name} in the web app's backup has a damaged row.")
            columns.extend(k for k in row if k not in columns)
        rows_by_table[name] = [[_plain(row.get(c)) for c in columns] for row in rows]
        entries.append(TableEntry(
            name=name, columns=[{"name": c, "type": "", "kind": "text", "nullable": True}
                                for c in columns],
            primary_key=[], selection={"how": "tenant_column", "column": "organization_id"},
            rows=count))
    manifest = Manifest(
        organization={"id": org_id, "code": metadata.get("organization_code"),
                      "name": metadata.get("organization_name"), "row": organization},
        created_at=str(metadata.get("created_at", "")), local_date=str(
            metadata.get("created_at", ""))[:10],
        weekday=str(metadata.get("day_of_week", "")),
        trigger=str(metadata.get("backup_type", "web app")), source={"app": "web app"},
        app_version=str(metadata.get("app_version", "")), created_by={}, tables=entries,
        kind="seed")
    return manifest, rows_by_table


def _expect(data: dict, key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ArchiveError(f"The web app's backup JSON has no valid '{key}' section.")
    return value


def _plain(value: Any) -> Any:
    """Decimals parsed from JSON numbers go back to exact strings; the rest as parsed."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def php_json(value: Any) -> str:
    """JSON as PHP's json_encode writes it: \\uXXXX for non-ASCII and \\/ for slashes."""
    return json.dumps(value, ensure_ascii=True, default=encode_value).replace("/", "\\/")


class SeedWriter:
    """Streams a backup in the plan's layout: one JSON in a zip, written table by table."""

    def __init__(self, zf: zipfile.ZipFile, member_name: str, metadata: dict) -> None:
        self.zip = zf
        self.stream: IO[bytes] = zf.open(member_name, "w", force_zip64=True)
        self._write('{\n    "metadata": ' + php_json(metadata) + ',\n    "tables": {')
        self._first_table = True
        self._first_row = True
        self._columns: list[str] = []

    def _write(self, text: str) -> None:
        self.stream.write(text.encode("ascii"))

    def begin_table(self, name: str, columns: list[str], count: int) -> None:
        sep = "" if self._first_table else ","
        self._first_table = False
        self._first_row = True
        self._columns = columns
        self._write(f'{sep}\n        {php_json(name)}: {{\n            "count": {count},'
                    '\n            "data": [')

    def write_rows(self, rows: list) -> None:
        parts = []
        for row in rows:
            parts.append(php_json(dict(zip(self._columns, row, strict=True))))
        if parts:
            sep = "\n" if self._first_row else ",\n"
            self._first_row = False
            self._write(sep + ",\n".join(parts))

    def end_table(self) -> None:
        self._write("]\n        }")

    def finish(self, organization: dict) -> None:
        self._write('\n    },\n    "organization": ' + php_json(organization) + "\n}\n")
        self.stream.close()
