"""One field of a domain spec: its model and its validation (type, bounds, length, pattern,
choices, decimal precision, and an example the node's own validator accepts).

Layer: tooling. Pure. Errors name the file and the key, through `beds.table.Table`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from beds.errors import ValidationFailed
from beds.scaffold.examples import made_up_example
from beds.scaffold.reserved import RESERVED_WORDS
from beds.table import Table, describe
from beds.templates.model import Field, FieldType
from beds.templates.params import compile_field

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""Lower case (PostgreSQL folds unquoted names), short enough for derived index names."""
SPEC_TYPES = ("str", "int", "decimal", "bool", "date", "datetime")
GENERATED_COLUMNS = ("created_at", "updated_at", "deleted_at")
RESERVED_NAMES = (*GENERATED_COLUMNS, "request_id", "updated", "deleted")
"""Names the generated objects use themselves; a spec field may not take them."""
_PREFIXES = ("p_", "v_", "c_", "o_")   # routine parameters and variables
_FIELD_KEYS = ("type", "required", "min", "max", "max_length", "pattern", "choices",
               "description", "example", "precision", "scale")
INDEXABLE_CHARS = 255   # a str key column: 255 utf8mb4 characters fit InnoDB's index limit
_INT_RANGE = 2**31 - 1


@dataclass(frozen=True)
class SpecField:
    name: str
    type: FieldType
    required: bool = True
    min: int | float | None = None
    max: int | float | None = None
    max_length: int | None = None     # str: always set (declared, or derived from choices)
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    description: str = ""
    example: Any = None               # JSON value a caller would send
    precision: int = 12               # decimal: total digits
    scale: int = 2                    # decimal: digits after the point

    def as_template_field(self) -> Field:
        return Field(name=self.name, type=self.type, required=self.required,
                     min=None if self.min is None else float(self.min),
                     max=None if self.max is None else float(self.max),
                     max_length=self.max_length, pattern=self.pattern, choices=self.choices,
                     description=self.description)


def check_name(t: Table, key: str, value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise t.fail(key, f"expected a name matching {NAME_RE.pattern}, got {describe(value)}")
    if value == "request_log":
        raise t.fail(key, "'request_log' is the table of the idempotency keys; choose another name")
    if value.upper() in RESERVED_WORDS:
        raise t.fail(key, f"{value!r} is a reserved word in SQL; choose another name")
    return value


def parse_field(name: str, t: Table) -> SpecField:
    if not NAME_RE.fullmatch(name):
        raise t.fail("", f"field name must match {NAME_RE.pattern}")
    if name in RESERVED_NAMES:
        raise t.fail("", f"{name!r} is a column the scaffold adds itself; choose another name")
    if name.startswith(_PREFIXES) or name.upper() in RESERVED_WORDS:
        raise t.fail("", f"{name!r} is reserved (SQL word, or a p_/v_/c_/o_ routine name); "
                         "choose another name")
    t.reject_unknown(_FIELD_KEYS)
    ftype = FieldType(t.text("type", choices=SPEC_TYPES))
    numeric = ftype in (FieldType.INT, FieldType.DECIMAL)
    _only(t, ("min", "max"), numeric, "int and decimal fields")
    _only(t, ("max_length", "pattern"), ftype is FieldType.STR, "str fields")
    _only(t, ("precision", "scale"), ftype is FieldType.DECIMAL, "decimal fields")
    _only(t, ("choices",), ftype in (FieldType.STR, FieldType.INT), "str and int fields")
    lo, hi = _bound(t, "min", ftype), _bound(t, "max", ftype)
    if lo is not None and hi is not None and lo > hi:
        raise t.fail("max", f"expected a number >= min ({lo}), got {hi}")
    precision = t.integer("precision", 12, minimum=1)
    scale = t.integer("scale", 2, minimum=0)
    if precision > 38 or scale > precision:
        raise t.fail("precision" if precision > 38 else "scale",
                     "expected precision <= 38 and scale <= precision")
    if ftype is FieldType.DECIMAL:
        for bound_key, bound in (("min", lo), ("max", hi)):
            if bound is not None and abs(bound) >= 10 ** (precision - scale):
                raise t.fail(bound_key, f"{bound} does not fit DECIMAL({precision},{scale})")
    pattern = t.text("pattern", None)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise t.fail("pattern", f"not a valid regular expression: {exc}") from None
    choices = _choices(t, ftype)
    max_length = t.integer("max_length", None, minimum=1)
    if max_length is not None and max_length > 4000:
        raise t.fail("max_length", f"expected int <= 4000, got {max_length}")
    if ftype is FieldType.STR and max_length is None:
        max_length = max(len(str(c)) for c in choices) if choices else 255
    spec_field = SpecField(
        name=name, type=ftype, required=t.flag("required", True), min=lo, max=hi,
        max_length=max_length, pattern=pattern, choices=choices,
        description=t.text("description", ""), precision=precision, scale=scale)
    return _with_example(t, spec_field)


def _only(t: Table, keys: tuple[str, ...], allowed: bool, who: str) -> None:
    for key in keys:
        if t.has(key) and not allowed:
            raise t.fail(key, f"only {who} take {key}")


def _bound(t: Table, key: str, ftype: FieldType) -> int | float | None:
    value = t.raw(key, None)
    if value is None:
        return None
    if ftype is FieldType.INT:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _INT_RANGE:
            raise t.fail(key, f"expected an int between -{_INT_RANGE} and {_INT_RANGE}, "
                              f"got {describe(value)}")
        return value
    result: float = t.number(key)
    return result


def _choices(t: Table, ftype: FieldType) -> tuple[Any, ...] | None:
    value = t.raw("choices", None)
    if value is None:
        return None
    wanted: Callable[[Any], bool] = (
        (lambda v: isinstance(v, str)) if ftype is FieldType.STR
        else (lambda v: type(v) is int))
    if not isinstance(value, list) or not value or not all(wanted(v) for v in value):
        raise t.fail("choices", f"expected a non-empty list of {ftype.value} values, "
                                f"got {describe(value)}")
    if len(set(value)) != len(value):
        raise t.fail("choices", f"duplicate entries in {describe(value)}")
    return tuple(value)


def _with_example(t: Table, spec_field: SpecField) -> SpecField:
    """The example the docs show: the spec's, else a made-up one; either must pass the field's
    own validator, so the documented request is one the node accepts."""
    check = compile_field(spec_field.as_template_field())
    given = t.raw("example", None)
    if isinstance(given, datetime | date):      # TOML has native dates; JSON has strings
        given = given.isoformat()
    example = made_up_example(spec_field.as_template_field()) if given is None else given
    try:
        check(example)
    except ValidationFailed as exc:
        if given is None:
            raise t.fail("example", "needed: no example matching the pattern could be made "
                                    "up; give one (the docs show it)") from None
        raise t.fail("example", exc.message.split(": ", 1)[1]) from None
    if spec_field.type is FieldType.DECIMAL and isinstance(example, float | int):
        example = str(Decimal(str(example)).quantize(Decimal(1).scaleb(-spec_field.scale)))
    return replace(spec_field, example=example)
