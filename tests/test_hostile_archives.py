"""Hostile and damaged archives: each gets one clear sentence and changes nothing.

A support person may be handed any file. Whatever it is — cut short, bit-flipped, a zip bomb,
a path trick, a manifest that lies, another organization's rows slipped in, the web app's JSON
with keys missing — the restore refuses before anything is touched (not even a restore point
is written), `verify` says the same, and the database's digest does not move. Hypothesis then
mutates real archives at random: a restore either succeeds with exactly the backup's rows or
refuses with the database unchanged.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from desktop_backup import archive as archive_module
from desktop_backup.archive import MANIFEST
from desktop_backup.db import open_engine
from desktop_backup.opening import verify_archive
from desktop_backup.restore import (
    RestoreFailed,
    RestoreRefused,
    apply_restore,
    check_restore,
    list_restore_points,
)
from desktop_backup.seedformat import APP_DATABASE_MEMBER
from desktop_backup.work import Site
from tests import test_restore as shared
from tests.restore_support import (
    ADMIN,
    MAPPING,
    backup,
    db_digest,
    org_digest,
    org_of,
    rebuild,
    retable,
    seed_json,
    write_seed,
    zip_with,
)

sqlite_url = shared.sqlite_url
sqlite_engine = shared.sqlite_engine


# --- making hostile files from real ones ----------------------------------------------------


def member_data_offset(path: Path, name: str) -> tuple[int, int]:
    """Where a member's compressed bytes start in the file, and how many there are."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(handle.read(2), "little") for _ in range(2))
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


# --- the cases ---------------------------------------------------------------------------------

def _truncated(a: Path, d: Path) -> Path:
    d.write_bytes(a.read_bytes()[: a.stat().st_size // 2])
    return d


def _bit_flipped(member: str):
    def make(a: Path, d: Path) -> Path:
        raw = bytearray(a.read_bytes())
        start, size = member_data_offset(a, member)
        raw[start + size // 2] ^= 0x20
        d.write_bytes(bytes(raw))
        return d
    return make


def _encrypted(a: Path, d: Path) -> Path:
    """Set the 'encrypted' flag bit on every member (zipfile cannot write encryption)."""
    raw = bytearray(a.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at != -1:
            raw[at + flag_at] |= 0x1
            at = raw.find(signature, at + 4)
    d.write_bytes(bytes(raw))
    return d


def _zip_bomb(a: Path, d: Path) -> Path:
    return rebuild(a, d, extra=[("tables/padding.jsonl", b"\0" * (12 * 1024 * 1024))])


def _manifest(change: Callable[[dict], None]):
    def make(a: Path, d: Path) -> Path:
        def edit(m: dict) -> dict:
            change(m)
            return m
        return rebuild(a, d, manifest=edit)
    return make


def _table(m: dict, name: str) -> dict:
    return next(t for t in m["tables"] if t["name"] == name)


def _other_orgs_row(a: Path, d: Path) -> Path:
    def change(rows: list[dict]) -> None:
        rows[0]["organization_id"] = 2
    return retable(a, d, "customers", change)


def _foreign_parent(a: Path, d: Path) -> Path:
    def change(rows: list[dict]) -> None:
        rows[0]["user_id"] = 8  # a CITY user
    return retable(a, d, "user_permissions", change)


def _duplicate_key(a: Path, d: Path) -> Path:
    def change(rows: list[dict]) -> None:
        rows.append(dict(rows[0]))
    return retable(a, d, "customers", change)


def _dangling_reference(a: Path, d: Path) -> Path:
    def change(rows: list[dict]) -> None:
        rows[0]["customer_id"] = 987654
    return retable(a, d, "sale_transactions", change)


def _bad_value(a: Path, d: Path) -> Path:
    def change(rows: list[dict]) -> None:
        rows[0]["opening_balance"] = "a lot"
    return retable(a, d, "customers", change)


def _bad_base64(a: Path, d: Path) -> Path:
    def edit(m: dict) -> dict:
        _table(m, "customers")["columns"][2]["kind"] = "binary"  # name "decoded" as base64
        return m
    return rebuild(a, d, manifest=edit)


NATIVE_CASES = {
    "truncated": (_truncated, "not a zip file, or it is truncated"),
    "bit-flipped": (_bit_flipped("tables/sale_transactions.jsonl"), "sale_transactions"),
    "bit-flipped manifest": (_bit_flipped(MANIFEST), "manifest.json"),
    "empty": (lambda a, d: (d.write_bytes(b""), d)[1], "is empty"),
    "not a zip": (lambda a, d: (d.write_text("id,name\n1,x\n"), d)[1], "not a zip file"),
    "zip bomb": (_zip_bomb, "zip bomb"),
    "dot-dot member": (lambda a, d: rebuild(a, d, extra=[("../../x", b"x")]), "unsafe path"),
    "absolute member": (lambda a, d: rebuild(a, d, extra=[("/etc/cron.d/x", b"x")]),
                        "unsafe path"),
    "drive member": (lambda a, d: rebuild(a, d, extra=[("C:\\x.bat", b"x")]), "unsafe path"),
    "duplicate member": (lambda a, d: rebuild(a, d, extra=[(MANIFEST, b"{}")]), "twice"),
    "encrypted": (_encrypted, "encrypted"),
    "count lies": (_manifest(lambda m: (_table(m, "customers").update(
        rows=_table(m, "customers")["rows"] + 1), m["totals"].update(
        rows=m["totals"]["rows"] + 1))), "incomplete"),
    "checksum lies": (_manifest(lambda m: _table(m, "items").update(sha256="0" * 64)),
                      "checksum"),
    "unknown version": (_manifest(lambda m: m.update(format_version=2)), "version 2"),
    "foreign format": (_manifest(lambda m: m.update(format="something-else")), "foreign"),
    "manifest not json": (lambda a, d: rebuild(a, d, members={MANIFEST: b"{nope"}),
                          "not valid JSON"),
    "no manifest, no data": (lambda a, d: rebuild(a, d, drop=(MANIFEST,)), "not a backup"),
    "member missing": (lambda a, d: rebuild(a, d, drop=("tables/items.jsonl",)), "items"),
    "wrong organization id": (_manifest(lambda m: m["organization"].update(id=2)),
                              "not to Medplus"),
    "wrong organization code": (_manifest(lambda m: m["organization"].update(code="CITY")),
                                "code CITY"),
    "path trick in a table name": (_manifest(lambda m: m["tables"][0].update(
        name="../../etc", member="tables/../../etc.jsonl")), "unsafe|etc"),
    "a row of another organization": (_other_orgs_row, "another organization"),
    "a child of another organization's row": (_foreign_parent, "not one of this organization"),
    "a key twice": (_duplicate_key, "twice"),
    "a reference to nothing": (_dangling_reference, "neither in the backup nor"),
    "a value of the wrong type": (_bad_value, "'a lot' is not a number"),
    "binary that is not base64": (_bad_base64, "base64"),
}


# Cases only a restore can see (the file itself is intact): verify does not flag them.
SEMANTIC = {"wrong organization id", "wrong organization code", "path trick in a table name",
            "a row of another organization", "a child of another organization's row",
            "a key twice", "a reference to nothing", "a value of the wrong type",
            "binary that is not base64", "no organization code", "code of a number",
            "an id that is a word", "a null id", "an amount that is an object"}


def _seed_case(change: Callable[[dict], None]):
    def make(a: Path, d: Path) -> Path:
        _member, data = seed_json(a)
        change(data)
        return write_seed(d, data)
    return make


def _seed_row(table: str, key: str, value):
    def change(data: dict) -> None:
        data["tables"][table]["data"][0][key] = value
    return change


SEED_CASES = {
    "no metadata": (_seed_case(lambda s: s.pop("metadata")), "'metadata'"),
    "tables is a list": (_seed_case(lambda s: s.update(tables=[])), "'tables'"),
    "no organization id": (_seed_case(lambda s: s["metadata"].pop("organization_id")),
                           "which organization"),
    "organization id as text": (_seed_case(lambda s: s["metadata"].update(organization_id="1")),
                                "which organization"),
    "no organization code": (_seed_case(lambda s: s["metadata"].pop("organization_code")),
                             "code none"),
    "code of a number": (_seed_case(lambda s: s["metadata"].update(organization_code=7)),
                         "code is damaged"),
    "count missing": (_seed_case(lambda s: s["tables"]["customers"].pop("count")),
                      "count or data"),
    "count lies": (_seed_case(lambda s: s["tables"]["customers"].update(count=1)),
                   "incomplete"),
    "count as text": (_seed_case(lambda s: s["tables"]["items"].update(count="100")),
                      "count or data"),
    "a row that is a list": (_seed_case(lambda s: s["tables"]["items"]["data"].__setitem__(
        0, [1, 2])), "damaged row"),
    "an id that is a word": (_seed_case(_seed_row("customers", "id", "abc")),
                             "'abc' is not a whole number"),
    "a null id": (_seed_case(_seed_row("customers", "id", None)), "without its id"),
    "an amount that is an object": (_seed_case(_seed_row("customers", "opening_balance",
                                                         {"x": 1})), "not a number"),
    "not JSON at all": (lambda a, d: zip_with(d, APP_DATABASE_MEMBER, b"<?php"),
                        "not valid JSON"),
}


@pytest.fixture(scope="module")
def prepared(demo_template, tmp_path_factory):
    """A real native and web-app archive of MEDP, and the database changed since.

    Shared by every case of this module: a refused restore leaves the database as it was,
    which each case checks with its own before/after digest."""
    base = tmp_path_factory.mktemp("hostile")
    db = base / "billing.sqlite"
    shutil.copyfile(demo_template, db)
    engine = open_engine(f"sqlite:///{db}")
    folder = base / "backups"
    native = backup(engine, folder).rename(base / "native.zip")
    seed = backup(engine, folder, fmt="seed").rename(base / "seed.zip")
    shared.wipe_and_change(engine)
    yield engine, folder, native, seed
    engine.dispose()


def _assert_refused(engine, folder: Path, path: Path, expected: str, damaged: bool) -> None:
    medp = org_of(engine)
    before = db_digest(engine)
    plan = check_restore(Site(engine, MAPPING), medp, path)
    assert not plan.ok
    assert "\n" not in plan.message
    assert any(e in plan.message for e in expected.split("|")), plan.message
    with pytest.raises(RestoreRefused) as refused:
        apply_restore(Site(engine, MAPPING), medp, plan, ADMIN, folder)
    assert str(refused.value) == plan.message
    assert db_digest(engine) == before
    assert not list_restore_points(folder, medp)  # refused before even the restore point
    if damaged:  # what verify can see on its own, it reports too
        report = verify_archive(path)
        assert not report.ok and "\n" not in report.message


@pytest.mark.parametrize("case", list(NATIVE_CASES))
def test_hostile_native_archives_are_refused(prepared, tmp_path, case):
    engine, folder, native, _seed = prepared
    make, expected = NATIVE_CASES[case]
    _assert_refused(engine, folder, make(native, tmp_path / "hostile.zip"), expected,
                    case not in SEMANTIC)


@pytest.mark.parametrize("case", list(SEED_CASES))
def test_hostile_web_app_archives_are_refused(prepared, tmp_path, case):
    engine, folder, _native, seed = prepared
    make, expected = SEED_CASES[case]
    _assert_refused(engine, folder, make(seed, tmp_path / "hostile.zip"), expected,
                    case not in SEMANTIC)


def test_a_member_claiming_a_huge_size_is_refused(prepared, tmp_path, monkeypatch):
    engine, folder, native, _seed = prepared
    monkeypatch.setattr(archive_module, "MAX_MEMBER_BYTES", 1000)
    _assert_refused(engine, folder, native, "claims", True)


def test_the_untouched_archives_are_accepted(prepared):
    """The control: the files the cases above were made from pass every check."""
    engine, _folder, native, seed = prepared
    medp = org_of(engine)
    assert check_restore(Site(engine, MAPPING), medp, native).ok
    assert check_restore(Site(engine, MAPPING), medp, seed).ok


# --- random damage -------------------------------------------------------------------------------

@pytest.fixture
def lab(sqlite_url, tmp_path) -> dict:
    """Made once per test (Hypothesis runs every example inside one call): a native and a
    web-app archive of MEDP, what MEDP looked like when they were made, and a copy of the
    database changed since, which every example starts from."""
    engine = open_engine(sqlite_url)
    try:
        medp = org_of(engine)
        backed_up = org_digest(engine, medp.id)
        native = backup(engine, tmp_path / "made").rename(tmp_path / "native.zip")
        seed = backup(engine, tmp_path / "made", fmt="seed")
        shared.wipe_and_change(engine)
        changed, changed_medp = db_digest(engine), org_digest(engine, medp.id)
    finally:
        engine.dispose()
    pristine = tmp_path / "changed.sqlite"
    shutil.copyfile(sqlite_url.removeprefix("sqlite:///"), pristine)
    return {"dir": tmp_path, "native": native.read_bytes(), "seed": seed_json(seed)[1],
            "backed_up": backed_up, "changed": changed, "changed_medp": changed_medp,
            "pristine": pristine, "n": 0}


def _restore_in_a_copy(lab: dict, archive_bytes: bytes, name: str = "damaged.zip"):
    """Restore `archive_bytes` into a fresh copy of the changed database.

    Returns (True, digest of the whole database) when refused, and (False, digest of MEDP's
    rows) when restored."""
    lab["n"] += 1
    work = lab["dir"] / f"example{lab['n']}"
    work.mkdir()
    db = work / "billing.sqlite"
    shutil.copyfile(lab["pristine"], db)
    archive = work / name
    archive.write_bytes(archive_bytes)
    engine = open_engine(f"sqlite:///{db}")
    try:
        medp = org_of(engine)
        try:
            apply_restore(Site(engine, MAPPING), medp, archive, ADMIN, work / "backups")
        except (RestoreRefused, RestoreFailed) as exc:
            assert "\n" not in str(exc)
            return True, db_digest(engine)
        return False, org_digest(engine, medp.id)
    finally:
        engine.dispose()


def _mutations():
    where = st.floats(0, 1, exclude_max=True)
    flip = st.tuples(st.just("flip"), where, st.integers(1, 255))
    cut = st.tuples(st.just("cut"), where, st.just(0))
    splice = st.tuples(st.just("splice"), where, st.integers(1, 64))
    return st.lists(st.one_of(flip, cut, splice), min_size=1, max_size=3)


def _mutate(raw: bytes, mutations, noise: bytes) -> bytes:
    data = bytearray(raw)
    for kind, where, amount in mutations:
        if not data:
            break
        at = int(where * len(data))
        if kind == "flip":
            data[at] ^= amount
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at + amount] = noise[:amount]
    return bytes(data)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=_mutations(), noise=st.binary(min_size=64, max_size=64))
def test_randomly_damaged_archives_restore_exactly_or_change_nothing(lab, mutations, noise):
    refused, digest = _restore_in_a_copy(lab, _mutate(lab["native"], mutations, noise))
    assert digest == (lab["changed"] if refused else lab["backed_up"])


def _seed_paths(data: dict) -> list[tuple]:
    paths = [("metadata",), ("metadata", "organization_id"), ("metadata", "organization_code"),
             ("tables",)]
    for name in sorted(data["tables"]):
        paths += [("tables", name), ("tables", name, "count"), ("tables", name, "data")]
        if data["tables"][name]["data"]:
            paths += [("tables", name, "data", 0)]
            paths += [("tables", name, "data", 0, k) for k in ("id", "user_id", "organization_id")
                      if k in data["tables"][name]["data"][0]]
    return paths


_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=5),
                  st.floats(allow_nan=False, allow_infinity=False), st.just([]), st.just({}),
                  st.just([1, "a"]), st.just({"count": 1}))


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(choice=st.integers(0, 10_000), delete=st.booleans(), junk=_JUNK)
def test_web_app_json_with_keys_missing_or_wrong_types(lab, choice, delete, junk):
    """Structure and ids of the web app's JSON replaced by junk or removed: refused, or — when
    the junk means the same (True for organization 1) — restored exactly as the original."""
    data = json.loads(json.dumps(lab["seed"]))
    path = _seed_paths(data)[choice % len(_seed_paths(data))]
    if len(path) == 5:  # a row's id: only junk of the wrong type (a number is just a change)
        assume(not (isinstance(junk, int | float) and not isinstance(junk, bool)))
        assume(not (isinstance(junk, str) and junk.strip().lstrip("+-").isdigit()))
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        parent.pop(path[-1])
    else:
        parent[path[-1]] = junk
    refused, digest = _restore_in_a_copy(lab, _zipped_seed(data),
                                         "org_MEDP_monday_full_backup.zip")
    if refused:
        assert digest == lab["changed"]
        return
    if "control" not in lab:
        lab["control"] = _restore_in_a_copy(lab, _zipped_seed(lab["seed"]))[1]
    expected = dict(lab["control"])
    if delete and len(path) == 2 and path[0] == "tables":
        # The web app backs up the tables it has: one it lacks is left as it is.
        expected[path[1]] = lab["changed_medp"][path[1]]
    assert digest == expected


def _zipped_seed(data: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(APP_DATABASE_MEMBER, json.dumps(data))
    return buffer.getvalue()


# --- reading a batch line ------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@given(rows=st.lists(st.lists(JSON_VALUES, max_size=5), max_size=5))
@settings(max_examples=300, deadline=None)
def test_a_batch_line_reads_exactly_as_the_json_module_reads_it(rows):
    """The fast parser and its fallback read every line the way json does: NaN, integers past
    64 bits and floats included (compared by their JSON text, as NaN never equals itself).
    Lone surrogates, which json reads and no database stores, are refused (below)."""
    line = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8",
                                                                           "surrogatepass")
    try:
        expected = json.loads(line)
    except ValueError:
        with pytest.raises(ValueError):
            archive_module.parse_batch(line)
        return
    got = archive_module.parse_batch(line)
    assert json.dumps(got) == json.dumps(expected)


@pytest.mark.parametrize("line", [b'[[NaN,Infinity,-Infinity]]', b'[[%d]]' % 2**70,
                                  b'[[-%d]]' % 2**64, b'[["\\ud83d\\ude80"]]',
                                  b'[[1e400,-0.0,0.1]]',
                                  b'[["\xc5\x9br\xc4\xab \xf0\x9f\x9a\x80"]]'])
def test_lines_the_fast_parser_refuses_are_read_by_json(line):
    assert json.dumps(archive_module.parse_batch(line)) == json.dumps(json.loads(line))


@pytest.mark.parametrize("line", [b"[[1,]]", b"[[1]", b'[["\xff"]]', b"", b"[[1]] x",
                                  b'[["\\ud800"]]', b'[["\\udc00\\ud800"]]',
                                  b"[" * 100_000 + b"]" * 100_000])
def test_a_damaged_batch_line_raises_value_error(line):
    with pytest.raises(ValueError):
        archive_module.parse_batch(line)
