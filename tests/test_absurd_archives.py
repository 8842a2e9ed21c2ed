"""Absurd content in a well-formed archive: a sentence and no change, or an exact restore.

An archive is data, never authority: anyone who can restore can also edit a backup and
recompute its checksums. Values that no column can hold as written (NaN, 1e999, integers past
64 bits, lone surrogates, text longer than its VARCHAR, more decimal places than the scale)
and JSON nested 100,000 deep are refused with one sentence naming what was wrong, on every
dialect alike; whatever is accepted comes back exactly. Each case is forged from a real
backup in the test, checksums recomputed, and restored on SQLite and on the servers.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    Numeric,
    SmallInteger,
    String,
    create_engine,
    select,
)
from sqlalchemy.dialects import mysql

from desktop_backup.archive import MANIFEST
from desktop_backup.cli import main
from desktop_backup.db import open_engine, reflect
from desktop_backup.demo import DEMO_PASSWORD, load_demo
from desktop_backup.history import ensure_tables, recent
from desktop_backup.opening import verify_archive
from desktop_backup.restore import RestoreFailed, RestoreRefused, apply_restore, check_restore
from desktop_backup.restore.transaction import run_restore
from desktop_backup.restore.values import ValueProblem, column_converter, column_fit, live_kind
from desktop_backup.seedformat import APP_DATABASE_MEMBER
from desktop_backup.work import Site
from tests.conftest import TEST_SCALE
from tests.dbservers import DIALECTS, fresh_database
from tests.restore_support import (
    ADMIN,
    MAPPING,
    backup,
    db_digest,
    org_of,
    rebuild,
    run,
    wipe_and_change,
)

RAW = "\x00raw{}\x00"  # stands for JSON text json.dumps cannot write (1e999, deep nesting)


@pytest.fixture(scope="module", params=DIALECTS)
def dialect(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def world(dialect, tmp_path_factory):
    """One demo database per dialect, MEDP's native and web-app backups, then a bad day.
    Every case checks its own before/after digest: a refusal changes nothing, and an
    accepted restore is compared with the archive it restored."""
    base = tmp_path_factory.mktemp(f"absurd-{dialect}")
    with fresh_database(dialect, base) as url:
        loader = create_engine(url)
        load_demo(loader, scale=TEST_SCALE)
        loader.dispose()
        engine = open_engine(url)
        native = backup(engine, base / "made").rename(base / "native.zip")
        seed = backup(engine, base / "made", fmt="seed").rename(base / "seed.zip")
        wipe_and_change(engine)
        yield {"engine": engine, "folder": base / "backups", "native": native, "seed": seed,
               "dialect": dialect, "n": 0, "dir": base}
        engine.dispose()


def _path(world) -> Path:
    world["n"] += 1
    return world["dir"] / f"forged-{world['n']}.zip"


def forge(world, table: str, change, raws: tuple[bytes, ...] = ()) -> Path:
    """MEDP's native backup with `change(rows)` applied to one table's rows (as dicts) and
    every count, size and checksum made to agree: a forgery only the content checks catch.
    A value RAW.format(i) becomes the JSON text raws[i]."""
    src = world["native"]
    with zipfile.ZipFile(src) as zin:
        manifest = json.loads(zin.read(MANIFEST))
        entry = next(t for t in manifest["tables"] if t["name"] == table)
        names = [c["name"] for c in entry["columns"]]
        rows = [dict(zip(names, r, strict=True))
                for line in zin.read(entry["member"]).splitlines() for r in json.loads(line)]
    change(rows)
    data = json.dumps([[r[n] for n in names] for r in rows]).encode() + b"\n"
    for i, raw in enumerate(raws):
        data = data.replace(json.dumps(RAW.format(i)).encode(), raw)
    entry.update(rows=len(rows), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest["totals"]["rows"] = sum(t["rows"] for t in manifest["tables"])
    return rebuild(src, _path(world), manifest=lambda _m: manifest,
                   members={entry["member"]: data})


def forge_seed(world, change, raw: bytes | None = None) -> Path:
    """MEDP's web-app backup with its JSON changed; RAW.format(0) becomes `raw`."""
    with zipfile.ZipFile(world["seed"]) as zf:
        data = json.loads(zf.read(zf.namelist()[0]))
    change(data)
    text = json.dumps(data).encode()
    if raw is not None:
        text = text.replace(json.dumps(RAW.format(0)).encode(), raw)
    path = _path(world)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(APP_DATABASE_MEMBER, text)
    return path


def refused(world, path: Path, expected: str) -> None:
    """Refused by the check and by the restore with one sentence; nothing changed; the
    refusal is in the audit."""
    engine = world["engine"]
    medp = org_of(engine)
    before = db_digest(engine)
    plan = check_restore(Site(engine, MAPPING), medp, path)
    assert not plan.ok and "\n" not in plan.message
    assert expected in plan.message, plan.message
    with pytest.raises(RestoreRefused):
        apply_restore(Site(engine, MAPPING), medp, plan, ADMIN, world["folder"])
    assert db_digest(engine) == before
    _slot, audit = ensure_tables(engine)
    last = recent(engine, audit, medp.id, limit=1)[0]
    assert last.outcome == "refused" and last.message == plan.message


def _first(table: str, column: str, value):
    def change(rows: list[dict]) -> None:
        rows[0][column] = value
    return change


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- point 4: values no column holds as written ------------------------------------------------

VALUE_CASES = {
    "NaN in a decimal": (_first("customers", "opening_balance", RAW.format(0)), (b"NaN",),
                         "not a finite number"),
    "Infinity in a decimal": (_first("customers", "opening_balance", RAW.format(0)),
                              (b"Infinity",), "not a finite number"),
    "1e999 in a decimal": (_first("customers", "opening_balance", RAW.format(0)), (b"1e999",),
                           "not a finite number"),
    "the text NaN in a decimal": (_first("customers", "opening_balance", "NaN"), (),
                                  "not a finite number"),
    "more digits than DECIMAL(14,2)": (_first("customers", "opening_balance",
                                              "99999999999999999999.99"), (), "too large"),
    "more decimal places than the scale": (_first("customers", "opening_balance", "1.005"),
                                           (), "decimal places"),
    "1e308 in a decimal": (_first("customers", "opening_balance", 1e308), (), "too large"),
    "an integer of 2^64": (_first("customers", "state_id", 2**64), (), "outside the range"),
    "an integer of 2^63 as a key": (_first("customers", "id", 2**63), (), "outside the range"),
    "a lone surrogate": (_first("customers", "name", RAW.format(0)), (b'"\\ud800"',),
                         "not valid Unicode"),
    "text longer than its VARCHAR": (_first("customers", "phone", "9" * 21), (),
                                     "more than the column's 20"),
    "a float where text belongs": (_first("customers", "name", 1e308), (),
                                   "fraction where text belongs"),
    "JSON nested 100,000 deep in a batch line": (_first("customers", "name", RAW.format(0)),
                                                 (_deep(100_000),), "nested too deeply"),
    "JSON nested 1,000 deep in a value": (_first("customers", "name", RAW.format(0)),
                                          (_deep(1_000),), "nested object"),
}


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_absurd_values_are_refused_with_a_sentence(world, case):
    change, raws, expected = VALUE_CASES[case]
    refused(world, forge(world, "customers", change, raws), expected)


SEED_VALUE_CASES = {
    "JSON nested 100,000 deep": (_deep(100_000), "nests or repeats values"),
    "a lone surrogate": (b'"\\ud800"', "not valid Unicode"),
    "an integer of 2^64": (b"%d" % 2**64, "outside the range"),
    "Infinity as text": (b'"Infinity"', "not a finite number"),
}


@pytest.mark.parametrize("case", list(SEED_VALUE_CASES))
def test_absurd_values_in_a_web_app_backup_are_refused(world, case):
    raw, expected = SEED_VALUE_CASES[case]
    column = "state_id" if "integer" in case else "opening_balance" if "Infinity" in case \
        else "name"

    def change(data: dict) -> None:
        data["tables"]["customers"]["data"][0][column] = RAW.format(0)
    refused(world, forge_seed(world, change, raw), expected)


def test_the_transaction_writes_only_what_the_check_judged(world):
    """The transaction converts the archive again without judging each value's size a
    second time: it may write only the bytes the check judged. An archive swapped after the
    check, with a name too long for its column (which SQLite would keep) and every count and
    checksum of its own made to agree, is rolled back: nothing changes."""
    engine = world["engine"]
    medp = org_of(engine)
    plan = check_restore(Site(engine, MAPPING), medp, world["native"], restorer=ADMIN)
    assert plan.ok, plan.message
    swapped = forge(world, "customers", lambda rows: rows[0].update(name="x" * 300))
    before = db_digest(engine)
    with pytest.raises(RestoreFailed) as failed:
        run_restore(engine, plan.checked, swapped, medp.id)
    assert db_digest(engine) == before
    if world["dialect"] == "sqlite":  # the others refuse the name themselves
        assert "customers does not match its checksum" in str(failed.value)


def test_a_manifest_nested_100000_deep_is_refused(world):
    path = rebuild(world["native"], _path(world),
                   members={MANIFEST: b'{"format": ' + _deep(100_000) + b"}"})
    refused(world, path, "not valid JSON")
    path = rebuild(world["native"], _path(world), manifest=lambda m: {
        **m, "source": json.loads(_deep(500))})
    refused(world, path, "nested too deeply")


def test_a_lone_surrogate_in_the_manifest_is_refused(world):
    path = rebuild(world["native"], _path(world),
                   manifest=lambda m: {**m, "app_version": "\ud800"})
    refused(world, path, "not valid Unicode")


def test_exact_values_at_the_edges_restore_exactly(world):
    """The accepted side of the line: the largest DECIMAL(14,2), a negative amount with
    trailing zeros, an exponent that is a whole number, a name at its full length."""
    engine = world["engine"]
    medp = org_of(engine)
    ids = []

    def change(rows: list[dict]) -> None:
        rows[0].update(opening_balance="999999999999.99", name="é" * 255, phone="9" * 20)
        rows[1]["opening_balance"] = "-12.50"
        rows[2]["opening_balance"] = "1E+2"
        ids.extend(r["id"] for r in rows[:3])
    apply_restore(Site(engine, MAPPING), medp, forge(world, "customers", change), ADMIN,
                  world["folder"])
    got = _rows_by_id(engine, "customers", ids)
    assert got[ids[0]]["opening_balance"] == Decimal("999999999999.99")
    assert got[ids[0]]["name"] == "é" * 255 and got[ids[0]]["phone"] == "9" * 20
    assert got[ids[1]]["opening_balance"] == Decimal("-12.50")
    assert got[ids[2]]["opening_balance"] == Decimal("100")


def _rows_by_id(engine, table: str, ids=None) -> dict:
    with engine.connect() as conn:
        t = reflect(conn).tables[table]
        query = select(t).where(t.c.organization_id == 1)
        if ids is not None:
            query = query.where(t.c.id.in_(ids))
        return {r.id: r._asdict() for r in conn.execute(query)}


# --- the rules themselves, per declared type --------------------------------------------------

@pytest.mark.parametrize(("column", "dialect_name", "bad", "good"), [
    (Column("n", SmallInteger), "sqlite", 40_000, 32_767),
    (Column("n", Integer), "mysql", 2**31, 2**31 - 1),
    (Column("n", Integer), "sqlite", 2**63, 2**63 - 1),  # SQLite's INTEGER is 64-bit
    (Column("n", BigInteger), "postgresql", -(2**63) - 1, -(2**63)),
    (Column("n", mysql.BIGINT(unsigned=True)), "mysql", -1, 2**64 - 1),
    (Column("n", mysql.TINYINT()), "mysql", 128, -128),
    (Column("s", String(3)), "sqlite", "abcd", "abc"),
    (Column("d", Numeric(5, 2)), "sqlite", "1000.00", "999.99"),
    (Column("d", Numeric(5, 2)), "mysql", "0.001", "0.0100"),
    (Column("d", Numeric(30, 10)), "sqlite", "1234567890.1234567", 1.2345678901234567e+19),
    (Column("f", Float), "sqlite", -0.0, 0.0),
    (Column("f", Float), "mysql", float("inf"), 1e308),
    (Column("f", Float), "postgresql", 2**53 + 1, 2**53),
    (Column("f", Float), "sqlite", "1e999", "1e308"),
])
def test_a_value_must_fit_the_declared_column_on_every_dialect(column, dialect_name, bad,
                                                               good):
    convert = column_converter("text", live_kind(column), dialect_name,
                               column_fit(column, dialect_name))
    assert convert([good, None]) is not None
    with pytest.raises(ValueProblem):
        convert([good, bad])


def _fits_alone(value, precision: int, scale: int, dialect_name: str) -> bool:
    """The rule for one value of a DECIMAL(p,s) column, as ColumnFit's docstring states it:
    a float read from its shortest text (what Decimal reads), a whole number as it is."""
    if value is None:
        return True
    if isinstance(value, float):
        if not math.isfinite(value):
            return False
        if value == 0 and math.copysign(1.0, value) < 0 and dialect_name != "postgresql":
            return False
    number = Decimal(repr(value) if isinstance(value, float) else value)
    if not number.is_finite():
        return False
    if number.is_zero():
        return True
    exact = number.normalize()
    fraction = max(-exact.as_tuple().exponent, 0)
    if fraction > scale or max(exact.adjusted() + 1, 0) > precision - scale:
        return False
    if dialect_name == "sqlite" and not isinstance(value, float):  # what SQLite keeps exactly
        return -(2**63) <= exact < 2**63 if fraction == 0 else len(exact.as_tuple().digits) <= 15
    return True


def _decimal_values():
    """What a DECIMAL column of an archive holds: floats that spell decimals of up to 17
    digits (an SQLite backup's), their neighbours and any other float; whole numbers; decimal
    text (a MariaDB or PostgreSQL backup's); None."""
    spelled = st.builds(lambda digits, places: Decimal(digits).scaleb(-places),
                        st.integers(-(10**17), 10**17), st.integers(0, 17))
    floats = spelled.map(float)
    neighbour = floats.flatmap(lambda v: st.sampled_from(
        [v, math.nextafter(v, math.inf), math.nextafter(v, -math.inf)]))
    return st.one_of(floats, neighbour, st.floats(), st.sampled_from(
        [-0.0, 0.0, 0.1 + 0.2, 1e16, 1e-5, 99999.995, 999999999999.99, 2.0**50 / 100]),
        st.none(), st.integers(-(2**64), 2**64), spelled.map(str),
        st.sampled_from(["-12.50", "1E+2", "+0.10", "00012", "1e-2"]))


@pytest.mark.parametrize("dialect_name", ["sqlite", "mysql", "postgresql"])
@pytest.mark.parametrize(("precision", "scale"), [(5, 2), (14, 2), (15, 4), (12, 0), (15, 15),
                                                  (18, 2), (17, 0), (20, 16)])
@settings(max_examples=300, deadline=None)
@given(values=st.one_of(st.lists(_decimal_values(), min_size=1, max_size=6),
                        st.lists(st.one_of(st.none(), _decimal_values().filter(
                            lambda v: isinstance(v, float))), min_size=1, max_size=6)))
def test_a_decimal_column_is_judged_as_each_value_alone(dialect_name, precision, scale,
                                                        values):
    """A DECIMAL column is judged a whole column at once (floats by arithmetic, then text
    by a pattern, whole numbers by their range): the verdict must be the one the rule gives
    each value alone, whatever the mix of types."""
    fit = column_fit(Column("d", Numeric(precision, scale)), dialect_name)
    expected = all(_fits_alone(v, precision, scale, dialect_name) for v in values)
    try:
        fit.check(values)
        accepted = True
    except ValueProblem:
        accepted = False
    assert accepted == expected, values


def test_a_float_where_the_column_keeps_negative_zero_is_kept():
    column = Column("f", Float)
    convert = column_converter("float", "float", "postgresql", column_fit(column, "postgresql"))
    assert convert([-0.0]) == [-0.0]


# --- the command line --------------------------------------------------------------------------

def test_verify_and_restore_answer_absurd_input_with_one_sentence(world, app_paths, capsys,
                                                                   monkeypatch):
    if world["dialect"] != "sqlite":
        pytest.skip("the command line is the same on every dialect")
    cheap = "$2y$" + bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(4)).decode()[4:]
    run(world["engine"], "UPDATE users SET password = :hash WHERE username = 'medp.admin'",
        hash=cheap)
    monkeypatch.setenv("DESKTOP_BACKUP_PASSWORD", DEMO_PASSWORD)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    path = forge(world, "customers", _first("customers", "name", RAW.format(0)),
                 (_deep(100_000),))
    assert main(["verify", str(path), "--json"], paths=app_paths) == 1
    out, _err = capsys.readouterr()
    answer = json.loads(out)
    assert not answer["ok"] and "nested too deeply" in answer["message"]
    url = world["engine"].url.render_as_string(hide_password=False)
    before = db_digest(world["engine"])
    code = main(["restore", str(path), "--db", url, "--org", "MEDP", "--user", "medp.admin",
                 "--dir", str(world["folder"]), "--yes", "--json"], paths=app_paths)
    out, err = capsys.readouterr()
    assert code == 1
    answer = json.loads(out)
    assert not answer["ok"] and "nested too deeply" in answer["message"]
    assert db_digest(world["engine"]) == before


# --- random values, checksums recomputed ------------------------------------------------------

NUMBERISH = [RAW.format(0), RAW.format(1), RAW.format(2), -0.0, 0.0, 1e308, 12.5, 0.1,
             "99999999999999999999.99", "NaN", "Infinity", "-0.00", "1.005", "12.5", "1E+2",
             "0.1", 2**63, 2**64, -(2**63) - 1, 2**31, 7, "7", None]
TEXTISH = [RAW.format(3), "x" * 21, "x" * 256, "ok", "", "é" * 20, "Śrī 🚀", [1, 2], {"a": 1},
           "2026-01-12 12:14:11"]
RAWS = (b"NaN", b"1e999", b"-Infinity", b'"\\ud800"')
COLUMNS = ["name", "phone", "email", "address", "gstin", "opening_balance", "state_id"]


def _same(archived, stored) -> bool:
    """The database holds what the archive says, judged as the column's type reads it."""
    if archived is None or stored is None:
        return archived is None and stored is None
    if isinstance(stored, Decimal):
        return Decimal(str(archived)) == stored
    if isinstance(stored, int) and not isinstance(stored, bool):
        return int(archived) == stored
    if isinstance(stored, float):
        return float(archived) == stored and str(float(archived))[0] == str(stored)[0]
    return (str(archived) if isinstance(archived, int) else archived) == stored


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.integers(0, 20), st.sampled_from(COLUMNS),
                                   st.sampled_from(NUMBERISH + TEXTISH)),
                        min_size=1, max_size=3))
def test_mutated_values_are_refused_or_restored_exactly(world, changes):
    """Values of MEDP's customers replaced at random, checksums recomputed: the restore
    either refuses with one sentence and changes nothing, or the database then holds
    exactly the archive's values."""
    engine = world["engine"]
    medp = org_of(engine)
    forged: dict[int, dict] = {}

    def change(rows: list[dict]) -> None:
        for index, column, value in changes:
            rows[index][column] = value
        forged.update({r["id"]: r for r in rows})
    path = forge(world, "customers", change, RAWS)
    before = db_digest(engine)
    try:
        apply_restore(Site(engine, MAPPING), medp, path, ADMIN, world["folder"])
    except (RestoreRefused, RestoreFailed) as exc:
        assert "\n" not in str(exc) and "Traceback" not in str(exc)
        assert db_digest(engine) == before
        return
    stored = _rows_by_id(engine, "customers")
    assert set(stored) == set(forged)
    for key, row in forged.items():
        for column in COLUMNS:
            assert _same(row[column], stored[key][column]), (column, row[column],
                                                             stored[key][column])


# --- verify reads the same way -----------------------------------------------------------------

def test_verify_says_what_is_wrong_without_a_traceback(world):
    path = forge(world, "customers", _first("customers", "name", RAW.format(0)),
                 (b'"\\udc00"',))
    report = verify_archive(path)
    assert not report.ok and "not valid Unicode" in report.message


# --- point 5: verify tells the truth ------------------------------------------------------------

def test_members_the_manifest_does_not_list_are_reported_and_never_read(world):
    """Junk slipped into a backup (the web app's source code, a stream of garbage) is named
    by verify and in the restore's preview; it is never read: here it is a deflate stream
    damaged on purpose, which reading would trip over."""
    path = rebuild(world["native"], _path(world), extra=[
        ("code/x.php", b"<?php system($_GET['c']);"),
        *((f"junk/{i}", b"x") for i in range(40)),
        ("junk/stream", b"0123456789" * 100_000)])
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("junk/stream")
    at = info.header_offset + 30 + len(info.orig_filename) + info.compress_size // 2
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    report = verify_archive(path)
    assert report.ok, report.message
    assert "42 files that are not part of the backup (code/x.php" in report.message
    assert set(report.unlisted) == {"code/x.php", "junk/stream", *(f"junk/{i}" for i in
                                                                   range(40))}
    plan = check_restore(Site(world["engine"], MAPPING), org_of(world["engine"]), path)
    assert plan.ok and any("code/x.php" in w for w in plan.warnings)


def _lie(change):
    def edit(m: dict) -> dict:
        change(m)
        return m
    return edit


def _customers(m: dict) -> dict:
    return next(t for t in m["tables"] if t["name"] == "customers")


LIES = {
    "a table's bytes": (lambda m: _customers(m).update(bytes=_customers(m)["bytes"] + 1),
                        "holds"),
    "the total of rows": (lambda m: m["totals"].update(rows=m["totals"]["rows"] - 1),
                          "totals"),
    "the number of tables": (lambda m: m["totals"].update(tables=1), "totals"),
    "no totals at all": (lambda m: m.pop("totals"), "totals"),
    "no tables at all": (lambda m: m.update(tables=[], totals={"tables": 0, "rows": 0}),
                         "lists no tables"),
}


@pytest.mark.parametrize("lie", list(LIES))
def test_a_manifest_that_lies_or_lists_nothing_is_refused(world, lie):
    change, expected = LIES[lie]
    path = rebuild(world["native"], _path(world), manifest=_lie(change))
    report = verify_archive(path)
    assert not report.ok and expected in report.message
    refused(world, path, expected)


def test_a_web_app_backup_without_tables_is_refused(world):
    path = forge_seed(world, lambda data: data.update(tables={}))
    assert not verify_archive(path).ok
    refused(world, path, "lists no tables")
