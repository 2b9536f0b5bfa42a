"""MongoDB named operations: parsing, placeholder filling, command building.

Layer: infrastructure. Pure: imports bson (comes with motor) but never connects. `catalog` reads
the schema files and parses each operation here; `adapter` runs what this module builds;
`schema` applies and checks.

An operation (the section "operations" of a schema file) has the common keys of `named_ops`
(params, values, next, out, data) and

    read         [{"collection", "filter", "values"?: {name: field}, "missing"?: outcome}]
    aggregate    "COLLECTION_OR_VIEW" with "pipeline": [...]; rows are the result documents,
                 or, with "sets": ["field", ...], the one result document's array fields are
                 the result sets in order and "$field" sources read its other fields
  or one write command:
    insertOne          {"collection", "document"}                      -> $insertedId
    updateOne          {"collection", "filter", "update", "upsert"?}   -> $matchedCount,
                                                                         $modifiedCount, $upsertedId
    findOneAndUpdate   {"collection", "filter", "update", "upsert"?, "returnDocument"?:
                        "after"|"before", "projection"?}               -> $document(.field);
                                                                         "data": "document"
    deleteOne          {"collection", "filter"}                        -> $deletedCount

Placeholders: wherever a filter, update, document or pipeline holds {"$param": "name"}, BEDS puts
the value `name` (a param, a derived, read or counter value) in its place, as a value. Filling is
structural, on parsed documents, never on JSON text, and filled values are not looked into again.
A value can never become an operator, code or a name: in a filter ($match, read and write filters)
it is only compared; in an aggregation expression it is filled as {"$literal": value} (so "$x"
text is not a field path); a placeholder under $where / $function / $accumulator or naming a
$lookup collection or field is refused when the file is read; a json param holding a key that
starts with "$" or holds "." is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, DecimalException
from typing import Any

import msgspec
from bson.binary import Binary
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

from beds.adapters.named_ops import (
    Outcome,
    Signature,
    parse_next,
    parse_out,
    parse_outcome,
    parse_params,
    parse_rows,
    parse_values,
)
from beds.errors import ValidationFailed
from beds.table import IDENT_RE, Table, describe
from beds.templates.model import FieldType, OrderBy

WRITE_COMMANDS = {
    "insertOne": ("insertedId",),
    "updateOne": ("matchedCount", "modifiedCount", "upsertedId"),
    "findOneAndUpdate": ("document",),
    "deleteOne": ("deletedCount",),
}
_WRITE_KEYS = {
    "insertOne": ("collection", "document"),
    "updateOne": ("collection", "filter", "update", "upsert"),
    "findOneAndUpdate": ("collection", "filter", "update", "upsert", "returnDocument",
                         "projection"),
    "deleteOne": ("collection", "filter"),
}
QUERY, EXPRESSION, DATA = "query", "expression", "data"
JAVASCRIPT, NAMES = "javascript", "names"          # where no value may go
_JAVASCRIPT_KEYS = frozenset({"$where", "$function", "$accumulator"})
_OP_KEYS = ("description", "params", "values", "read", "next", "aggregate", "pipeline", "sets",
            "out", "data", *WRITE_COMMANDS)


@dataclass(frozen=True)
class Placeholder:
    """{"$param": name} in a DBA's document, after parsing. `literal`: it sits in an aggregation
    expression, where its value is filled as {"$literal": value}."""

    name: str
    literal: bool = False


@dataclass(frozen=True)
class MongoRead:
    collection: str
    filter: Any
    values: tuple[tuple[str, str], ...] = ()       # value name -> field path
    missing: Outcome | None = None


@dataclass(frozen=True)
class MongoAggregate:
    collection: str
    pipeline: list[Any]
    sets: tuple[str, ...] | None = None             # document shape: these fields are the sets


@dataclass(frozen=True)
class MongoWrite:
    command: str
    collection: str
    filter: Any = None
    update: Any = None
    document: Any = None
    upsert: bool = False
    after: bool = True
    projection: Any = None


@dataclass(frozen=True)
class MongoOperation:
    sig: Signature
    reads: tuple[MongoRead, ...]
    body: MongoAggregate | MongoWrite
    data_document: bool = False       # data = [the document findOneAndUpdate returned]

    @property
    def writes(self) -> bool:
        return isinstance(self.body, MongoWrite)


def parse_pipeline(t: Table, key: str, names: set[str]) -> list[Any]:
    raw = t.raw(key)
    if not isinstance(raw, list):
        raise t.fail(key, "expected a list of stages, each an object with one $stage key")
    return compile_pipeline(raw, t, key, names)


def compile_pipeline(stages: Any, t: Table, key: str, names: set[str]) -> list[Any]:
    """An aggregation pipeline with its placeholders parsed: a $match body is the query
    language (a value there is only compared), anything else an expression (a filled value
    there is wrapped in $literal, so a caller's "$field" text is never read as a field path)."""
    if not isinstance(stages, list) or not all(isinstance(s, dict) and len(s) == 1
                                               for s in stages):
        raise t.fail(key, "expected a list of stages, each an object with one $stage key")
    compiled = []
    for i, stage in enumerate(stages):
        (name, body), = stage.items()
        where = f"{key}[{i}].{name}"
        if name == "$match":
            compiled.append({name: compile_document(body, t, where, names, QUERY)})
        elif name == "$facet" and isinstance(body, dict):
            compiled.append({name: {field: compile_pipeline(sub, t, f"{where}.{field}", names)
                                    for field, sub in body.items()}})
        elif name in ("$lookup", "$unionWith") and isinstance(body, dict):
            compiled.append({name: {
                k: compile_pipeline(v, t, f"{where}.{k}", names) if k == "pipeline"
                else compile_document(v, t, f"{where}.{k}", names,
                                      EXPRESSION if k == "let" else NAMES)
                for k, v in body.items()}})
        else:
            compiled.append({name: compile_document(body, t, where, names, EXPRESSION)})
    return compiled


def compile_document(value: Any, t: Table, key: str, names: set[str],
                     context: str = DATA) -> Any:
    """The DBA's document with every {"$param": name} replaced by a Placeholder; a name that is
    not a value of the operation, or a placeholder in JavaScript ($where, $function,
    $accumulator), is an error naming the file and the key. `context`: QUERY (a filter),
    EXPRESSION (aggregation expressions) or DATA (a stored document, update operators)."""
    if isinstance(value, dict):
        if "$param" in value:
            name = value["$param"]
            if len(value) != 1 or not isinstance(name, str):
                raise t.fail(key, 'a placeholder is exactly {"$param": "name"}')
            if context == JAVASCRIPT:
                raise t.fail(key, "a value may not fill JavaScript ($where, $function, "
                                  "$accumulator): it would run as code")
            if context == NAMES:
                raise t.fail(key, "a value may not name a collection or a field")
            if name not in names:
                known = ", ".join(sorted(names)) or "(none)"
                raise t.fail(key, f"{{'$param': {name!r}}}: not a value of this operation; "
                                  f"known: {known}")
            return Placeholder(name, literal=context == EXPRESSION)
        compiled = {}
        for k, v in value.items():
            inner = context
            if k in _JAVASCRIPT_KEYS:
                inner = JAVASCRIPT
            elif k == "$expr" and context == QUERY:
                inner = EXPRESSION
            compiled[k] = compile_document(v, t, f"{key}.{k}", names, inner)
        return compiled
    if isinstance(value, list):
        return [compile_document(v, t, f"{key}[{i}]", names, context)
                for i, v in enumerate(value)]
    return value


# -- operations --------------------------------------------------------------------------------------

def parse_operation(name: str, t: Table) -> MongoOperation:
    t.reject_unknown(_OP_KEYS)
    params = parse_params(t)
    values = parse_values(t, params)
    names = {p.name for p in params} | {n for n, _ in values}
    reads = []
    raw_reads = t.raw("read", [])
    if not isinstance(raw_reads, list):
        raise t.fail("read", f"expected a list of reads, got {describe(raw_reads)}")
    for i, spec in enumerate(raw_reads):
        if not isinstance(spec, dict):
            raise t.fail(f"read[{i}]", f"expected an object, got {describe(spec)}")
        read, captured = parse_read(Table(spec, t.origin, t.key_path(f"read[{i}]"), t.error),
                                    names)
        reads.append(read)
        names |= captured
    nexts = parse_next(t, names)
    names |= {n for n, _ in nexts}
    commands = [c for c in WRITE_COMMANDS if t.has(c)]
    if len(commands) + t.has("aggregate") != 1:
        raise t.fail("", "an operation has exactly one of aggregate, "
                         + ", ".join(WRITE_COMMANDS))
    body: MongoAggregate | MongoWrite
    data_document = False
    if t.has("aggregate"):
        sets = t.names("sets", None, pattern=IDENT_RE)
        body = MongoAggregate(t.text("aggregate", pattern=IDENT_RE),
                              parse_pipeline(t, "pipeline", names), sets)
        if t.has("data"):
            raise t.fail("data", "an aggregate's rows are its result; data is for writes")
        if t.has("out") and sets is None:
            raise t.fail("out", 'out reads the one result document: declare "sets" (may be [])')
        results: tuple[str, ...] | None = None     # any field of the result document
    else:
        for key in ("pipeline", "sets"):
            if t.has(key):
                raise t.fail(key, "only aggregate operations take " + key)
        command = commands[0]
        body = _write(command, t.table(command, required=True), names)
        results = WRITE_COMMANDS[command]
        data_document = t.raw("data", None) == "document"
        if data_document and command != "findOneAndUpdate":
            raise t.fail("data", '"document" is what findOneAndUpdate returns')
    out = parse_out(t, "out", names) if t.has("out") else None
    data = parse_rows(t, "data", names) if t.has("data") and not data_document else None
    for _, source in [*(out or ()), *(s for row in data or () for s in row)]:
        root = source.ref.split(".")[0]
        if source.kind == "result" and results is not None and root not in results:
            raise t.fail("out", f"${source.ref}: {commands[0]} gives "
                                + ", ".join(f"${r}" for r in results))
    sig = Signature(name, params, values, nexts, out, data)
    return MongoOperation(sig, tuple(reads), body, data_document)


def parse_read(t: Table, names: set[str]) -> tuple[MongoRead, set[str]]:
    t.reject_unknown(["collection", "filter", "values", "missing"])
    fields = t.table("values")
    captured = {n: fields.text(n) for n in fields.data}
    for n in captured:
        if not IDENT_RE.fullmatch(n) or n in names:
            raise fields.fail(n, f"expected a new value name matching {IDENT_RE.pattern}")
    missing = parse_outcome(t, "missing", names, parse_read) if t.has("missing") else None
    read = MongoRead(t.text("collection", pattern=IDENT_RE),
                     compile_document(t.table("filter", required=True).data, t, "filter", names,
                                      QUERY),
                     tuple(captured.items()), missing)
    return read, set(captured)


def _write(command: str, t: Table, names: set[str]) -> MongoWrite:
    t.reject_unknown(_WRITE_KEYS[command])
    parts: dict[str, Any] = {}
    for key in ("filter", "update", "document", "projection"):
        if key in _WRITE_KEYS[command] and (t.has(key) or key != "projection"):
            raw = t.raw(key)
            if isinstance(raw, list) and key == "update":     # an update pipeline
                parts[key] = compile_pipeline(raw, t, key, names)
                continue
            context = {"filter": QUERY, "projection": EXPRESSION}.get(key, DATA)
            parts[key] = compile_document(t.table(key, required=True).data, t, key, names,
                                          context)
    if "update" in parts and isinstance(parts["update"], dict) and not all(
            k.startswith("$") for k in parts["update"]):
        raise t.fail("update", "expected update operators ($set, $setOnInsert, $inc, ...)")
    return MongoWrite(
        command=command,
        collection=t.text("collection", pattern=IDENT_RE),
        filter=parts.get("filter"),
        update=parts.get("update"),
        document=parts.get("document"),
        upsert=t.flag("upsert", False),
        after=t.text("returnDocument", "after", choices=("after", "before")) == "after",
        projection=parts.get("projection"),
    )


# -- filling -----------------------------------------------------------------------------------------

def fill(tree: Any, values: dict[str, Any]) -> Any:
    """A copy of `tree` with each Placeholder replaced by its value. A value is inserted as it is
    and never looked into: a caller's text or document cannot become a placeholder or operator."""
    if isinstance(tree, Placeholder):
        value = values.get(tree.name)
        return {"$literal": value} if tree.literal else value
    if isinstance(tree, dict):
        return {k: fill(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [fill(v, values) for v in tree]
    return tree


def to_bson(value: Any, kind: FieldType | None = None, name: str = "") -> Any:
    """A bound value as MongoDB stores it: exact decimals as Decimal128, dates as datetimes,
    json params as documents (refusing operator keys)."""
    if value is None:
        return None
    if kind is FieldType.JSON and isinstance(value, str):
        document = msgspec.json.decode(value)
        _refuse_operators(document, name)
        return document
    if isinstance(value, Decimal):
        try:
            return Decimal128(value)
        except (DecimalException, ValueError):
            raise ValidationFailed(f"params.{name}: {value} does not fit MongoDB's 34-digit "
                                   "decimal", field=name) from None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return value


def _refuse_operators(value: Any, name: str) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key.startswith("$") or "." in key:
                raise ValidationFailed(f"params.{name}: a key starting with '$' or holding '.' "
                                       f"is not accepted here, got {describe(key)}", field=name)
            _refuse_operators(sub, name)
    elif isinstance(value, list):
        for sub in value:
            _refuse_operators(sub, name)


def plain(value: Any) -> Any:
    """A result value in the types the reply encoder knows."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Binary):
        return bytes(value)
    return value


# -- view reads --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FindSpec:
    collection: str
    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    skip: int
    limit: int


def build_find(view: str, order_by: tuple[OrderBy, ...], filters: list[tuple[str, Any]],
               limit: int, offset: int) -> FindSpec:
    """A view op as a find: equality filters under $eq, so a value is only ever compared."""
    return FindSpec(
        collection=view,
        filter={column: {"$eq": to_bson(value)} for column, value in filters},
        sort=[(o.column, -1 if o.descending else 1) for o in order_by],
        skip=offset,
        limit=limit,
    )

