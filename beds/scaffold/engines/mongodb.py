"""MongoDB schema file for a spec, in the format of schema/mongodb/ (`beds.adapters.mongodb.operations`):
a collection with a $jsonSchema validator and indexes, a real view for reads, named operations
(one write command each) and the application role's grants.

Layer: tooling. Pure text out. How the spec maps onto MongoDB, and why:

- `_id` is the primary key (a generated key comes from the `counters` collection, as in the
  example schema); unique keys are unique indexes; list filters get indexes.
- Reads go through the view NAME_list (fields renamed back from `_id`; with soft delete only
  documents without deleted_at). fetch is an aggregation on the view.
- The adapter runs ONE write command per op, and multi-document transactions need a replica set:
  there is no request log written with the change. Idempotency lives in the document instead:
  create is a findOneAndUpdate upsert keyed by `_created_by` (the request id, unique: the pattern
  of 060_idempotency.json); update and soft delete are update pipelines that apply a request id
  once, remembered in `_requests` (the last 20 request ids that wrote the document).
  What that cannot do is said in the descriptions and docs: a repeated hard delete answers
  deleted 0, a request id another op used on the same document makes a write a no-op (not an
  error), and audit is a list inside the document.
"""

from __future__ import annotations

from typing import Any

from beds.config import Engine
from beds.scaffold import design
from beds.scaffold.design import OpDesign
from beds.scaffold.engines.base import Existing
from beds.scaffold.engines.jsonfile import V_NOW, describe, generated_by, render
from beds.scaffold.spec import Spec, SpecField
from beds.templates.model import FieldType

COUNTERS = "counters"
CREATED_BY = "_created_by"     # the request id that created the document (unique)
REQUESTS = "_requests"         # the last request ids that wrote it, so a repeat is a no-op
AUDIT = "_audit"               # audit = true: {action, request_id, at} per write, in the document
REMEMBERED = 20                # request ids kept per document
_BSON = {FieldType.INT: ["int", "long"], FieldType.STR: "string", FieldType.BOOL: "bool",
         FieldType.DECIMAL: "decimal", FieldType.DATE: "date", FieldType.DATETIME: "date"}


def p(name: str) -> dict[str, str]:
    return {"$param": name}


def bson_schema(field: SpecField) -> dict[str, Any]:
    kind = _BSON[field.type]
    schema: dict[str, Any] = {}
    if field.choices is not None:
        schema["enum"] = [*field.choices, *([] if field.required else [None])]
    else:
        kinds = kind if isinstance(kind, list) else [kind]
        schema["bsonType"] = kinds + ([] if field.required else ["null"])
        if len(schema["bsonType"]) == 1:
            schema["bsonType"] = schema["bsonType"][0]
    if field.max_length is not None and field.choices is None:
        schema["maxLength"] = field.max_length
    if field.type is FieldType.INT:
        if field.min is not None:
            schema["minimum"] = field.min
        if field.max is not None:
            schema["maximum"] = field.max
    return schema


class MongoGenerator:
    engine = Engine.MONGODB
    suffix = ".json"

    def adapt(self, spec: Spec) -> Spec:
        return spec

    def doc_note(self, spec: Spec) -> str:
        notes = []
        if spec.delete and not spec.soft_delete:
            notes.append("a repeated delete answers `deleted` 0 (the document is gone, and "
                         "with it the record of the request)")
        if spec.writes:
            notes.append("a request_id another op already used on the same document makes the "
                         "write a no-op instead of an error")
        dates = [f.name for f in spec.fields.values() if f.type is FieldType.DATE]
        if dates:
            notes.append("MongoDB has no date-only type: " + ", ".join(f"`{d}`" for d in dates)
                         + " come back as midnight (`2026-01-31T00:00:00`)")
        if not notes:
            return ""
        return "MongoDB: " + "; ".join(notes) + "."

    def render(self, spec: Spec, existing: Existing) -> str:
        sections: dict[str, Any] = {"collections": _collections(spec, existing)}
        if spec.list is not None or spec.fetch_by is not None:
            sections["views"] = {design.view_name(spec): _view(spec)}
        sections["operations"] = {op.object_name: _operation(spec, op)
                                  for op in design.ops(spec) if op.name != "list"}
        sections["grants"] = _grants(spec, existing)
        return render(sections)


def _collections(spec: Spec, existing: Existing) -> dict[str, Any]:
    key = spec.key
    properties: dict[str, Any] = {"_id": bson_schema(key)}
    properties |= {f.name: bson_schema(f) for f in spec.fields.values() if f is not key}
    properties |= {"created_at": {"bsonType": "date"}, "updated_at": {"bsonType": "date"}}
    if spec.soft_delete:
        properties["deleted_at"] = {"bsonType": ["date", "null"]}
    properties |= {CREATED_BY: {"bsonType": "string", "maxLength": 64},
                   REQUESTS: {"bsonType": "array", "items": {"bsonType": "string"}}}
    if spec.audit:
        properties[AUDIT] = {"bsonType": "array", "items": {"bsonType": "object"}}
    required = ["_id", *(f.name for f in spec.fields.values() if f.required and f is not key),
                "created_at", "updated_at"]
    indexes: list[dict[str, Any]] = [
        {"key": dict.fromkeys(cols, 1), "name": design.index_name("uq", spec.name, cols),
         "unique": True} for cols in spec.unique]
    indexes += [{"key": dict.fromkeys(cols, 1), "name": design.index_name("idx", spec.name, cols)}
                for cols in design.index_columns(spec)]
    indexes.append({"key": {CREATED_BY: 1},
                    "name": design.index_name("uq", spec.name, ("created_by",)), "unique": True,
                    "partialFilterExpression": {CREATED_BY: {"$type": "string"}}})
    text = (generated_by(spec, "mongodb") + f" _id is {key.name}. {CREATED_BY} is the request "
            f"id that created the document and {REQUESTS} the last {REMEMBERED} that wrote it: "
            "a repeated request finds them and changes nothing.")
    if spec.soft_delete:
        text += " Soft delete: delete sets deleted_at; the view and every op skip such documents."
    if spec.audit:
        text += (f" Audit: {AUDIT} in the document lists every write (action, request_id, at). "
                 "MongoDB cannot write an audit collection in the same step without a replica "
                 "set's transactions, so there is none" + (
                     "; a hard delete takes the history with the document." if not
                     spec.soft_delete else "."))
    collections: dict[str, Any] = {spec.name: {
        "description": describe(text),
        "validator": {"$jsonSchema": {"bsonType": "object", "required": required,
                                      "properties": properties}},
        "indexes": indexes}}
    if spec.create and spec.generated_key and not existing.has("collections", COUNTERS):
        collections[COUNTERS] = {
            "description": "Sequences for new ids: {_id: counter name, last: the last number "
                           "handed out}.",
            "validator": {"$jsonSchema": {"bsonType": "object", "required": ["_id", "last"],
                                          "properties": {"_id": {"bsonType": "string"},
                                                         "last": {"bsonType": ["int", "long"]}}}}}
    return collections


def _view(spec: Spec) -> dict[str, Any]:
    project: dict[str, Any] = {"_id": 0}
    for name in design.view_columns(spec):
        project[name] = "$_id" if name == spec.primary_key else 1
    pipeline: list[dict[str, Any]] = [{"$project": project}]
    if spec.soft_delete:
        pipeline.insert(0, {"$match": {"deleted_at": None}})
    text = f"What callers read of a {spec.name}"
    text += ": documents without deleted_at." if spec.soft_delete else "."
    return {"description": text, "on": spec.name, "pipeline": pipeline}


def _params(spec: Spec, op: OpDesign) -> dict[str, str]:
    return {name: "str" if name == design.REQUEST_ID else spec.fields[name].type.value
            for name in op.params}


def _operation(spec: Spec, op: OpDesign) -> dict[str, Any]:
    body: dict[str, Any] = {"description": describe(f"{spec.name}.{op.name}: {op.description}"),
                            "params": _params(spec, op)}
    if op.name == "fetch":
        by = op.params[0]
        return {**body, "aggregate": design.view_name(spec),
                "pipeline": [{"$match": {by: p(by)}}]}
    body["values"] = {V_NOW: "now"}
    write = {"create": _create, "update": _update, "delete": _delete}[op.name]
    return {**body, **write(spec, op)}


def _entry(action: str) -> dict[str, Any]:
    return {"action": action, "request_id": p(design.REQUEST_ID), "at": p(V_NOW)}


def _create(spec: Spec, op: OpDesign) -> dict[str, Any]:
    key = spec.primary_key
    document: dict[str, Any] = {"_id": p(key)}
    document |= {f.name: p(f.name) for f in design.create_fields(spec) if f.name != key}
    document |= {"created_at": p(V_NOW), "updated_at": p(V_NOW),
                 REQUESTS: [p(design.REQUEST_ID)]}
    if spec.audit:
        document[AUDIT] = [_entry("create")]
    body: dict[str, Any] = {}
    if spec.generated_key:
        body["next"] = {key: spec.name}
    body["findOneAndUpdate"] = {
        "collection": spec.name, "filter": {CREATED_BY: p(design.REQUEST_ID)},
        "update": {"$setOnInsert": document}, "upsert": True, "returnDocument": "after",
        "projection": {"_id": 1}}
    if spec.generated_key:
        body["out"] = {key: "$document._id"}
    return body


def _seen() -> dict[str, Any]:
    """In an update pipeline: this request id already wrote the document."""
    return {"$in": [p(design.REQUEST_ID), {"$ifNull": [f"${REQUESTS}", []]}]}


def _once(field: str, value: Any) -> dict[str, Any]:
    """The field's new value, unless this request already ran (then it stays as it is)."""
    return {"$cond": [_seen(), f"${field}", value]}


def _appended(field: str, entry: Any, keep: int | None = None) -> dict[str, Any]:
    joined: Any = {"$concatArrays": [{"$ifNull": [f"${field}", []]}, [entry]]}
    return _once(field, {"$slice": [joined, -keep]} if keep else joined)


def _pipeline(spec: Spec, action: str, sets: dict[str, Any]) -> list[dict[str, Any]]:
    stage = {**sets, "updated_at": _once("updated_at", p(V_NOW)),
             REQUESTS: _appended(REQUESTS, p(design.REQUEST_ID), REMEMBERED)}
    if spec.audit:
        stage[AUDIT] = _appended(AUDIT, _entry(action))
    return [{"$set": stage}]


def _live(spec: Spec) -> dict[str, Any]:
    """The document to write: by key, not deleted, unless this request is the one that deleted
    it (so its repeat gets the same answer)."""
    key = spec.primary_key
    match: dict[str, Any] = {"_id": p(key)}
    if spec.soft_delete:
        match["$or"] = [{"deleted_at": None}, {REQUESTS: p(design.REQUEST_ID)}]
    return match


def _update(spec: Spec, op: OpDesign) -> dict[str, Any]:
    sets = {f: _once(f, {"$ifNull": [p(f), f"${f}"]}) for f in op.optional}
    return {"updateOne": {"collection": spec.name, "filter": _live(spec),
                          "update": _pipeline(spec, "update", sets)},
            "out": {"updated": "$matchedCount"}}


def _delete(spec: Spec, op: OpDesign) -> dict[str, Any]:
    if spec.soft_delete:
        sets = {"deleted_at": _once("deleted_at", p(V_NOW))}
        return {"updateOne": {"collection": spec.name, "filter": _live(spec),
                              "update": _pipeline(spec, "delete", sets)},
                "out": {"deleted": "$matchedCount"}}
    return {"deleteOne": {"collection": spec.name, "filter": {"_id": p(spec.primary_key)}},
            "out": {"deleted": "$deletedCount"}}


def _grants(spec: Spec, existing: Existing) -> dict[str, list[str]]:
    actions = ["find", "insert", "update"] + ([] if spec.soft_delete or not spec.delete
                                              else ["remove"])
    grants = {design.view_name(spec): ["find"], spec.name: actions}
    if spec.create and spec.generated_key and not existing.has("grants", COUNTERS):
        grants[COUNTERS] = ["find", "insert", "update"]
    return {k: v for k, v in grants.items() if not existing.has("grants", k)}
