"""Validators compiled once per field at start-up; applied to every request's params.

Layer: domain. Pure. A failure raises ValidationFailed whose message names the field and says
what was expected: `params.film_id: expected int >= 1, got 'x'`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from beds.errors import ValidationFailed
from beds.table import describe
from beds.templates.model import Field, FieldType

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
Check = Callable[[Any], Any]
"""Returns the value to bind, or raises ValueError carrying the expectation text."""


def _bounds(field: Field, kind: str) -> str:
    lo, hi = field.min, field.max

    def fmt(v: float) -> str:
        return str(int(v)) if field.type is FieldType.INT else f"{v:g}"

    if lo is not None and hi is not None:
        return f"{kind} between {fmt(lo)} and {fmt(hi)}"
    if lo is not None:
        return f"{kind} >= {fmt(lo)}"
    if hi is not None:
        return f"{kind} <= {fmt(hi)}"
    return kind


def _base_check(field: Field) -> tuple[Check, str]:
    t = field.type
    if t is FieldType.STR:
        return _expect(lambda v: isinstance(v, str), "string"), "string"
    if t is FieldType.INT:
        # JSON has one number type: 3.0 is not an int for us, True is not 1; and no database
        # integer column is wider than 64 bits.
        return _expect(lambda v: type(v) is int and _INT_MIN <= v <= _INT_MAX, "int"), "int"
    if t is FieldType.FLOAT:
        return _float, "number"
    if t is FieldType.DECIMAL:
        return _decimal, "decimal (a string such as \"12.50\" or a number)"
    if t is FieldType.BOOL:
        return _expect(lambda v: type(v) is bool, "true or false"), "true or false"
    if t is FieldType.DATE:
        return _date, "date (YYYY-MM-DD)"
    if t is FieldType.DATETIME:
        return _datetime, ("datetime (RFC 3339, e.g. 2026-01-31T12:00:00 or "
                           "2026-01-31T12:00:00+05:00)")
    return _json, "any JSON value"


def _expect(test: Callable[[Any], bool], what: str) -> Check:
    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(what)
        return value
    return check


def _float(value: Any) -> Any:
    if type(value) not in (int, float):
        raise ValueError("number")
    try:
        return float(value)
    except OverflowError:   # an int beyond ~1.8e308 has no float
        raise ValueError("number") from None


def _decimal(value: Any) -> Any:
    if type(value) not in (str, int, float):
        raise ValueError("decimal")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("decimal") from None
    # 65 digits is what SQL DECIMAL holds; beyond it a value is an attack, not an amount.
    if (not result.is_finite() or abs(result.adjusted()) > 65
            or len(result.as_tuple().digits) > 65):
        raise ValueError("decimal")
    return result


# Python's fromisoformat also takes 20260131, 2026-W05-6 and 12:00 without seconds: only the
# RFC 3339 shapes are accepted, so every engine reads the same instant from the same text.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(   # a date alone is its midnight
    r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?)?")


def _date(value: Any) -> Any:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("date") from None


def _datetime(value: Any) -> Any:
    """A datetime with an offset is bound as the same instant in UTC, without an offset: the
    way every engine stores it alike (MariaDB's driver would drop the offset, PostgreSQL's
    `timestamp` refuse it). A datetime without an offset is taken as UTC, unchanged."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise ValueError("datetime")
    try:
        parsed = datetime.fromisoformat(value.upper() if value[-1:] == "z" else value)
    except ValueError:
        raise ValueError("datetime") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _json(value: Any) -> Any:
    # The database receives JSON text; it never sees Python reprs.
    return msgspec.json.encode(value).decode()


def compile_field(field: Field) -> Callable[[Any], Any]:
    """One callable that checks a present, non-null value and returns what to bind."""
    base, what = _base_check(field)
    checks: list[Callable[[Any], None]] = []
    expectation = what
    if field.type in (FieldType.INT, FieldType.FLOAT, FieldType.DECIMAL) and (
        field.min is not None or field.max is not None
    ):
        expectation = _bounds(field, what.split(" (")[0])
        lo, hi = field.min, field.max
        checks.append(lambda v: _range(v, lo, hi))
    if field.max_length is not None:
        limit = field.max_length
        expectation = f"string of at most {limit} characters"
        checks.append(lambda v: _max_length(v, limit))
    if field.pattern is not None:
        regex = re.compile(field.pattern)
        expectation = f"string matching {field.pattern}"
        checks.append(lambda v: _pattern(v, regex))
    if field.choices is not None:
        allowed = field.choices
        expectation = "one of " + ", ".join(describe(c) for c in allowed)
        checks.append(lambda v: _choice(v, allowed))
    name = field.name
    protected = field.protected

    def check(value: Any) -> Any:
        try:
            converted = base(value)
            for extra in checks:
                extra(converted)
        except ValueError:
            got = "a value that does not fit (protected, not shown)" if protected \
                else describe(value)
            raise ValidationFailed(
                f"params.{name}: expected {expectation}, got {got}", field=name
            ) from None
        return converted

    return check


def _range(value: Any, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError


def _max_length(value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValueError


def _pattern(value: str, regex: re.Pattern[str]) -> None:
    if not regex.fullmatch(value):
        raise ValueError


def _choice(value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ValueError


class OpBinder:
    """Turns a request's `params` object into bound values for one op. Built at start-up."""

    def __init__(self, fields: dict[str, Field], names: tuple[str, ...],
                 optional: frozenset[str], all_optional: bool = False) -> None:
        self.names = names
        self._checks = [
            (name, compile_field(fields[name]),
             all_optional or name in optional or not fields[name].required)
            for name in names
        ]
        self._known = frozenset(names)
        self._expected = ", ".join(names) if names else "no params"

    def bind(self, params: dict[str, Any]) -> list[Any]:
        """IN values in declared order; None for an absent optional param."""
        self._reject_unknown(params)
        values: list[Any] = []
        for name, check, optional in self._checks:
            value = params.get(name)
            if value is None:
                if not optional:
                    what = "is missing" if name not in params else "must not be null"
                    raise ValidationFailed(f"params.{name}: required parameter {what}",
                                           field=name)
                values.append(None)
            else:
                values.append(check(value))
        return values

    def bind_row(self, row: dict[str, Any], index: int) -> list[Any]:
        """`bind` for row `index` of a bulk request: errors name the row and the field."""
        try:
            return self.bind(row)
        except ValidationFailed as exc:
            raise ValidationFailed(f"params.rows[{index}]." + exc.message.removeprefix("params."),
                                   **{**exc.details, "row": index}) from None

    def filters(self, params: dict[str, Any]) -> list[tuple[str, Any]]:
        """(column, value) pairs for the filters present, in declared order."""
        self._reject_unknown(params)
        pairs: list[tuple[str, Any]] = []
        for name, check, _optional in self._checks:
            if name in params:
                value = params[name]
                if value is None:
                    raise ValidationFailed(
                        f"params.{name}: expected a filter value, got null", field=name)
                pairs.append((name, check(value)))
        return pairs

    def _reject_unknown(self, params: dict[str, Any]) -> None:
        if len(params) > len(self._known) or not self._known.issuperset(params):
            for key in params:
                if key not in self._known:
                    raise ValidationFailed(
                        f"params.{key}: not accepted by this op; expected: {self._expected}",
                        field=key,
                    )


def bulk_rows(params: dict[str, Any], max_rows: int) -> list[dict[str, Any]]:
    """The rows of a bulk request, `{"rows": [{...}, ...]}`, checked for shape only; each row is
    then bound like the params of the write op the bulk op batches."""
    extra = next((key for key in params if key != "rows"), None)
    if extra is not None:
        raise ValidationFailed(f"params.{extra}: not accepted by a bulk op; expected: rows "
                               "(a list of objects, each the params of one call)", field=extra)
    rows = params.get("rows")
    if rows is None:
        raise ValidationFailed("params.rows: required parameter is missing", field="rows")
    if not isinstance(rows, list) or not 1 <= len(rows) <= max_rows:
        got = f"{len(rows)} rows" if isinstance(rows, list) else describe(rows)
        raise ValidationFailed(f"params.rows: expected a list of 1 to {max_rows} objects, "
                               f"got {got}", field="rows")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValidationFailed(f"params.rows[{index}]: expected an object of this op's "
                                   f"params, got {describe(row)}", field="rows", row=index)
    return rows
