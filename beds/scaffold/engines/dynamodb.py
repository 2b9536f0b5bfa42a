"""DynamoDB schema file for a spec, in the format of schema/dynamodb/
(`beds.adapters.dynamodb.catalog`):
tables with their GSIs, the list view, and named operations (key-condition queries; one
TransactWriteItems per write).

Layer: tooling. Pure text out. How the spec maps onto DynamoDB, and why:

- The item's key is the primary key. DynamoDB keeps only keys unique, so each unique key gets a
  claim table `uq_NAME_COL` (one item per value in use), written in the same transaction as the
  item, as customer_email is in the example schema. Only single-column unique keys (DynamoDB
  cannot build a key from several values here).
- The list view reads a GSI whose sort key is the list's first order column (rows come in
  sort-key order only, so only one order column): `by_catalog` (every item, partition `_catalog`
  = the domain name) and `by_FIELD` per required, non-bool list filter. With soft delete the sort
  key is a copy, `_order`, that delete removes, so a deleted item leaves every index the view
  reads; fetch filters it out.
- Writes are idempotent as in 060_idempotency.json: the request id goes into request_log in the
  write's own transaction. It is read first: a repeat fails a check on purpose and its outcome is
  the stored reply; a request id of another op fails the put, with REUSED_BY_ANOTHER_OP.
- Update keeps what the caller left out by reading the item first ("defaults") and writing only
  if nobody wrote it since (`_request`, the request id of the item's last write).
- Audit: one item per write in NAME_audit (key: the item's key and the request id), in the same
  transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from beds.config import Engine
from beds.scaffold import design
from beds.scaffold.design import OpDesign
from beds.scaffold.engines.base import Existing
from beds.scaffold.engines.common import REUSED_BY_ANOTHER_OP
from beds.scaffold.engines.jsonfile import (
    O_DELETED,
    O_OP,
    O_REQUEST,
    O_RESULT,
    V_NOW,
    V_NULL,
    V_OP,
    describe,
    generated_by,
    old,
    render,
    unsupported,
)
from beds.scaffold.spec import Spec, SpecField
from beds.templates.model import FieldType

CATALOG = "_catalog"      # every live item: the partition of by_catalog
ORDER = "_order"          # soft delete: the sort key of the list's indexes, removed on delete
LAST = "_request"         # the request id of the item's last write
ACTION, CHANGED = "_action", "_changed_at"     # audit items
REQUEST_LOG, COUNTERS = "request_log", "counters"
TIMESTAMPS = ("created_at", "updated_at")


def key_type(field: SpecField) -> str | None:
    """The DynamoDB key type a field can have (None: a bool cannot be a key)."""
    if field.type in (FieldType.INT, FieldType.DECIMAL):
        return "N"
    return None if field.type is FieldType.BOOL else "S"   # dates as ISO 8601 text sort as time


class DynamoGenerator:
    engine = Engine.DYNAMODB
    suffix = ".json"

    def adapt(self, spec: Spec) -> Spec:
        for columns in spec.unique:
            if len(columns) > 1:
                raise unsupported(spec, "unique", f"{list(columns)}: DynamoDB keeps only keys "
                                  "unique; a unique key of several fields is not generated")
            if key_type(spec.fields[columns[0]]) is None:
                raise unsupported(spec, "unique", f"{columns[0]!r}: a bool cannot be a key")
        if spec.list is None:
            return spec
        order = spec.list.order_by[0]
        column = order.lstrip("-")
        field = spec.fields.get(column)
        if field is not None and (key_type(field) is None or not field.required):
            raise unsupported(spec, "ops.list.order_by", f"{column!r}: DynamoDB returns rows in "
                              "the order of an index's sort key, which every item must have: "
                              "order by a required field that is not a bool")
        return replace(spec, list=replace(spec.list, order_by=(order,)))

    def doc_note(self, spec: Spec) -> str:
        note = ("DynamoDB: `list` pages with `cursor` / `next_cursor`, not `offset`, in the "
                "order of one column only.")
        if spec.update is not None:
            note += (" An update that races another write to the same row is refused with "
                     "CONFLICT (nothing changed): send it again.")
        return note

    def render(self, spec: Spec, existing: Existing) -> str:
        tables = _tables(spec, existing)
        sections: dict[str, Any] = {"tables": tables}
        if spec.list is not None:
            sections["views"] = {design.view_name(spec): _view(spec)}
        sections["operations"] = {op.object_name: _operation(spec, op)
                                  for op in design.ops(spec) if op.name != "list"}
        return render(sections)


# -- tables and the view -----------------------------------------------------------------------

def _claim_table(spec: Spec, column: str) -> str:
    return design.index_name("uq", spec.name, (column,))


def _order_column(spec: Spec) -> str:
    assert spec.list is not None
    return spec.list.order_by[0].lstrip("-")


def _sort_key(spec: Spec) -> tuple[str, str]:
    column = _order_column(spec)
    kind = "S" if column in TIMESTAMPS else key_type(spec.fields[column]) or "S"
    return (ORDER if spec.soft_delete else column), kind


def _filter_indexes(spec: Spec) -> list[str]:
    """List filters that get a GSI (partition = the filter): required (an absent or null key
    attribute would keep an item out, or be refused), not bool, not the order column."""
    if spec.list is None:
        return []
    return [f for f in spec.list.filters
            if f != _order_column(spec) and f != spec.primary_key and spec.fields[f].required
            and key_type(spec.fields[f]) is not None]


def _indexes(spec: Spec) -> dict[str, Any]:
    indexes: dict[str, Any] = {}
    if spec.list is not None:
        sort, sort_type = _sort_key(spec)
        indexes["by_catalog"] = {"key": {CATALOG: "S", sort: sort_type}}
        for f in _filter_indexes(spec):
            indexes[f"by_{f}"] = {"key": {f: key_type(spec.fields[f]), sort: sort_type}}
    by = spec.fetch_by
    if by is not None and by != spec.primary_key and f"by_{by}" not in indexes:
        indexes[f"by_{by}"] = {"key": {by: key_type(spec.fields[by])}}
    return indexes


def _tables(spec: Spec, existing: Existing) -> dict[str, Any]:
    key = spec.key
    text = generated_by(spec, "dynamodb") + f" Items are {spec.name} rows keyed by {key.name}."
    if spec.list is not None:
        text += (f" by_catalog holds every item ({CATALOG} = {spec.name!r}) for the list view; "
                 "a by_FIELD index serves a list filter or fetch.")
    if spec.soft_delete:
        text += (f" Soft delete: delete sets deleted_at and removes {ORDER} (the sort key of "
                 "the list's indexes), so the item leaves them; it is kept.")
    text += f" {LAST} is the request id of the item's last write (updates check it)."
    table: dict[str, Any] = {"description": describe(text),
                             "key": {key.name: key_type(key)}}
    indexes = _indexes(spec)
    if indexes:
        table["indexes"] = indexes
    tables: dict[str, Any] = {spec.name: table}
    for (column,) in spec.unique:
        tables[_claim_table(spec, column)] = {
            "description": f"The unique key on {spec.name}.{column}: one item per value in use "
                           f"(DynamoDB keeps only keys unique), owned by {key.name}.",
            "key": {column: key_type(spec.fields[column])}}
    if spec.audit:
        tables[design.audit_table(spec)] = {
            "description": f"Audit: one item per write to {spec.name}, in the write's own "
                           f"transaction: {ACTION} (create, update, delete), {CHANGED}, "
                           "request_id, and the row's fields (after create/update, before "
                           "delete).",
            "key": {key.name: key_type(key), "request_id": "S"}}
    if spec.writes and not existing.has("tables", REQUEST_LOG):
        tables[REQUEST_LOG] = {"description": "Idempotency keys of the writes that take one, "
                                              "with what their first run returned.",
                               "key": {"request_id": "S"}}
    if spec.create and spec.generated_key and not existing.has("tables", COUNTERS):
        tables[COUNTERS] = {"description": "Sequences for new ids: last is the last number "
                                           "handed out.", "key": {"counter": "S"}}
    return tables


def _columns(spec: Spec, view: bool) -> dict[str, Any]:
    """Columns as fetch and list return them; in the view the order column is read from the
    sort key attribute (the same value)."""
    columns: dict[str, Any] = {}
    order = _order_column(spec) if view and spec.soft_delete else None
    for name in design.view_columns(spec):
        attribute = ORDER if name == order else name
        field = spec.fields.get(name)
        if field is not None and field.type is FieldType.DECIMAL:
            columns[name] = {"attribute": attribute, "scale": field.scale}
        else:
            columns[name] = attribute
    return columns


def _view(spec: Spec) -> dict[str, Any]:
    access: list[dict[str, Any]] = [{"index": f"by_{f}", "partition": f}
                                    for f in _filter_indexes(spec)]
    access.append({"index": "by_catalog", "partition": {CATALOG: spec.name}})
    text = (f"{spec.name}.list: by_catalog, or the by_FIELD index of a filter given; other "
            "filters are a FilterExpression. Rows in sort-key order.")
    if spec.soft_delete:
        text += " Deleted items are in no index this view reads."
    return {"description": describe(text), "table": spec.name,
            "columns": _columns(spec, view=True), "access": access}


# -- operations ----------------------------------------------------------------------------------

def _params(spec: Spec, op: OpDesign) -> dict[str, str]:
    return {name: "str" if name == design.REQUEST_ID else spec.fields[name].type.value
            for name in op.params}


def _value(spec: Spec, column: str) -> str:
    return f":{V_NOW}" if column in TIMESTAMPS else f":{column}"


def _operation(spec: Spec, op: OpDesign) -> dict[str, Any]:
    body: dict[str, Any] = {"description": describe(f"{spec.name}.{op.name}: {op.description}"),
                            "params": _params(spec, op)}
    if op.name == "fetch":
        by = op.params[0]
        query: dict[str, Any] = {"table": spec.name}
        if by != spec.primary_key:
            query["index"] = f"by_{by}"
        query["key"] = f"#{by} = :{by}"
        if spec.soft_delete:
            query["filter"] = "attribute_not_exists(#deleted_at)"
        query["columns"] = _columns(spec, view=False)
        return {**body, "query": query}
    body["values"] = {V_NOW: "now", V_OP: {"const": op.object_name}, V_NULL: {"const": None}}
    write = {"create": _create, "update": _update, "delete": _delete}[op.name]
    return {**body, **write(spec, op)}


def _log_read() -> dict[str, Any]:
    return {"table": REQUEST_LOG, "key": {"request_id": ":request_id"},
            "values": {O_OP: "op", O_RESULT: "result_id"}}


def _log_items(op: OpDesign, repeat: dict[str, Any], result: Any) -> list[dict[str, Any]]:
    """First in every write: a repeat (its op found in request_log) fails this check on
    purpose, and the first failed item decides the reply: the stored one. Otherwise the put
    records the request id; it fails only when another op took it (or a duplicate of this
    request raced this one past the read)."""
    item: dict[str, Any] = {"request_id": ":request_id", "op": op.object_name}
    if result is not None:
        item["result_id"] = result
    return [
        {"check": REQUEST_LOG, "key": {"request_id": ":request_id"},
         "condition": "attribute_not_exists(#request_id)", "if": f"{O_OP} = {V_OP}",
         "fail": repeat},
        {"put": REQUEST_LOG, "item": item, "condition": "attribute_not_exists(#request_id)",
         "if": f"{O_OP} <> {V_OP}",
         "fail": {"error": f"{REUSED_BY_ANOTHER_OP} (or a duplicate of this request ran at "
                           "the same time: send it again)"}},
    ]


def _duplicate(spec: Spec, column: str) -> dict[str, Any]:
    return {"conflict": f"duplicate key: {column} is in use "
                        f"({_claim_table(spec, column)})"}


def _audit(spec: Spec, action: str, fields: dict[str, str]) -> list[dict[str, Any]]:
    if not spec.audit:
        return []
    key = spec.primary_key
    item = {key: f":{key}", "request_id": ":request_id", ACTION: action,
            CHANGED: f":{V_NOW}", **fields}
    return [{"put": design.audit_table(spec), "item": item}]


def _item_read(spec: Spec, values: dict[str, str], **extra: Any) -> dict[str, Any]:
    key = spec.primary_key
    return {"table": spec.name, "key": {key: f":{key}"}, "values": values, **extra}


def _create(spec: Spec, op: OpDesign) -> dict[str, Any]:
    key = spec.primary_key
    fields = [f.name for f in design.create_fields(spec)]
    item = {key: f":{key}", CATALOG: spec.name, **{f: f":{f}" for f in fields},
            "created_at": f":{V_NOW}", "updated_at": f":{V_NOW}", LAST: ":request_id"}
    if spec.soft_delete and spec.list is not None:
        item[ORDER] = _value(spec, _order_column(spec))
    repeat = {"out": {key: O_RESULT}} if spec.generated_key else {"out": {}}
    transact = [
        *_log_items(op, repeat, f":{key}" if spec.generated_key else None),
        {"put": spec.name, "item": item, "condition": f"attribute_not_exists(#{key})",
         "fail": {"conflict": f"duplicate key: a {spec.name} with this {key} exists"}},
        *({"put": _claim_table(spec, u), "item": {u: f":{u}", key: f":{key}"},
           "condition": f"attribute_not_exists(#{u})", "fail": _duplicate(spec, u)}
          for (u,) in spec.unique),
        *_audit(spec, "create", {f: f":{f}" for f in fields if f != key}),
    ]
    body: dict[str, Any] = {"read": [_log_read()]}
    if spec.generated_key:
        body["next"] = {key: spec.name}
    body["transact"] = transact
    if spec.generated_key:
        body["out"] = {key: key}
    return body


def _update(spec: Spec, op: OpDesign) -> dict[str, Any]:
    key = spec.primary_key
    changed = list(op.optional)
    moved = [u for (u,) in spec.unique if u in changed]       # claims that follow the value
    others = [f for f in spec.fields if f != key and f not in changed]
    values = {O_REQUEST: LAST, **{old(u): u for u in moved}}
    if spec.audit:
        values |= {old(f): f for f in others}
    if spec.soft_delete:
        values[O_DELETED] = "deleted_at"
    # Missing: 0 before anything is written (a repeat after a hard delete also answers 0).
    read = _item_read(spec, values, defaults={f: f for f in changed},
                      missing={"out": {"updated": 0}})
    sets = [f"#{f} = :{f}" for f in changed] + [f"#updated_at = :{V_NOW}",
                                                 f"#{LAST} = :request_id"]
    if spec.soft_delete and spec.list is not None and _order_column(spec) in (
            *changed, "updated_at"):
        sets.append(f"#{ORDER} = {_value(spec, _order_column(spec))}")
    update: dict[str, Any] = {
        "update": spec.name, "key": {key: f":{key}"}, "expression": "SET " + ", ".join(sets),
        "condition": f"#{LAST} = :{O_REQUEST}",
        "fail": {"conflict": f"the {spec.name} changed while this update ran; nothing was "
                             "changed: send it again"}}
    main = [update]
    if spec.soft_delete:
        update["if"] = f"{O_DELETED} = {V_NULL}"
        main.insert(0, {"check": spec.name, "key": {key: f":{key}"},
                        "condition": "attribute_not_exists(#deleted_at)",
                        "if": f"{O_DELETED} <> {V_NULL}", "fail": {"out": {"updated": 0}}})
    claims: list[dict[str, Any]] = []
    for u in moved:
        claims += [
            {"put": _claim_table(spec, u), "item": {u: f":{u}", key: f":{key}"},
             "condition": f"attribute_not_exists(#{u}) OR #{key} = :{key}",
             "fail": _duplicate(spec, u)},
            {"delete": _claim_table(spec, u), "key": {u: f":{old(u)}"},
             "condition": f"#{key} = :{key}", "if": f"{old(u)} <> {u}"}]
    row = {f: f":{f}" for f in changed} | {f: f":{old(f)}" for f in others if spec.audit}
    return {"read": [_log_read(), read],
            "transact": [*_log_items(op, {"out": {"updated": O_RESULT}}, 1), *main, *claims,
                         *_audit(spec, "update", row)],
            "out": {"updated": 1}}


def _delete(spec: Spec, op: OpDesign) -> dict[str, Any]:
    key = spec.primary_key
    others = [f for f in spec.fields if f != key]
    claims = [u for (u,) in spec.unique] if not spec.soft_delete else []
    values = {old(u): u for u in claims} | ({old(f): f for f in others} if spec.audit else {})
    reads = [_log_read()]
    if values:
        reads.append(_item_read(spec, values))     # no "missing": a repeat must reach the log
    gone = {"out": {"deleted": 0}}
    if spec.soft_delete:
        remove = f" REMOVE #{ORDER}" if spec.list is not None else ""
        main: dict[str, Any] = {
            "update": spec.name, "key": {key: f":{key}"},
            "expression": f"SET #deleted_at = :{V_NOW}, #updated_at = :{V_NOW}, "
                          f"#{LAST} = :request_id{remove}",
            "condition": f"attribute_exists(#{key}) AND attribute_not_exists(#deleted_at)",
            "fail": gone}
    else:
        main = {"delete": spec.name, "key": {key: f":{key}"},
                "condition": f"attribute_exists(#{key})", "fail": gone}
    released = [{"delete": _claim_table(spec, u), "key": {u: f":{old(u)}"},
                 "condition": f"#{key} = :{key}", "if": f"{old(u)} <> {V_NULL}"}
                for u in claims]
    row = {f: f":{old(f)}" for f in others} if spec.audit else {}
    return {"read": reads,
            "transact": [*_log_items(op, {"out": {"deleted": O_RESULT}}, 1), main, *released,
                         *_audit(spec, "delete", row)],
            "out": {"deleted": 1}}
