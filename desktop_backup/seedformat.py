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
import marshal
import zipfile
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import ijson

from desktop_backup.archive import (
    READ_BUFFER,
    ArchiveError,
    Manifest,
    SeedRows,
    TableEntry,
    damage_errors,
    encode_value,
    parse_scope,
    surrogate_escapes,
)
from desktop_backup.scratch import ScratchFolder

APP_DATABASE_MEMBER = "database/database_backup.json"
SEED_METADATA_MEMBER = "_backup_metadata.json"  # the app's counts and versions: not read
MAX_SEED_JSON_BYTES = 4 * 1024**3
MAX_VALUE_DEPTH = 32  # nesting within a row's value or the metadata: JSON columns are flat
MAX_SECTION_EVENTS = 100_000  # tokens in the metadata or organization section, or one value
MAX_COLUMNS = 4096  # distinct keys in one table's rows (MariaDB allows 4096 columns)
MAX_VALUE_BYTES = 16 * 1024 * 1024  # one value (a string); as a native archive's line
SPILL_ROWS = 1000  # rows per frame of the spill file, and per batch handed on


def find_seed_member(zf: zipfile.ZipFile) -> str | None:
    """The JSON that holds the web app's database backup, if this zip is one."""
    names = zf.namelist()
    if APP_DATABASE_MEMBER in names:
        return APP_DATABASE_MEMBER
    root_json = [n for n in names if "/" not in n and n.endswith(".json")
                 and not n.startswith("_")]
    return root_json[0] if len(root_json) == 1 else None


def read_seed(zf: zipfile.ZipFile, member: str) -> tuple[Manifest, SpilledRows]:
    """Read and check a web-app backup in one streaming pass (its JSON can be far larger
    than memory); rows wait in a private spill folder, as arrays in column order."""
    spill = SpilledRows()
    try:
        with zf.open(member) as raw:
            document = _Document(ijson.basic_parse(_CheckedStream(raw), use_float=False),
                                 spill)
            document.read()
    except KeyError:
        spill.close()
        raise ArchiveError(f"The archive has no '{member}'.") from None
    except (ijson.JSONError, UnicodeDecodeError):
        spill.close()
        raise ArchiveError("The web app's backup JSON is damaged (not valid JSON).") from None
    except damage_errors() as exc:
        spill.close()
        raise ArchiveError(f"'{member}' in the archive is damaged ({exc}).") from None
    except BaseException:
        spill.close()
        raise
    try:
        return document.manifest(), spill
    except BaseException:
        spill.close()
        raise


class _CheckedStream:
    """The JSON member as ijson reads it: bounded in size, and refused at the first half of
    a surrogate pair escaped alone (ijson would read it as '?', silently)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.total = 0
        self.held = b""  # the last bytes read, where an escape may go on in the next read
        self.expect_low = -1  # where the low half of an escaped pair must start
        self.base = 0  # the offset of `held` in the member
        self.since_quote = 0  # bytes since the last '"': one string (or number) so far

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing first, to learn whether it reads bytes
            return b""
        data = self.raw.read(size if 0 < size <= READ_BUFFER else READ_BUFFER)
        self.total += len(data)
        if self.total > MAX_SEED_JSON_BYTES:
            raise ArchiveError("The web app's backup JSON is larger than any backup's.")
        quote = data.rfind(b'"')
        self.since_quote = len(data) - quote - 1 if quote >= 0 else self.since_quote + len(data)
        if self.since_quote > MAX_VALUE_BYTES:  # ijson would hold the whole value
            raise ArchiveError("The web app's backup JSON holds a value longer than any "
                               "backup's; it was refused.")
        self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        text = self.held + data
        limit = len(text) if not data else max(len(text) - 16, 0)
        resume = limit
        for at, end, low in surrogate_escapes(text, 0, limit):
            resume = max(resume, end)
            if low != (self.expect_low != -1) or low and self.base + at != self.expect_low:
                raise _lone_surrogate()
            self.expect_low = -1 if low else self.base + end
        if not data and self.expect_low != -1:
            raise _lone_surrogate()
        self.held = text[resume:]
        self.base += resume


def _lone_surrogate() -> ArchiveError:
    return ArchiveError("The web app's backup JSON holds text that is not valid Unicode (a "
                        "lone surrogate); the file has been damaged or forged.")


class _Document:
    """The web app's JSON read from its parse events, one row at a time.

    Nothing but the (small) metadata and organization sections is kept; each table's rows
    go to the spill as they are read. Depth and size are bounded: nesting past
    MAX_VALUE_DEPTH or a section past MAX_SECTION_EVENTS tokens is refused."""

    def __init__(self, events: Iterator[tuple[str, Any]], spill: SpilledRows) -> None:
        self.events = events
        self.spill = spill
        self.sections: dict[str, Any] = {}
        self.entries: list[TableEntry] = []
        self.tables_ok = False
        self.is_object = False

    def next(self) -> tuple[str, Any]:
        return next(self.events)

    def read(self) -> None:
        """The whole document, to its last byte (ijson refuses what follows the value)."""
        self._document()
        for _event in self.events:
            raise ArchiveError("The web app's backup JSON is damaged (not valid JSON).")

    def _document(self) -> None:
        event, _value = self.next()
        if event != "start_map":
            self._skip(event)
            return
        self.is_object = True
        while True:
            event, key = self.next()
            if event == "end_map":
                return
            if key == "tables" and "tables" not in self.sections:
                self.sections["tables"] = True
                self._tables()
            elif key in ("metadata", "organization"):
                self.sections[key] = self._value(*self.next(), depth=0, budget=[0])
            else:
                self._skip(self.next()[0])

    def _skip(self, event: str) -> None:
        """Past one value whose first event was `event`."""
        depth = 1 if event in ("start_map", "start_array") else 0
        while depth:
            event, _ = self.next()
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1

    def _value(self, event: str, value: Any, depth: int, budget: list[int]) -> Any:
        """One JSON value, built without recursion's risks: depth and size bounded."""
        budget[0] += 1
        if depth > MAX_VALUE_DEPTH or budget[0] > MAX_SECTION_EVENTS:
            raise ArchiveError("The web app's backup JSON nests or repeats values far beyond "
                               "any backup's; it was refused.")
        if event == "start_map":
            out: dict = {}
            while True:
                event, key = self.next()
                if event == "end_map":
                    return out
                out[key] = self._value(*self.next(), depth=depth + 1, budget=budget)
        if event == "start_array":
            items: list = []
            while True:
                event, value = self.next()
                if event == "end_array":
                    return items
                items.append(self._value(event, value, depth + 1, budget))
        return value

    def _tables(self) -> None:
        event, _ = self.next()
        if event != "start_map":
            self._skip(event)
            return
        self.tables_ok = True
        seen: set[str] = set()
        while True:
            event, name = self.next()
            if event == "end_map":
                return
            if name in seen:
                raise ArchiveError(f"The web app's backup lists table {name} twice; it has "
                                   "been tampered with.")
            seen.add(name)
            self._table(name)

    def _table(self, name: str) -> None:
        event, _ = self.next()
        if event != "start_map":
            raise ArchiveError(f"Table {name} in the web app's backup has the wrong shape.")
        count: Any = None
        rows = -1
        columns: list[str] = []
        while True:
            event, key = self.next()
            if event == "end_map":
                break
            event, value = self.next()
            if key == "count":
                count = value if event == "number" else self._value(event, value, 0, [0])
            elif key == "data" and event == "start_array":
                rows = self._rows(name, columns)
            else:
                self._skip(event)
        if not isinstance(count, int) or isinstance(count, bool) or rows < 0:
            raise ArchiveError(f"Table {name} in the web app's backup lacks its count or data.")
        if count != rows:
            raise ArchiveError(f"Table {name} has {rows} rows but the backup says {count}; "
                               "the backup is incomplete.")
        self.entries.append(TableEntry(
            name=name, columns=[{"name": c, "type": "", "kind": "text", "nullable": True}
                                for c in columns],
            primary_key=[], selection={"how": "tenant_column", "column": "organization_id"},
            rows=count))

    def _rows(self, name: str, columns: list[str]) -> int:
        """A table's rows, each an object; values in `columns` order (which grows as new
        keys appear: earlier rows are shorter, and read back padded with null).

        The hot loop of a large backup: one pass over the parse events with the work per
        event kept to a comparison or two; only nested values go through _value."""
        index: dict[str, int] = {}
        batch: list[list] = []
        count = 0
        writer = self.spill.table(name)
        row: list | None = None
        at = 0
        for event, value in self.events:
            if row is not None:
                if event == "map_key":
                    at = index.get(value, -1)
                    if at < 0:
                        at = self._new_column(name, value, columns, index)
                        row.append(None)
                    continue
                if event == "end_map":
                    batch.append(row)
                    row = None
                    count += 1
                    if len(batch) >= SPILL_ROWS:
                        writer.write(batch)
                        batch = []
                    continue
                if event in ("start_map", "start_array"):
                    value = _plain(self._value(event, value, depth=1, budget=[0]))
                elif type(value) is Decimal:
                    value = str(value)
                row[at] = value
            elif event == "start_map":
                row = [None] * len(columns)
            elif event == "end_array":
                break
            else:
                raise ArchiveError(f"Table {name} in the web app's backup has a damaged row.")
        writer.write(batch)
        writer.close()
        return count

    @staticmethod
    def _new_column(name: str, key: str, columns: list[str], index: dict[str, int]) -> int:
        if len(columns) >= MAX_COLUMNS:
            raise ArchiveError(f"Table {name} in the web app's backup has rows with more "
                               f"than {MAX_COLUMNS} columns.")
        index[key] = len(columns)
        columns.append(key)
        return index[key]

    def manifest(self) -> Manifest:
        if not self.is_object:
            raise ArchiveError("The web app's backup JSON has the wrong shape (not an object).")
        if "tables" in self.sections and not self.tables_ok:
            raise ArchiveError("The web app's backup JSON has no valid 'tables' section.")
        data = {k: v for k, v in self.sections.items() if k != "tables"}
        metadata = _expect(data, "metadata", dict)
        if not self.tables_ok:
            raise ArchiveError("The web app's backup JSON has no valid 'tables' section.")
        org_id = metadata.get("organization_id")
        if not isinstance(org_id, int) or isinstance(org_id, bool):
            raise ArchiveError("The web app's backup does not say which organization it "
                               "belongs to.")
        if not self.entries:
            raise ArchiveError("The web app's backup lists no tables; it holds no data and "
                               "cannot be used.")
        organization = data.get("organization")
        return Manifest(
            organization={"id": org_id, "code": metadata.get("organization_code"),
                          "name": _text_or_none(metadata.get("organization_name")),
                          "row": organization if isinstance(organization, dict) else {}},
            created_at=_short(metadata.get("created_at", "")),
            local_date=_short(metadata.get("created_at", ""))[:10],
            weekday=_short(metadata.get("day_of_week", "")),
            trigger=_short(metadata.get("backup_type", "web app")),
            source={"app": _short(metadata.get("made_by") or "web app")},
            app_version=_short(metadata.get("app_version", "")), created_by={},
            tables=self.entries, kind="seed", backup_id=_short(metadata.get("backup_id") or ""),
            scope=parse_scope(metadata.get("scope")))


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _short(value: Any) -> str:
    """A metadata value as text for messages: scalars only, never a nested structure."""
    return str(value)[:200] if not isinstance(value, dict | list) else ""


class SpilledRows(SeedRows):
    """A web-app backup's rows, one compressed file per table in a private scratch folder
    (scratch.ScratchFolder: owner-only, locked while in use, swept if the process is killed),
    deleted when the archive is closed. Frames are marshal data: written and read only by
    this process, never by anyone else."""

    def __init__(self) -> None:
        self.scratch = ScratchFolder()
        self.folder = self.scratch.path
        self.files: dict[str, Path] = {}

    def table(self, name: str) -> _SpillWriter:
        path = self.folder / f"{len(self.files)}.spill"
        self.files[name] = path
        return _SpillWriter(path)

    def batches(self, entry: TableEntry) -> Iterator[list[list]]:
        width = len(entry.columns)
        with open(self.files[entry.name], "rb") as handle:
            while header := handle.read(4):
                frame = handle.read(int.from_bytes(header, "little"))
                rows = marshal.loads(zlib.decompress(frame))
                yield [row + [None] * (width - len(row)) if len(row) < width else row
                       for row in rows]

    def close(self) -> None:
        self.scratch.remove()


class _SpillWriter:
    def __init__(self, path: Path) -> None:
        self.handle = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, rows: list[list]) -> None:
        if rows:
            frame = zlib.compress(marshal.dumps(rows), 1)
            self.handle.write(len(frame).to_bytes(4, "little") + frame)

    def close(self) -> None:
        self.handle.close()


def _expect(data: dict, key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ArchiveError(f"The web app's backup JSON has no valid '{key}' section.")
    return value


def _plain(value: Any) -> Any:
    """Decimals parsed from JSON numbers go back to exact strings; nested values (a JSON
    column the app wrote as an object) to JSON text; the rest as parsed."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=_nested_number)
    return value


def _nested_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)


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
