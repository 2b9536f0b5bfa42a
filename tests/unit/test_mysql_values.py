"""beds.mysql's values both ways: the literals a query carries, and the text protocol's column
values read back by column type. Pure; the same literals are sent to the real MariaDB in
tests/integration/test_mysql_client.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beds.mysql import bind, literal
from beds.mysql import values as v


@pytest.mark.parametrize(("value", "expected"), [
    (None, "NULL"), (True, "1"), (False, "0"), (42, "42"), (-7, "-7"),
    (1.5, "1.5e0"), (1e300, "1e+300"), (Decimal("12.50"), "12.50"),
    ("plain", "'plain'"), ("it's", "'it\\'s'"), ('say "hi"', "'say \\\"hi\\\"'"),
    ("a\\b", "'a\\\\b'"), ("\0\n\r\x1a", "'\\0\\n\\r\\Z'"),
    (b"\x00'\xff", "X'0027ff'"), (bytearray(b"ab"), "X'6162'"),
    (dt.date(2026, 1, 31), "'2026-01-31'"),
    (dt.datetime(2026, 1, 31, 12, 0, 1), "'2026-01-31 12:00:01'"),
    (dt.datetime(2026, 1, 31, 12, 0, 1, 250), "'2026-01-31 12:00:01.000250'"),
    (dt.timedelta(hours=-1, seconds=1), "'-00:59:59'"),
    (dt.timedelta(days=1, microseconds=5), "'24:00:00.000005'"),
    ([1, "x", None], "(1,'x',NULL)"),
])
def test_literals(value: object, expected: str) -> None:
    assert literal(value) == expected


def test_without_backslash_escapes_only_quotes_are_doubled() -> None:
    # Under NO_BACKSLASH_ESCAPES a backslash is an ordinary character.
    assert literal("it's a\\b", backslashes=False) == "'it''s a\\b'"


def test_values_with_no_literal_are_refused_by_type() -> None:
    with pytest.raises(TypeError, match="dict"):
        literal({"a": 1})
    with pytest.raises(ValueError, match="nan"):
        literal(float("nan"))


def test_bind_fills_placeholders_in_order_and_keeps_percent_signs() -> None:
    assert bind("CALL p(%s, %s) -- 100%%", [1, "x"]) == "CALL p(1, 'x') -- 100%"
    assert bind("SELECT '100%'", None) == "SELECT '100%'"   # no args: the text as it is


@given(st.text())
def test_a_string_literal_is_one_quoted_token(text: str) -> None:
    # Whatever the text, the literal opens and closes one string: every quote inside it is
    # escaped, and it does not end in an escaping backslash.
    body = literal(text)[1:-1]
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        assert body[i] != "'"
        i += 1
    assert i == len(body)


@pytest.mark.parametrize(("column_type", "charset", "raw", "expected"), [
    (v.LONG, 45, b"-12", -12), (v.LONGLONG, 63, b"18446744073709551615", 2**64 - 1),
    (v.YEAR, 63, b"2006", 2006), (v.DOUBLE, 63, b"2.5", 2.5),
    (v.NEWDECIMAL, 63, b"0.99", Decimal("0.99")),
    (v.DATETIME, 63, b"2006-02-15 05:03:42", dt.datetime(2006, 2, 15, 5, 3, 42)),
    (v.TIMESTAMP, 63, b"2006-02-15 05:03:42.123", dt.datetime(2006, 2, 15, 5, 3, 42, 123000)),
    (v.DATETIME, 63, b"0000-00-00 00:00:00", "0000-00-00 00:00:00"),
    (v.DATE, 63, b"2026-01-31", dt.date(2026, 1, 31)), (v.DATE, 63, b"0000-00-00", "0000-00-00"),
    (v.TIME, 63, b"-838:59:59", -dt.timedelta(hours=838, minutes=59, seconds=59)),
    (v.TIME, 63, b"01:02:03.5", dt.timedelta(hours=1, minutes=2, seconds=3, microseconds=500000)),
    (v.VAR_STRING, 45, "Ünïcode".encode(), "Ünïcode"), (v.VAR_STRING, 63, b"\xff", b"\xff"),
    (v.BLOB, 63, b"\x00\x01", b"\x00\x01"), (v.BLOB, 224, b"text", "text"),
    (v.STRING, 45, b"PG-13", "PG-13"), (v.JSON, 45, b'{"a": 1}', '{"a": 1}'),
    (v.BIT, 63, b"\x01", b"\x01"),
])
def test_readers_by_column_type(column_type: int, charset: int, raw: bytes,
                                expected: object) -> None:
    assert v.reader(column_type, charset)(raw) == expected
