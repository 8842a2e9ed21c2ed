"""The backup file: a zip with a manifest and one member of rows per table.

Layout (documented for support staff in docs/archive-format.md)::

    manifest.json            what, whose, when, from where; per table: columns, rows, SHA-256
    tables/<table>.jsonl     one line per batch: a JSON array of rows, each row an array of
                             values in the manifest's column order

Values are JSON as the web app writes them: integers as numbers, DECIMAL as strings
("116.68"), dates and datetimes as "2026-01-12 12:14:11" strings, NULL as null, binary as
base64 strings (the manifest says which columns are binary). Decimals never pass through
float, so every value comes back exactly.

Reading is defensive: an archive is untrusted input that a shop owner may have been handed.
Member names, sizes, compression ratios, encryption, duplicates, counts and checksums are all
checked before any row is used, and the rows are streamed, never extracted to disk.

Opening a file of either format (this one, or the web app's in :mod:`desktop_backup.seedformat`)
and verifying it is :mod:`desktop_backup.opening`'s, above both.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from desktop_backup import deflate
from desktop_backup.authenticity import seal
from desktop_backup.background import BackgroundCalls
from desktop_backup.errors import DesktopBackupError

deflate.install()  # every zip this process writes or reads, ISA-L's speed

FORMAT_NAME = "desktop-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES_DIR = "tables/"

# Limits for untrusted archives: far above any real shop's backup, far below a zip bomb, and
# low enough that reading any archive stays within 150 MB (bench/archive_memory.py).
MAX_MEMBERS = 5000
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024  # the zip's central directory, read before any check
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_DEPTH = 32  # nesting of the manifest's JSON: it is a few levels deep
MAX_LINE_BYTES = 16 * 1024 * 1024  # one batch line (the writer keeps them near LINE_TARGET)
LINE_TARGET = 4 * 1024 * 1024  # the writer splits a batch whose line would be longer
BIG_LINE = 2 * 1024 * 1024  # longer lines of many small rows are read row by row
BATCH_ROWS = 5000  # rows handed on at a time, however the lines are cut
# ... and at most this many values: a wide table's batches have fewer rows, so a batch (as
# parsed rows, converted columns and tuples to bind) stays a few MB: 1,000 rows of 20
# columns, 169 of 118. The writer cuts its lines the same way (export). Small enough that a
# line's values are still in the CPU's cache when they are converted: 50,000 took a
# restore's reading and conversion 20 % longer (bench/README, "Judging each value once").
BATCH_VALUES = 20_000
READ_BUFFER = 1024 * 1024  # bytes read from a member at a time
# parse_batch's look for 19 digits in a row: digits become "0", everything else a space.
_DIGITS_ONLY = bytes(ord("0") if chr(b) in "0123456789" else ord(" ") for b in range(256))
_LONG_DIGITS = b"0" * 19
MAX_RATIO = 200
MAX_MEMBER_BYTES = 64 * 1024**3


class ArchiveError(DesktopBackupError):
    """The file is not a backup this console can trust; nothing was changed."""


# --- values --------------------------------------------------------------------------------

def encode_value(value: Any) -> Any:
    """JSON for the values the json module cannot write itself, exactly and PHP-compatibly."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):  # MySQL TIME columns arrive as timedelta
        sign = "-" if value < timedelta(0) else ""
        seconds = abs(value)
        hours, rest = divmod(seconds.days * 86400 + seconds.seconds, 3600)
        minutes, secs = divmod(rest, 60)
        frac = f".{seconds.microseconds:06d}" if seconds.microseconds else ""
        return f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}{frac}"
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def encode_rows(rows: list, floats: bool = True) -> bytes:
    """One batch of rows as JSON lines: one line, or several of about LINE_TARGET bytes
    when the rows are wide, so a reader never holds a long line (MAX_LINE_BYTES).
    `floats=False` promises that no value is a float (no column of the table can hold one):
    the check that no NaN or infinity was written as null (_json_line) is then skipped."""
    return _lines(rows, partial(_json_line, floats=floats))


def _json_line(rows: list, floats: bool = True) -> bytes:
    """The rows as one JSON line, with orjson where it writes the same values as the json
    module (json.dumps was the main thread's largest cost under the profiler), else json.

    orjson writes datetimes its own way (they go through encode_value instead), refuses an
    integer beyond 64 bits or a lone surrogate, and writes NaN and infinities as null where
    json writes NaN and Infinity. Each null stands for a None or such a float (or is text
    inside a string), so a line with no more nulls than the rows hold Nones has none of
    them; counting the Nones took as long as orjson itself, so rows without floats skip it.
    Numbers may be spelled differently (1e16 for 1e+16): they read back the same."""
    try:
        line = orjson.dumps(rows, default=encode_value,
                            option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        line = b""
    if line and (not floats or line.count(b"null") == sum(row.count(None) for row in rows)):
        return line
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"),
                      default=encode_value).encode("utf-8") + b"\n"


def encode_json_rows(texts: list[str | None]) -> bytes:
    """A batch of rows the database wrote as JSON arrays (export.server_json_rows), as the
    lines encode_rows would write for the same values. The server gives NULL for a row
    longer than its packet limit, which is no row a backup could hold either."""
    if None in texts:
        raise ArchiveError("A row is larger than the database server sends in one piece; it "
                           "cannot be backed up.")
    return _lines(texts, lambda part: ("[" + ",".join(part) + "]\n").encode("utf-8"))


def _lines(rows: list, line_of: Callable[[list], bytes]) -> bytes:
    """`rows` as one line, halved until each line is about LINE_TARGET bytes; a single row
    longer than MAX_LINE_BYTES cannot be held."""
    line = line_of(rows)
    if len(line) <= LINE_TARGET or len(rows) == 1:
        if len(line) > MAX_LINE_BYTES:
            raise ArchiveError(f"A row of {len(line) // (1024 * 1024)} MB is larger than a "
                               "backup can hold; it cannot be backed up.")
        return line
    half = len(rows) // 2
    return _lines(rows[:half], line_of) + _lines(rows[half:], line_of)


def column_kind(type_name: str) -> str:
    """A coarse kind for a column type, which tells the restore how to decode its values."""
    t = type_name.upper()
    checks = (
        (("BLOB", "BINARY", "BYTEA", "VARBINARY"), "binary"),
        (("JSON",), "json"),
        (("BOOL",), "boolean"),
        (("DATETIME", "TIMESTAMP"), "datetime"),
        (("DATE",), "date"),
        (("TIME",), "time"),
        (("DECIMAL", "NUMERIC"), "decimal"),
        (("FLOAT", "DOUBLE", "REAL"), "float"),
        (("INT", "SERIAL"), "integer"),
        (("ENUM",), "enum"),
    )
    for needles, kind in checks:
        if any(n in t for n in needles):
            return kind
    return "text"


# --- the manifest --------------------------------------------------------------------------

@dataclass
class TableEntry:
    """The manifest's record of one table."""

    name: str
    columns: list[dict]
    primary_key: list[str]
    selection: dict
    rows: int = 0
    sha256: str = ""
    bytes: int = 0

    @property
    def member(self) -> str:
        return f"{TABLES_DIR}{self.name}.jsonl"

    def to_dict(self) -> dict:
        return {"name": self.name, "member": self.member, "columns": self.columns,
                "primary_key": self.primary_key, "selection": self.selection,
                "rows": self.rows, "sha256": self.sha256, "bytes": self.bytes}


@dataclass
class Manifest:
    """Everything an archive says about itself."""

    organization: dict  # id, code, name and the organization's own row
    created_at: str  # ISO 8601 in UTC with offset
    local_date: str
    weekday: str
    trigger: str
    source: dict
    app_version: str
    created_by: dict
    tables: list[TableEntry] = field(default_factory=list)
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    kind: str = "native"  # "native", or "seed" for the web app's JSON layout
    backup_id: str = ""  # this backup's identity, new for every backup ("" in older ones)
    # Which of the organization's tables it holds: {"tables": N, "of": M, "left_out": [...]}
    # ({} in older backups and the web app's, which say nothing about it)
    scope: dict = field(default_factory=dict)
    # An encrypted backup's recipients: {"recipients": [fingerprint, ...]} (orgkeys.fingerprint),
    # inside the encryption; {} for a backup written in clear (and in older ones).
    encryption: dict = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.scope) and self.scope.get("tables", 0) < self.scope.get("of", 0)

    @property
    def scope_words(self) -> str:
        """'partial: 1 of 21 tables' for a backup that left tables out, else ''."""
        return scope_words(self.scope)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def table(self, name: str) -> TableEntry | None:
        return next((t for t in self.tables if t.name == name), None)

    def to_dict(self) -> dict:
        return {"format": self.format, "format_version": self.format_version,
                "app_version": self.app_version, "created_at": self.created_at,
                "local_date": self.local_date, "weekday": self.weekday,
                "trigger": self.trigger, "created_by": self.created_by,
                "organization": self.organization, "source": self.source,
                "totals": {"tables": len(self.tables), "rows": self.total_rows},
                "tables": [t.to_dict() for t in self.tables],
                **({"backup_id": self.backup_id} if self.backup_id else {}),
                **({"scope": self.scope} if self.scope else {}),
                **({"encryption": self.encryption} if self.encryption else {})}


def parse_manifest(data: Any) -> Manifest:
    """Check a manifest's shape and build it; any gap is an ArchiveError, never a KeyError."""
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ArchiveError("This file is not a Desktop Backup archive (its manifest is foreign).")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ArchiveError(
            f"This backup uses archive format version {version!r}, which this version of the "
            f"console does not know (it reads version {FORMAT_VERSION}); update the console.")
    try:
        org = data["organization"]
        if not isinstance(org, dict) or not isinstance(org.get("id"), int):
            raise TypeError("organization id")
        for key in ("code", "name"):
            if org.get(key) is not None and not isinstance(org[key], str):
                raise TypeError(f"organization {key}")
        tables = []
        seen = set()
        for t in data["tables"]:
            entry = TableEntry(
                name=_str(t["name"]), columns=list(t["columns"]),
                primary_key=[_str(c) for c in t["primary_key"]], selection=dict(t["selection"]),
                rows=_count(t["rows"]), sha256=_str(t["sha256"]), bytes=_count(t["bytes"]))
            if entry.name in seen or t.get("member") != entry.member:
                raise TypeError(f"table {entry.name}")
            for column in entry.columns:
                _str(column["name"])
                _str(column["kind"])
            seen.add(entry.name)
            tables.append(entry)
        _check_totals(data.get("totals"), tables)
        return Manifest(
            organization=org, created_at=_str(data["created_at"]),
            local_date=_str(data["local_date"]), weekday=_str(data["weekday"]),
            trigger=_str(data["trigger"]), source=dict(data["source"]),
            app_version=_str(data["app_version"]), created_by=dict(data.get("created_by") or {}),
            tables=tables, backup_id=_str(data.get("backup_id") or ""),
            scope=parse_scope(data.get("scope")),
            encryption=parse_encryption(data.get("encryption")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArchiveError(
            f"The backup's manifest is damaged ({exc}); it cannot be used.") from None


def _check_totals(totals: Any, tables: list[TableEntry]) -> None:
    """The manifest's totals must be its tables' (a lie is a changed file), and a backup
    lists at least one table: an empty one would "restore" nothing and say it worked."""
    if not tables:
        raise ArchiveError("The backup's manifest lists no tables; it holds no data and "
                           "cannot be used.")
    expected = {"tables": len(tables), "rows": sum(t.rows for t in tables)}
    if totals != expected:
        raise ArchiveError(f"The backup's manifest gives totals ({totals!r:.80}) that are not "
                           f"its tables' ({expected['tables']} tables, {expected['rows']} "
                           "rows); it has been changed.")


def parse_encryption(value: Any) -> dict:
    """A manifest's list of recipients' fingerprints, or {} (it only informs)."""
    if not isinstance(value, dict) or not isinstance(value.get("recipients"), list):
        return {}
    return {"recipients": [str(r) for r in value["recipients"]]}


def parse_scope(value: Any) -> dict:
    """A manifest's scope, or {} when it has none or an unreadable one (it only informs)."""
    if not isinstance(value, dict):
        return {}
    tables, of, left_out = value.get("tables"), value.get("of"), value.get("left_out", [])
    if not (isinstance(tables, int) and isinstance(of, int) and 0 <= tables <= of
            and isinstance(left_out, list) and all(isinstance(n, str) for n in left_out)):
        return {}
    parsed = {"tables": tables, "of": of, "left_out": left_out[:1000]}
    unplaced = value.get("unplaced")
    if isinstance(unplaced, list) and all(isinstance(n, str) for n in unplaced):
        parsed["unplaced"] = unplaced[:1000]
    table_map = parse_table_map(value.get("map"))
    return {**parsed, "map": table_map} if table_map else parsed


def parse_table_map(value: Any) -> dict:
    """The manifest's scope.map (every table: backed up, shared or left out, and why), or {}
    for an older backup or an unreadable map (it only informs)."""
    if not isinstance(value, dict) or len(value) > 10_000:
        return {}
    kept = {}
    for name, record in value.items():
        if not isinstance(record, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in record.items()):
            return {}
        kept[str(name)] = {k: v[:500] for k, v in record.items() if k in
                           ("status", "how", "reason")}
    return kept


def scope_words(scope: dict) -> str:
    """'partial: 1 of 21 tables' for a scope that left tables out, else ''."""
    if not scope or scope.get("tables", 0) >= scope.get("of", 0):
        return ""
    return f"partial: {scope['tables']} of {scope['of']} tables"


def left_out_words(scope: dict, key: str = "left_out") -> str:
    """'2 tables left out: audits, app_settings' (all named, with the reason in the manifest's
    map), or '' when the backup left nothing out. `key` "unplaced": only the tables the
    ownership map left out, not those the organization narrowed away itself."""
    names = (scope.get(key) or []) if scope else []
    if not names:
        return ""
    noun = "table" if len(names) == 1 else "tables"
    return f"{len(names)} {noun} left out: {', '.join(names)}"


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("expected a count")
    return value


# --- writing ---------------------------------------------------------------------------------

class _HashingWriter:
    """Counts and hashes what goes into one zip member."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.bytes += len(data)
        self.stream.write(data)


class ArchiveWriter:
    """Writes one native archive, member by member, without holding rows in memory."""

    def __init__(self, path: Path | IO[bytes], compresslevel: int = 1) -> None:
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED,
                                   compresslevel=compresslevel, allowZip64=True)
        self._member: IO[bytes] | None = None
        self._hashing: _HashingWriter | None = None
        self._entry: TableEntry | None = None
        # Hashing, compressing and writing overlap the driver's fetch on the second core.
        self._writes = BackgroundCalls(4, "archive-writer")

    # The members are opened, written and closed on the writer thread, in order, so the
    # caller never waits for a table's last batches to be compressed before it reads the
    # next table's rows. A member's sha256 and size are known once the writer has closed it:
    # by finish(), which waits for the writer before writing the manifest.

    def begin_table(self, entry: TableEntry) -> None:
        self._entry = entry
        self._writes.submit(partial(self._open_member, entry))

    def write_encoded(self, line: bytes, rows: int) -> None:
        """A batch already encoded with :func:`encode_rows` (so encoding can run elsewhere)."""
        assert self._entry is not None
        self._writes.submit(partial(self._write_member, line))
        self._entry.rows += rows

    def end_table(self) -> TableEntry:
        """The table's entry; its sha256 and size are filled in when the writer closes it."""
        assert self._entry is not None
        entry, self._entry = self._entry, None
        self._writes.submit(partial(self._close_member, entry))
        return entry

    def finish(self, manifest: Manifest, key: bytes | None = None) -> None:
        """Write the manifest last; with `key`, seal it (authenticity.seal) in the zip's
        comment, so a later check can tell whether anything was changed."""
        self._writes.finish()
        data = json.dumps(manifest.to_dict(), indent=2, default=encode_value).encode("utf-8")
        self.zip.writestr(MANIFEST, data)
        if key is not None:
            self.zip.comment = seal(key, data)
        self.zip.close()

    def _open_member(self, entry: TableEntry) -> None:  # on the writer thread
        self._member = self.zip.open(entry.member, "w", force_zip64=True)
        self._hashing = _HashingWriter(self._member)

    def _write_member(self, line: bytes) -> None:  # on the writer thread
        assert self._hashing is not None
        self._hashing.write(line)

    def _close_member(self, entry: TableEntry) -> None:  # on the writer thread
        assert self._member is not None and self._hashing is not None
        self._member.close()
        entry.sha256 = self._hashing.sha.hexdigest()
        entry.bytes = self._hashing.bytes
        self._member, self._hashing = None, None

    def abort(self) -> None:
        try:
            self._writes.finish(quiet=True)
            if self._member is not None:
                self._member.close()
            self.zip.close()
        except (OSError, ValueError, zipfile.BadZipFile):
            pass


# --- reading -------------------------------------------------------------------------------

def partial_words(path: Path) -> str:
    """'partial: N of M tables' for a backup file that left tables out, else '' (only a
    native archive's manifest is read; a file that cannot be read says nothing)."""
    try:
        with open_zip(path) as zf:
            if MANIFEST not in zf.namelist():
                return ""
            return read_manifest(zf).scope_words
    except (ArchiveError, OSError):
        return ""


def open_zip(path: Path, source: IO[bytes] | None = None) -> zipfile.ZipFile:
    """Open an untrusted zip and check its members before anything is read from it; from
    `source` when given (a decrypted backup's stream), named by `path` in what it says."""
    path = Path(path)
    if source is None:
        if not path.is_file():
            raise ArchiveError(f"There is no backup file at {path}.")
        if path.stat().st_size == 0:
            raise ArchiveError(f"{path.name} is empty; it is not a backup.")
    try:
        if source is None:
            with open(path, "rb") as handle:
                check_directory(handle, path.name)
        else:
            check_directory(source, path.name)
        zf = zipfile.ZipFile(source if source is not None else path)
    except OSError as exc:
        raise ArchiveError(f"{path.name} cannot be read ({exc.strerror or exc}).") from None
    except damage_errors():
        raise ArchiveError(
            f"{path.name} is not a zip file, or it is truncated or damaged.") from None
    try:
        check_members(zf.infolist())
    except ArchiveError:
        zf.close()
        raise
    return zf


def check_directory(handle: IO[bytes], name: str) -> None:
    """Refuse a zip with too many members from its end record alone: zipfile would build
    an object per member (a million of them: 600 MB) before check_members could count."""
    end = zipfile._EndRecData(handle)  # noqa: SLF001 - the one reader of the end record
    if end is None:
        return  # not a zip: zipfile says so in its own words
    members, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # noqa: SLF001
    if members > MAX_MEMBERS or size > MAX_DIRECTORY_BYTES:
        raise ArchiveError(f"{name} lists {members} files in {size} bytes of directory; "
                           "a backup never has that many, so it was not opened.")


def check_members(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse the archive shapes that attack a reader: bombs, path tricks, duplicates."""
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"The archive has {len(infos)} files; a backup never has that many.")
    names = set()
    for info in infos:
        name = info.filename
        if name in names:
            raise ArchiveError(f"The archive holds '{name}' twice; it has been tampered with.")
        names.add(name)
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise ArchiveError(f"The archive has a member with an unsafe path: '{name}'.")
        if info.flag_bits & 0x1:
            raise ArchiveError("The archive is encrypted; backups are never encrypted this way.")
        if info.file_size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"'{name}' claims {info.file_size} bytes; that is not a backup.")
        if info.compress_size and info.file_size > 10 * 1024 * 1024 and (
                info.file_size / info.compress_size > MAX_RATIO):
            raise ArchiveError(f"'{name}' expands {info.file_size // info.compress_size} times; "
                               "it looks like a zip bomb and was not opened.")


def read_member_limited(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A whole small member, refusing more than `limit` bytes whatever the header says."""
    try:
        with zf.open(name) as member:
            data = member.read(limit + 1)
    except KeyError:
        raise ArchiveError(f"The archive has no '{name}'.") from None
    except damage_errors() as exc:
        raise ArchiveError(f"'{name}' in the archive is damaged ({exc}).") from None
    if len(data) > limit:
        raise ArchiveError(f"'{name}' in the archive is larger than any backup's.")
    return data


def read_manifest(zf: zipfile.ZipFile) -> Manifest:
    raw = read_member_limited(zf, MANIFEST, MAX_MANIFEST_BYTES)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ArchiveError(
            "The backup's manifest is not valid JSON; the file is damaged.") from None
    check_plain_json(data, MAX_MANIFEST_DEPTH, "The backup's manifest")
    manifest = parse_manifest(data)
    for entry in manifest.tables:
        try:
            size = zf.getinfo(entry.member).file_size
        except KeyError:
            raise ArchiveError(f"The backup has no data for table {entry.name}.") from None
        if size != entry.bytes:
            raise ArchiveError(f"The manifest says table {entry.name} holds {entry.bytes} "
                               f"bytes, but the archive holds {size}; it has been changed.")
    return manifest


def check_plain_json(data: Any, depth: int, what: str) -> None:
    """JSON that is neither nested deeper than `depth` nor holds text that is not Unicode
    (a lone surrogate such as \\ud800, which json reads and nothing can write)."""
    level: list[Any] = [data]
    for _ in range(depth):
        inner = []
        for value in level:
            if isinstance(value, dict):
                inner += value.values()
                inner += value.keys()
            elif isinstance(value, list):
                inner += value
            elif isinstance(value, str) and not value.isascii():
                _refuse_surrogates(value, what)
        if not inner:
            return
        level = inner
    raise ArchiveError(f"{what} is nested too deeply to be a backup's.")


def _refuse_surrogates(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ArchiveError(f"{what} holds text that is not valid Unicode (a lone "
                           "surrogate); the file has been damaged or forged.") from None


def iter_batches(zf: zipfile.ZipFile, entry: TableEntry) -> Iterator[list[list]]:
    """Stream a table's rows batch by batch, checking shape as it goes and the SHA-256,
    byte and row counts at the end; a mismatch raises after the last batch, so a caller
    inside a transaction rolls everything back.

    Batches are about BATCH_ROWS rows (or LINE_TARGET bytes) however the lines were cut:
    short lines (one row each, say) are joined, so the work per batch downstream stays
    linear in the bytes; a long line's rows come a few hundred at a time."""
    sha = hashlib.sha256()
    rows = size = 0
    pending: list[list] = []
    pending_bytes = 0
    most = batch_rows(len(entry.columns))
    try:
        # ZipExtFile.readline with a limit goes 512 bytes at a time in Python; a buffered
        # reader finds the line ends in C (a third of a million-row table's read time).
        with zf.open(entry.member) as member, io.BufferedReader(member, READ_BUFFER) as lines:
            while True:
                line = lines.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_LINE_BYTES:
                    raise ArchiveError(f"Table {entry.name} has a line too long to be a batch.")
                sha.update(line)
                size += len(line)
                whole = _parsed_whole(line)
                for batch in _line_batches(line, entry, whole):
                    rows += len(batch)
                    if rows > entry.rows:
                        raise ArchiveError(
                            f"Table {entry.name} has more rows than its manifest says.")
                    if not whole:
                        yield batch  # a long line's few rows
                        continue
                    if not pending and len(batch) >= most:
                        # the writer's own line (an older writer's wide line in parts)
                        for start in range(0, len(batch), most):
                            yield batch[start:start + most]
                        continue
                    pending += batch
                    pending_bytes += len(line)
                    if len(pending) >= most or pending_bytes >= LINE_TARGET:
                        yield pending
                        pending, pending_bytes = [], 0
                del line
    except KeyError:
        raise ArchiveError(f"The backup has no data for table {entry.name}.") from None
    except damage_errors() as exc:
        raise ArchiveError(f"Table {entry.name} in the backup is damaged ({exc}).") from None
    if pending:
        yield pending
    if rows != entry.rows:
        raise ArchiveError(f"Table {entry.name} has {rows} rows but its manifest says "
                           f"{entry.rows}; the backup is incomplete.")
    if size != entry.bytes or sha.hexdigest() != entry.sha256:
        raise ArchiveError(f"Table {entry.name} does not match its checksum; the backup has "
                           "been damaged or changed.")


def batch_rows(width: int, most: int = BATCH_ROWS) -> int:
    """Rows in a batch of a table `width` columns wide (BATCH_VALUES)."""
    return max(100, min(most, BATCH_VALUES // max(1, width)))


def _parsed_whole(line: bytes) -> bool:
    """Whether a line is parsed at once (short, or few rows and values) or row by row."""
    return len(line) <= BIG_LINE or (line.count(b"[") <= BIG_LINE // 64
                                     and line.count(b",") <= BIG_LINE // 8)


def _line_batches(line: bytes, entry: TableEntry, whole: bool) -> Iterator[list[list]]:
    """The rows of one line, checked against the table's width: the whole line at once,
    or, for a long line of many rows or values, a few rows at a time (parsed whole, a line
    of tiny values takes twenty times its size in memory; one of few values, about its
    size again)."""
    width = len(entry.columns)
    try:
        batches = [parse_batch(line)] if whole else _big_line_rows(line)
        for batch in batches:
            if type(batch) is not list or batch and (
                    set(map(type, batch)) != {list} or set(map(len, batch)) != {width}):
                raise ArchiveError(f"Table {entry.name} has rows that do not match its "
                                   "columns; the backup is damaged.")
            yield batch
    except ValueError as exc:
        raise ArchiveError(f"Table {entry.name} in the backup is damaged ({exc}).") from None


def _big_line_rows(line: bytes, rows_at_a_time: int = 500) -> Iterator[list]:
    """A long line's rows in small lists, read incrementally (ijson): what json would read,
    except NaN, Infinity and integers past 64 bits, which ijson refuses."""
    if b"\\u" in line and lone_surrogate_escape(line):
        raise ValueError("text that is not valid Unicode (a lone surrogate)")
    batch: list = []
    try:
        for row in ijson.items(io.BytesIO(line), "item", use_float=True):
            batch.append(row)
            if len(batch) >= rows_at_a_time:
                yield batch
                batch = []
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid JSON: {str(exc).splitlines()[0]}") from None
    yield batch


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD]([89a-fA-F])[0-9a-fA-F]{2}")


def surrogate_escapes(data: bytes, start: int = 0, stop: int | None = None
                      ) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is the low half) of each escaped surrogate (\\ud83d) in JSON text that
    starts before `stop`; '\\\\ud83d' (an escaped backslash, then text) is not one."""
    for match in _SURROGATE_ESCAPE.finditer(data, start):
        at = match.start()
        if stop is not None and at >= stop:
            return
        before = at
        while before > 0 and data[before - 1] == 0x5C:  # backslashes before this one
            before -= 1
        if (at - before) % 2 == 0:
            yield at, match.end(), match.group(1) in b"cdefCDEF"


def lone_surrogate_escape(data: bytes) -> bool:
    """Whether JSON text escapes half of a surrogate pair alone (\\ud800): json reads it
    into text no database can store, ijson into '?'. A pair (an emoji, as PHP writes it)
    is fine."""
    expect_low_at = -1
    for at, end, low in surrogate_escapes(data):
        if low != (expect_low_at != -1) or low and at != expect_low_at:
            return True  # a low half alone, or a high half not followed by its low
        expect_low_at = -1 if low else end
    return expect_low_at != -1


def parse_batch(line: bytes) -> Any:
    """One batch line, exactly as the json module reads it, in less than half the time.

    orjson reads JSON the same way, except that it refuses NaN and lone surrogate escapes
    (json takes them) and reads an integer beyond 64 bits as a float, silently. So a line
    with 19 digits in a row anywhere (such an integer, or merely a long number in a string)
    is left to json, as is every line orjson refuses; what json refuses raises ValueError.
    Text json reads but no database can store (a lone surrogate) and nesting deeper than
    the interpreter's stack raise ValueError too."""
    if _LONG_DIGITS not in line.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    try:
        batch = json.loads(line)
    except RecursionError:
        raise ValueError("values nested too deeply") from None
    if b"\\u" in line:  # only an escape can make a surrogate: valid UTF-8 holds none
        try:
            json.dumps(batch, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text that is not valid Unicode (a lone surrogate)") from None
        except RecursionError:
            raise ValueError("values nested too deeply") from None
    return batch


def damage_errors() -> tuple[type[Exception], ...]:
    """What zipfile and the inflater raise for a damaged or crafted archive, beyond
    BadZipFile: a corrupt deflate stream, a bad header value, an unknown compression method,
    a cut-off file. Found by mutating real archives at random (tests/test_hostile_archives.py)."""
    return (zipfile.BadZipFile, *deflate.INFLATE_ERRORS, OSError, EOFError, ValueError,
            NotImplementedError)


def new_temp_path(folder: Path, final_name: str) -> Path:
    """A temporary name beside the slot, so the final rename stays on one file system."""
    return folder / f".{final_name}.{uuid.uuid4().hex[:8]}.partial"


# --- where a web-app backup's rows wait ------------------------------------------------------

class SeedRows:
    """Where a web-app backup's rows wait once its JSON has been read (seedformat)."""

    def batches(self, entry: TableEntry) -> Iterator[list[list]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
