"""Example values for the docs: what a caller would send for a field, and what a reply carries.

Layer: tooling (scaffold docs). Pure. An example is checked against the field's own validator, so a
documented request is one a node accepts; when none can be made up (a pattern nothing here
matches) the caller gets None and says so.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from beds.errors import ValidationFailed
from beds.templates.model import Field, FieldType
from beds.templates.params import compile_field

EXAMPLE_DATE = "2026-01-31"
EXAMPLE_DATETIME = "2026-01-31T12:00:00"
# Strings tried, in order, against a pattern: common shapes of codes, emails and names.
_CANDIDATES = ("user@example.com", "3f2a9c1e-7b4d-4e8a-9c2b-1d5e6f7a8b9c", "ABC-123", "AB123",
               "abc123", "abc", "ABC", "AB", "A1", "Ab", "12345", "+44 20 7946 0958",
               "https://example.com/", "2026-01-31")


def made_up_example(field: Field) -> Any:
    """A JSON value that passes `field`'s validator, or None when none could be made up."""
    check = compile_field(field)
    for value in _candidates(field):
        try:
            check(value)
        except ValidationFailed:
            continue
        return value
    return None


def _candidates(field: Field) -> list[Any]:
    if field.choices:
        return [field.choices[0]]
    t = field.type
    if t is FieldType.INT:
        return [_number(field, 1, integral=True)]
    if t in (FieldType.DECIMAL, FieldType.FLOAT):
        value = _number(field, 100, integral=False)
        return [f"{Decimal(str(value)):.2f}" if t is FieldType.DECIMAL else value]
    if t is FieldType.BOOL:
        return [True]
    if t is FieldType.DATE:
        return [EXAMPLE_DATE]
    if t is FieldType.DATETIME:
        return [EXAMPLE_DATETIME]
    if t is FieldType.JSON:
        return [{"key": "value"}]
    words = field.name.replace("_", " ").strip().capitalize()
    limit = field.max_length or 255
    plain = [words[:limit], "x" * min(limit, 3)]
    if field.pattern is None:
        return plain
    regex = re.compile(field.pattern)
    return [c for c in (*_CANDIDATES, *plain) if regex.fullmatch(c)]


def _number(field: Field, preferred: float, integral: bool) -> float | int:
    lo, hi = field.min, field.max
    value = preferred
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return int(value) if integral else value


def reply_value(field: Field, sent: Any) -> Any:
    """How the sent example comes back in a reply: decimals as exact strings, bools as bools."""
    if field.type is FieldType.DECIMAL and sent is not None:
        return str(Decimal(str(sent)))
    return sent
