"""DynamoDB schema files (`schema/dynamodb/*.json`) read into a catalog: tables, seed items, views
and the named operations of `operations`.

Layer: infrastructure. Pure: no I/O beyond reading the schema files; never connects. The adapter
serves the catalog's views and operations; `schema` applies and checks it.

`schema/dynamodb/*.json` (numbers with a fraction stay exact decimals) has the sections

    tables      {NAME: {"key": {"attr": "S|N|B", "sort_attr"?: ...}, "indexes"?: {INDEX:
                 {"key": {...}, "projection"?: "ALL" | "KEYS_ONLY" | ["attr", ...]}}}}
                key: the partition key first, then the optional sort key (GSIs likewise)
    items       {TABLE: [items as plain JSON]}          seed data, put when absent
    views       {NAME: view}                            what a template's `view = NAME` reads
    operations  {NAME: operation}                       see `operations` and `named_ops`

A view is a table or GSI whose items are the rows:

    {"table": "film",
     "columns": {"FID": "film_id", "price": {"attribute": "rental_rate", "scale": 2}, ...},
     "access": [{"index": "by_category", "partition": "category"},       # a filter column
                {"index": "by_catalog", "partition": {"catalog": "film"}}]}   # a constant
The first access path whose partition key has a value (the caller's filter on that column, or
the constant) is queried; a filter on its sort key joins the key condition, the other filters
become a FilterExpression. Rows come in sort-key order (the template's order_by must name it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beds.adapters.dynamodb.operations import DynamoOperation, parse_operation
from beds.adapters.dynamodb.tables import Column, TableDef, parse_columns, parse_table, table_index
from beds.adapters.named_ops import SchemaDir, read_json_number_exact, read_schema
from beds.table import IDENT_RE, Table, describe

SECTIONS = ("tables", "items", "views", "operations")
COUNTERS = "counters"       # {counter: name (partition key), last: the last number handed out}


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
    tables = {n: parse_table(n, t.table(n)) for n, t in entries["tables"].items()}
    catalog = DynamoCatalog(schema, tables)
    for name, t in entries["items"].items():
        catalog.items[name] = _items(t, name, tables)
    for name, t in entries["views"].items():
        catalog.views[name] = _view(name, t.table(name), tables)
    for name, t in entries["operations"].items():
        catalog.operations[name] = parse_operation(name, t.table(name), tables)
    return catalog


def _items(t: Table, name: str, tables: dict[str, TableDef]) -> list[dict[str, Any]]:
    items = t.raw(name)
    if name not in tables:
        raise t.fail(name, f"no table {name!r} in the tables section")
    key = tables[name].key.attributes
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and all(a in i for a in key) for i in items):
        raise t.fail(name, f"expected a list of items, each with its key ({', '.join(key)})")
    return items


def _view(name: str, t: Table, tables: dict[str, TableDef]) -> DynamoView:
    t.reject_unknown(["description", "table", "columns", "access"])
    table, _ = table_index(t, tables)
    columns = parse_columns(t, "columns")
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
