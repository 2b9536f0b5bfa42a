"""DynamoDB tables and column maps as the schema files declare them: key schemas, indexes, and
the `columns` map shared by views and queries.

Layer: infrastructure. Pure: parses tables already read from the schema files; never connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beds.table import IDENT_RE, Table

KEY_TYPES = ("S", "N", "B")


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
class Column:
    name: str
    attribute: str
    scale: int | None = None


def parse_key(t: Table, key: str) -> KeyDef:
    spec = t.table(key, required=True)
    parts = [(attr, spec.text(attr, choices=KEY_TYPES)) for attr in spec.data]
    if not 1 <= len(parts) <= 2 or not all(IDENT_RE.fullmatch(a) for a, _ in parts):
        raise t.fail(key, "expected the partition key attribute, then an optional sort key "
                          'attribute, each with its type "S", "N" or "B"')
    return KeyDef(parts[0], parts[1] if len(parts) == 2 else None)


def parse_table(name: str, t: Table) -> TableDef:
    t.reject_unknown(["description", "key", "indexes"])
    indexes, projections = {}, {}
    parent = t.table("indexes")
    for index in parent.data:
        spec = parent.table(index, required=True)
        spec.reject_unknown(["key", "projection"])
        if not IDENT_RE.fullmatch(index):
            raise parent.fail(index, f"expected a name matching {IDENT_RE.pattern}")
        indexes[index] = parse_key(spec, "key")
        projection = spec.raw("projection", "ALL")
        if projection not in ("ALL", "KEYS_ONLY") and not (
                isinstance(projection, list) and all(isinstance(a, str) for a in projection)):
            raise spec.fail("projection", 'expected "ALL", "KEYS_ONLY" or a list of attributes')
        projections[index] = projection
    return TableDef(name, parse_key(t, "key"), indexes, projections)


def parse_columns(t: Table, key: str) -> tuple[Column, ...]:
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


def table_name(t: Table, tables: dict[str, TableDef], key: str = "table") -> str:
    table: str = t.text(key, pattern=IDENT_RE)
    if table not in tables:
        raise t.fail(key, f"no table {table!r} in the tables section")
    return table


def table_index(t: Table, tables: dict[str, TableDef]) -> tuple[str, str | None]:
    table = table_name(t, tables)
    index_key = "index"
    index = t.text(index_key, None, pattern=IDENT_RE)
    if index is not None and index not in tables[table].indexes:
        raise t.fail(index_key, f"table {table!r} has no index {index!r}")
    return table, index
