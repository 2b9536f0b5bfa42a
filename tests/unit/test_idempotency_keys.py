"""Idempotency keys (finding F8): the key a routine records is scoped by op and caller; every
write says what a repeat does; `on_repeat` is validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from beds.errors import TemplateError
from beds.idempotency import scoped_key
from beds.templates.loader import load_template
from beds.templates.repeats import unexplained_repeats
from tests.support.services import ROOT

TEMPLATE = """
name = "t"
datasource = "main"
[fields]
id = { type = "int" }
request_id = { type = "str", max_length = 64 }
[ops.get]
kind = "read"
procedure = "t_get"
params = ["id"]
[ops.put]
kind = "write"
procedure = "t_put"
params = ["request_id", "id"]
"""


def test_the_stored_key_differs_by_op_and_by_caller() -> None:
    base = scoped_key("customer", "pay", "billing", "m-1")
    assert len(base) == 64 and base == scoped_key("customer", "pay", "billing", "m-1")
    others = {scoped_key("users", "create", "billing", "m-1"),
              scoped_key("customer", "pay", "crm", "m-1"),
              scoped_key("customer", "pay", None, "m-1"),
              scoped_key("customer", "pay", "billing", "m-2")}
    assert base not in others and len(others) == 4


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_a_write_without_key_or_reason_is_reported(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, TEMPLATE))
    (where, message), = unexplained_repeats([template])
    assert where.endswith("t.toml: ops.put")
    assert "t.put is a write op without idempotency_key" in message and "on_repeat" in message


def test_a_key_or_a_reason_satisfies_the_check(tmp_path: Path) -> None:
    keyed = TEMPLATE + 'idempotency_key = "request_id"\n'
    explained = TEMPLATE + 'on_repeat = "sets the same value again"\n'
    for text in (keyed, explained):
        assert unexplained_repeats([load_template(write(tmp_path, text))]) == []
    assert load_template(write(tmp_path, explained)).ops["put"].on_repeat == (
        "sets the same value again")


@pytest.mark.parametrize(("extra", "message"), [
    ('idempotency_key = "request_id"\non_repeat = "x"\n', "declares idempotency_key"),
    ('on_repeat = "  "\n', "expected a sentence"),
    ("on_repeat = 3\n", "expected string, got 3"),
])
def test_on_repeat_is_validated(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(TemplateError, match=f"ops.put.on_repeat: .*{message}"):
        load_template(write(tmp_path, TEMPLATE + extra))


def test_on_repeat_on_a_read_is_refused(tmp_path: Path) -> None:
    text = TEMPLATE.replace('params = ["id"]\n', 'params = ["id"]\non_repeat = "x"\n', 1)
    with pytest.raises(TemplateError, match="ops.get.on_repeat: only write and bulk ops"):
        load_template(write(tmp_path, text))


def test_every_shipped_write_has_a_key_or_says_why_a_repeat_is_harmless() -> None:
    paths = sorted((ROOT / "templates").rglob("*.toml"))
    templates = [load_template(path) for path in paths]
    assert len(templates) >= 7
    assert unexplained_repeats(templates) == []
