"""DynamoDB schema files, views and named operations, parsed and checked.

Layer: adapters. Pure: no I/O beyond reading the schema files. `dynamodb_requests` builds API
requests from what this module parses; `dynamodb` sends them; `dynamodb_admin` applies and checks
the schema.

`schema/dynamodb/*.json` (numbers with a fraction stay exact decimals) has the sections

    tables      {NAME: {"key": {"attr": "S|N|B", "sort_attr"?: ...}, "indexes"?: {INDEX:
                 {"key": {...}, "projection"?: "ALL" | "KEYS_ONLY" | ["attr", ...]}}}}
                key: the partition key first, then the optional sort key (GSIs likewise)
    items       {TABLE: [items as plain JSON]}          seed data, put when absent
    views       {NAME: view}                            what a template's `view = NAME` reads
    operations  {NAME: operation}                       see below and `named_ops`

A view is a table or GSI whose items are the rows:

    {"table": "film",
     "columns": {"FID": "film_id", "price": {"attribute": "rental_rate", "scale": 2}, ...},
     "access": [{"index": "by_category", "partition": "category"},       # a filter column
                {"index": "by_catalog", "partition": {"catalog": "film"}}]}   # a constant
The first access path whose partition key has a value (the caller's filter on that column, or
the constant) is queried; a filter on its sort key joins the key condition, the other filters
become a FilterExpression. Rows come in sort-key order (the template's order_by must name it).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beds.adapters.named_ops import (
    CONFLICT,
    Outcome,
    SchemaDir,
    Signature,
    parse_next,
    parse_out,
    parse_outcome,
    parse_params,
    parse_rows,
    parse_values,
    read_json_number_exact,
    read_schema,
)
from beds.tomlread import IDENT_RE, Table, describe

SECTIONS = ("tables", "items", "views", "operations")
COUNTERS = "counters"       # {counter: name (partition key), last: the last number handed out}
KEY_TYPES = ("S", "N", "B")
_VALUE_RE = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
NAME_RE = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)")
_GUARD_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=|<>)\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
ACTIONS = {"put": "Put", "update": "Update", "delete": "Delete", "check": "ConditionCheck"}
_OP_KEYS = ("description", "params", "values", "read", "next", "query", "sets", "transact",
            "out", "data")


@dataclass(frozen=True)
class KeyDef:
    partition: tuple[str, str]               # (attribute, type)
    sort: tuple[str, str] | None = None

    @property
    def attributes(self) -> tuple[str, ...]:
        return (self.partition[0],) + ((self.sort[0],) if self.sort else ())

    def spelled(self) -> str:
        return ", ".join(f"{a} {t}" for a, t in (self.partition, *(
            (self.sort,) if self.sort else ())))


@dataclass(frozen=True)
class TableDef:
    name: str
    key: KeyDef
    indexes: dict[str, KeyDef]
    projections: dict[str, Any]              # index -> "ALL" | "KEYS_ONLY" | [attributes]

    def key_of(self, index: str | None) -> KeyDef:
        return self.key if index is None else self.indexes[index]


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
class Column:
    name: str
    attribute: str
    scale: int | None = None


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


@dataclass(frozen=True)
class Access:
    index: str | None
    partition: str | None = None             # a column: usable when the caller filters on it
    constant: tuple[str, Any] | None = None  # (attribute, value): always usable


@dataclass(frozen=True)
class DynamoView:
    name: str
    table: str
    columns: tuple[Column, ...]
    access: tuple[Access, ...]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class DynamoCatalog:
    schema: SchemaDir
    tables: dict[str, TableDef]
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    views: dict[str, DynamoView] = field(default_factory=dict)
    operations: dict[str, DynamoOperation] = field(default_factory=dict)


def load_catalog(directory: Path, files: list[Path] | None = None) -> DynamoCatalog:
    schema = read_schema(directory, SECTIONS, read_json_number_exact, files)
    entries = schema.entries
    tables = {n: _table(n, t.table(n)) for n, t in entries["tables"].items()}
    catalog = DynamoCatalog(schema, tables)
    for name, t in entries["items"].items():
        catalog.items[name] = _items(t, name, tables)
    for name, t in entries["views"].items():
        catalog.views[name] = _view(name, t.table(name), tables)
    for name, t in entries["operations"].items():
        catalog.operations[name] = parse_operation(name, t.table(name), tables)
    return catalog


# -- tables, items, views ----------------------------------------------------------------------------

def _key(t: Table, key: str) -> KeyDef:
    spec = t.table(key, required=True)
    parts = [(attr, spec.text(attr, choices=KEY_TYPES)) for attr in spec.data]
    if not 1 <= len(parts) <= 2 or not all(IDENT_RE.fullmatch(a) for a, _ in parts):
        raise t.fail(key, "expected the partition key attribute, then an optional sort key "
                          'attribute, each with its type "S", "N" or "B"')
    return KeyDef(parts[0], parts[1] if len(parts) == 2 else None)


def _table(name: str, t: Table) -> TableDef:
    t.reject_unknown(["description", "key", "indexes"])
    indexes, projections = {}, {}
    parent = t.table("indexes")
    for index in parent.data:
        spec = parent.table(index, required=True)
        spec.reject_unknown(["key", "projection"])
        if not IDENT_RE.fullmatch(index):
            raise parent.fail(index, f"expected a name matching {IDENT_RE.pattern}")
        indexes[index] = _key(spec, "key")
        projection = spec.raw("projection", "ALL")
        if projection not in ("ALL", "KEYS_ONLY") and not (
                isinstance(projection, list) and all(isinstance(a, str) for a in projection)):
            raise spec.fail("projection", 'expected "ALL", "KEYS_ONLY" or a list of attributes')
        projections[index] = projection
    return TableDef(name, _key(t, "key"), indexes, projections)


def _items(t: Table, name: str, tables: dict[str, TableDef]) -> list[dict[str, Any]]:
    items = t.raw(name)
    if name not in tables:
        raise t.fail(name, f"no table {name!r} in the tables section")
    key = tables[name].key.attributes
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and all(a in i for a in key) for i in items):
        raise t.fail(name, f"expected a list of items, each with its key ({', '.join(key)})")
    return items


def _columns(t: Table, key: str) -> tuple[Column, ...]:
    spec = t.table(key, required=True)
    columns = []
    for name, raw in spec.data.items():
        if isinstance(raw, dict):
            sub = spec.table(name)
            sub.reject_unknown(["attribute", "scale"])
            column = Column(name, sub.text("attribute", pattern=IDENT_RE),
                            sub.integer("scale", None, minimum=0))
        else:
            column = Column(name, spec.text(name, pattern=IDENT_RE))
        if not IDENT_RE.fullmatch(name):
            raise spec.fail(name, f"expected a column name matching {IDENT_RE.pattern}")
        columns.append(column)
    if not columns:
        raise t.fail(key, "expected at least one column")
    return tuple(columns)


def _table_name(t: Table, tables: dict[str, TableDef], key: str = "table") -> str:
    table: str = t.text(key, pattern=IDENT_RE)
    if table not in tables:
        raise t.fail(key, f"no table {table!r} in the tables section")
    return table


def _table_index(t: Table, tables: dict[str, TableDef]) -> tuple[str, str | None]:
    table = _table_name(t, tables)
    index_key = "index"
    index = t.text(index_key, None, pattern=IDENT_RE)
    if index is not None and index not in tables[table].indexes:
        raise t.fail(index_key, f"table {table!r} has no index {index!r}")
    return table, index


def _view(name: str, t: Table, tables: dict[str, TableDef]) -> DynamoView:
    t.reject_unknown(["description", "table", "columns", "access"])
    table, _ = _table_index(t, tables)
    columns = _columns(t, "columns")
    by_name = {c.name: c for c in columns}
    raw = t.raw("access")
    if not isinstance(raw, list) or not raw:
        raise t.fail("access", "expected a non-empty list of access paths")
    access = []
    for i, spec in enumerate(raw):
        at = Table(spec if isinstance(spec, dict) else {}, t.origin, t.key_path(f"access[{i}]"),
                   t.error)
        at.reject_unknown(["index", "partition"])
        index = at.text("index", None, pattern=IDENT_RE)
        if index is not None and index not in tables[table].indexes:
            raise at.fail("index", f"table {table!r} has no index {index!r}")
        pk = tables[table].key_of(index).partition[0]
        partition = at.raw("partition")
        if isinstance(partition, str):
            if partition not in by_name or by_name[partition].attribute != pk:
                raise at.fail("partition", f"expected the column whose attribute is the "
                                           f"partition key {pk!r}, got {describe(partition)}")
            access.append(Access(index, partition=partition))
        elif isinstance(partition, dict) and list(partition) == [pk]:
            access.append(Access(index, constant=(pk, partition[pk])))
        else:
            raise at.fail("partition", f'expected a column name or {{"{pk}": constant}}')
    return DynamoView(name, table, columns, tuple(access))


# -- operations --------------------------------------------------------------------------------------

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
    table = _table_name(t, tables)
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
    table, index = _table_index(t, tables)
    key = _expression(t, "key", names)
    assert key is not None
    return DynamoQuery(table, index, key, _expression(t, "filter", names, required=False),
                       _columns(t, "columns"), t.flag("forward", True))


def _tx_item(t: Table, names: set[str], tables: dict[str, TableDef]) -> TxItem:
    actions = [a for a in ACTIONS if t.has(a)]
    if len(actions) != 1:
        raise t.fail("", "a transaction item has exactly one of put, update, delete, check")
    action = actions[0]
    allowed = {"put": ["item"], "update": ["key", "expression"], "delete": ["key"],
               "check": ["key"]}[action]
    t.reject_unknown([action, *allowed, "condition", "if", "fail"])
    table = _table_name(t, tables, key=action)
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
