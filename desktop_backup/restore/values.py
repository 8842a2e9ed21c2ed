"""Archive values on their way into live columns: decoded, checked, converted exactly.

The archive says what a value *was* (its JSON, and for native archives a coarse `kind`); the
live column says what it must *become*. Decimals, dates and JSON stay strings — the server
converts them, so nothing passes through floating point — while whole numbers, booleans and
binary data are turned into the Python values every driver binds correctly. A value that
cannot be converted is refused with the table, the column and the value named.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import repeat
from typing import Any

from sqlalchemy import types as sqltypes

Converter = Callable[[Any], Any]
ColumnConverter = Callable[..., Sequence]  # (values, judged=False): see column_converter
Key = tuple


class ValueProblem(ValueError):
    """One value in the archive cannot go into its live column."""


def live_kind(column) -> str:
    """What a live column takes, from SQLAlchemy's generic type (never from the archive)."""
    kind = column.type
    if isinstance(kind, sqltypes.JSON):
        return "json"
    if isinstance(kind, sqltypes.Boolean):
        return "boolean"
    if isinstance(kind, sqltypes.Float):
        return "float"
    if isinstance(kind, sqltypes.Numeric):
        return "decimal"
    if isinstance(kind, sqltypes.Integer):
        return "integer"
    if isinstance(kind, sqltypes.DateTime):
        return "datetime"
    if isinstance(kind, sqltypes.Date):
        return "date"
    if isinstance(kind, sqltypes.Time):
        return "time"
    if isinstance(kind, sqltypes._Binary):  # noqa: SLF001 - LargeBinary, BLOB, BYTEA, ...
        return "binary"
    return "text"


_WHOLE = re.compile(r"[+-]?\d+")
_BOOL_TEXT = {"0": False, "1": True, "false": False, "true": True, "f": False, "t": True}


def _scalar(value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ValueProblem("a nested object where a single value belongs")
    return value


def _to_integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value)  # older PHP/PDO versions write every integer as a string
    raise ValueProblem(f"{_show(value)} is not a whole number")


def _boolean_to_integer(value: Any) -> int:
    """A boolean column's value going into an integer column (MySQL's TINYINT(1))."""
    return int(value) if isinstance(value, bool) else _to_integer(value)


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueProblem(f"{_show(value)} is not true or false")


def _to_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueProblem(f"{_show(value)} is not a number")
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueProblem(f"{_show(value)} is not a number") from None
        if not number.is_finite():  # 'NaN', 'Infinity': no column keeps them as written
            raise ValueProblem(f"{_show(value)} is not a finite number")
        if not _ONE_NUMBER.fullmatch(value.strip()):  # '1_000', Arabic-Indic digits
            raise ValueProblem(f"{_show(value)} is not a number as a database writes one")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem(f"{_show(value)} is not a finite number")
    return value  # decimals stay strings: exact, and the server converts them


def _to_moment(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueProblem(f"{_show(value)} is not a date or time")
    return value


def _to_json(value: Any) -> str:
    if isinstance(value, str):
        return value  # JSON text, exactly as the backup holds it
    try:  # NaN is not JSON, and nesting past the interpreter's depth is not data
        return json.dumps(value, allow_nan=False)
    except (ValueError, RecursionError):
        raise ValueProblem("a JSON value that is not valid JSON or is nested too deeply"
                           ) from None


def _to_binary(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")  # the web app's JSON cannot carry raw bytes
    raise ValueProblem(f"{_show(value)} is not binary data")


def _from_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueProblem("binary data that is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueProblem("binary data that is not valid base64") from None


def _text_for(dialect: str) -> Converter:
    def to_text(value: Any) -> Any:
        """Text as it is. A whole number as its digits where PostgreSQL (which compares text
        with text only) or its size (past 64 bits no driver binds it) asks for it; a number
        with a fraction is refused, as each dialect spells it differently ('1e+308',
        '1.0e+308')."""
        _scalar(value)
        if isinstance(value, float):
            raise ValueProblem(f"{_show(value)} is a number with a fraction where text "
                               "belongs")
        if isinstance(value, int) and not isinstance(value, bool) and (
                dialect == "postgresql" or not INT64[0] <= value <= INT64[1]):
            return str(value)
        return value
    return to_text


def _to_moment_sqlite(value: Any) -> Any:
    """SQLite keeps whatever a date column held; its restore does too, within what SQLite
    can store as written (no NaN, no integer past 64 bits)."""
    _scalar(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem(f"{_show(value)} is not a finite number")
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ValueProblem(f"{_show(value)} is too large for the column")
    return value


def converter(archive_kind: str, target: str, dialect: str) -> Converter:
    """A function from an archive value to the value bound for the live column.

    Binary values of native archives are base64; every other value is as JSON read it.
    Decimals, dates and JSON are passed as strings: the server converts them exactly.
    """
    by_kind: dict[str, Converter] = {
        "integer": _to_integer, "boolean": _to_boolean, "decimal": _to_number,
        "float": _to_number, "date": _to_moment, "datetime": _to_moment, "time": _to_moment,
        "json": _to_json, "binary": _to_binary}
    to_live = by_kind.get(target) or _text_for(dialect)
    if target == "integer" and archive_kind == "boolean":
        to_live = _boolean_to_integer
    if dialect == "sqlite" and target in ("date", "datetime", "time"):
        to_live = _to_moment_sqlite
    decode_base64 = archive_kind == "binary"

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if decode_base64:
            value = _from_base64(value)
        return to_live(value)
    return convert


_NONE = type(None)
_SCALARS = frozenset({str, int, float, bool, bytes, _NONE})
# A number as Decimal() reads it, without the blanks it also strips: the usual spelling.
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBERS = re.compile(rf"(?:{_NUMBER}\n)*{_NUMBER}")
_ONE_NUMBER = re.compile(_NUMBER)


def _unchanged_types(archive_kind: str, target: str, dialect: str) -> frozenset:
    """The Python types whose values :func:`converter` returns as they are (None included)."""
    if archive_kind == "binary":
        return frozenset({_NONE})  # always base64 text to decode
    if dialect == "sqlite" and target in ("date", "datetime", "time"):
        return frozenset({str, bool, bytes, _NONE})
    by_target = {
        "integer": {int}, "boolean": {bool}, "decimal": {int, float}, "float": {int, float},
        "date": {str}, "datetime": {str}, "time": {str}, "json": {str}, "binary": {bytes},
        "text": {str, bool, bytes} if dialect == "postgresql" else {str, bool, bytes, int}}
    return frozenset(by_target[target]) | {_NONE}


def column_converter(archive_kind: str, target: str, dialect: str,
                     fit: ColumnFit | None = None) -> ColumnConverter:
    """Like :func:`converter`, for a whole column of a batch at once.

    Most columns hold values that are already what the live column takes (whole numbers as
    int, dates and decimals as text): those are recognised by their types alone, in C, and
    returned untouched. Decimal text is checked with one regular expression over the column;
    anything else goes value by value through :func:`converter`, which names a bad value.
    Then `fit` (the live column's declared size) refuses what the column cannot hold, unless
    the call says ``judged=True``: values the check has already judged (see
    TablePlan.decode_columns).
    """
    one = converter(archive_kind, target, dialect)
    unchanged = _unchanged_types(archive_kind, target, dialect)
    numbers = target in ("decimal", "float") and archive_kind != "binary"
    digits_past_64_bits = target == "text" and int in unchanged  # see converter's to_text
    check = fit.check if fit is not None else None

    def convert_column(values: Sequence, judged: bool = False) -> Sequence:
        types = set(map(type, values))
        if types <= unchanged and (float not in types or _all_finite(values)) and not (
                digits_past_64_bits and int in types and _past_64_bits(values)):
            out = values
        elif target == "boolean" and types <= {int, _NONE} and archive_kind != "binary" and (
                set(values) <= {0, 1, None}):
            out = [None if v is None else v == 1 for v in values]  # SQLite's 0 and 1
        elif numbers and types <= unchanged | {str} and float not in types:
            text = [v for v in values if type(v) is str]
            joined = "\n".join(text)
            valid = joined.count("\n") == len(text) - 1 and _NUMBERS.fullmatch(joined)
            # valid decimal text stays text: the server converts it
            out = values if valid else list(map(one, values))
        else:
            out = list(map(one, values))
        if check is not None and not judged:
            check(out, types if out is values else None)
        return out
    return convert_column


# --- what the live column can hold -----------------------------------------------------------

INT64 = (-(2**63), 2**63 - 1)
_INT_BITS = {"TINYINT": 8, "SMALLINT": 16, "SMALLINTEGER": 16, "MEDIUMINT": 24, "INT": 32,
             "INTEGER": 32, "BIGINT": 64, "BIGINTEGER": 64}
# Digits SQLite keeps of decimal text with a fraction in a NUMERIC column (it converts the
# text to REAL; whole numbers within 64 bits become exact INTEGERs, floats are bound as the
# REAL they are): more would come back changed, so they are refused.
SQLITE_DIGITS = 15


def _all_finite(values: Sequence) -> bool:
    """No float of `values` is NaN or infinite (their sum is finite; an overflow of the sum
    only sends the column the slow way, value by value)."""
    return math.isfinite(sum(v for v in values if type(v) is float))


def _past_64_bits(values: Sequence) -> bool:
    """Whether a whole number of `values` is one no driver binds (text takes its digits)."""
    ints = [v for v in values if type(v) is int]
    return bool(ints) and (min(ints) < INT64[0] or max(ints) > INT64[1])


@dataclass(frozen=True)
class ColumnFit:
    """What a live column can hold, from its declared type, judged the same on every dialect
    (the way MariaDB in strict mode judges it), so a backup restores the same everywhere:
    whole numbers within the integer type's range, text within VARCHAR(n)/CHAR(n), decimals
    within DECIMAL(p,s) and without more fraction digits than the scale (MariaDB would round
    them), and what SQLite itself cannot keep exactly (decimal text past 15 significant
    digits, a negative zero) refused where SQLite is the database.

    SQLite's INTEGER is its 64-bit integer (and what Laravel declares for every integer
    type there); an explicit INT, SMALLINT, TINYINT or MEDIUMINT gets MariaDB's range."""

    column: str
    target: str
    dialect: str
    int_range: tuple[int, int] | None = None
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def check(self, values: Sequence, types: set[type] | None = None) -> None:
        """Raise ValueProblem naming the first value the column cannot hold. `types` (the
        values' types, where the caller has them) spares passes over the column."""
        checks = {"integer": self._integers, "text": self._texts, "decimal": self._decimals,
                  "float": self._floats}
        run = checks.get(self.target)
        if run is not None:
            run(values, types if types is not None else set(map(type, values)))

    def _integers(self, values: Sequence, types: set[type]) -> None:
        low, high = self.int_range or INT64
        # without None, and without 0 too: every integer type holds 0
        present = list(filter(None, values)) if _NONE in types else values
        if present and (min(present) < low or max(present) > high):
            bad = next(v for v in present if not low <= v <= high)
            raise ValueProblem(f"{_show(bad)} is outside the range of the column "
                               f"({low} to {high})")

    def _texts(self, values: Sequence, types: set[type]) -> None:
        if self.length is None:
            return
        text = filter(None, values) if types <= {str, _NONE} else (
            v for v in values if type(v) is str)  # "" and None never exceed a length
        if max(map(len, text), default=0) > self.length:
            bad = next(v for v in values if type(v) is str and len(v) > self.length)
            raise ValueProblem(f"{_show(bad)} is {len(bad)} characters long, more than the "
                               f"column's {self.length}")

    def _decimals(self, values: Sequence, types: set[type]) -> None:
        """Decimal text within the declared size, and floats and whole numbers that fit
        (what an SQLite backup holds), are recognised over the whole column at once;
        everything else is judged value by value."""
        present = [v for v in values if v is not None] if _NONE in types else values
        kinds = types - {_NONE}
        pattern = self._decimal_pattern()
        others = present if str not in kinds else []
        if str in kinds:
            text = present if kinds == {str} else [v for v in present if type(v) is str]
            joined = "\n".join(text)
            if pattern is None or not (joined.count("\n") == len(text) - 1
                                       and pattern.fullmatch(joined)):
                others = present  # the text too
            elif kinds != {str}:
                others = [v for v in present if type(v) is not str]
        if others and pattern is not None:
            others = self._unusual_numbers(others, pattern, kinds)
        for value in others:
            number = Decimal(value) if isinstance(value, int) else Decimal(str(value).strip())
            self._decimal_fits(value, number)

    def _unusual_numbers(self, numbers: Sequence, pattern: re.Pattern,
                         kinds: set[type]) -> list:
        """Of `numbers`, those not plainly fitting: floats are judged by arithmetic, then
        their shortest text (what Decimal(str(value)) reads) by the pattern, whole numbers by
        their range. `kinds`: the types among them (a column of floats alone is not sorted)."""
        if kinds <= {float}:
            floats, ints, rest = list(numbers), [], []
        else:
            floats = [v for v in numbers if type(v) is float]
            ints = [v for v in numbers if type(v) is int]
            rest = [v for v in numbers if type(v) is not float and type(v) is not int]
        if floats and not self._plain_floats(floats):
            joined = "\n".join(map(repr, floats))
            negative_zero = self.dialect != "postgresql" and _NEGATIVE_ZERO.search(joined)
            if negative_zero or not pattern.fullmatch(joined):
                rest += floats
        if ints:
            limit = 10 ** ((self.precision or 0) - (self.scale or 0))
            low, high = (max(-limit + 1, INT64[0]), min(limit - 1, INT64[1])) \
                if self.dialect == "sqlite" else (-limit + 1, limit - 1)
            if not (low <= min(ints) and max(ints) <= high):
                rest += ints
        return rest

    def _plain_floats(self, floats: list[float]) -> bool:
        """Whether every float plainly fits, found by arithmetic rather than by its text
        (repr and a regular expression cost three times as much, and an SQLite backup's
        decimals are all floats): v times 10**scale rounded to a whole number n, n / 10**scale
        (int by int, correctly rounded) must be v again, |n| below 10**precision and
        EXACT_BELOW, and no negative zero where the database would store 0.

        Then v is the float of the decimal n / 10**scale, and that decimal is the one its
        shortest text spells (what Decimal(str(v)) reads): below EXACT_BELOW (16 digits at
        most, a float's relative step under 2**-52) no other decimal of as few digits rounds
        to the same float. False sends the floats to the text test, as before."""
        if self.precision is None or self.scale is None or self.scale > _EXACT_SCALE:
            return False
        factor = 10 ** self.scale
        try:
            whole = list(map(round, map(float(factor).__mul__, floats)))
        except (OverflowError, ValueError):  # an infinity or NaN: judged one by one
            return False
        limit = min(10 ** self.precision, EXACT_BELOW)
        if min(whole) <= -limit or max(whole) >= limit:
            return False
        if list(map(operator.truediv, whole, repeat(factor))) != floats:
            return False
        return self.dialect == "postgresql" or 0.0 not in floats or not any(
            math.copysign(1.0, v) < 0 for v in floats if v == 0)

    def _decimal_pattern(self) -> re.Pattern | None:
        """Plain decimal text that fits DECIMAL(p,s) (None: every value is judged alone)."""
        if self.precision is None or self.scale is None or (
                self.dialect == "sqlite" and self.precision > SQLITE_DIGITS):
            return None
        whole = self.precision - self.scale
        # atomic: a value that fails is not re-split a thousand ways (greedy is the one way)
        one = rf"(?>[+-]?0*[0-9]{{0,{whole}}}(?:\.[0-9]{{0,{self.scale}}}0*)?)"
        return _compiled(rf"(?:{one}\n)*{one}")

    def _decimal_fits(self, value: Any, number: Decimal) -> None:
        if not number.is_finite():
            raise ValueProblem(f"{_show(value)} is not a finite number")
        if isinstance(value, float) and self.dialect != "postgresql" and (
                number.is_zero() and number.is_signed()):
            raise ValueProblem(f"{_show(value)} is a negative zero, which the database "
                               "stores as 0")
        exact = number.normalize() if not number.is_zero() else Decimal(0)
        whole = max(exact.adjusted() + 1, 0) if exact else 0  # DECIMAL(s,s) holds 0
        fraction = max(-exact.as_tuple().exponent, 0)  # type: ignore[operator]
        if self.scale is not None and fraction > self.scale:
            raise ValueProblem(f"{_show(value)} has more than the column's {self.scale} "
                               "decimal places")
        if self.precision is not None and whole > self.precision - (self.scale or 0):
            raise ValueProblem(f"{_show(value)} is too large for the column "
                               f"(DECIMAL({self.precision},{self.scale or 0}))")
        if self.dialect == "sqlite" and not isinstance(value, float) and (
                not INT64[0] <= exact <= INT64[1] if fraction == 0
                else len(exact.as_tuple().digits) > SQLITE_DIGITS):
            raise ValueProblem(f"{_show(value)} has more significant digits than SQLite "
                               "keeps exactly")

    def _floats(self, values: Sequence, _types: set[type]) -> None:
        for value in values:
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise ValueProblem(f"{_show(value)} is not a finite number")
                if value == 0 and math.copysign(1, value) < 0 and self.dialect != "postgresql":
                    raise ValueProblem(f"{_show(value)} is a negative zero, which the "
                                       "database stores as 0")
            elif isinstance(value, int) and not isinstance(value, bool) and (
                    not INT64[0] <= value <= INT64[1] or float(value) != value):
                raise ValueProblem(f"{_show(value)} cannot be stored exactly as a "
                                   "floating-point number")
            elif isinstance(value, str) and not math.isfinite(float(value)):
                raise ValueProblem(f"{_show(value)} is too large for the column")


# ColumnFit._plain_floats: whole numbers below 2**50 (16 digits) and factors up to 10**15
# (exact as floats) keep float arithmetic exact enough to find the decimal a float spells.
EXACT_BELOW = 2**50
_EXACT_SCALE = 15
_PATTERNS: dict[str, re.Pattern] = {}
_NEGATIVE_ZERO = re.compile(r"^-0\.0$", re.MULTILINE)


def _compiled(pattern: str) -> re.Pattern:
    if pattern not in _PATTERNS:
        _PATTERNS[pattern] = re.compile(pattern)
    return _PATTERNS[pattern]


def column_fit(column, dialect: str) -> ColumnFit:
    """The size limits of a live column's declared type (see ColumnFit)."""
    target = live_kind(column)
    kind = column.type
    name = type(kind).__name__.upper()
    int_range = None
    if target == "integer":
        bits = 64 if name == "INTEGER" and dialect == "sqlite" else _INT_BITS.get(name, 64)
        if getattr(kind, "unsigned", False):
            int_range = (0, 2**bits - 1)
        else:
            int_range = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    length = getattr(kind, "length", None) if target == "text" else None
    precision = scale = None
    if target == "decimal":
        precision, scale = getattr(kind, "precision", None), getattr(kind, "scale", None)
    return ColumnFit(column.name, target, dialect, int_range,
                     length if isinstance(length, int) else None,
                     precision if isinstance(precision, int) else None,
                     scale if isinstance(scale, int) else None)


def _show(value: Any) -> str:
    if isinstance(value, list | dict):  # never repr'd: it may be nested past any depth
        return "a JSON array" if isinstance(value, list) else "a JSON object"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"a {len(str(abs(value)))}-digit whole number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def norm(values: Iterable[Any]) -> Key:
    """A key as Python compares it on every dialect: whole numbers as int, the rest as text."""
    out = []
    for value in values:
        if isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, int) or value is None:
            out.append(value)
        else:
            out.append(str(value))
    return tuple(out)
