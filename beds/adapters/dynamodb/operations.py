"""DynamoDB named operations (the section "operations" of a schema file), parsed and checked.

Layer: infrastructure. Pure. `catalog` reads the schema files and parses each operation here;
`requests` builds API requests from what this module parses; `adapter` sends them; `schema`
applies and checks the schema.

An operation has the common keys of `named_ops` and

    read      [{"table", "key": {"attr": ":value"}, "values"?: {name: attr}, "missing"?: outcome,
                "defaults"?: {value: attr}}]
              consistent GetItems, in order; "defaults" gives a value that is null (a param the
              caller left out) the item's attribute: an update that keeps what it was not sent
              (DynamoDB's update expressions have no COALESCE)
    query     {"table", "index"?, "key": "#film_id = :film_id", "filter"?: "...",
               "columns": {...}, "forward"?: true}    every page; "$Count" counts the rows
    sets      [query, ...]                            one result set per query
    transact  [{"put": TABLE, "item": {...}} | {"update": TABLE, "key", "expression"}
               | {"delete": TABLE, "key"} | {"check": TABLE, "key"},
               each with "condition"?, "if"?: "a <> b", "fail"?: outcome (default: conflict)]
              one TransactWriteItems: all or nothing. When conditions fail, the first failed
              item (in the order written) decides the outcome.

In expressions, `:name` is a value (a param, derived, read or counter value) and `#name` the
attribute `name`; in key and item maps a string ":name" is a value and anything else a literal.
Values are sent as ExpressionAttributeValues, never written into an expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from beds.adapters.dynamodb.tables import Column, TableDef, parse_columns, table_index, table_name
from beds.adapters.named_ops import (
    CONFLICT,
    Outcome,
    Signature,
    parse_next,
    parse_out,
    parse_outcome,
    parse_params,
    parse_rows,
    parse_values,
)
from beds.table import IDENT_RE, Table, describe

_VALUE_RE = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
NAME_RE = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)")
_GUARD_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=|<>)\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
ACTIONS = {"put": "Put", "update": "Update", "delete": "Delete", "check": "ConditionCheck"}
_OP_KEYS = ("description", "params", "values", "read", "next", "query", "sets", "transact",
            "out", "data")


@dataclass(frozen=True)
class Ref:
    """":name" in a key or item map: the value `name`."""

    name: str


@dataclass(frozen=True)
class Expression:
    text: str
    values: tuple[str, ...]                  # value names used as :name
    names: tuple[str, ...]                   # attributes used as #name


@dataclass(frozen=True)
class DynamoQuery:
    table: str
    index: str | None
    key: Expression
    filter: Expression | None
    columns: tuple[Column, ...]
    forward: bool = True


@dataclass(frozen=True)
class DynamoRead:
    table: str
    key: tuple[tuple[str, Any], ...]         # attribute -> Ref or literal
    values: tuple[tuple[str, str], ...] = ()  # value name -> attribute
    missing: Outcome | None = None
    defaults: tuple[tuple[str, str], ...] = ()  # value name -> attribute, when the value is null


@dataclass(frozen=True)
class TxItem:
    action: str                              # put | update | delete | check
    table: str
    key: tuple[tuple[str, Any], ...] = ()
    item: tuple[tuple[str, Any], ...] = ()
    expression: Expression | None = None     # update
    condition: Expression | None = None
    guard: tuple[str, str, str] | None = None   # (value, "=" | "<>", value): else skipped
    fail: Outcome = CONFLICT


@dataclass(frozen=True)
class DynamoOperation:
    sig: Signature
    reads: tuple[DynamoRead, ...]
    queries: tuple[DynamoQuery, ...] = ()    # query (one) or sets (one per result set)
    transact: tuple[TxItem, ...] = ()
    sets: bool = False

    @property
    def writes(self) -> bool:
        return bool(self.transact)


def parse_operation(name: str, t: Table, tables: dict[str, TableDef]) -> DynamoOperation:
    t.reject_unknown(_OP_KEYS)
    params = parse_params(t)
    values = parse_values(t, params)
    names = {p.name for p in params} | {n for n, _ in values}
    reads = []
    for i, spec in enumerate(_list(t, "read")):
        read, captured = _read(Table(spec, t.origin, t.key_path(f"read[{i}]"), t.error), names,
                               tables)
        reads.append(read)
        names |= captured
    nexts = parse_next(t, names)
    names |= {n for n, _ in nexts}
    bodies = [k for k in ("query", "sets", "transact") if t.has(k)]
    if len(bodies) != 1:
        raise t.fail("", "an operation has exactly one of query, sets, transact")
    queries: tuple[DynamoQuery, ...] = ()
    transact: tuple[TxItem, ...] = ()
    if bodies[0] == "query":
        queries = (_query(t.table("query"), names, tables),)
    elif bodies[0] == "sets":
        queries = tuple(_query(Table(s, t.origin, t.key_path(f"sets[{i}]"), t.error), names,
                               tables) for i, s in enumerate(_list(t, "sets")))
    else:
        transact = tuple(_tx_item(Table(s, t.origin, t.key_path(f"transact[{i}]"), t.error),
                                  names, tables) for i, s in enumerate(_list(t, "transact")))
        if not transact:
            raise t.fail("transact", "expected at least one item")
    out = parse_out(t, "out", names, sums=bool(queries)) if t.has("out") else None
    data = parse_rows(t, "data", names, sums=bool(queries)) if t.has("data") else None
    results = ("Count", "ScannedCount") if queries else ()
    for _, source in [*(out or ()), *(s for row in data or () for s in row)]:
        if source.kind == "result" and source.ref not in results:
            raise t.fail("out", f"${source.ref}: this operation gives "
                                + (", ".join(f"${r}" for r in results) or "no result fields"))
        if source.kind == "sum" and queries and queries[0].columns and source.ref not in {
                c.name for c in queries[0].columns}:
            raise t.fail("data", f"sum of {source.ref!r}: not a column of the query")
    sig = Signature(name, params, values, nexts, out, data)
    return DynamoOperation(sig, tuple(reads), queries, transact, sets=bodies[0] == "sets")


def _list(t: Table, key: str) -> list[dict[str, Any]]:
    raw = t.raw(key, [])
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise t.fail(key, f"expected a list of objects, got {describe(raw)}")
    return raw


def _expression(t: Table, key: str, names: set[str], required: bool = True) -> Expression | None:
    text = t.text(key) if required else t.text(key, None)
    if text is None:
        return None
    used = tuple(dict.fromkeys(_VALUE_RE.findall(text)))
    for name in used:
        if name not in names:
            known = ", ".join(sorted(names)) or "(none)"
            raise t.fail(key, f":{name} is not a value of this operation; known: {known}")
    return Expression(text, used, tuple(dict.fromkeys(NAME_RE.findall(text))))


def _ref_map(t: Table, key: str, names: set[str], wanted: tuple[str, ...] | None
             ) -> tuple[tuple[str, Any], ...]:
    spec = t.table(key, required=True)
    pairs = []
    for attr, raw in spec.data.items():
        if not IDENT_RE.fullmatch(attr):
            raise spec.fail(attr, f"expected an attribute name matching {IDENT_RE.pattern}")
        if isinstance(raw, str) and raw.startswith(":"):
            if raw[1:] not in names:
                raise spec.fail(attr, f"{raw} is not a value of this operation")
            pairs.append((attr, Ref(raw[1:])))
        else:
            pairs.append((attr, raw))
    if wanted is not None and set(spec.data) != set(wanted):
        raise t.fail(key, f"expected exactly the key attributes {', '.join(wanted)}")
    return tuple(pairs)


def _read(t: Table, names: set[str], tables: dict[str, TableDef]
          ) -> tuple[DynamoRead, set[str]]:
    t.reject_unknown(["table", "key", "values", "missing", "defaults"])
    table = table_name(t, tables)
    defaults = t.table("defaults")
    for n in defaults.data:
        if n not in names:
            raise defaults.fail(n, f"{n!r} is not a value of this operation")
        defaults.text(n, pattern=IDENT_RE)
    fields = t.table("values")
    captured = {n: fields.text(n, pattern=IDENT_RE) for n in fields.data}
    for n in captured:
        if not IDENT_RE.fullmatch(n) or n in names:
            raise fields.fail(n, f"expected a new value name matching {IDENT_RE.pattern}")
    missing = None
    if t.has("missing"):
        missing = parse_outcome(t, "missing", names,
                                lambda rt, known: _read(rt, known, tables))
    key = _ref_map(t, "key", names, tables[table].key.attributes)
    return DynamoRead(table, key, tuple(captured.items()), missing,
                      tuple((n, str(a)) for n, a in defaults.data.items())), set(captured)


def _query(t: Table, names: set[str], tables: dict[str, TableDef]) -> DynamoQuery:
    t.reject_unknown(["table", "index", "key", "filter", "columns", "forward"])
    table, index = table_index(t, tables)
    key = _expression(t, "key", names)
    assert key is not None
    return DynamoQuery(table, index, key, _expression(t, "filter", names, required=False),
                       parse_columns(t, "columns"), t.flag("forward", True))


def _tx_item(t: Table, names: set[str], tables: dict[str, TableDef]) -> TxItem:
    actions = [a for a in ACTIONS if t.has(a)]
    if len(actions) != 1:
        raise t.fail("", "a transaction item has exactly one of put, update, delete, check")
    action = actions[0]
    allowed = {"put": ["item"], "update": ["key", "expression"], "delete": ["key"],
               "check": ["key"]}[action]
    t.reject_unknown([action, *allowed, "condition", "if", "fail"])
    table = table_name(t, tables, key=action)
    key_attrs = tables[table].key.attributes
    guard = None
    if t.has("if"):
        match = _GUARD_RE.fullmatch(t.text("if"))
        if match is None or match.group(1) not in names or match.group(3) not in names:
            raise t.fail("if", 'expected "value = value" or "value <> value" of this '
                               "operation's values")
        guard = (match.group(1), match.group(2), match.group(3))
    item: tuple[tuple[str, Any], ...] = ()
    key: tuple[tuple[str, Any], ...] = ()
    if action == "put":
        item = _ref_map(t, "item", names, None)
        missing = [a for a in key_attrs if a not in dict(item)]
        if missing:
            raise t.fail("item", f"the item lacks its key attribute(s) {', '.join(missing)}")
    else:
        key = _ref_map(t, "key", names, key_attrs)
    condition = _expression(t, "condition", names, required=action == "check")
    expression = _expression(t, "expression", names) if action == "update" else None
    fail = parse_outcome(t, "fail", names, lambda rt, known: _read(rt, known, tables)) \
        if t.has("fail") else CONFLICT
    return TxItem(action, table, key, item, expression, condition, guard, fail)
