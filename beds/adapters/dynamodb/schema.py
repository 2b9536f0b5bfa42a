"""DBA tooling for DynamoDB: `beds templates check` and `beds schema apply`.

Layer: infrastructure (DBA tooling). Runs from the CLI and at a template reload, never on the
request path. The schema
format is described in `beds.adapters.dynamodb.operations`.

DynamoDB has no accounts or grants of its own: who may read and write which table is an IAM
policy, outside BEDS. Give the node's credentials dynamodb:Query, GetItem, UpdateItem and
TransactWriteItems (plus DescribeTable for templates check) on the prefixed tables only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from beds.adapters.dynamodb.adapter import DynamoAdapter
from beds.adapters.dynamodb.catalog import COUNTERS, DynamoCatalog, load_catalog
from beds.adapters.dynamodb.endpoint import endpoint_of
from beds.adapters.dynamodb.errors import translate
from beds.adapters.dynamodb.operations import DynamoOperation
from beds.adapters.dynamodb.requests import to_attr
from beds.adapters.dynamodb.tables import KeyDef, TableDef
from beds.adapters.named_ops import signature_problems
from beds.adapters.schema import Problem, SchemaApplied, per_op
from beds.errors import DbError, RequestError
from beds.templates.model import Op, OpTarget, Template

WAIT_SECONDS = 300.0
PUT_CONCURRENCY = 16


# -- templates check --------------------------------------------------------------------------------

def catalog_problems(catalog: DynamoCatalog, templates: list[Template]) -> list[Problem]:
    """What can be told from the schema files alone."""
    return per_op(templates, lambda template, op: _op_problems(catalog, template, op))


def _op_problems(catalog: DynamoCatalog, template: Template, op: Op) -> list[str]:
    name = op.object_name
    if op.target is OpTarget.VIEW:
        view = catalog.views.get(name)
        if view is None:
            return [f"view {name!r} does not exist in {catalog.schema.directory}"]
        found = [f"filter column {col!r} is not a column of view {name!r}"
                 for col in op.filters if view.column(col) is None]
        table = catalog.tables[view.table]
        for order in op.order_by[:1]:
            column = view.column(order.column)
            if column is None:
                found.append(f"order_by column {order.column!r} is not a column of view {name!r}")
                continue
            sorts = {(table.key_of(a.index).sort or ("",))[0] for a in view.access}
            if sorts != {column.attribute}:
                found.append(f"order_by column {order.column!r} is not the sort key of every "
                             f"access path of view {name!r}; DynamoDB returns rows in sort-key "
                             "order only")
        if len(op.order_by) > 1:
            found.append(f"view {name!r} can be ordered by its sort key only, not by "
                         f"{len(op.order_by)} columns")
        return found
    operation = catalog.operations.get(name)
    if operation is None:
        return [f"{op.target.value} {name!r} does not exist: no operation of that name in "
                f"{catalog.schema.directory}"]
    found = signature_problems(op, template, operation.sig, operation.writes)
    if operation.sig.next and COUNTERS not in catalog.tables:
        found.append(f"{op.target.value} {name!r} takes numbers from counters, but the schema "
                     f"declares no table {COUNTERS!r} (key: counter S)")
    return found


def _used(catalog: DynamoCatalog, op: Op) -> set[tuple[str, str | None]]:
    """(table, index) pairs an op reads or writes."""
    if op.target is OpTarget.VIEW:
        view = catalog.views.get(op.object_name)
        return {(view.table, a.index) for a in view.access} if view else set()
    operation: DynamoOperation | None = catalog.operations.get(op.object_name)
    if operation is None:
        return set()
    used: set[tuple[str, str | None]] = {(r.table, None) for r in operation.reads}
    used |= {(q.table, q.index) for q in operation.queries}
    used |= {(t.table, None) for t in operation.transact}
    if operation.sig.next:
        used.add((COUNTERS, None))
    return used


async def check_templates(adapter: DynamoAdapter, templates: list[Template]) -> list[Problem]:
    """The schema files against the templates, then the live tables (with the node's own
    credentials): every table an op uses exists, with the declared key and indexes."""
    catalog = adapter.catalog()
    problems = catalog_problems(catalog, templates)
    live: dict[str, dict[str, Any] | None] = {}
    for name in catalog.tables:
        live[name] = await _describe(adapter, adapter.physical(name))
    for template in templates:
        for op in template.ops.values():
            where = f"{template.path}: ops.{op.name}"
            missing: set[str] = set()
            for table, index in sorted(_used(catalog, op), key=str):
                info = live.get(table)
                if info is None:
                    if table not in missing:
                        missing.add(table)
                        problems.append(Problem(where, f"table {table!r} does not exist "
                                                       f"({adapter.physical(table)}; run beds "
                                                       "schema apply)"))
                elif index is not None and index not in _live_indexes(info):
                    problems.append(Problem(where, f"table {table!r} has no index {index!r} "
                                                   "in the database (run beds schema apply)"))
    for name, declared in catalog.tables.items():
        info = live[name]
        if info is None:
            continue
        where = f"{catalog.schema.entries['tables'][name].origin('')}: tables.{name}"
        problems += [Problem(where, m) for m in _differences(declared, info)]
    return problems


async def _describe(caller: DynamoAdapter | _Admin, physical: str) -> dict[str, Any] | None:
    """The table's description (its key, indexes, status), or None when it does not exist;
    through the node's client (`templates check`) or the admin's (`schema apply`)."""
    try:
        response = await caller.call("describe_table", TableName=physical)
    except DbError as exc:
        if exc.details.get("code") == "ResourceNotFoundException":
            return None
        raise
    table: dict[str, Any] = response["Table"]
    return table


def _live_key(schema: list[dict[str, str]], types: dict[str, str]) -> KeyDef:
    hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
    return KeyDef((hash_key, types.get(hash_key, "?")),
                  (range_key, types.get(range_key, "?")) if range_key else None)


def _live_indexes(info: dict[str, Any]) -> dict[str, KeyDef]:
    types = {a["AttributeName"]: a["AttributeType"] for a in info.get("AttributeDefinitions", [])}
    return {g["IndexName"]: _live_key(g["KeySchema"], types)
            for g in info.get("GlobalSecondaryIndexes", [])}


def _differences(table: TableDef, info: dict[str, Any]) -> list[str]:
    types = {a["AttributeName"]: a["AttributeType"] for a in info.get("AttributeDefinitions", [])}
    found = []
    key = _live_key(info["KeySchema"], types)
    if key != table.key:
        found.append(f"table {table.name!r} has the key ({key.spelled()}) in the database; the "
                     f"schema declares ({table.key.spelled()})")
    indexes = _live_indexes(info)
    for name, declared in table.indexes.items():
        if name not in indexes:
            found.append(f"table {table.name!r} lacks index {name!r} (run beds schema apply)")
        elif indexes[name] != declared:
            found.append(f"index {name!r} of table {table.name!r} has the key "
                         f"({indexes[name].spelled()}) in the database; the schema declares "
                         f"({declared.spelled()})")
    return found


# -- schema apply -----------------------------------------------------------------------------------

async def apply_schema(adapter: DynamoAdapter, files: list[Path],
                       reset_password: bool = False) -> SchemaApplied:
    """Create missing tables and indexes (on-demand capacity), then put seed items that are
    absent (never overwriting one). A table whose key differs cannot be changed in place: that
    is an error naming it."""
    settings = adapter.settings
    catalog = load_catalog(settings.schema_dir, files)
    endpoint = endpoint_of(settings, settings.admin_dsn) if settings.admin_dsn \
        else adapter.endpoint
    done: list[str] = []
    async with adapter.client(endpoint) as client:
        admin = _Admin(client, adapter)
        created: set[str] = set()
        for file in catalog.schema.files:
            try:
                for name in _names(file.sections, "tables"):
                    if await admin.ensure_table(catalog.tables[name]):
                        created.add(name)
                for name in _names(file.sections, "items"):
                    await admin.put_absent(catalog.tables[name], catalog.items[name],
                                           empty=name in created)
            except RequestError as exc:
                raise type(exc)(f"{file.path}: {exc.message}", **exc.details) from exc
            done.append(str(file.path))
    return SchemaApplied(done, "no application account: access to DynamoDB is IAM's business "
                               "(reset_password does not apply)")


def _names(sections: dict[str, Any], section: str) -> list[str]:
    return list(sections[section].data) if section in sections else []


class _Admin:
    def __init__(self, client: Any, adapter: DynamoAdapter) -> None:
        self.client = client
        self.adapter = adapter

    async def call(self, method: str, **request: Any) -> Any:
        try:
            return await getattr(self.client, method)(**request)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise translate(exc) from exc

    async def describe(self, physical: str) -> dict[str, Any] | None:
        return await _describe(self, physical)

    async def ensure_table(self, table: TableDef) -> bool:
        """Create the table or its missing indexes; True when the table is new."""
        physical = self.adapter.physical(table.name)
        info = await self.describe(physical)
        if info is None:
            request: dict[str, Any] = {
                "TableName": physical, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": _definitions([table.key, *table.indexes.values()]),
                "KeySchema": _key_schema(table.key)}
            if table.indexes:
                request["GlobalSecondaryIndexes"] = [_gsi(table, n) for n in table.indexes]
            await self.call("create_table", **request)
            await self.wait_active(physical, None)
            return True
        problems = [m for m in _differences(table, info) if "lacks index" not in m]
        if problems:
            raise DbError(f"tables.{table.name}: {'; '.join(problems)}; DynamoDB cannot change "
                          "a key in place: drop or rename the table, then apply again")
        live = _live_indexes(info)
        for name in table.indexes:
            if name not in live:
                await self.call("update_table", TableName=physical,
                                AttributeDefinitions=_definitions([table.indexes[name]]),
                                GlobalSecondaryIndexUpdates=[{"Create": _gsi(table, name)}])
                await self.wait_active(physical, name)
        return False

    async def wait_active(self, physical: str, index: str | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            info = await self.describe(physical)
            status = (info or {}).get("TableStatus")
            if index is not None:
                status = next((g.get("IndexStatus") for g in (info or {}).get(
                    "GlobalSecondaryIndexes", []) if g["IndexName"] == index), None)
            if status == "ACTIVE":
                return
            if loop.time() > deadline:
                raise DbError(f"{physical}{'.' + index if index else ''} is still {status} "
                              f"after {WAIT_SECONDS:.0f}s")
            await asyncio.sleep(1.0)

    async def put_absent(self, table: TableDef, items: list[dict[str, Any]],
                         empty: bool = False) -> None:
        """Put the items a table lacks. A table created by this apply is empty: its items go in
        batches of 25; otherwise each put is conditional, so no item is ever overwritten."""
        physical = self.adapter.physical(table.name)
        pk = table.key.partition[0]
        if empty:
            for start in range(0, len(items), 25):
                batch = [{"PutRequest": {"Item": _item(i)}} for i in items[start:start + 25]]
                pending: dict[str, Any] = {physical: batch}
                while pending:
                    response = await self.call("batch_write_item", RequestItems=pending)
                    pending = response.get("UnprocessedItems") or {}
                    if pending:
                        await asyncio.sleep(0.2)      # throttled: back off, then the rest
            return
        limit = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(item: dict[str, Any]) -> None:
            async with limit:
                try:
                    await self.call("put_item", TableName=physical,
                                    Item=_item(item),
                                    ConditionExpression="attribute_not_exists(#pk)",
                                    ExpressionAttributeNames={"#pk": pk})
                except RequestError as exc:
                    if exc.details.get("code") != "ConditionalCheckFailedException":
                        raise

        await asyncio.gather(*(put(item) for item in items))


def _item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in item.items() if v is not None}


def _key_schema(key: KeyDef) -> list[dict[str, str]]:
    schema = [{"AttributeName": key.partition[0], "KeyType": "HASH"}]
    if key.sort is not None:
        schema.append({"AttributeName": key.sort[0], "KeyType": "RANGE"})
    return schema


def _definitions(keys: list[KeyDef]) -> list[dict[str, str]]:
    types: dict[str, str] = {}
    for key in keys:
        for attr, kind in (key.partition, *((key.sort,) if key.sort else ())):
            types.setdefault(attr, kind)
    return [{"AttributeName": a, "AttributeType": t} for a, t in types.items()]


def _gsi(table: TableDef, name: str) -> dict[str, Any]:
    projection = table.projections[name]
    if isinstance(projection, list):
        spec: dict[str, Any] = {"ProjectionType": "INCLUDE", "NonKeyAttributes": projection}
    else:
        spec = {"ProjectionType": projection}
    return {"IndexName": name, "KeySchema": _key_schema(table.indexes[name]), "Projection": spec}


class DynamoSchemaTool:
    """The `SchemaTool` of this engine, on the serving adapter's settings and connections."""

    def __init__(self, adapter: DynamoAdapter) -> None:
        self.adapter = adapter

    async def check(self, templates: list[Template]) -> list[Problem]:
        return await check_templates(self.adapter, templates)

    async def apply_schema(self, files: list[Path], reset_password: bool = False) -> SchemaApplied:
        return await apply_schema(self.adapter, files, reset_password)
