"""DynamoDB adapter behaviour the example domain does not reach through a node: cursor paging,
descending order, access paths, json values, deadlines, an unreachable endpoint, schema apply
that never overwrites, and templates check against live tables. Real HTTP calls to the session's
DynamoDB-compatible server, in tables of this module's own."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from beds.adapters import schema_tool
from beds.adapters.base import Call
from beds.adapters.dynamodb.adapter import DynamoAdapter
from beds.config import DatasourceSettings, Engine
from beds.errors import Conflict, DbError, DbUnavailable, DeadlineExceeded, ValidationFailed
from beds.templates import load_template
from beds.templates.model import Template
from tests.contract.conftest import dynamodb_dsn, dynamodb_tables
from tests.contract.dynamodb_server import free_port
from tests.support.services import ROOT, SESSION

SCRATCH = """{
  "tables": {"notes": {"key": {"note_id": "S"}}},
  "views": {
    "film_by_category": {"table": "film",
                         "columns": {"FID": "film_id", "category": "category", "rating": "rating"},
                         "access": [{"index": "by_category", "partition": "category"}]}},
  "operations": {
    "note_put": {"params": {"note_id": "str", "body": "json"},
                 "transact": [{"put": "notes", "item": {"note_id": ":note_id", "body": ":body"},
                               "condition": "attribute_not_exists(#note_id)"}]},
    "note_get": {"params": {"note_id": "str"},
                 "query": {"table": "notes", "key": "#note_id = :note_id",
                           "columns": {"note_id": "note_id", "body": "body"}}}}
}"""

TEMPLATE = """
name = "scratch"
datasource = "main"
[fields]
note_id = { type = "str" }
body = { type = "json" }
category = { type = "str" }
rating = { type = "str" }
[ops.put]
kind = "write"
procedure = "note_put"
params = ["note_id", "body"]
[ops.get]
kind = "read"
procedure = "note_get"
params = ["note_id"]
[ops.films]
kind = "read"
view = "film_list"
filters = ["category", "rating"]
order_by = ["FID"]
[ops.films_desc]
kind = "read"
view = "film_list"
filters = ["category", "rating"]
order_by = ["-FID"]
[ops.by_category]
kind = "read"
view = "film_by_category"
filters = ["category", "rating"]
order_by = ["FID"]
"""
ACTION = [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]


def settings(dsn: str, schema_dir: Path, **extra: Any) -> DatasourceSettings:
    values: dict[str, Any] = {"pool_min": 1, "pool_max": 4, "connect_timeout": 2.0,
                              "statement_timeout": 10.0, **extra}
    return DatasourceSettings("main", Engine.DYNAMODB, dsn, None, values["pool_min"],
                              values["pool_max"], values["connect_timeout"],
                              values["statement_timeout"], schema_dir)


def schema_dir(tmp: Path, scratch: str = SCRATCH) -> Path:
    path = tmp / "schema"
    shutil.copytree(ROOT / "schema/dynamodb", path)
    (path / "070_scratch.json").write_text(scratch)
    return path


@pytest.fixture(scope="module")
async def scratch(dynamodb_server: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[DynamoAdapter]:
    directory = schema_dir(tmp_path_factory.mktemp("dynamodb-scratch"))
    dsn = dynamodb_dsn(dynamodb_server, f"beds_scratch_{SESSION}_")
    adapter = DynamoAdapter(settings(dsn, directory))
    await schema_tool(adapter).apply_schema(sorted(directory.glob("*.json")))
    try:
        yield adapter
    finally:
        for table in await dynamodb_tables(adapter, adapter.endpoint.prefix):
            await adapter.call("delete_table", TableName=table)
        await adapter.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("templates") / "scratch.toml"
    path.write_text(TEMPLATE)
    return load_template(path)


async def run(adapter: DynamoAdapter, template: Template, op: str, call: Call) -> Any:
    return await adapter.run(adapter.prepare(template, template.ops[op]), call)


async def test_a_cursor_pages_through_a_view(scratch: DynamoAdapter, template: Template) -> None:
    prepared = scratch.prepare(template, template.ops["films"])
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        result, cursor = await scratch.page(prepared, Call(limit=7), cursor)
        assert len(result.rows) <= 7
        seen += [row["FID"] for row in result.rows]
        if cursor is None:
            break
    assert seen == list(range(1, 31))


async def test_a_cursor_pages_through_a_filtered_view(scratch: DynamoAdapter,
                                                      template: Template) -> None:
    prepared = scratch.prepare(template, template.ops["films"])
    seen: list[int] = []
    result, cursor = await scratch.page(prepared, Call(filters=[("category", "Action")], limit=5))
    seen += [row["FID"] for row in result.rows]
    while cursor is not None:
        result, cursor = await scratch.page(
            prepared, Call(filters=[("category", "Action")], limit=5), cursor)
        seen += [row["FID"] for row in result.rows]
    assert seen == ACTION
    # A filter that is not the partition key is a FilterExpression: pages still fill up.
    result, _ = await scratch.page(prepared, Call(filters=[("rating", "G")], limit=4))
    assert [row["FID"] for row in result.rows] == [2, 6, 8, 12]


async def test_descending_order_reads_the_sort_key_backwards(scratch: DynamoAdapter,
                                                             template: Template) -> None:
    result = await run(scratch, template, "films_desc",
                       Call(filters=[("category", "Action")], limit=3))
    assert [row["FID"] for row in result.rows] == [23, 21, 19]


async def test_a_view_needs_a_filter_on_a_partition_key(scratch: DynamoAdapter,
                                                        template: Template) -> None:
    with pytest.raises(ValidationFailed, match="filter on one of: category"):
        await run(scratch, template, "by_category", Call(filters=[("rating", "G")], limit=3))
    result = await run(scratch, template, "by_category",
                       Call(filters=[("category", "Horror"), ("rating", "NC-17")], limit=5))
    assert [row["FID"] for row in result.rows] == [10, 18]


async def test_a_forged_cursor_is_refused(scratch: DynamoAdapter, template: Template) -> None:
    prepared = scratch.prepare(template, template.ops["films"])
    for cursor in ("x", "eyJ2IjoyfQ", "e30"):
        with pytest.raises(ValidationFailed, match="^cursor: not a cursor this op returned$"):
            await scratch.page(prepared, Call(limit=3), cursor)


async def test_json_values_are_stored_as_values(scratch: DynamoAdapter,
                                                template: Template) -> None:
    body = '{"$where": "sleep(1000)", "#name": ":value", "n": [1, 2.5, null]}'
    await run(scratch, template, "put", Call(args=["n1", body]))
    result = await run(scratch, template, "get", Call(args=["n1"]))
    assert result.rows == [{"note_id": "n1", "body": {"$where": "sleep(1000)", "#name": ":value",
                                                       "n": [1, Decimal("2.5"), None]}}]
    with pytest.raises(Conflict, match="a condition of the write failed") as raised:
        await run(scratch, template, "put", Call(args=["n1", "{}"]))
    assert raised.value.details == {"code": "ConditionalCheckFailed", "table": "notes"}


async def test_a_deadline_stops_the_call(scratch: DynamoAdapter, template: Template) -> None:
    with pytest.raises(DeadlineExceeded, match="stopped at its time limit"):
        await run(scratch, template, "films", Call(limit=10, timeout=0.000_001))


async def test_an_unreachable_endpoint_is_retryable(tmp_path: Path, template: Template) -> None:
    adapter = DynamoAdapter(settings(f"dynamodb://127.0.0.1:{free_port()}/x_",
                                     ROOT / "schema/dynamodb", connect_timeout=0.5))
    try:
        with pytest.raises(DbUnavailable) as raised:
            await run(adapter, template, "films", Call(limit=1))
        assert raised.value.retryable
    finally:
        await adapter.close()


async def test_schema_apply_never_overwrites_an_item(scratch: DynamoAdapter,
                                                     template: Template) -> None:
    table = scratch.physical("film")
    await scratch.call("update_item", TableName=table, Key={"film_id": {"N": "13"}},
                       UpdateExpression="SET #t = :t", ExpressionAttributeNames={"#t": "title"},
                       ExpressionAttributeValues={":t": {"S": "Changed"}})
    await schema_tool(scratch).apply_schema(sorted(scratch.settings.schema_dir.glob("*.json")))
    item = await scratch.call("get_item", TableName=table, Key={"film_id": {"N": "13"}})
    assert item["Item"]["title"] == {"S": "Changed"}


async def test_templates_check_compares_with_the_live_tables(
        scratch: DynamoAdapter, template: Template, tmp_path: Path) -> None:
    assert await schema_tool(scratch).check([template]) == []
    changed = SCRATCH.replace('"notes": {"key": {"note_id": "S"}}',
                              '"notes": {"key": {"note_id": "N"}}, '
                              '"ghost": {"key": {"g": "S"}, "indexes": {"i": {"key": {"h": "N"}}}}')
    changed = changed.replace('"table": "notes", "key"', '"table": "ghost", "index": "i", "key"')
    other = DynamoAdapter(settings(scratch.settings.dsn, schema_dir(tmp_path, changed)))
    try:
        problems = [str(p) for p in await schema_tool(other).check([template])]
        assert any("ops.get: error: table 'ghost' does not exist" in p for p in problems), problems
        assert any("tables.notes: error: table 'notes' has the key (note_id S) in the database; "
                   "the schema declares (note_id N)" in p for p in problems), problems
        with pytest.raises(DbError, match="cannot change a key in place"):
            await schema_tool(other).apply_schema(sorted(other.settings.schema_dir.glob("*.json")))
    finally:
        await other.close()
