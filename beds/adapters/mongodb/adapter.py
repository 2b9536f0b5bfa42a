"""MongoDB adapter on motor: template ops onto real MongoDB views and DBA-named operations.

Layer: infrastructure. The only serving module that imports motor / pymongo; their errors are
translated here, once (see `translate`). The schema format and the building of commands live in
`catalog` and `operations` (pure); DBA tooling (templates check, schema apply) in `schema`.

How a template op maps onto MongoDB:

- view op (`view = "film_list"`): `find` on the MongoDB view (or collection) of that name, each
  filter as `{column: {"$eq": value}}`, sorted by `order_by`, `skip(offset).limit(limit)`.
- procedure / function op (`procedure = "film_in_stock"`): the named operation of that name in
  the datasource's `schema_dir` (`schema/mongodb/*.json`, section "operations"): an aggregation
  pipeline, or one write command (insertOne, updateOne, findOneAndUpdate, deleteOne) with
  {"$param": name} placeholders filled structurally. The node reads the operations at start-up.

Every call runs under `pymongo.timeout(limit)`: the driver sends maxTimeMS with each command, so
the server stops it at the caller's deadline or the datasource's `statement_timeout`. Single
document writes are atomic; an operation's reads and counter come before its write and are not
in a transaction with it (MongoDB transactions need a replica set): the DBA's filters and unique
indexes keep the write correct on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pymongo
from bson.errors import InvalidDocument
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo import ReturnDocument, uri_parser
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from pymongo.topology_description import TopologyDescription

from beds.adapters.base import Call, refuse_cursor
from beds.adapters.mongodb.catalog import COUNTERS, MongoCatalog, load_catalog
from beds.adapters.mongodb.operations import (
    MongoAggregate,
    MongoOperation,
    MongoRead,
    MongoWrite,
    build_find,
    fill,
    plain,
    to_bson,
)
from beds.adapters.named_ops import (
    Outcome,
    bind_params,
    build_out,
    build_rows,
    derive,
    get_path,
    outcome_error,
)
from beds.config import DatasourceSettings
from beds.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    RequestError,
)
from beds.protocol import Result
from beds.templates.model import Op, OpTarget, OrderBy, Template

Document = dict[str, Any]

# Worth retrying later, the request itself is fine: a primary stepping down or a node shutting
# down or recovering, a write conflict, Cosmos DB's "request rate is large".
_UNAVAILABLE_CODES = frozenset({6, 7, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435,
                                13436, 16500})
_TIMED_OUT_CODES = frozenset({50})
_DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class MongoStatement:
    name: str                         # the view or the named operation
    target: OpTarget
    out_names: tuple[str, ...] = ()   # the template's out names, in order
    order_by: tuple[OrderBy, ...] = ()
    operation: MongoOperation | None = None    # None: not in the schema files (DB_ERROR on use)

    @property
    def writes(self) -> bool:
        return self.operation is not None and self.operation.writes


class MongoAdapter:
    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings
        self.database = database_of(settings.dsn, f"datasources.{settings.name}.dsn")
        self._client: AsyncIOMotorClient[Document] | None = None
        self._catalog: MongoCatalog | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def client_kwargs(self) -> dict[str, Any]:
        ms = round(self.settings.connect_timeout * 1000)
        return {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "appname": "beds",
                "tz_aware": False, "uuidRepresentation": "standard"}

    async def open(self) -> None:
        # Creating a client never blocks on the server: a node starts while MongoDB is down and
        # answers DB_UNAVAILABLE until it is back.
        self._client = AsyncIOMotorClient(
            self.settings.dsn, maxPoolSize=self.settings.pool_max,
            minPoolSize=self.settings.pool_min, **self.client_kwargs())

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()

    async def ping(self) -> bool:
        try:
            with pymongo.timeout(self.settings.connect_timeout):
                await self.db().command("ping")
        except PyMongoError:
            return False
        return True

    def db(self) -> AsyncIOMotorDatabase[Document]:
        if self._client is None:
            self._client = AsyncIOMotorClient(self.settings.dsn, **self.client_kwargs())
        return self._client[self.database]

    def catalog(self) -> MongoCatalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.schema_dir)
        return self._catalog

    # -- statements, built once per op ----------------------------------------------------
    def prepare(self, template: Template, op: Op) -> MongoStatement:
        if op.target is OpTarget.VIEW:
            return MongoStatement(op.object_name, op.target, order_by=op.order_by)
        return MongoStatement(op.object_name, op.target, op.out,
                              operation=self.catalog().operations.get(op.object_name))

    # -- the call -------------------------------------------------------------------------
    async def run(self, prepared: MongoStatement, call: Call) -> Result:
        limit = call.timeout if call.timeout is not None else self.settings.statement_timeout
        try:
            with pymongo.timeout(limit or None):
                await self._reachable(prepared.writes)
                if prepared.target is OpTarget.VIEW:
                    refuse_cursor(call, "MongoDB")
                    return await self._find(prepared, call)
                return await self._operation(prepared, call)
        except PyMongoError as exc:
            raise translate(exc, limit or None) from exc
        except (InvalidDocument, OverflowError) as exc:
            # Raised while encoding the values to BSON, before anything is sent.
            raise unstorable(exc) from exc

    async def _reachable(self, write: bool) -> None:
        """Within connect_timeout, a server to send to. Under a deadline pymongo waits for a
        server as long as the deadline allows; while none is known (start-up, an outage), this
        ping makes a call fail fast with DB_UNAVAILABLE instead. No round trip otherwise."""
        self.db()
        # motor's stubs call it a method; it is pymongo's property.
        known: TopologyDescription = cast(Any, self._client).topology_description
        if known.has_writable_server() if write else known.has_readable_server():
            return
        with pymongo.timeout(self.settings.connect_timeout):
            await self.db().command("ping")

    async def _find(self, prepared: MongoStatement, call: Call) -> Result:
        spec = build_find(prepared.name, prepared.order_by, call.filters, call.limit, call.offset)
        cursor = self.db()[spec.collection].find(spec.filter, sort=spec.sort or None,
                                                 skip=spec.skip, limit=spec.limit)
        return Result(rows=[plain(doc) for doc in await cursor.to_list(length=None)])

    async def _operation(self, prepared: MongoStatement, call: Call) -> Result:
        op = prepared.operation
        if op is None:
            raise DbError(f"database error: operation {prepared.name!r} does not exist in "
                          f"{self.settings.schema_dir}")
        values = {name: to_bson(value, p.type, name) for (name, value), p in
                  zip(bind_params(op.sig, call.args).items(), op.sig.params, strict=True)}
        derive(op.sig, values)
        values = {k: to_bson(v) for k, v in values.items()}
        for read in op.reads:
            found = await self._read(read, values)
            if found is None and read.missing is not None:
                return await self._outcome(read.missing, prepared, values)
        for name, counter in op.sig.next:
            values[name] = await self._next(counter)
        if isinstance(op.body, MongoAggregate):
            return await self._aggregate(op, op.body, prepared, values)
        return await self._write(op, op.body, prepared, values)

    async def _read(self, read: MongoRead, values: dict[str, Any]) -> Document | None:
        projection = {field: 1 for _, field in read.values} or {"_id": 1}
        doc = await self.db()[read.collection].find_one(fill(read.filter, values), projection)
        for name, field in read.values:
            values[name] = get_path(doc, field) if doc is not None else None
        return doc

    async def _next(self, counter: str) -> int:
        doc = await self.db()[COUNTERS].find_one_and_update(
            {"_id": counter}, {"$inc": {"last": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return int(doc["last"])

    async def _outcome(self, outcome: Outcome, prepared: MongoStatement,
                       values: dict[str, Any]) -> Result:
        if outcome.kind != "reply":
            raise outcome_error(outcome, "conflict: a required document is missing")
        if isinstance(outcome.read, MongoRead):
            await self._read(outcome.read, values)
        shown = {k: plain(v) for k, v in values.items()}
        return Result(rows=build_rows(outcome.data, shown),
                      out=build_out(prepared.out_names, outcome.out, shown))

    async def _aggregate(self, op: MongoOperation, body: MongoAggregate,
                         prepared: MongoStatement, values: dict[str, Any]) -> Result:
        cursor = self.db()[body.collection].aggregate(fill(body.pipeline, values))
        docs = [plain(doc) for doc in await cursor.to_list(length=None)]
        shown = {k: plain(v) for k, v in values.items()}
        if body.sets is None:
            return Result(rows=docs, out=build_out(prepared.out_names, op.sig.out, shown))
        document = docs[0] if docs else {}
        sets = [list(document.get(name) or []) for name in body.sets]
        return Result(rows=sets[0] if sets else [],
                      out=build_out(prepared.out_names, op.sig.out, shown, document),
                      sets=sets if len(sets) > 1 else None)

    async def _write(self, op: MongoOperation, body: MongoWrite, prepared: MongoStatement,
                     values: dict[str, Any]) -> Result:
        collection = self.db()[body.collection]
        result: Document
        if body.command == "insertOne":
            inserted = await collection.insert_one(fill(body.document, values))
            result = {"insertedId": inserted.inserted_id}
        elif body.command == "updateOne":
            updated = await collection.update_one(fill(body.filter, values),
                                                  fill(body.update, values), upsert=body.upsert)
            result = {"matchedCount": updated.matched_count,
                      "modifiedCount": updated.modified_count,
                      "upsertedId": updated.upserted_id}
        elif body.command == "deleteOne":
            deleted = await collection.delete_one(fill(body.filter, values))
            result = {"deletedCount": deleted.deleted_count}
        else:
            result = {"document": await self._find_one_and_update(body, values)}
        result = plain(result)
        shown = {k: plain(v) for k, v in values.items()}
        if op.data_document:
            rows = [result["document"]] if result["document"] is not None else []
        else:
            rows = build_rows(op.sig.data or (), shown, result)
        return Result(rows=rows, out=build_out(prepared.out_names, op.sig.out, shown, result))

    async def _find_one_and_update(self, body: MongoWrite, values: dict[str, Any]) -> Any:
        collection = self.db()[body.collection]
        after = ReturnDocument.AFTER if body.after else ReturnDocument.BEFORE
        for attempt in range(2):
            try:
                return await collection.find_one_and_update(
                    fill(body.filter, values), fill(body.update, values),
                    projection=fill(body.projection, values), upsert=body.upsert,
                    return_document=after)
            except DuplicateKeyError:
                # Two upserts of the same key raced and this one lost: run it again, and it
                # finds the winner's document (what MongoDB's documentation prescribes).
                if not body.upsert or attempt:
                    raise
        raise AssertionError("unreachable")


def database_of(dsn: str, key: str) -> str:
    """The database a MongoDB URI names; the URI is checked here, before anything connects."""
    try:
        parsed = uri_parser.parse_uri(dsn, validate=True, warn=False)
    except (ConfigurationError, ValueError) as exc:
        raise ConfigError(f"{key}: not a MongoDB URI: {exc}") from None
    database = parsed.get("database")
    if not database:
        raise ConfigError(f"{key}: the URI names no database (mongodb://host:27017/DATABASE)")
    return str(database)


def _code(exc: PyMongoError) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _message(exc: PyMongoError) -> str:
    details = getattr(exc, "details", None)
    if isinstance(details, dict) and isinstance(details.get("errmsg"), str):
        return str(details["errmsg"])
    return str(exc).split(", full error:")[0]


def unstorable(exc: InvalidDocument | OverflowError) -> RequestError:
    """A value BSON cannot hold (a NUL in a key, an int beyond 64 bits inside a json param):
    the request can never succeed, and nothing was sent."""
    return BadRequest(f"params: a value MongoDB cannot store ({type(exc).__name__}: "
                      f"{str(exc)[:200]})", ran=False)


def translate(exc: PyMongoError, limit: float | None) -> RequestError:
    """The one place a pymongo error becomes a BEDS error. `limit`: the time limit in seconds the
    operation ran under, if any."""
    code = _code(exc)
    details = {"code": code} if code is not None else {}
    if isinstance(exc, DuplicateKeyError) or code == _DUPLICATE_KEY:
        return Conflict(f"duplicate key: {_message(exc)}", code=_DUPLICATE_KEY)
    # Checked before timeouts: an unreachable server is DB_UNAVAILABLE even under a deadline.
    if isinstance(exc, ServerSelectionTimeoutError):
        return DbUnavailable(f"database unavailable: {_message(exc)}", **details)
    if limit and (exc.timeout or code in _TIMED_OUT_CODES):
        return DeadlineExceeded(f"the operation was stopped at its time limit of {limit}s; "
                                "a write may or may not have committed", **details)
    if (isinstance(exc, ConnectionFailure | AutoReconnect) or code in _UNAVAILABLE_CODES
            or exc.has_error_label("RetryableWriteError")
            or exc.has_error_label("TransientTransactionError")):
        return DbUnavailable(f"database unavailable: {_message(exc)}", **details)
    if isinstance(exc, OperationFailure):
        return DbError(f"database error: {_message(exc)}", **details)
    return DbError(f"database error: {type(exc).__name__}: {_message(exc)}", **details)


__all__ = ["MongoAdapter", "MongoStatement", "translate", "unstorable"]
