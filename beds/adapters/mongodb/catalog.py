"""MongoDB schema files (`schema/mongodb/*.json`) read into a catalog: collections, indexes,
views, seed documents, grants and the named operations of `operations`.

Layer: infrastructure. Pure: no I/O beyond reading the schema files; never connects. The adapter
serves the catalog's views and operations; `schema` applies and checks it.

`schema/mongodb/*.json` (MongoDB Extended JSON: {"$date": ...}, {"$numberDecimal": ...}) has the
sections

    collections  {NAME: {"validator": {"$jsonSchema": ...}, "indexes": [{"key": {...},
                  "name": ..., "unique"?, "collation"?, "partialFilterExpression"?}]}}
    documents    {COLLECTION: [documents with _id]}       seed data, inserted when absent
    views        {NAME: {"on": COLLECTION, "pipeline": [...]}}   real MongoDB views
    grants       {COLLECTION_OR_VIEW: ["find", "insert", "update", "remove"]}
                                                          the application role's privileges
    operations   {NAME: operation}                        see `operations` and `named_ops`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import json_util

from beds.adapters.mongodb.operations import MongoOperation, parse_operation, parse_pipeline
from beds.adapters.named_ops import SchemaDir, read_schema
from beds.table import IDENT_RE, Table, describe

SECTIONS = ("collections", "documents", "views", "grants", "operations")
COUNTERS = "counters"             # {_id: counter name, last: the last number handed out}
GRANT_ACTIONS = ("find", "insert", "update", "remove")


@dataclass(frozen=True)
class MongoView:
    name: str
    on: str
    pipeline: list[Any]
    columns: frozenset[str] | None    # the final $project's fields, when it ends with one


@dataclass(frozen=True)
class MongoIndex:
    name: str
    key: list[tuple[str, Any]]
    options: dict[str, Any]


@dataclass(frozen=True)
class MongoCollection:
    name: str
    validator: dict[str, Any] | None
    indexes: tuple[MongoIndex, ...]


@dataclass
class MongoCatalog:
    schema: SchemaDir
    collections: dict[str, MongoCollection]
    views: dict[str, MongoView]
    documents: dict[str, list[dict[str, Any]]]
    grants: dict[str, tuple[str, ...]]
    operations: dict[str, MongoOperation]


def decode_extended_json(text: str) -> Any:
    return json_util.loads(text)


def load_catalog(directory: Path, files: list[Path] | None = None) -> MongoCatalog:
    schema = read_schema(directory, SECTIONS, decode_extended_json, files)
    entries = schema.entries
    return MongoCatalog(
        schema=schema,
        collections={n: _collection(n, t.table(n)) for n, t in entries["collections"].items()},
        views={n: _view(n, t.table(n)) for n, t in entries["views"].items()},
        documents={n: _documents(t, n) for n, t in entries["documents"].items()},
        grants={n: t.names(n, choices=GRANT_ACTIONS) for n, t in entries["grants"].items()},
        operations={n: parse_operation(n, t.table(n)) for n, t in entries["operations"].items()},
    )


# -- sections ----------------------------------------------------------------------------------------

def _collection(name: str, t: Table) -> MongoCollection:
    t.reject_unknown(["description", "validator", "indexes"])
    validator = t.raw("validator", None)
    if validator is not None and not isinstance(validator, dict):
        raise t.fail("validator", f"expected an object, got {describe(validator)}")
    raw = t.raw("indexes", [])
    if not isinstance(raw, list):
        raise t.fail("indexes", f"expected a list, got {describe(raw)}")
    indexes = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict):
            raise t.fail(f"indexes[{i}]", f"expected an object, got {describe(spec)}")
        it = Table(spec, t.origin, t.key_path(f"indexes[{i}]"), t.error)
        it.reject_unknown(["key", "name", "unique", "sparse", "collation",
                           "partialFilterExpression", "expireAfterSeconds"])
        key = it.table("key", required=True).data
        if not key:
            raise it.fail("key", "expected at least one field")
        options = {k: v for k, v in spec.items() if k not in ("key", "name")}
        indexes.append(MongoIndex(it.text("name", pattern=IDENT_RE), list(key.items()), options))
    return MongoCollection(name, validator, tuple(indexes))


def _view(name: str, t: Table) -> MongoView:
    t.reject_unknown(["description", "on", "pipeline"])
    pipeline = parse_pipeline(t, "pipeline", set())
    columns = None
    last = pipeline[-1] if pipeline else None
    if isinstance(last, dict) and set(last) == {"$project"} and isinstance(last["$project"], dict):
        columns = frozenset(k for k, v in last["$project"].items() if v not in (0, False))
    return MongoView(name, t.text("on", pattern=IDENT_RE), pipeline, columns)


def _documents(t: Table, name: str) -> list[dict[str, Any]]:
    docs = t.raw(name)
    if not isinstance(docs, list) or not all(isinstance(d, dict) and "_id" in d for d in docs):
        raise t.fail(name, "expected a list of documents, each with an _id")
    return docs
