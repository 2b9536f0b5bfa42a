"""The `[warehouse]` policy of a template: the shipped one loads; a bad one names the file, the
key and what was expected; the mover refuses an extracted batch that breaks the contract."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from beds.config import OpKind
from beds.errors import TemplateError
from beds.templates import OpTarget, load_template, load_templates
from beds.templates.model import Op, WarehousePolicy
from beds.templates.warehouse import check_load, parse_duration
from beds.warehouse.mover import batch_keys
from tests.support.services import ROOT

HOT = """
name = "t"
datasource = "main"
broker = "whBroker"
[fields]
id          = { type = "int", min = 1 }
made_at     = { type = "datetime" }
label       = { type = "str" }
age_seconds = { type = "int", min = 1 }
after_key   = { type = "int", min = 0 }
batch_size  = { type = "int", min = 1 }
keys        = { type = "json" }
[ops.extract]
kind = "read"
procedure = "t_extract"
params = ["age_seconds", "after_key", "batch_size"]
optional = ["after_key"]
[ops.purge]
kind = "write"
procedure = "t_purge"
params = ["keys", "age_seconds"]
[ops.peek]
kind = "read"
view = "t_view"
[warehouse]
key = "id"
age_field = "made_at"
older_than = "7d"
batch = 50
every = 30
extract = "extract"
purge = "purge"
load = "t_archive.load"
"""


def load(tmp_path: Path, text: str) -> WarehousePolicy | None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return load_template(path).warehouse


def test_shipped_policy_loads() -> None:
    templates = {t.name: t for t in load_templates(ROOT / "templates/segundo")}
    policy = templates["payments"].warehouse
    assert policy == WarehousePolicy(
        key="payment_id", age_field="payment_date", older_than=30 * 86400.0, batch=500,
        every=60.0, extract="wh_extract", purge="wh_purge", load_template="payment_archive",
        load_op="wh_load")
    assert policy.age_seconds == 2592000
    assert templates["payment_archive"].warehouse is None
    assert templates["payment_archive"].datasource == "cool"


def test_a_policy_is_optional_and_read_with_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, HOT.split("[warehouse]")[0]) is None
    policy = load(tmp_path, HOT.replace('every = 30\n', ''))
    assert policy is not None and policy.every == 60.0 and policy.older_than == 7 * 86400.0


@pytest.mark.parametrize(("value", "seconds"), [
    (30, 30.0), (0.5, 0.5), ("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0),
    ("30d", 2592000.0), (" 1.5 d ", 129600.0), ("x", None), ("3w", None), ("-1s", None),
    (True, None), (None, None), ([], None),
])
def test_durations(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(("change", "message"), [
    (("older_than = \"7d\"", "olderthan = \"7d\""),
     "warehouse.olderthan: unknown key; expected one of: age_field, batch, every, extract, "
     "key, load, older_than, purge"),
    (("key = \"id\"", "key = \"nope\""), "warehouse.key: 'nope' is not declared in [fields]"),
    (("age_field = \"made_at\"", "age_field = \"label\""),
     "warehouse.age_field: expected a date or datetime field declared in [fields], got 'label'"),
    (("older_than = \"7d\"", "older_than = \"a week\""),
     "warehouse.older_than: expected seconds >= 1 (a number, or a number with s, m, h or d "
     "such as \"30d\"), got 'a week'"),
    (("every = 30", "every = 0"), "warehouse.every: expected seconds >= 0.1"),
    (("batch = 50", "batch = 0"), "warehouse.batch: expected int >= 1, got 0"),
    (("batch = 50", "batch = 20000"), "warehouse.batch: expected int between 1 and 10000"),
    (("extract = \"extract\"", "extract = \"gone\""),
     "warehouse.extract: 'gone' is not an op of this template; expected one of: extract, "
     "purge, peek"),
    (("extract = \"extract\"", "extract = \"peek\""),
     "warehouse.extract: 'peek' must be a read procedure op, not a read view op"),
    (("purge = \"purge\"", "purge = \"extract\""),
     "warehouse.purge: 'extract' must be a write procedure op, not a read procedure op"),
    (("params = [\"keys\", \"age_seconds\"]", "params = [\"keys\"]"),
     "warehouse.purge: 'purge' must take params = ['keys', 'age_seconds'], got ['keys']"),
    (("optional = [\"after_key\"]\n", ""),
     "warehouse.extract: 'extract' must list after_key in optional"),
    (("load = \"t_archive.load\"", "load = \"t_archive\""),
     "warehouse.load: expected \"<template>.<op>\" (the COOL template's load op), "
     "got 't_archive'"),
    (("load = \"t_archive.load\"", "load = 3"), "warehouse.load: expected string, got 3"),
])
def test_bad_policies_name_the_key(tmp_path: Path, change: tuple[str, str],
                                   message: str) -> None:
    assert change[0] in HOT
    with pytest.raises(TemplateError) as info:
        load(tmp_path, HOT.replace(change[0], change[1], 1))
    assert str(info.value).startswith(f"{tmp_path / 't.toml'}: {message}"), str(info.value)


def _load_op(**changes: object) -> Op:
    base: dict[str, object] = {"name": "load", "kind": OpKind.WRITE,
                               "target": OpTarget.PROCEDURE, "object_name": "t_load",
                               "params": ("rows",)}
    return Op(**{**base, **changes})  # type: ignore[arg-type]


def test_the_cool_side_is_checked_when_every_template_is_known(tmp_path: Path) -> None:
    policy = load(tmp_path, HOT)
    assert policy is not None
    check_load(policy, "t", "main", "cool", _load_op())
    cases = [
        (None, "cool", "'t_archive.load' is not an op of the templates this node serves"),
        (_load_op(), "main", "uses datasource 'main', the HOT one"),
        (_load_op(kind=OpKind.READ), "cool", "must be a write procedure op"),
        (_load_op(params=("rows", "x")), "cool", "must take params = ['rows'], got ['rows', 'x']"),
    ]
    for op, datasource, message in cases:
        with pytest.raises(TemplateError, match="template 't': warehouse.load: ") as info:
            check_load(policy, "t", "main", datasource, op)
        assert message in str(info.value)


def test_an_extracted_batch_must_keep_its_contract(tmp_path: Path) -> None:
    policy = load(tmp_path, HOT.replace("batch = 50", "batch = 3"))
    assert policy is not None
    at = datetime(2024, 1, 1)
    rows = [{"id": i, "made_at": at} for i in (4, 7, 9)]
    assert batch_keys(rows, policy, None) == [4, 7, 9]
    assert batch_keys(rows, policy, 3) == [4, 7, 9]
    bad: list[tuple[list[dict[str, Any]], int | None, str]] = [
        ([*rows, {"id": 10, "made_at": at}], None, "returned 4 rows for a batch of 3"),
        (rows, 4, "keys must rise in each batch and follow after_key; got 4 after 4"),
        ([rows[1], rows[0]], None, "got 4 after 7"),
        ([{"id": 1}], None, "a row without 'id' or 'made_at'"),
        ([{"made_at": at}], None, "a row without 'id' or 'made_at'"),
    ]
    for batch, after, message in bad:
        with pytest.raises(TemplateError, match="warehouse.extract: ") as info:
            batch_keys(batch, policy, after)
        assert message in str(info.value)


@pytest.mark.parametrize(("change", "message"), [
    (('load = "payment_archive.wh_load"', 'load = "payment_archive.nope"'),
     r"warehouse.load: 'payment_archive.nope' is not an op of the templates this node serves"),
    (('broker = "whBroker"', 'broker = "rBroker"'),
     r"ops.wh_extract: the warehouse calls it, so it must name broker = 'whBroker'"),
])
def test_a_segundo_node_with_a_broken_policy_does_not_start(
        tmp_path: Path, change: tuple[str, str], message: str) -> None:
    import shutil

    import tomli_w

    from beds.config import load_settings
    from beds.node import Node

    folder = tmp_path / "templates" / "segundo"
    shutil.copytree(ROOT / "templates/segundo", folder)
    hot = folder / "payments.toml"
    hot.write_text(hot.read_text().replace(*change))
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps({"node": {"templates_dir": str(tmp_path / "templates")}}))
    settings = load_settings(ROOT / "config/beds.toml", env, environ={"BEDS_MYSQL_PASSWORD": "x"})
    with pytest.raises(TemplateError, match=message):
        Node.build(settings, "segundo")
