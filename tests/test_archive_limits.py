"""Reading any archive stays within bounded memory and linear time, whatever its shape.

A zip with tens of thousands of members, one batch line of millions of tiny rows, an archive
written one row per line, a web-app backup whose JSON is larger than memory: each is read in
small steps or refused early with a sentence. Memory is measured here with tracemalloc (what
Python allocates, not the process's RSS, which bench/archive_memory.py measures on large
files); no test here is timed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tracemalloc
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from desktop_backup.archive import (
    BATCH_ROWS,
    BATCH_VALUES,
    BIG_LINE,
    LINE_TARGET,
    MAX_LINE_BYTES,
    ArchiveError,
    TableEntry,
    encode_rows,
    iter_batches,
)
from desktop_backup.opening import open_archive, verify_archive
from desktop_backup.seedformat import APP_DATABASE_MEMBER, MAX_VALUE_BYTES


def _peak(call) -> tuple[object, float]:
    """What `call()` returns, and the most memory Python held meanwhile (MB)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _table_archive(path: Path, member_data: bytes, rows: int, width: int = 1) -> TableEntry:
    """A zip holding one table member and the entry that describes it."""
    entry = TableEntry(name="t", columns=[{"name": f"c{i}", "kind": "integer"}
                                          for i in range(width)],
                       primary_key=[], selection={}, rows=rows,
                       sha256=hashlib.sha256(member_data).hexdigest(), bytes=len(member_data))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(entry.member, member_data)
    return entry


def _read_all(path: Path, entry: TableEntry) -> list[int]:
    with zipfile.ZipFile(path) as zf:
        return [len(batch) for batch in iter_batches(zf, entry)]


def test_a_zip_with_too_many_members_is_refused_before_they_are_read(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(20_000):
            zf.writestr(f"junk/{i}", b"")
    report, peak = _peak(lambda: verify_archive(path))
    assert not report.ok and "20000 files" in report.message
    assert peak < 2, f"{peak:.1f} MB: the members were read before being counted"


def test_a_long_line_of_tiny_rows_is_read_a_few_rows_at_a_time(tmp_path):
    """Parsed whole, a line of 200,000 one-number rows takes 15 MB of lists (the longest
    line allowed, 16 MB, would take 300 MB): read row by row, a fraction of that."""
    rows = 200_000
    line = b"[" + b",".join([b"[7        ]"] * rows) + b"]\n"
    assert len(line) > BIG_LINE
    entry = _table_archive(tmp_path / "long.zip", line, rows)
    del line
    sizes, peak = _peak(lambda: _read_all(tmp_path / "long.zip", entry))
    assert sum(sizes) == rows and max(sizes) <= BATCH_ROWS + 500
    assert peak < 7, f"{peak:.1f} MB for a 2.2 MB line"


def test_a_long_line_of_many_short_values_is_read_a_few_rows_at_a_time(tmp_path):
    """Few rows, but half a million short strings: 30 MB parsed whole."""
    rows, width = 10_000, 50
    row = b"[" + b",".join(b'"v%d"' % i for i in range(width)) + b"]"
    line = b"[" + b",".join([row] * rows) + b"]\n"
    assert len(line) > BIG_LINE
    entry = _table_archive(tmp_path / "wide.zip", line, rows, width)
    del line
    sizes, peak = _peak(lambda: _read_all(tmp_path / "wide.zip", entry))
    assert sum(sizes) == rows
    assert peak < 12, f"{peak:.1f} MB for a 3 MB line"


def test_a_line_longer_than_any_batch_is_refused_with_a_sentence(tmp_path):
    line = b'[["' + b"x" * (MAX_LINE_BYTES + 10) + b'"]]\n'
    entry = _table_archive(tmp_path / "huge.zip", line, 1)
    with pytest.raises(ArchiveError, match="line too long"):
        _read_all(tmp_path / "huge.zip", entry)


def test_rows_written_one_per_line_are_handed_on_in_full_batches(tmp_path):
    """The check's work per batch (lookups, key checks) then stays per thousands of rows,
    not per line: an archive cut into one row per line is not slower to check."""
    rows = 3 * BATCH_ROWS + 7
    data = b"".join(b"[[%d]]\n" % i for i in range(rows))
    entry = _table_archive(tmp_path / "lines.zip", data, rows)
    assert _read_all(tmp_path / "lines.zip", entry) == [BATCH_ROWS] * 3 + [7]


def test_a_wide_table_is_handed_on_in_batches_of_fewer_rows(tmp_path):
    """118 columns: a batch holds about BATCH_VALUES values, not BATCH_ROWS rows, so a
    restore of a wide table keeps a few MB of rows in hand, whether its lines were written
    with 5,000 rows (older backups) or one row each."""
    width = 118
    row = b"[" + b",".join([b"1"] * width) + b"]"
    expected = max(100, BATCH_VALUES // width)
    for name, data in (("old.zip", b"[" + b",".join([row] * BATCH_ROWS) + b"]\n"),
                       ("rows.zip", (b"[" + row + b"]\n") * BATCH_ROWS)):
        entry = _table_archive(tmp_path / name, data, BATCH_ROWS, width)
        sizes = _read_all(tmp_path / name, entry)
        assert sum(sizes) == BATCH_ROWS and max(sizes) == expected < BATCH_ROWS


def test_a_long_line_with_a_lone_surrogate_or_nan_is_refused(tmp_path):
    filler = b",".join([b"[1]"] * 40_000)
    for bad in (b'["\\ud800"]', b"[NaN]"):
        line = b"[" + filler + b"," + bad + b"]\n"
        line = line.replace(b"[1]", b"[" + b" " * BIG_LINE + b"1]", 1)  # a long line
        entry = _table_archive(tmp_path / "bad.zip", line, 40_001)
        with pytest.raises(ArchiveError, match="damaged"):
            _read_all(tmp_path / "bad.zip", entry)


def test_the_writer_cuts_wide_batches_into_lines_a_reader_can_hold():
    rows = [[i, "x" * 50_000] for i in range(100)]
    lines = encode_rows(rows).splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= LINE_TARGET
    assert [r for line in lines for r in json.loads(line)] == rows
    assert encode_rows(rows[:2]).count(b"\n") == 1


def test_rows_read_back_as_the_values_the_database_gave():
    """The fast encoder (orjson) must not turn an infinity into null nor refuse a big
    integer or odd text: each batch reads back value for value (json reads NaN too)."""
    text = "tab\tnew\nline \"q\" \\ é \u2028 \x01"
    cases = [
        ([(1, text, None, Decimal("12.50"), True, 0.1, 1e16, datetime(2024, 1, 2, 3, 4, 5, 6),
           date(2024, 1, 2), time(1, 2, 3), b"\x00\xff")],
         [[1, text, None, "12.50", True, 0.1, 1e16, "2024-01-02 03:04:05.000006",
           "2024-01-02", "01:02:03", "AP8="]]),
        ([(2, float("inf"), None), (3, float("-inf"), "null")],  # as many nulls as Nones
         [[2, float("inf"), None], [3, float("-inf"), "null"]]),
        ([(4, 2**70, -(2**64))], [[4, 2**70, -(2**64)]]),
    ]
    for rows, expected in cases:
        assert json.loads(encode_rows(rows)) == expected
    nan = json.loads(encode_rows([(float("nan"),)]))[0][0]
    assert nan != nan


def test_a_web_app_backup_is_read_as_a_stream(tmp_path):
    """The JSON is never held whole: peak memory stays below the size of the JSON itself."""
    count = 12_000
    rows = [{"id": i, "organization_id": 1, "name": f"customer {i}", "amount": "116.68",
             "created_at": "2026-01-12 12:14:11", "note": "Śrī " * 60} for i in range(count)]
    data = json.dumps({"metadata": {"organization_id": 1, "organization_code": "MEDP"},
                       "tables": {"customers": {"count": count, "data": rows}}}).encode()
    del rows
    path = tmp_path / "org_MEDP_monday_full_backup.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(APP_DATABASE_MEMBER, data)
    size = len(data) / 1e6
    del data

    def read() -> tuple[int, list]:
        with open_archive(path) as archive:
            entry = archive.manifest.tables[0]
            total, first = 0, None
            for batch in archive.batches(entry):
                total += len(batch)
                first = first or batch[0]
            return total, first
    (total, first), peak = _peak(read)
    assert total == count and first == [0, 1, "customer 0", "116.68", "2026-01-12 12:14:11",
                                        "Śrī " * 60]
    assert peak < size / 3, f"{peak:.1f} MB to read {size:.1f} MB of JSON"


def test_the_web_app_backups_spill_is_private_and_removed(tmp_path):
    data = json.dumps({"metadata": {"organization_id": 1},
                       "tables": {"t": {"count": 1, "data": [{"id": 1}]}}}).encode()
    path = tmp_path / "org_X_monday_backup.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("org_X_monday_backup.json", data)
    with open_archive(path) as archive:
        folder = archive._seed_tables.folder  # noqa: SLF001 - where the rows wait
        assert folder.stat().st_mode & 0o077 == 0
        assert list(archive.batches(archive.manifest.tables[0])) == [[[1]]]
    assert not folder.exists()


def test_a_web_app_value_longer_than_any_backups_is_refused_before_it_is_held(tmp_path):
    data = b'{"metadata": {"organization_id": 1}, "tables": {"t": {"count": 1, "data": ' \
           b'[{"id": 1, "note": "' + base64.b64encode(os.urandom(MAX_VALUE_BYTES)) + b'"}]}}}'
    path = tmp_path / "org_X_monday_backup.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("org_X_monday_backup.json", data)
    del data
    report, peak = _peak(lambda: verify_archive(path))
    assert not report.ok and "value longer than any backup's" in report.message
    assert peak < MAX_VALUE_BYTES / 1e6 + 8
