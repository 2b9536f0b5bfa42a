"""DynamoDB API requests built from parsed views and operations: values as attribute values,
queries, transactions, cursors.

Layer: infrastructure. Pure: no I/O. Every value a caller sends becomes an ExpressionAttributeValue or
an attribute of an item, never part of an expression or a name.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from beds.adapters.dynamodb.catalog import DynamoView
from beds.adapters.dynamodb.operations import ACTIONS, NAME_RE, DynamoQuery, Expression, Ref, TxItem
from beds.adapters.dynamodb.tables import KEY_TYPES, Column, TableDef
from beds.errors import ValidationFailed
from beds.templates.model import FieldType

# -- values ------------------------------------------------------------------------------------------

def to_attr(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value. Datetimes are ISO 8601 text in UTC, which
    sorts and compares correctly as a sort key."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return {"S": value.isoformat()}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    if isinstance(value, dict):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def from_attr(attr: dict[str, Any]) -> Any:
    (kind, value), = attr.items()
    if kind == "N":
        return number(value)
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "NS":
        return [number(v) for v in value]
    return list(value)                       # SS, BS


def number(text: str) -> int | Decimal:
    """DynamoDB keeps no scale: an integral number is an int; others stay exact decimals."""
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    return int(value) if isinstance(exponent, int) and exponent >= 0 else value


def bind_value(value: Any, kind: FieldType) -> Any:
    """A template value as the operation stores it (json params as documents)."""
    if kind is FieldType.JSON and isinstance(value, str):
        return json.loads(value, parse_float=Decimal)
    return value


def resolve_ref(raw: Any, values: dict[str, Any]) -> Any:
    return values.get(raw.name) if isinstance(raw, Ref) else raw


def attr_map(pairs: tuple[tuple[str, Any], ...], values: dict[str, Any],
             skip_null: bool = False) -> dict[str, Any]:
    resolved = {a: resolve_ref(raw, values) for a, raw in pairs}
    return {a: to_attr(v) for a, v in resolved.items() if not (skip_null and v is None)}


def with_expressions(request: dict[str, Any], expressions: list[Expression | None],
                     values: dict[str, Any], extra_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Add ExpressionAttributeNames/Values for exactly what the expressions use."""
    used = [e for e in expressions if e is not None]
    attrs = dict.fromkeys([n for e in used for n in e.names] + list(extra_names))
    bound = dict.fromkeys(n for e in used for n in e.values)
    if attrs:
        request["ExpressionAttributeNames"] = {f"#{n}": n for n in attrs}
    if bound:
        request["ExpressionAttributeValues"] = {f":{n}": to_attr(values.get(n)) for n in bound}
    return request


def row_of(item: dict[str, Any], columns: tuple[Column, ...]) -> dict[str, Any]:
    row = {}
    for column in columns:
        raw = item.get(column.attribute)
        value = from_attr(raw) if raw is not None else None
        if column.scale is not None and isinstance(value, int | Decimal):
            value = Decimal(value).quantize(Decimal(1).scaleb(-column.scale))
        row[column.name] = value
    return row


def projection(columns: tuple[Column, ...]) -> tuple[str, tuple[str, ...]]:
    attrs = tuple(dict.fromkeys(c.attribute for c in columns))
    return ", ".join(f"#{a}" for a in attrs), attrs


# -- requests ----------------------------------------------------------------------------------------

def query_request(query: DynamoQuery, table_name: str, values: dict[str, Any]) -> dict[str, Any]:
    shown, attrs = projection(query.columns)
    request: dict[str, Any] = {"TableName": table_name,
                               "KeyConditionExpression": query.key.text,
                               "ProjectionExpression": shown,
                               "ScanIndexForward": query.forward}
    if query.index is not None:
        request["IndexName"] = query.index
    if query.filter is not None:
        request["FilterExpression"] = query.filter.text
    return with_expressions(request, [query.key, query.filter], values, attrs)


def view_request(view: DynamoView, table: TableDef, table_name: str,
                 filters: list[tuple[str, Any]], descending: bool) -> dict[str, Any]:
    """The Query for a view op: the first access path whose partition key has a value."""
    given = dict(filters)
    for access in view.access:
        if access.constant is not None:
            pk_value: Any = access.constant[1]
        elif access.partition in given:
            pk_value = given[access.partition]
        else:
            continue
        key = table.key_of(access.index)
        values: dict[str, Any] = {"k0": pk_value}
        conditions = [f"#{key.partition[0]} = :k0"]
        rest: list[str] = []
        for column, value in filters:
            attr = next(c.attribute for c in view.columns if c.name == column)
            if column == access.partition:
                continue
            if key.sort is not None and attr == key.sort[0] and "k1" not in values:
                values["k1"] = value
                conditions.append(f"#{attr} = :k1")
            else:
                values[f"f{len(rest)}"] = value
                rest.append(f"#{attr} = :f{len(rest)}")
        names = [key.partition[0]] + [n for n in NAME_RE.findall(" ".join(conditions + rest))]
        shown, attrs = projection(view.columns)
        request: dict[str, Any] = {"TableName": table_name,
                                   "KeyConditionExpression": " AND ".join(conditions),
                                   "ProjectionExpression": shown,
                                   "ScanIndexForward": not descending}
        if access.index is not None:
            request["IndexName"] = access.index
        if rest:
            request["FilterExpression"] = " AND ".join(rest)
        request["ExpressionAttributeNames"] = {f"#{n}": n for n in dict.fromkeys(
            [*names, *attrs])}
        request["ExpressionAttributeValues"] = {f":{k}": to_attr(v) for k, v in values.items()}
        return request
    options = [a.partition for a in view.access if a.partition is not None]
    raise ValidationFailed(f"params: view {view.name!r} on DynamoDB is read by its partition key; "
                           f"filter on one of: {', '.join(options)}")


def guard_holds(guard: tuple[str, str, str] | None, values: dict[str, Any]) -> bool:
    if guard is None:
        return True
    left, op, right = guard
    same = values.get(left) == values.get(right)
    return same if op == "=" else not same


def transact_request(items: tuple[TxItem, ...], values: dict[str, Any],
                     physical: Callable[[str], str]) -> tuple[list[dict[str, Any]], list[TxItem]]:
    """TransactItems for the items whose `if` holds, and those items in the same order."""
    sent: list[TxItem] = []
    requests: list[dict[str, Any]] = []
    for item in items:
        if not guard_holds(item.guard, values):
            continue
        body: dict[str, Any] = {"TableName": physical(item.table)}
        if item.action == "put":
            body["Item"] = attr_map(item.item, values, skip_null=True)
        else:
            body["Key"] = attr_map(item.key, values)
        if item.expression is not None:
            body["UpdateExpression"] = item.expression.text
        if item.condition is not None:
            body["ConditionExpression"] = item.condition.text
        with_expressions(body, [item.expression, item.condition], values)
        requests.append({ACTIONS[item.action]: body})
        sent.append(item)
    return requests, sent


# -- cursors -----------------------------------------------------------------------------------------

def encode_cursor(key: dict[str, Any]) -> str:
    """DynamoDB's LastEvaluatedKey as an opaque cursor."""
    plain = {a: ({"B": base64.b64encode(v["B"]).decode()} if "B" in v else v)
             for a, v in key.items()}
    text = json.dumps({"v": 1, "k": plain}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key = data["k"]
        if data.get("v") != 1 or not isinstance(key, dict) or not key:
            raise ValueError
        out = {}
        for attr, value in key.items():
            (kind, text), = value.items()
            if kind not in KEY_TYPES or not isinstance(text, str):
                raise ValueError
            out[attr] = {"B": base64.b64decode(text)} if kind == "B" else {kind: text}
        return out
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise ValidationFailed("cursor: not a cursor this op returned") from None
