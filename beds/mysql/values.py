"""Values both ways: Python values written into a query as SQL literals, and the text protocol's
column values read back as Python values (by column type, as PyMySQL and asyncmy read them, so
replies keep their types: DECIMAL -> Decimal, DATETIME -> datetime, TIME -> timedelta, a binary
column -> bytes).

Layer: infrastructure. Pure.

Literals are escaped for a connection whose character set is utf8mb4 (the only one this client
speaks: multi-byte sets such as GBK or SJIS, whose trail bytes can be a backslash, are never
negotiated), with backslash escapes unless the server runs with NO_BACKSLASH_ESCAPES, when only
quotes are doubled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

# Column types (the protocol's MYSQL_TYPE_*).
DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, NULL, TIMESTAMP, LONGLONG, INT24 = range(10)
DATE, TIME, DATETIME, YEAR, NEWDATE, VARCHAR, BIT = range(10, 17)
JSON, NEWDECIMAL, ENUM, SET = 245, 246, 247, 248
TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, VAR_STRING, STRING, GEOMETRY = range(249, 256)
BINARY_CHARSET = 63

_ESCAPES = {0: "\\0", ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", 26: "\\Z",
            ord('"'): '\\"', ord("'"): "\\'"}


def escape_string(value: str, backslashes: bool = True) -> str:
    if backslashes:
        return "'" + value.translate(_ESCAPES) + "'"
    return "'" + value.replace("'", "''") + "'"


def escape_bytes(value: bytes) -> str:
    # A hex literal is a binary string in ASCII: no escaping, and nothing for the query's
    # utf-8 encoding to change.
    return "X'" + value.hex() + "'"


def _float(value: float) -> str:
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"{text} has no SQL literal")
    # An exponent makes MariaDB read the literal as DOUBLE, not as an exact DECIMAL.
    return text if "e" in text else text + "e0"


def _timedelta(value: dt.timedelta) -> str:
    total = value // dt.timedelta(microseconds=1)
    sign = "-" if total < 0 else ""
    seconds, micro = divmod(abs(total), 1_000_000)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"'{sign}{h:02}:{m:02}:{s:02}" + (f".{micro:06}'" if micro else "'")


def literal(value: Any, backslashes: bool = True) -> str:
    """`value` as an SQL literal. Raises TypeError for a type with no literal here."""
    kind = type(value)
    if kind is str:
        return escape_string(value, backslashes)
    if kind is int:
        return str(value)
    if value is None:
        return "NULL"
    if kind is bool:
        return "1" if value else "0"
    if kind is float:
        return _float(value)
    if kind is Decimal:
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return escape_bytes(bytes(value))
    if isinstance(value, dt.datetime):
        return f"'{value:%Y-%m-%d %H:%M:%S}" + (f".{value.microsecond:06}'"
                                                 if value.microsecond else "'")
    if isinstance(value, dt.date | dt.time):   # a datetime was taken above
        return f"'{value.isoformat()}'"
    if isinstance(value, dt.timedelta):
        return _timedelta(value)
    if isinstance(value, list | tuple | set | frozenset):
        return "(" + ",".join(literal(v, backslashes) for v in value) + ")"
    raise TypeError(f"no SQL literal for a value of type {kind.__name__}")


def bind(sql: str, args: Sequence[Any] | None, backslashes: bool = True) -> str:
    """`sql` with each %s replaced by the next value's literal (`%%` is a percent sign), as
    PyMySQL's `cursor.execute(sql, args)` does; `args=None` leaves `sql` as it is."""
    if args is None:
        return sql
    return sql % tuple(literal(v, backslashes) for v in args)


# -- reading: text-protocol values ------------------------------------------------------------

def _decimal(raw: bytes) -> Decimal:
    return Decimal(raw.decode("ascii"))


def _datetime(raw: bytes) -> dt.datetime | str:
    text = raw.decode("ascii")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text   # 0000-00-00 00:00:00 and other dates Python has not: as the server wrote it


def _date(raw: bytes) -> dt.date | str:
    text = raw.decode("ascii")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return text


def _time(raw: bytes) -> dt.timedelta | str:
    """TIME is a duration (-838:59:59 to 838:59:59), read as a timedelta."""
    text = raw.decode("ascii")
    negative = text.startswith("-")
    try:
        clock, _, fraction = text.lstrip("-").partition(".")
        h, m, s = (int(part) for part in clock.split(":"))
        micro = int(fraction.ljust(6, "0")[:6]) if fraction else 0
    except ValueError:
        return text
    value = dt.timedelta(hours=h, minutes=m, seconds=s, microseconds=micro)
    return -value if negative else value


def _text(raw: bytes) -> str:
    return raw.decode("utf-8")


def _same(raw: bytes) -> bytes:
    return raw


_BY_TYPE: dict[int, Callable[[bytes], Any]] = {
    TINY: int, SHORT: int, LONG: int, LONGLONG: int, INT24: int, YEAR: int,
    FLOAT: float, DOUBLE: float, DECIMAL: _decimal, NEWDECIMAL: _decimal,
    TIMESTAMP: _datetime, DATETIME: _datetime, DATE: _date, NEWDATE: _date, TIME: _time,
    BIT: _same, GEOMETRY: _same,
}


def reader(column_type: int, charset: int) -> Callable[[bytes], Any]:
    """How to read one column's values: by its type; a string or blob column by its character
    set (binary: bytes; any other: text, sent as utf8mb4 on this client's connections)."""
    found = _BY_TYPE.get(column_type)
    if found is not None:
        return found
    return _same if charset == BINARY_CHARSET else _text
