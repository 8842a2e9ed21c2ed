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
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import types as sqltypes

Converter = Callable[[Any], Any]
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
            Decimal(value.strip())
        except InvalidOperation:
            raise ValueProblem(f"{_show(value)} is not a number") from None
    return value  # decimals stay strings: exact, and the server converts them


def _to_moment(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueProblem(f"{_show(value)} is not a date or time")
    return value


def _to_json(value: Any) -> str:
    if isinstance(value, str):
        return value  # JSON text, exactly as the backup holds it
    return json.dumps(value)


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
        _scalar(value)
        if dialect == "postgresql" and isinstance(value, int | float) and not isinstance(
                value, bool):
            return str(value)  # PostgreSQL compares text with text only
        return value
    return to_text


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
        to_live = _scalar  # SQLite keeps whatever the column held; so does its restore
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
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBERS = re.compile(rf"(?:{_NUMBER}\n)*{_NUMBER}")


def _unchanged_types(archive_kind: str, target: str, dialect: str) -> frozenset:
    """The Python types whose values :func:`converter` returns as they are (None included)."""
    if archive_kind == "binary":
        return frozenset({_NONE})  # always base64 text to decode
    if dialect == "sqlite" and target in ("date", "datetime", "time"):
        return _SCALARS
    by_target = {
        "integer": {int}, "boolean": {bool}, "decimal": {int, float}, "float": {int, float},
        "date": {str}, "datetime": {str}, "time": {str}, "json": {str}, "binary": {bytes},
        "text": {str, bool, bytes} if dialect == "postgresql" else _SCALARS - {_NONE}}
    return frozenset(by_target[target]) | {_NONE}


def column_converter(archive_kind: str, target: str, dialect: str
                     ) -> Callable[[Sequence], Sequence]:
    """Like :func:`converter`, for a whole column of a batch at once.

    Most columns hold values that are already what the live column takes (whole numbers as
    int, dates and decimals as text): those are recognised by their types alone, in C, and
    returned untouched. Decimal text is checked with one regular expression over the column;
    anything else goes value by value through :func:`converter`, which names a bad value.
    """
    one = converter(archive_kind, target, dialect)
    unchanged = _unchanged_types(archive_kind, target, dialect)
    numbers = target in ("decimal", "float") and archive_kind != "binary"

    def convert_column(values: Sequence) -> Sequence:
        types = set(map(type, values))
        if types <= unchanged:
            return values
        if numbers and types <= unchanged | {str}:
            text = [v for v in values if type(v) is str]
            joined = "\n".join(text)
            if joined.count("\n") == len(text) - 1 and _NUMBERS.fullmatch(joined):
                return values  # valid decimal text stays text: the server converts it
        return list(map(one, values))
    return convert_column


def _show(value: Any) -> str:
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
