"""MongoDB named operations without a server: the schema files, structural placeholder filling
(a caller's value is only ever a value: never an operator, a key or a placeholder), view reads as
finds, error translation, and the order an operation runs its steps in, against a recording
stand-in for motor's database."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from beds.adapters.base import Call
from beds.adapters.mongodb.adapter import (
    MongoAdapter,
    MongoStatement,
    database_of,
    translate,
    unstorable,
)
from beds.adapters.mongodb.catalog import load_catalog
from beds.adapters.mongodb.operations import Placeholder, build_find, fill, plain, to_bson
from beds.adapters.mongodb.schema import catalog_problems
from beds.config import Engine, load_settings
from beds.errors import (
    ConfigError,
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    ValidationFailed,
)
from beds.templates import load_templates
from beds.templates.model import FieldType, OrderBy
from tests.support.services import ROOT

SETTINGS = replace(
    load_settings(ROOT / "config/beds.toml",
                  environ={"BEDS_MYSQL_PASSWORD": "x"}).datasources["main"],
    engine=Engine.MONGODB, dsn="mongodb://app:secret@127.0.0.1:27017/beds",
    schema_dir=ROOT / "schema/mongodb")
TEMPLATES = {t.name: t for t in load_templates(ROOT / "templates")}
CATALOG = load_catalog(ROOT / "schema/mongodb")
INJECTION = '{"$where": "sleep(10000)", "$gt": ""}'


def write_schema(tmp_path: Path, operations: dict[str, Any]) -> Path:
    (tmp_path / "040_operations.json").write_text(json.dumps({"operations": operations}))
    return tmp_path


# -- the shipped schema -----------------------------------------------------------------------------

def test_the_shipped_schema_serves_every_template_op() -> None:
    assert catalog_problems(CATALOG, list(TEMPLATES.values())) == []
    assert set(CATALOG.views) == {"film_list", "customer_list"}
    assert CATALOG.views["film_list"].columns == frozenset({
        "FID", "title", "category", "price", "length", "rating", "release_year"})
    # Extended JSON: exact decimals and dates, as MongoDB stores them.
    film = CATALOG.documents["film"][0]
    assert film["rental_rate"] == Decimal128("0.99")
    assert film["last_update"] == datetime(2024, 1, 1)


def test_the_application_role_reads_views_and_writes_only_what_operations_write() -> None:
    assert CATALOG.grants["film_list"] == ("find",)
    writers = {name for name, actions in CATALOG.grants.items() if "insert" in actions}
    assert writers == {"customer", "payment", "counters"}
    assert not any("remove" in actions for actions in CATALOG.grants.values())


# -- placeholders -----------------------------------------------------------------------------------

def test_placeholders_are_parsed_structurally() -> None:
    pipeline = CATALOG.operations["film_in_stock"].body.pipeline  # type: ignore[union-attr]
    assert pipeline[0] == {"$match": {"film_id": Placeholder("film_id"),
                                      "store_id": Placeholder("store_id")}}


def test_fill_puts_values_in_place_and_never_looks_into_them() -> None:
    tree = {"$match": {"email": Placeholder("email"), "n": [Placeholder("n"), 1]}}
    sneaky = {"$param": "pin", "$where": "sleep(1)"}       # a value, however it looks
    filled = fill(tree, {"email": INJECTION, "n": sneaky, "pin": "1234"})
    assert filled == {"$match": {"email": INJECTION, "n": [sneaky, 1]}}
    assert isinstance(filled["$match"]["email"], str)
    assert tree["$match"]["email"] == Placeholder("email")       # the template is untouched


def test_a_caller_string_holding_operators_stays_a_string_in_the_built_command() -> None:
    operation = CATALOG.operations["customer_update_email"]
    body = operation.body
    values = {"customer_id": 6, "email": INJECTION}
    assert fill(body.filter, values) == {"_id": 6}                 # type: ignore[union-attr]
    assert fill(body.update, values) == {"$set": {"email": INJECTION}}  # type: ignore[union-attr]


def test_in_an_aggregation_expression_a_value_is_a_literal(tmp_path: Path) -> None:
    directory = write_schema(tmp_path, {"op": {
        "params": {"name": "str"}, "aggregate": "customer_list",
        "pipeline": [{"$match": {"first_name": {"$param": "name"},
                                 "$expr": {"$eq": ["$last_name", {"$param": "name"}]}}},
                     {"$addFields": {"greeting": {"$param": "name"}}},
                     {"$lookup": {"from": "x", "let": {"n": {"$param": "name"}},
                                  "pipeline": [{"$match": {"a": {"$param": "name"}}}],
                                  "as": "y"}}]}})
    pipeline = load_catalog(directory).operations["op"].body.pipeline  # type: ignore[union-attr]
    # A caller's "$pin_hash" would otherwise read the pin_hash field in an expression.
    assert fill(pipeline, {"name": "$pin_hash"}) == [
        {"$match": {"first_name": "$pin_hash",
                    "$expr": {"$eq": ["$last_name", {"$literal": "$pin_hash"}]}}},
        {"$addFields": {"greeting": {"$literal": "$pin_hash"}}},
        {"$lookup": {"from": "x", "let": {"n": {"$literal": "$pin_hash"}},
                     "pipeline": [{"$match": {"a": "$pin_hash"}}], "as": "y"}}]


@pytest.mark.parametrize(("stage", "message"), [
    ({"$match": {"$where": {"$param": "a"}}}, "a value may not fill JavaScript"),
    ({"$addFields": {"x": {"$function": {"body": "f", "args": [{"$param": "a"}],
                                         "lang": "js"}}}}, "a value may not fill JavaScript"),
    ({"$lookup": {"from": {"$param": "a"}, "as": "x"}}, "a value may not name a collection"),
])
def test_a_value_never_becomes_code_or_a_name(tmp_path: Path, stage: dict[str, Any],
                                              message: str) -> None:
    directory = write_schema(tmp_path, {"op": {"params": {"a": "str"}, "aggregate": "c",
                                               "pipeline": [stage]}})
    with pytest.raises(ConfigError, match=message):
        load_catalog(directory)


def test_json_params_are_documents_without_operator_keys() -> None:
    assert to_bson('{"a": {"b": [1, {"c": null}]}}', FieldType.JSON, "doc") == \
        {"a": {"b": [1, {"c": None}]}}
    for text in ('{"$where": "sleep(1)"}', '{"a": {"$gt": 1}}', '[{"$ne": null}]',
                 '{"a.b": 1}'):
        with pytest.raises(ValidationFailed, match=r"^params\.doc: a key starting with '\$' or "
                                                   "holding '.' is not accepted here"):
            to_bson(text, FieldType.JSON, "doc")
    # A str param is text, whatever it holds: never parsed as JSON.
    assert to_bson(INJECTION, FieldType.STR, "email") == INJECTION


def test_values_are_stored_in_mongodb_types() -> None:
    assert to_bson(Decimal("12.50")) == Decimal128("12.50")
    assert to_bson(date(2030, 1, 1)) == datetime(2030, 1, 1)
    assert to_bson(datetime(2030, 1, 1, 12)) == datetime(2030, 1, 1, 12)
    assert to_bson(None) is None and to_bson(True) is True
    with pytest.raises(ValidationFailed, match="does not fit MongoDB's 34-digit decimal"):
        to_bson(Decimal("1" * 40), FieldType.DECIMAL, "amount")


def test_results_come_back_in_reply_types() -> None:
    oid = ObjectId()
    assert plain({"a": Decimal128("0.99"), "b": [Int64(7), oid], "c": {"d": b"\x00"}}) == \
        {"a": Decimal("0.99"), "b": [7, str(oid)], "c": {"d": b"\x00"}}


# -- view reads -------------------------------------------------------------------------------------

def test_a_view_op_is_a_find_with_equality_filters_under_eq() -> None:
    spec = build_find("film_list", (OrderBy("FID"), OrderBy("title", True)),
                      [("category", INJECTION), ("rating", "PG")], limit=10, offset=20)
    assert spec.collection == "film_list"
    assert spec.filter == {"category": {"$eq": INJECTION}, "rating": {"$eq": "PG"}}
    assert spec.sort == [("FID", 1), ("title", -1)]
    assert (spec.skip, spec.limit) == (20, 10)


# -- schema errors name the file and the key --------------------------------------------------------

@pytest.mark.parametrize(("operation", "message"), [
    ({"params": {"a": "int"}, "aggregate": "x", "pipeline": [{"$match": {"a": {"$param": "b"}}}]},
     r"operations\.op\.pipeline\[0\]\.\$match\.a: \{'\$param': 'b'\}: not a value of this "
     r"operation; known: a"),
    ({"params": {"a": "int"}, "aggregate": "x",
      "pipeline": [{"$match": {"a": {"$param": "a", "x": 1}}}]},
     r'a placeholder is exactly \{"\$param": "name"\}'),
    ({"params": {"a": "integer"}, "aggregate": "x", "pipeline": []},
     r"operations\.op\.params\.a: expected one of 'str', 'int'"),
    ({"aggregate": "x", "pipeline": [], "insertOne": {"collection": "c", "document": {}}},
     "an operation has exactly one of aggregate, insertOne"),
    ({"updateOne": {"collection": "c", "filter": {}, "update": {"$set": {}}},
      "out": {"n": "$insertedId"}},
     r"\$insertedId: updateOne gives \$matchedCount, \$modifiedCount, \$upsertedId"),
    ({"updateOne": {"collection": "c", "filter": {}, "update": {"email": "x"}}},
     r"operations\.op\.updateOne\.update: expected update operators"),
    ({"aggregate": "x", "pipeline": [], "out": {"n": "$n"}},
     'out reads the one result document: declare "sets"'),
    ({"aggregate": "x", "pipeline": [], "where": 1},
     r"operations\.op\.where: unknown key"),
    ({"values": {"k": {"md5": "a"}}, "aggregate": "x", "pipeline": []},
     r'operations\.op\.values\.k: expected "now", \{"lower": param\}'),
])
def test_a_bad_operation_is_refused_naming_file_and_key(tmp_path: Path, operation: dict[str, Any],
                                                        message: str) -> None:
    directory = write_schema(tmp_path, {"op": operation})
    with pytest.raises(ConfigError, match=rf"^{directory / '040_operations.json'}: .*{message}"):
        load_catalog(directory)


def test_a_name_defined_in_two_files_is_refused(tmp_path: Path) -> None:
    op = {"aggregate": "x", "pipeline": []}
    (tmp_path / "010_a.json").write_text(json.dumps({"operations": {"dup": op}}))
    (tmp_path / "020_b.json").write_text(json.dumps({"operations": {"dup": op}}))
    with pytest.raises(ConfigError, match=r"020_b\.json: operations\.dup: already defined in "
                                          r".*010_a\.json"):
        load_catalog(tmp_path)


def test_dsn_must_be_a_mongodb_uri_with_a_database() -> None:
    assert database_of("mongodb://a:b@h1:27017,h2:27018/shop?replicaSet=rs", "k") == "shop"
    with pytest.raises(ConfigError, match="^k: the URI names no database"):
        database_of("mongodb://127.0.0.1:27017/", "k")
    with pytest.raises(ConfigError, match="^k: not a MongoDB URI"):
        database_of("postgresql://127.0.0.1/x", "k")


# -- error translation ------------------------------------------------------------------------------

def test_driver_errors_become_beds_errors() -> None:
    duplicate = translate(DuplicateKeyError("E11000 duplicate key error", 11000,
                                            {"errmsg": "E11000 ... index: uq_customer_email"}), 5)
    assert isinstance(duplicate, Conflict) and duplicate.details == {"code": 11000}
    assert "uq_customer_email" in duplicate.message
    assert isinstance(translate(ServerSelectionTimeoutError("no server"), 5), DbUnavailable)
    assert isinstance(translate(AutoReconnect("connection reset"), 5), DbUnavailable)
    assert isinstance(translate(NotPrimaryError("not primary"), 5), DbUnavailable)
    assert isinstance(translate(OperationFailure("stepped down", 189), 5), DbUnavailable)
    late = translate(ExecutionTimeout("operation exceeded time limit", 50), 1.5)
    assert isinstance(late, DeadlineExceeded) and "1.5s" in late.message
    invalid = translate(OperationFailure("Document failed validation", 121,
                                         {"errmsg": "Document failed validation"}), 5)
    assert isinstance(invalid, DbError) and not invalid.retryable
    assert invalid.details == {"code": 121}
    labelled = OperationFailure("write conflict", 999, {"errorLabels": ["RetryableWriteError"]})
    assert isinstance(translate(labelled, 5), DbUnavailable)


# -- the steps of an operation, against a recording stand-in ----------------------------------------

class FakeCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        return self.docs


class FakeCollection:
    def __init__(self, db: FakeDb, name: str) -> None:
        self.db, self.name = db, name

    def _log(self, method: str, *args: Any) -> Any:
        self.db.calls.append((self.name, method, *args))
        return self.db.answers.get((self.name, method))

    async def find_one(self, filter: Any, projection: Any = None) -> Any:
        return self._log("find_one", filter)

    async def find_one_and_update(self, filter: Any, update: Any, **kw: Any) -> Any:
        return self._log("find_one_and_update", filter, update)

    async def insert_one(self, document: Any) -> Any:
        self._log("insert_one", document)
        return type("Inserted", (), {"inserted_id": document["_id"]})()

    def aggregate(self, pipeline: Any) -> FakeCursor:
        return FakeCursor(self._log("aggregate", pipeline) or [])

    def find(self, filter: Any, **kw: Any) -> FakeCursor:
        return FakeCursor(self._log("find", filter, kw) or [])


class FakeDb:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answers: dict[tuple[str, str], Any] = {}

    def __getitem__(self, name: str) -> FakeCollection:
        return FakeCollection(self, name)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> tuple[MongoAdapter, FakeDb]:
    adapter = MongoAdapter(SETTINGS)
    db = FakeDb()

    async def reachable(write: bool) -> None:
        return None

    monkeypatch.setattr(adapter, "db", lambda: db)
    monkeypatch.setattr(adapter, "_reachable", reachable)
    return adapter, db


def prepared(adapter: MongoAdapter, template: str, op: str) -> MongoStatement:
    t = TEMPLATES[template]
    return adapter.prepare(t, t.ops[op])


async def test_create_checks_the_store_then_takes_an_id_then_inserts(
        fake: tuple[MongoAdapter, FakeDb]) -> None:
    adapter, db = fake
    db.answers[("store", "find_one")] = {"_id": 1}
    db.answers[("counters", "find_one_and_update")] = {"_id": "customer", "last": 6}
    result = await adapter.run(prepared(adapter, "customer", "create"),
                               Call(args=[1, "Nora", INJECTION, "n@example.com", "9876"]))
    assert (result.rows, result.out) == ([{"customer_id": 6}], {"customer_id": 6})
    (store, counter, insert) = db.calls
    assert store[:3] == ("store", "find_one", {"_id": 1})
    assert counter[:4] == ("counters", "find_one_and_update", {"_id": "customer"},
                           {"$inc": {"last": 1}})
    document = insert[2]
    assert insert[:2] == ("customer", "insert_one")
    assert document["_id"] == 6 and document["last_name"] == INJECTION
    assert document["pin_hash"] == hashlib.sha256(b"9876").hexdigest()
    assert "9876" not in document.values()
    assert isinstance(document["created_at"], datetime)


async def test_an_unknown_store_stops_before_the_counter(fake: tuple[MongoAdapter, FakeDb]) -> None:
    adapter, db = fake
    with pytest.raises(DbError, match="^database error: unknown store_id$"):
        await adapter.run(prepared(adapter, "customer", "create"),
                          Call(args=[99, "Nora", "Quinn", "n@example.com", None]))
    assert [call[:2] for call in db.calls] == [("store", "find_one")]


async def test_in_stock_reads_sets_and_out_from_one_document(
        fake: tuple[MongoAdapter, FakeDb]) -> None:
    adapter, db = fake
    db.answers[("inventory", "aggregate")] = [
        {"copies": [{"inventory_id": 2}, {"inventory_id": 3}], "film_count": 2}]
    result = await adapter.run(prepared(adapter, "film", "in_stock"), Call(args=[1, 1]))
    assert (result.rows, result.out, result.sets) == \
        ([{"inventory_id": 2}, {"inventory_id": 3}], {"film_count": 2}, None)
    db.answers[("store", "aggregate")] = [{"categories": [{"category": "Action", "copies": 1}],
                                           "summary": []}]
    report = await adapter.run(prepared(adapter, "film", "store_report"), Call(args=[2]))
    assert report.sets == [[{"category": "Action", "copies": 1}], []]


async def test_a_repeated_payment_returns_the_stored_id(fake: tuple[MongoAdapter, FakeDb]) -> None:
    adapter, db = fake
    db.answers[("customer", "find_one")] = {"_id": 6}
    db.answers[("counters", "find_one_and_update")] = {"last": 11}
    db.answers[("payment", "find_one_and_update")] = {"_id": 10}
    result = await adapter.run(prepared(adapter, "customer", "pay"),
                               Call(args=["req-1", 6, Decimal("7.25"), datetime(2029, 6, 1)]))
    assert result.out == {"payment_id": 10}
    _, _, upsert = db.calls
    assert upsert[2] == {"request_id": "req-1"}
    assert upsert[3]["$setOnInsert"]["amount"] == Decimal128("7.25")


async def test_a_view_op_runs_a_find(fake: tuple[MongoAdapter, FakeDb]) -> None:
    adapter, db = fake
    db.answers[("film_list", "find")] = [{"FID": 1, "price": Decimal128("0.99")}]
    result = await adapter.run(prepared(adapter, "film", "list"),
                               Call(filters=[("category", "Action")], limit=10, offset=10))
    assert result.rows == [{"FID": 1, "price": Decimal("0.99")}]
    (_, _, filter, options), = db.calls
    assert filter == {"category": {"$eq": "Action"}}
    assert options == {"sort": [("FID", 1)], "skip": 10, "limit": 10}


async def test_an_operation_missing_from_the_schema_is_a_db_error(
        fake: tuple[MongoAdapter, FakeDb]) -> None:
    adapter, _ = fake
    statement = MongoStatement("nope", prepared(adapter, "film", "fetch").target)
    with pytest.raises(DbError, match="operation 'nope' does not exist"):
        await adapter.run(statement, Call(args=[1]))


@pytest.mark.parametrize("document", [{"a\x00b": 1}, {"n": 2**64}])
def test_a_value_bson_cannot_hold_is_a_bad_request_not_internal(document: dict[str, Any]) -> None:
    # L6: these are raised while encoding, outside PyMongoError; the adapter used to let them
    # through as INTERNAL. The real encoder raises them; the adapter maps exactly these types.
    import bson
    from bson.errors import InvalidDocument

    with pytest.raises((InvalidDocument, OverflowError)) as info:
        bson.encode(document)
    assert isinstance(info.value, (InvalidDocument, OverflowError))
    error = unstorable(info.value)
    assert error.code == "BAD_REQUEST" and error.details["ran"] is False
    assert str(error).startswith("params: a value MongoDB cannot store")
