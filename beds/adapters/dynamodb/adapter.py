"""DynamoDB adapter on aioboto3: template ops onto key-condition queries and DBA-named
transactional writes.

Layer: infrastructure. With `errors`, the only serving module that imports aioboto3 / botocore;
their errors are translated once, by `errors.translate`. The schema format and request building
live in `catalog`, `operations` and `requests` (pure); the DSN in `endpoint`; DBA tooling
(templates check, schema apply) in `schema`.

    dsn = "dynamodb://KEY:SECRET@HOST:PORT/TABLE_PREFIX?region=eu-west-1&tls=true"

HOST `aws` means AWS's own endpoint for the region (credentials then come from the DSN or the
SDK's usual chain: environment, profile, instance role). Any other host is a DynamoDB-compatible
endpoint (DynamoDB Local, moto) over http, or https with tls=true; on a loopback host without
credentials BEDS signs with dummy ones, which local servers accept. TABLE_PREFIX is put before
every table name the schema files use, so several databases can share one account.

How a template op maps onto DynamoDB:

- view op (`view = "film_list"`): the view of that name in the schema files: one Query on the
  table or GSI of its first usable access path, filters as key conditions or a FilterExpression,
  `limit` rows in sort-key order. DynamoDB cannot skip rows server-side: `offset` > 0 is refused;
  `page()` continues from an opaque cursor (DynamoDB's LastEvaluatedKey) instead.
- procedure / function op: the named operation of that name: key-condition queries (every page)
  or one TransactWriteItems whose condition expressions make it a unique insert, an optimistic
  update, or an idempotent write.

Deadlines: DynamoDB has no server-side statement limit. Every call runs under the caller's
deadline (or the datasource's statement_timeout) on the client; a transaction cut short may or
may not have committed, as the DEADLINE_EXCEEDED message says.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import aiohttp
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
)

from beds.adapters.base import Call
from beds.adapters.dynamodb.catalog import COUNTERS, DynamoCatalog, DynamoView, load_catalog
from beds.adapters.dynamodb.endpoint import Endpoint, endpoint_of
from beds.adapters.dynamodb.errors import translate
from beds.adapters.dynamodb.operations import DynamoOperation, DynamoRead
from beds.adapters.dynamodb.requests import (
    attr_map,
    bind_value,
    decode_cursor,
    encode_cursor,
    from_attr,
    query_request,
    row_of,
    transact_request,
    view_request,
)
from beds.adapters.named_ops import (
    Outcome,
    bind_params,
    build_out,
    build_rows,
    derive,
    outcome_error,
)
from beds.config import DatasourceSettings
from beds.errors import (
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    ReplyTooLarge,
    RequestError,
    ValidationFailed,
)
from beds.protocol import Result
from beds.templates.model import Op, OpTarget, Template

GUARD_SECONDS = 2.0          # the HTTP read timeout beyond the datasource's statement_timeout
MAX_ROWS = 10_000            # an operation's query that would return more asks for a view op
TRANSACT_ATTEMPTS = 4        # a transaction that lost a race with another is run again
@dataclass(frozen=True)
class DynamoStatement:
    name: str
    target: OpTarget
    out_names: tuple[str, ...] = ()
    descending: bool = False
    view: DynamoView | None = None
    operation: DynamoOperation | None = None


class DynamoAdapter:
    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings
        self.endpoint = endpoint_of(settings)
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()
        self._catalog: DynamoCatalog | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        # Creating a client never connects: a node starts while DynamoDB is unreachable and
        # answers DB_UNAVAILABLE until it is back.
        self._stack = AsyncExitStack()
        self._client = await self._stack.enter_async_context(self.client(self.endpoint))

    def client(self, endpoint: Endpoint) -> Any:
        """A client context for `endpoint` (schema apply uses the admin endpoint)."""
        timeout = self.settings.statement_timeout
        config = Config(connect_timeout=self.settings.connect_timeout,
                        read_timeout=(timeout or 60.0) + GUARD_SECONDS,
                        retries={"mode": "standard", "max_attempts": 2},
                        max_pool_connections=self.settings.pool_max)
        kwargs: dict[str, Any] = {"region_name": endpoint.region, "config": config}
        if endpoint.url is not None:
            kwargs["endpoint_url"] = endpoint.url
        if endpoint.access_key is not None:
            kwargs["aws_access_key_id"] = endpoint.access_key
            kwargs["aws_secret_access_key"] = endpoint.secret_key or ""
        return aioboto3.Session().client("dynamodb", **kwargs)

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    async def ping(self) -> bool:
        try:
            await self.call("list_tables", Limit=1)
        except RequestError:
            return False
        return True

    def catalog(self) -> DynamoCatalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.schema_dir)
        return self._catalog

    def physical(self, table: str) -> str:
        return self.endpoint.prefix + table

    # -- statements, built once per op ----------------------------------------------------
    def prepare(self, template: Template, op: Op) -> DynamoStatement:
        catalog = self.catalog()
        if op.target is OpTarget.VIEW:
            descending = bool(op.order_by) and op.order_by[0].descending
            return DynamoStatement(op.object_name, op.target, descending=descending,
                                   view=catalog.views.get(op.object_name))
        return DynamoStatement(op.object_name, op.target, op.out,
                               operation=catalog.operations.get(op.object_name))

    # -- the call -------------------------------------------------------------------------
    async def run(self, prepared: DynamoStatement, call: Call) -> Result:
        result, cursor = await self.page(prepared, call, call.cursor)
        result.next_cursor = cursor
        return result

    async def page(self, prepared: DynamoStatement, call: Call,
                   cursor: str | None = None) -> tuple[Result, str | None]:
        """Run one op; for a view op also the cursor that continues after its last row (None
        at the end). `run` passes the request's `cursor` and returns `next_cursor`."""
        limit = call.timeout if call.timeout is not None else self.settings.statement_timeout
        try:
            async with asyncio.timeout(limit or None):
                if prepared.target is OpTarget.VIEW:
                    return await self._view(prepared, call, cursor)
                return await self._operation(prepared, call), None
        except TimeoutError as exc:
            raise DeadlineExceeded(f"the operation was stopped at its time limit of {limit}s; "
                                   "a write may or may not have committed", ran=True) from exc

    async def call(self, method: str, **request: Any) -> Any:
        """One DynamoDB API call, its errors translated."""
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    await self.open()
        try:
            return await getattr(self._client, method)(**request)
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise translate(exc) from exc

    async def _view(self, prepared: DynamoStatement, call: Call,
                    cursor: str | None) -> tuple[Result, str | None]:
        view = prepared.view
        if view is None:
            raise DbError(f"database error: view {prepared.name!r} does not exist in "
                          f"{self.settings.schema_dir}")
        if call.offset:
            raise ValidationFailed(
                f"offset: DynamoDB cannot skip rows; {prepared.name!r} pages with a cursor "
                "(ask for the first page, offset 0)")
        table = self.catalog().tables[view.table]
        request = view_request(view, table, self.physical(view.table), call.filters,
                               prepared.descending)
        start = decode_cursor(cursor) if cursor else None
        rows: list[dict[str, Any]] = []
        while len(rows) < call.limit:
            page = {**request, "Limit": call.limit - len(rows)}
            if start:
                page["ExclusiveStartKey"] = start
            response = await self.call("query", **page)
            rows += [row_of(item, view.columns) for item in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return Result(rows=rows), encode_cursor(start) if start else None

    async def _operation(self, prepared: DynamoStatement, call: Call) -> Result:
        op = prepared.operation
        if op is None:
            raise DbError(f"database error: operation {prepared.name!r} does not exist in "
                          f"{self.settings.schema_dir}")
        values = {name: bind_value(value, p.type) for (name, value), p in
                  zip(bind_params(op.sig, call.args).items(), op.sig.params, strict=True)}
        derive(op.sig, values)
        for read in op.reads:
            if not await self._read(read, values) and read.missing is not None:
                return await self._outcome(read.missing, prepared, values)
        for name, counter in op.sig.next:
            values[name] = await self._next(counter)
        if op.queries:
            return await self._queries(op, prepared, values)
        return await self._transact(op, prepared, values)

    async def _read(self, read: DynamoRead, values: dict[str, Any]) -> bool:
        attrs = list(dict.fromkeys([a for a, _ in read.key] + [a for _, a in read.values]
                                   + [a for _, a in read.defaults]))
        response = await self.call(
            "get_item", TableName=self.physical(read.table), Key=attr_map(read.key, values),
            ConsistentRead=True, ProjectionExpression=", ".join(f"#{a}" for a in attrs),
            ExpressionAttributeNames={f"#{a}": a for a in attrs})
        item = response.get("Item")
        for name, attr in read.values:
            values[name] = from_attr(item[attr]) if item and attr in item else None
        for name, attr in read.defaults:
            if values.get(name) is None and item and attr in item:
                values[name] = from_attr(item[attr])
        return item is not None

    async def _next(self, counter: str) -> int:
        response = await self.call(
            "update_item", TableName=self.physical(COUNTERS), Key={"counter": {"S": counter}},
            UpdateExpression="ADD #last :one", ExpressionAttributeNames={"#last": "last"},
            ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["last"]["N"])

    async def _outcome(self, outcome: Outcome, prepared: DynamoStatement,
                       values: dict[str, Any], **details: Any) -> Result:
        if outcome.kind != "reply":
            raise outcome_error(outcome, "conflict: a condition of the write failed", **details)
        if isinstance(outcome.read, DynamoRead):
            await self._read(outcome.read, values)
        return Result(rows=build_rows(outcome.data, values),
                      out=build_out(prepared.out_names, outcome.out, values))

    async def _queries(self, op: DynamoOperation, prepared: DynamoStatement,
                       values: dict[str, Any]) -> Result:
        sets: list[list[dict[str, Any]]] = []
        counts: list[dict[str, int]] = []
        for query in op.queries:
            request = query_request(query, self.physical(query.table), values)
            rows: list[dict[str, Any]] = []
            count = {"Count": 0, "ScannedCount": 0}
            while True:
                response = await self.call("query", **request)
                rows += [row_of(item, query.columns) for item in response.get("Items", [])]
                for key in count:
                    count[key] += int(response.get(key, 0))
                if len(rows) > MAX_ROWS:
                    raise ReplyTooLarge(f"operation {op.sig.name!r} reads more than {MAX_ROWS} "
                                        "rows; read them through a view op, page by page")
                if not response.get("LastEvaluatedKey"):
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            sets.append(rows)
            counts.append(count)
        first = sets[0]
        out = build_out(prepared.out_names, op.sig.out, values, counts[0], first)
        if op.sig.data is not None:
            return Result(rows=build_rows(op.sig.data, values, counts[0], first), out=out)
        return Result(rows=first, out=out, sets=sets if op.sets and len(sets) > 1 else None)

    async def _transact(self, op: DynamoOperation, prepared: DynamoStatement,
                        values: dict[str, Any]) -> Result:
        items, sent = transact_request(op.transact, values, self.physical)
        try:
            await self._transact_write(items)
        except Conflict as error:
            # A condition failed (translate made it a conflict): the first failed item, in the
            # order the DBA wrote them, says what that means for this operation.
            reasons = getattr(error.__cause__, "response", {}).get("CancellationReasons") or []
            codes = [r.get("Code") for r in reasons]
            if "ConditionalCheckFailed" not in codes:
                raise
            failed = sent[codes.index("ConditionalCheckFailed")]
            return await self._outcome(failed.fail, prepared, values,
                                       code="ConditionalCheckFailed", table=failed.table)
        return Result(rows=build_rows(op.sig.data or (), values),
                      out=build_out(prepared.out_names, op.sig.out, values))

    async def _transact_write(self, items: list[dict[str, Any]]) -> None:
        """TransactWriteItems, run again when it lost a race with another transaction on the same
        items (it then changed nothing): the next run sees the winner's write and its conditions
        decide, e.g. a repeated idempotent write finds the first one's outcome."""
        for attempt in range(TRANSACT_ATTEMPTS):
            try:
                await self.call("transact_write_items", TransactItems=items)
                return
            except DbUnavailable as error:
                reasons = getattr(error.__cause__, "response", {}).get("CancellationReasons")
                lost = any(r.get("Code") == "TransactionConflict" for r in reasons or [])
                if not lost or attempt + 1 == TRANSACT_ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.05) * 2 ** attempt)  # noqa: S311 (jitter)


__all__ = ["DynamoAdapter", "DynamoStatement"]
