"""Template loading: the example templates load; a bad template names the file and the key."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from beds.config import OpKind
from beds.errors import TemplateError, ValidationFailed
from beds.templates import FieldType, OpTarget, load_template, load_templates
from beds.templates.model import Field
from beds.templates.params import OpBinder, compile_field
from tests.support.services import ROOT


def test_example_templates_load() -> None:
    templates = {t.name: t for t in load_templates(ROOT / "templates")}
    assert {"film", "customer"} <= set(templates)
    in_stock = templates["film"].ops["in_stock"]
    assert in_stock.target is OpTarget.PROCEDURE and in_stock.out == ("film_count",)
    assert templates["customer"].ops["create"].kind is OpKind.WRITE
    assert templates["customer"].fields["pin"].protected


GOOD = """
name = "t"
datasource = "main"
[fields]
id = { type = "int", min = 1 }
[ops.get]
kind = "read"
procedure = "t_get"
params = ["id"]
"""


def write(tmp_path: Path, text: str, name: str = "t") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("change", "message"), [
    (('procedure = "t_get"', 'procedure = "t_get; DROP TABLE x"'),
     "ops.get.procedure: expected a name matching"),
    (('params = ["id"]', 'params = ["nope"]'), "ops.get.params: 'nope' is not declared in [fields]"),
    (('kind = "read"', 'kind = "reed"'), "ops.get.kind: expected one of 'read', 'write', 'bulk'"),
    (('type = "int"', 'type = "integer"'), "fields.id.type: expected one of 'str', 'int'"),
    (('min = 1', 'max_length = 3'), "fields.id.max_length: only str fields take max_length"),
    (('procedure = "t_get"', 'procedure = "t_get"\nview = "v"'),
     "ops.get: an op names exactly one of procedure, view or function"),
    (('params = ["id"]', 'params = ["id"]\nlimit = 5'),
     "ops.get.limit: only view ops take filters, order_by and limit"),
    (('name = "t"', 'name = "other"'), "name: must equal the file name 't'"),
    (('[ops.get]', '[ops.get]\nsql = "SELECT 1"'), "ops.get.sql: unknown key"),
])
def test_bad_template_names_file_and_key(tmp_path: Path, change: tuple[str, str],
                                         message: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_good_template_loads(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, GOOD))
    assert template.ops["get"].params == ("id",)


@pytest.mark.parametrize(("field", "value", "bound"), [
    (Field("n", FieldType.INT, min=1), 5, 5),
    (Field("n", FieldType.FLOAT), 2, 2.0),
    (Field("n", FieldType.DECIMAL), "12.50", Decimal("12.50")),
    (Field("n", FieldType.BOOL), True, True),
    (Field("n", FieldType.DATE), "2026-01-31", date(2026, 1, 31)),
    (Field("n", FieldType.DATETIME), "2026-01-31T12:00:00", datetime(2026, 1, 31, 12)),
    # F11: an offset is the same instant in UTC on every engine (MariaDB used to drop it)
    (Field("n", FieldType.DATETIME), "2026-01-31T12:00:00+05:00", datetime(2026, 1, 31, 7)),
    (Field("n", FieldType.DATETIME), "2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12)),
    (Field("n", FieldType.DATETIME), "2026-01-31 23:30:00.5-01:00",
     datetime(2026, 2, 1, 0, 30, 0, 500000)),
    (Field("n", FieldType.JSON), {"a": [1]}, '{"a":[1]}'),
    (Field("n", FieldType.STR, pattern=r"[a-z]+"), "abc", "abc"),
])
def test_valid_values_are_converted_for_binding(field: Field, value: object, bound: object) -> None:
    assert compile_field(field)(value) == bound


@pytest.mark.parametrize(("field", "value", "message"), [
    (Field("id", FieldType.INT, min=1), "x", "params.id: expected int >= 1, got 'x'"),
    (Field("id", FieldType.INT, min=1), 0, "params.id: expected int >= 1, got 0"),
    (Field("id", FieldType.INT), True, "params.id: expected int, got true"),
    (Field("id", FieldType.INT), 1.5, "params.id: expected int, got 1.5"),
    (Field("id", FieldType.INT), 2**64, "params.id: expected int, got 18446744073709551616"),
    (Field("id", FieldType.INT, min=1, max=9), 10, "params.id: expected int between 1 and 9, got 10"),
    (Field("s", FieldType.STR, max_length=3), "abcd", "params.s: expected string of at most 3 characters"),
    (Field("s", FieldType.STR, choices=("G", "PG")), "X", "params.s: expected one of 'G', 'PG', got 'X'"),
    (Field("s", FieldType.STR, pattern=r"[a-z]+"), "ab1", "params.s: expected string matching [a-z]+"),
    (Field("d", FieldType.DATE), "31/01/2026", "params.d: expected date (YYYY-MM-DD), got '31/01/2026'"),
    (Field("m", FieldType.DECIMAL), "1e999999999999", "params.m: expected decimal"),
    # F11: only RFC 3339 shapes; Python alone would take these
    (Field("d", FieldType.DATE), "20260131", "params.d: expected date (YYYY-MM-DD), got '20260131'"),
    (Field("d", FieldType.DATE), "2026-W05-6", "params.d: expected date (YYYY-MM-DD)"),
    (Field("t", FieldType.DATETIME), "20260131T120000", "params.t: expected datetime (RFC 3339"),
    (Field("t", FieldType.DATETIME), "2026-01-31T12:00", "params.t: expected datetime (RFC 3339"),
    (Field("t", FieldType.DATETIME), "2026-W05-6T12:00:00", "params.t: expected datetime"),
    # L1: an int too big for a float is a validation error, not INTERNAL (OverflowError)
    (Field("f", FieldType.FLOAT), 10**400, "params.f: expected number, got 1000"),
    # L2: 65 digits at most, however they are spread around the point
    (Field("m", FieldType.DECIMAL), "1." + "0" * 900, "params.m: expected decimal"),
    (Field("m", FieldType.DECIMAL), "1" * 66, "params.m: expected decimal"),
    (Field("m", FieldType.DECIMAL), "NaN", "params.m: expected decimal"),
    (Field("p", FieldType.STR, max_length=2, protected=True), "secret",
     "params.p: expected string of at most 2 characters, got a value that does not fit (protected"),
])
def test_invalid_values_name_the_field_and_the_expectation(field: Field, value: object,
                                                           message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        compile_field(field)(value)
    assert str(info.value).startswith(message)
    assert "secret" not in str(info.value)


def test_binder_orders_values_and_checks_presence() -> None:
    fields = {"a": Field("a", FieldType.INT), "b": Field("b", FieldType.STR)}
    binder = OpBinder(fields, ("a", "b"), frozenset({"b"}))
    assert binder.bind({"b": "x", "a": 1}) == [1, "x"]
    assert binder.bind({"a": 1}) == [1, None]
    with pytest.raises(ValidationFailed, match="params.a: required parameter is missing"):
        binder.bind({"b": "x"})
    with pytest.raises(ValidationFailed, match="params.a: required parameter must not be null"):
        binder.bind({"a": None})
    with pytest.raises(ValidationFailed, match="params.c: not accepted by this op; expected: a, b"):
        binder.bind({"a": 1, "c": 2})


def test_idempotency_key_must_be_a_param(tmp_path: Path) -> None:
    text = GOOD.replace('params = ["id"]', 'params = ["id"]\nidempotency_key = "request_id"')
    with pytest.raises(TemplateError, match="ops.get.idempotency_key: 'request_id' is not one of"):
        load_template(write(tmp_path, text))
