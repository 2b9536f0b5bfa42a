"""The template model: what a DBA declares in `templates/NAME.toml`.

Layer: domain. Pure data; imports only beds.config enums. The warehouse policy's parsing and
checks live in `beds.templates.warehouse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from beds.config import OpKind


class FieldType(StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


class OpTarget(StrEnum):
    """The DBA-owned object an op reaches."""

    PROCEDURE = "procedure"
    VIEW = "view"
    FUNCTION = "function"


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = True
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    protected: bool = False
    description: str = ""


@dataclass(frozen=True)
class OrderBy:
    column: str
    descending: bool = False


@dataclass(frozen=True)
class Op:
    name: str
    kind: OpKind
    target: OpTarget
    object_name: str                 # procedure, view or function name (checked identifier)
    params: tuple[str, ...] = ()     # IN parameters, in order (procedure, function)
    optional: frozenset[str] = frozenset()
    out: tuple[str, ...] = ()        # OUT parameters, in order after the IN ones
    filters: tuple[str, ...] = ()    # view: equality filters a caller may use
    order_by: tuple[OrderBy, ...] = ()
    limit: int = 100                 # view: default and maximum page size
    broker: str | None = None        # explicit broker; else chosen by kind
    allow: tuple[str, ...] | None = None   # AMQP users that may call it; None = the template's
    idempotency_key: str | None = None     # a param filled from the AMQP message_id if absent
    # A write without a key says what running it twice does and why that is acceptable
    # (`on_repeat = "..."`); `beds templates check` warns on a write with neither.
    on_repeat: str | None = None
    description: str = ""
    # read ops: "any" may be served by a read replica, "primary" always by the primary
    consistency: str = "any"
    # bulk: the write op it batches (target, params and out are that op's) and the most rows
    # one request may carry.
    of: str | None = None
    max_rows: int = 0


@dataclass(frozen=True)
class WarehousePolicy:
    """A template's `[warehouse]` table, as `beds.templates.warehouse.parse_policy` read it."""

    key: str
    age_field: str
    older_than: float      # seconds
    batch: int
    every: float           # seconds between runs
    extract: str           # op of the HOT template
    purge: str             # op of the HOT template
    load_template: str     # the COOL template ...
    load_op: str           # ... and its op

    @property
    def age_seconds(self) -> int:
        return max(1, round(self.older_than))


@dataclass(frozen=True)
class Template:
    name: str
    datasource: str
    fields: dict[str, Field]
    ops: dict[str, Op]
    path: Path
    description: str = ""
    broker: str | None = None
    allow: tuple[str, ...] | None = None   # AMQP users that may call its ops; None = anyone
    warehouse: WarehousePolicy | None = None   # [warehouse]: HOT -> COOL moves (segundo)

    def protected_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields.values() if f.protected)
