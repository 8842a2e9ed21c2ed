"""The backup files are deflated by ISA-L (desktop_backup/deflate.py) and stay plain zips:
the standard library's own zlib, which knows nothing of ISA-L, inflates every member to
the bytes and CRC the directory promises, so support can open a backup with any zip tool."""

from __future__ import annotations

import struct
import zipfile
import zlib

import pytest

from desktop_backup import archive  # noqa: F401 - installs ISA-L into zipfile, as the app does
from desktop_backup.backup import run_backup
from desktop_backup.config import SchemaMapping
from desktop_backup.db import open_engine
from desktop_backup.opening import verify_archive
from desktop_backup.organizations import find_organization
from desktop_backup.work import Actor, Site
from tests.clock import FakeClock


def _members_by_stock_zlib(path) -> dict[str, bytes]:
    """Every member's bytes, inflated by the standard library's zlib from the raw file."""
    raw = path.read_bytes()
    found = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:
                                                          info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            data = zlib.decompress(raw[start:start + info.compress_size], -15)
            assert zlib.crc32(data) == info.CRC, info.filename
            found[info.filename] = data
    return found


@pytest.fixture
def engine(sqlite_demo_db):
    engine = open_engine(sqlite_demo_db)
    yield engine
    engine.dispose()


def test_a_backup_is_a_zip_the_standard_zlib_reads_member_for_member(engine, tmp_path):
    with engine.connect() as conn:
        org = find_organization(conn, SchemaMapping(), "MEDP")
    result = run_backup(Site(engine, SchemaMapping(), FakeClock()), org, Actor(3, "medp.admin"),
                        tmp_path / "backups", trigger="cli")
    assert zipfile.zlib is not zlib  # the fast path really was in use
    plain = _members_by_stock_zlib(result.path)
    with zipfile.ZipFile(result.path) as zf:
        assert {name: zf.read(name) for name in zf.namelist()} == plain
    assert any(name.startswith("tables/") and len(data) > 10_000 for name, data in plain.items())
    assert verify_archive(result.path).rows == result.rows


def test_levels_isal_lacks_still_compress_with_zlib(tmp_path):
    """ISA-L has levels 0-3; zipfile's default (-1) and level 9 keep zlib's own output."""
    data = b"the same invoice line, again and again\n" * 5000
    for level in (None, 1, 9):
        path = tmp_path / f"level-{level}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
            zf.writestr("member", data)
        assert _members_by_stock_zlib(path) == {"member": data}
        with zipfile.ZipFile(path) as zf:
            size = zf.getinfo("member").compress_size
        if level == 9:
            assert size == len(zlib.compress(data, 9)) - 6  # raw deflate: no zlib header/trailer
