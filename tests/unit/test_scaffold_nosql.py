"""`beds scaffold --engine mongodb|dynamodb`, without a database: the generated JSON is read by the
adapters' own schema parsers, every template op names an operation or view whose signature
matches (the no-database half of `beds templates check`), writes are idempotent by construction,
and specs the engine cannot serve are refused naming the key. (Applying and serving the files is
tests/integration/test_scaffold.py.)"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from beds.adapters.dynamodb import catalog as dynamodb_catalog
from beds.adapters.dynamodb import schema as dynamodb_schema
from beds.adapters.dynamodb.requests import transact_request
from beds.adapters.mongodb import catalog as mongodb_catalog
from beds.adapters.mongodb import operations as mongodb_operations
from beds.adapters.mongodb import schema as mongodb_schema
from beds.errors import ConfigError
from beds.scaffold.command import scaffold
from beds.scaffold.engines import Existing
from beds.scaffold.generate import build
from beds.scaffold.spec import load_spec
from beds.templates.loader import load_template
from beds.templates.model import OpTarget
from tests.support.services import ROOT, SAMPLES

EXAMPLE = ROOT / "docs/specs/supplier.toml"
ENGINES = ("mongodb", "dynamodb")
PARSERS: dict[str, Any] = {"mongodb": (mongodb_catalog, mongodb_schema),
                           "dynamodb": (dynamodb_catalog, dynamodb_schema)}
PARCEL = (SAMPLES / "parcel.toml").read_text()
BY_EMAIL = """\
name = "member"
primary_key = "member_code"
unique = ["email"]
[fields]
member_code = { type = "str", max_length = 12 }
email       = { type = "str", max_length = 100 }
joined      = { type = "date" }
level       = { type = "int", min = 1, max = 5, required = false }
[ops]
fetch = { by = "email" }
list = { filters = ["level", "email"], order_by = ["-joined"] }
update = true
delete = true
"""


def _spec(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _specs(tmp_path: Path) -> list[Path]:
    return [EXAMPLE, _spec(tmp_path, PARCEL, "parcel"), _spec(tmp_path, BY_EMAIL, "member")]


@pytest.mark.parametrize("shipped", [True, False], ids=["with-example-schema", "alone"])
@pytest.mark.parametrize("engine", ENGINES)
def test_every_op_is_wired_to_what_the_schema_file_defines(tmp_path: Path, engine: str,
                                                          shipped: bool) -> None:
    """With or without the example schema next to them: a JSON schema may not define a name
    twice, so request_log / counters / grants are generated only when the project lacks them."""
    if shipped:
        shutil.copytree(ROOT / "schema" / engine, tmp_path / "schema" / engine)
    for spec in _specs(tmp_path):
        scaffold(spec, engine, tmp_path)
    ops_module, admin = PARSERS[engine]
    catalog = ops_module.load_catalog(tmp_path / "schema" / engine)
    templates = [load_template(tmp_path / "templates" / f"{n}.toml")
                 for n in ("supplier", "parcel", "member")]
    assert admin.catalog_problems(catalog, templates) == []
    for template in templates:
        assert list(template.ops) == [o for o in ("fetch", "list", "create", "update", "delete")
                                      if o in template.ops]
        for op in template.ops.values():
            if op.target is OpTarget.VIEW:
                assert op.object_name in catalog.views
                continue
            operation = catalog.operations[op.object_name]
            assert [p.name for p in operation.sig.params] == list(op.params)
            if op.kind.value == "write":   # the idempotency key first, as on the SQL engines
                assert op.params[0] == op.idempotency_key == "request_id"
    if engine == "dynamodb":
        assert "counters" in catalog.tables and "request_log" in catalog.tables
    else:
        assert "counters" in catalog.collections and "counters" in catalog.grants


def _operations(engine: str, spec_path: Path, existing: Existing | None = None) -> Any:
    text = build(load_spec(spec_path), engine, existing).schema
    return json.loads(text)


def test_dynamodb_tables_indexes_and_view(tmp_path: Path) -> None:
    data = _operations("dynamodb", EXAMPLE)
    tables = data["tables"]
    assert set(tables) == {"supplier", "uq_supplier_email", "supplier_audit", "request_log",
                           "counters"}
    # Soft delete: the list's sort key is a copy that delete removes.
    assert tables["supplier"]["indexes"] == {"by_catalog": {"key": {"_catalog": "S",
                                                                    "_order": "S"}}}
    assert tables["supplier_audit"]["key"] == {"supplier_id": "N", "request_id": "S"}
    view = data["views"]["supplier_list"]
    assert view["columns"]["name"] == "_order" and view["access"] == [
        {"index": "by_catalog", "partition": {"_catalog": "supplier"}}]
    delete = data["operations"]["supplier_delete"]["transact"][2]
    assert delete["expression"].endswith("REMOVE #_order")
    member = _operations("dynamodb", _spec(tmp_path, BY_EMAIL, "member"))
    indexes = member["tables"]["member"]["indexes"]
    # level is optional: no index (a null key attribute is refused); email serves fetch too.
    assert indexes == {"by_catalog": {"key": {"_catalog": "S", "joined": "S"}},
                       "by_email": {"key": {"email": "S", "joined": "S"}}}
    assert member["operations"]["member_fetch"]["query"]["index"] == "by_email"


def test_dynamodb_template_orders_by_one_column_and_docs_say_cursor(tmp_path: Path) -> None:
    files = build(load_spec(_spec(tmp_path, PARCEL, "parcel")), "dynamodb")
    assert 'order_by = ["-ship_date"]' in files.template
    assert "`cursor` / `next_cursor`, not `offset`" in files.doc
    sql = build(load_spec(_spec(tmp_path, PARCEL, "parcel")), "mysql")
    assert 'order_by = ["-ship_date", "tracking_code"]' in sql.template


@pytest.mark.parametrize("op", ["supplier_create", "supplier_update", "supplier_delete"])
@pytest.mark.parametrize("repeat", [False, True])
def test_dynamodb_writes_never_touch_an_item_twice(tmp_path: Path, op: str, repeat: bool) -> None:
    """DynamoDB refuses a transaction naming one item twice: the request-log check (a repeat)
    and put (a new request id) are exclusive, as are soft delete's check and update."""
    directory = tmp_path / "schema"
    directory.mkdir()
    (directory / "100_supplier.json").write_text(build(load_spec(EXAMPLE), "dynamodb").schema)
    operation = dynamodb_catalog.load_catalog(directory).operations[op]
    values: dict[str, Any] = {p.name: "x" for p in operation.sig.params}
    values |= {"supplier_id": 7, "v_op": op, "v_null": None, "v_now": datetime(2026, 1, 1),
               "o_op": op if repeat else None, "o_email": "old@example.com", "email": "new@x.y"}
    items, sent = transact_request(operation.transact, values, lambda t: t)
    keys = [(next(iter(i.values()))["TableName"], json.dumps(next(iter(i.values())).get(
        "Key") or {"request_id": next(iter(i.values()))["Item"].get("request_id")}))
        for i in items]
    assert len(keys) == len(set(keys)), keys
    assert sent[0].table == "request_log"
    assert sent[0].action == ("check" if repeat else "put")
    assert sent[0].fail.kind == ("reply" if repeat else "error")


def test_dynamodb_update_keeps_what_the_caller_left_out() -> None:
    ops = _operations("dynamodb", EXAMPLE)["operations"]
    read = ops["supplier_update"]["read"][1]
    assert read["defaults"] == {f: f for f in ("name", "email", "credit_limit", "active")}
    assert read["missing"] == {"out": {"updated": 0}}
    update = next(t for t in ops["supplier_update"]["transact"] if "update" in t)
    assert update["condition"] == "#_request = :o_request"       # nobody wrote it since
    claims = [t for t in ops["supplier_update"]["transact"]
              if "uq_supplier_email" in (t.get("put"), t.get("delete"))]
    assert [t.get("if") for t in claims] == [None, "o_email <> email"]


@pytest.mark.parametrize(("change", "key", "message"), [
    ('unique = ["email"]', 'unique = [["name", "email"]]', "unique: ['name', 'email']: "
     "DynamoDB keeps only keys unique"),
    ('order_by = ["name"]', 'order_by = ["credit_limit"]', "ops.list.order_by: 'credit_limit': "
     "DynamoDB returns rows in the order of an index's sort key"),
    ('order_by = ["name"]', 'order_by = ["active"]', "ops.list.order_by: 'active'"),
])
def test_dynamodb_refuses_what_it_cannot_serve(tmp_path: Path, change: str, key: str,
                                               message: str) -> None:
    path = _spec(tmp_path, EXAMPLE.read_text().replace(change, key), "supplier")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path / 'supplier.toml'}: {message}")):
        scaffold(path, "dynamodb", tmp_path)
    assert not (tmp_path / "schema").exists()          # nothing written


def test_mongodb_collection_view_and_idempotent_writes() -> None:
    data = _operations("mongodb", EXAMPLE)
    collection = data["collections"]["supplier"]
    schema = collection["validator"]["$jsonSchema"]
    assert schema["properties"]["_id"] == {"bsonType": ["int", "long"], "minimum": 1}
    assert schema["properties"]["credit_limit"] == {"bsonType": ["decimal", "null"]}
    names = {i["name"]: i for i in collection["indexes"]}
    assert names["uq_supplier_email"]["unique"] is True
    assert names["uq_supplier_created_by"]["partialFilterExpression"] == {
        "_created_by": {"$type": "string"}}
    view = data["views"]["supplier_list"]["pipeline"]
    assert view[0] == {"$match": {"deleted_at": None}}
    assert view[1]["$project"]["supplier_id"] == "$_id"
    ops = data["operations"]
    create = ops["supplier_create"]["findOneAndUpdate"]
    assert create["filter"] == {"_created_by": {"$param": "request_id"}} and create["upsert"]
    assert ops["supplier_update"]["out"] == {"updated": "$matchedCount"}
    assert ops["supplier_delete"]["updateOne"]["update"][0]["$set"]["deleted_at"]["$cond"][1] == \
        "$deleted_at"                       # a repeat keeps the first deletion
    assert data["grants"] == {"supplier_list": ["find"], "supplier": ["find", "insert", "update"],
                              "counters": ["find", "insert", "update"]}


def test_mongodb_values_fill_update_pipelines_as_literals(tmp_path: Path) -> None:
    directory = tmp_path / "schema"
    directory.mkdir()
    (directory / "100_supplier.json").write_text(build(load_spec(EXAMPLE), "mongodb").schema)
    operation = mongodb_catalog.load_catalog(directory).operations["supplier_update"]
    assert isinstance(operation.body, mongodb_operations.MongoWrite)
    filled = mongodb_operations.fill(operation.body.update, {"name": "$where", "request_id": "r1"})
    name = filled[0]["$set"]["name"]["$cond"]
    assert name[2] == {"$ifNull": [{"$literal": "$where"}, "$name"]}   # a value, never a path
    assert name[0] == {"$in": [{"$literal": "r1"}, {"$ifNull": ["$_requests", []]}]}


def test_mongodb_hard_delete_and_dates_say_what_they_cannot_do(tmp_path: Path) -> None:
    files = build(load_spec(_spec(tmp_path, PARCEL, "parcel")), "mongodb")
    assert "a repeated delete answers `deleted` 0" in files.doc
    assert "`ship_date` come back as midnight" in files.doc
    delete = json.loads(files.schema)["operations"]["parcel_delete"]
    assert delete["deleteOne"]["filter"] == {"_id": {"$param": "tracking_code"}}
    assert json.loads(files.schema)["grants"]["parcel"] == ["find", "insert", "update", "remove"]


@pytest.mark.parametrize("engine", ENGINES)
def test_spec_text_stays_inside_json_strings(tmp_path: Path, engine: str) -> None:
    hostile = 'x"}, "$where": "1\nDROP'
    text = EXAMPLE.read_text().replace('"Suppliers the store buys from"', json.dumps(hostile))
    data = json.loads(build(load_spec(_spec(tmp_path, text, "supplier")), engine).schema)
    table = data["collections" if engine == "mongodb" else "tables"]["supplier"]
    assert 'x"}, "$where": "1 DROP.' in table["description"]      # text, on one line
    assert "$where" not in {k for section in data.values() for k in section}


@pytest.mark.parametrize("engine", ENGINES)
def test_reruns_are_unchanged(tmp_path: Path, engine: str) -> None:
    shutil.copytree(ROOT / "schema" / engine, tmp_path / "schema" / engine)
    first = scaffold(EXAMPLE, engine, tmp_path)
    assert first[0][0].name.endswith("_supplier.json")
    assert {s for _, s in scaffold(EXAMPLE, engine, tmp_path)} == {"unchanged"}
