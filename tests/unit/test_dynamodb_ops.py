"""DynamoDB requests without a server: the schema files, views planned onto an access path,
values only ever as ExpressionAttributeValues, transactions, cursors, the DSN, derived values
and error translation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (  # type: ignore[import-untyped]
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from beds.adapters.dynamodb.catalog import load_catalog
from beds.adapters.dynamodb.endpoint import endpoint_of
from beds.adapters.dynamodb.errors import translate
from beds.adapters.dynamodb.requests import (
    decode_cursor,
    encode_cursor,
    from_attr,
    number,
    query_request,
    to_attr,
    transact_request,
    view_request,
)
from beds.adapters.dynamodb.schema import catalog_problems
from beds.adapters.named_ops import Source, bind_params, build_out, derive, resolve
from beds.config import DatasourceSettings, Engine
from beds.errors import (
    ConfigError,
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    ValidationFailed,
)
from beds.templates import load_templates
from tests.support.services import ROOT

CATALOG = load_catalog(ROOT / "schema/dynamodb")
TEMPLATES = {t.name: t for t in load_templates(ROOT / "templates")}
INJECTION = ":k0 OR attribute_exists(#pin_hash)"


def view(name: str, filters: list[tuple[str, Any]], descending: bool = False) -> dict[str, Any]:
    v = CATALOG.views[name]
    return view_request(v, CATALOG.tables[v.table], f"p_{v.table}", filters, descending)


def settings(dsn: str) -> DatasourceSettings:
    return DatasourceSettings("main", Engine.DYNAMODB, dsn, None, 1, 4, 5.0, 10.0,
                              ROOT / "schema/dynamodb")


def client_error(code: str, status: int = 400, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"},
                        "ResponseMetadata": {"HTTPStatusCode": status}, **extra}, "Op")


def test_the_shipped_schema_serves_every_template_op() -> None:
    assert catalog_problems(CATALOG, list(TEMPLATES.values())) == []
    assert CATALOG.tables["film"].indexes["by_category"].attributes == ("category", "film_id")
    assert CATALOG.items["counters"] == [{"counter": "customer", "last": 5},
                                         {"counter": "payment", "last": 8}]
    assert CATALOG.items["payment"][7]["amount"] == Decimal("10.00")


# -- views ------------------------------------------------------------------------------------------

def test_a_filter_on_a_partition_key_picks_that_index() -> None:
    request = view("film_list", [("category", "Action"), ("rating", "NC-17")])
    assert request["IndexName"] == "by_category"
    assert request["KeyConditionExpression"] == "#category = :k0"
    assert request["FilterExpression"] == "#rating = :f0"
    assert request["ExpressionAttributeValues"] == {":k0": {"S": "Action"}, ":f0": {"S": "NC-17"}}
    assert request["ScanIndexForward"] is True
    assert request["ProjectionExpression"] == ("#film_id, #title, #category, #rental_rate, "
                                               "#length, #rating, #release_year")


def test_without_one_the_constant_partition_is_read() -> None:
    request = view("film_list", [("rating", "G")], descending=True)
    assert request["IndexName"] == "by_catalog"
    assert request["ExpressionAttributeValues"] == {":k0": {"S": "film"}, ":f0": {"S": "G"}}
    assert request["ScanIndexForward"] is False
    customers = view("customer_list", [("store_id", 2), ("active", True)])
    assert customers["IndexName"] == "by_store"
    assert customers["ExpressionAttributeValues"] == {":k0": {"N": "2"}, ":f0": {"BOOL": True}}


def test_a_filter_value_is_only_ever_a_value() -> None:
    request = view("film_list", [("category", INJECTION)])
    assert request["KeyConditionExpression"] == "#category = :k0"
    assert request["ExpressionAttributeValues"] == {":k0": {"S": INJECTION}}
    assert "FilterExpression" not in request


def test_a_query_binds_exactly_the_values_its_expressions_use() -> None:
    query = CATALOG.operations["film_in_stock"].queries[0]
    request = query_request(query, "p_inventory", {"film_id": 1, "store_id": 2, "unused": 3})
    assert request == {
        "TableName": "p_inventory",
        "KeyConditionExpression": "#film_id = :film_id",
        "FilterExpression": "#store_id = :store_id AND attribute_not_exists(#rented_by)",
        "ProjectionExpression": "#inventory_id",
        "ScanIndexForward": True,
        "ExpressionAttributeNames": {"#film_id": "film_id", "#store_id": "store_id",
                                     "#rented_by": "rented_by", "#inventory_id": "inventory_id"},
        "ExpressionAttributeValues": {":film_id": {"N": "1"}, ":store_id": {"N": "2"}},
    }


# -- transactions -----------------------------------------------------------------------------------

def test_a_transaction_skips_items_whose_if_fails_and_omits_null_attributes() -> None:
    items = CATALOG.operations["customer_update_email"].transact
    values = {"customer_id": 6, "email": "Nora@x.io", "email_key": "nora@x.io",
              "old_email": "nora@x.io", "old_key": "nora@x.io"}
    requests, sent = transact_request(items, values, lambda t: f"p_{t}")
    assert [next(iter(r)) for r in requests] == ["Update", "Put"]     # same key: no Delete
    assert [i.action for i in sent] == ["update", "put"]
    update = requests[0]["Update"]
    assert update["Key"] == {"customer_id": {"N": "6"}}
    assert update["UpdateExpression"] == "SET #email = :email, #email_key = :email_key"
    assert set(update["ExpressionAttributeValues"]) == {":email", ":email_key", ":old_email"}
    requests, _ = transact_request(items, {**values, "old_key": "old@x.io"}, lambda t: f"p_{t}")
    assert requests[2]["Delete"]["Key"] == {"email_key": {"S": "old@x.io"}}
    create = CATALOG.operations["customer_create"].transact
    values = {"customer_id": 7, "store_id": 1, "first_name": "A", "last_name": INJECTION,
              "email": "a@x.io", "email_key": "a@x.io", "pin_hash": None, "now": "t", "one": 1}
    requests, _ = transact_request(create, values, lambda t: t)
    item = requests[1]["Put"]["Item"]
    assert "pin_hash" not in item and item["last_name"] == {"S": INJECTION}
    assert item["catalog"] == {"S": "customer"} and item["active"] == {"BOOL": True}


# -- values -----------------------------------------------------------------------------------------

def test_values_round_trip_through_dynamodb_types() -> None:
    value = {"s": "x", "n": [1, Decimal("2.50"), None, True], "m": {"$where": "y"}}
    assert from_attr(to_attr(value)) == {"s": "x", "n": [1, Decimal("2.50"), None, True],
                                         "m": {"$where": "y"}}
    assert number("10") == 10 and isinstance(number("10"), int)
    assert number("0.99") == Decimal("0.99")
    # Datetimes are UTC text, which sorts as time does.
    east = datetime(2030, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_attr(east) == {"S": "2030-01-01T00:00:00"}
    assert to_attr(datetime(2030, 1, 1, tzinfo=UTC)) == {"S": "2030-01-01T00:00:00"}


def test_derived_values_and_sources() -> None:
    sig = CATALOG.operations["customer_create"].sig
    values = bind_params(sig, [1, "Nora", "Quinn", "Nora.Quinn@Example.com", None])
    derive(sig, values, now=datetime(2030, 1, 1))
    assert values["email_key"] == "nora.quinn@example.com"
    assert values["pin_hash"] is None and values["now"] == datetime(2030, 1, 1)
    assert values["one"] == 1
    with pytest.raises(DbError, match="takes 5 params"):
        bind_params(sig, [1])
    rows: list[dict[str, Any]] = [{"amount": Decimal("0.99")}, {"amount": 4}]
    assert resolve(Source("sum", "amount", scale=2), {}, rows=rows) == Decimal("4.99")
    assert str(resolve(Source("sum", "amount", scale=2), {}, rows=[])) == "0.00"
    assert build_out(("a", "b"), (("a", Source("literal", literal=0)),), {}) == \
        {"a": 0, "b": None}
    assert build_out((), None, {}) is None


# -- cursors ----------------------------------------------------------------------------------------

def test_a_cursor_is_the_last_evaluated_key_and_nothing_else() -> None:
    key = {"catalog": {"S": "film"}, "film_id": {"N": "7"}, "blob": {"B": b"\x00\xff"}}
    cursor = encode_cursor(key)
    assert "=" not in cursor and decode_cursor(cursor) == key
    for bad in ("", "!!!", encode_cursor({"a": {"S": "x"}})[:-3], "eyJ2IjoxLCJrIjp7fX0",
                "eyJ2IjoxLCJrIjp7ImEiOnsiTSI6e319fX0"):
        with pytest.raises(ValidationFailed, match="^cursor: not a cursor this op returned$"):
            decode_cursor(bad)


# -- the dsn ----------------------------------------------------------------------------------------

def test_the_dsn_names_endpoint_region_credentials_and_prefix() -> None:
    local = endpoint_of(settings("dynamodb://127.0.0.1:8000/shop_?region=eu-west-1"))
    assert (local.url, local.region, local.prefix) == ("http://127.0.0.1:8000", "eu-west-1",
                                                       "shop_")
    assert (local.access_key, local.secret_key) == ("local", "local")   # loopback only
    aws = endpoint_of(settings("dynamodb://AKIA:s3cret@aws/prod_?region=us-west-2"))
    assert (aws.url, aws.access_key, aws.secret_key) == (None, "AKIA", "s3cret")
    remote = endpoint_of(settings("dynamodb://ddb.internal/x?tls=true"))
    assert (remote.url, remote.access_key) == ("https://ddb.internal:443", None)
    for dsn, message in [("mysql://h/x", "expected dynamodb://"),
                         ("dynamodb://h/x?consistent=1", "unknown option 'consistent'"),
                         ("dynamodb://h/x?tls=yes", "tls: expected true or false"),
                         ("dynamodb://h/a b", "the table prefix may hold only")]:
        with pytest.raises(ConfigError, match=rf"^datasources\.main\.dsn: {message}"):
            endpoint_of(settings(dsn))


# -- schema errors name the file and the key --------------------------------------------------------

@pytest.mark.parametrize(("operation", "message"), [
    ({"params": {"a": "int"}, "query": {"table": "film", "key": "#film_id = :b",
                                        "columns": {"x": "x"}}},
     r"operations\.op\.query\.key: :b is not a value of this operation; known: a"),
    ({"query": {"table": "nope", "key": "#a = :a", "columns": {"x": "x"}}},
     r"operations\.op\.query\.table: no table 'nope'"),
    ({"query": {"table": "film", "index": "by_x", "key": "k", "columns": {"x": "x"}}},
     r"operations\.op\.query\.index: table 'film' has no index 'by_x'"),
    ({"params": {"a": "int"}, "transact": [{"put": "film", "item": {"title": ":a"}}]},
     r"operations\.op\.transact\[0\]\.item: the item lacks its key attribute\(s\) film_id"),
    ({"params": {"a": "int"}, "transact": [{"delete": "film", "key": {"x": ":a"}}]},
     r"operations\.op\.transact\[0\]\.key: expected exactly the key attributes film_id"),
    ({"params": {"a": "int"}, "transact": [{"delete": "film", "key": {"film_id": ":a"},
                                            "if": "a < b"}]},
     r'operations\.op\.transact\[0\]\.if: expected "value = value"'),
    ({"params": {"a": "int"}, "transact": [{"check": "film", "key": {"film_id": ":a"}}]},
     r"operations\.op\.transact\[0\]\.condition: required key is missing"),
    ({"params": {"a": "int"}, "query": {"table": "film", "key": "#film_id = :a",
                                        "columns": {"x": "x"}}, "out": {"n": "$Items"}},
     r"\$Items: this operation gives \$Count, \$ScannedCount"),
    ({"params": {"a": "int"}, "read": [{"table": "film", "key": {"film_id": ":a"},
                                        "defaults": {"title": "title"}}],
      "transact": [{"delete": "film", "key": {"film_id": ":a"}}]},
     r"read\[0\]\.defaults\.title: 'title' is not a value of this operation"),
])
def test_a_bad_operation_is_refused_naming_file_and_key(tmp_path: Path, operation: dict[str, Any],
                                                        message: str) -> None:
    tables = (ROOT / "schema/dynamodb/010_tables.json").read_text()
    (tmp_path / "010_tables.json").write_text(tables)
    (tmp_path / "040_ops.json").write_text(json.dumps({"operations": {"op": operation}}))
    with pytest.raises(ConfigError, match=rf"^{tmp_path / '040_ops.json'}: .*{message}"):
        load_catalog(tmp_path)


# -- error translation ------------------------------------------------------------------------------

def test_driver_errors_become_beds_errors() -> None:
    conflict = translate(client_error("ConditionalCheckFailedException"))
    assert isinstance(conflict, Conflict) and conflict.details == {
        "code": "ConditionalCheckFailedException"}
    for code in ("ProvisionedThroughputExceededException", "ThrottlingException",
                 "TransactionConflictException"):
        assert isinstance(translate(client_error(code)), DbUnavailable), code
    assert isinstance(translate(client_error("Whatever", status=503)), DbUnavailable)
    invalid = translate(client_error("ValidationException"))
    assert isinstance(invalid, DbError) and invalid.details == {"code": "ValidationException"}
    throttled = client_error("TransactionCanceledException", CancellationReasons=[
        {"Code": "None"}, {"Code": "ThrottlingError"}])
    assert isinstance(translate(throttled), DbUnavailable)
    failed = client_error("TransactionCanceledException", CancellationReasons=[
        {"Code": "ConditionalCheckFailed"}])
    assert isinstance(translate(failed), Conflict)
    assert isinstance(translate(ReadTimeoutError(endpoint_url="http://x")), DeadlineExceeded)
    assert isinstance(translate(EndpointConnectionError(endpoint_url="http://x")), DbUnavailable)
    assert isinstance(translate(NoCredentialsError()), DbError)
