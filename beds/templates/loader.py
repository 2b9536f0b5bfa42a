"""Template TOML files -> validated `Template` objects.

Layer: domain. Reads files; never connects. A bad template raises TemplateError naming the file
and the key, and the node refuses to start.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from beds.config import OpKind
from beds.errors import TemplateError
from beds.table import IDENT_RE, Table
from beds.templates.model import Field, FieldType, Op, OpTarget, OrderBy, Template
from beds.templates.warehouse import parse_policy

_FIELD_KEYS = ("type", "required", "min", "max", "max_length", "pattern", "choices",
               "protected", "description")
_OP_KEYS = ("kind", "procedure", "view", "function", "params", "optional", "out", "filters",
            "order_by", "limit", "broker", "allow", "idempotency_key", "on_repeat",
            "description", "consistency")
CONSISTENCY = ("any", "primary")
"""Where a read op may run: any healthy replica, or always the primary (docs/replicas.md)."""
_BULK_KEYS = ("kind", "of", "max_rows", "broker", "allow", "on_repeat", "description")
MAX_BULK_ROWS = 10_000
"""No bulk op may take more rows per request (the message size cap usually bites first)."""
_ORDER_RE = re.compile(r"-?[A-Za-z_][A-Za-z0-9_]{0,63}")


def load_templates(directory: Path) -> list[Template]:
    """Every `*.toml` in `directory`, sorted by name."""
    if not directory.is_dir():
        raise TemplateError(f"{directory}: templates directory not found")
    return [load_template(path) for path in sorted(directory.glob("*.toml"))]


def load_template(path: Path) -> Template:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML: {exc}") from None
    return template_from_table(Table(data, lambda _key: str(path), error=TemplateError), path)


def template_from_table(root: Table, path: Path) -> Template:
    """A parsed template file -> `Template` (the docs build reads the keys through here)."""
    root.reject_unknown(["name", "datasource", "description", "broker", "allow", "fields", "ops",
                         "warehouse"])
    name = root.text("name", pattern=IDENT_RE)
    if name != path.stem:
        raise root.fail("name", f"must equal the file name {path.stem!r}, got {name!r}")
    fields = {fname: _field(fname, t) for fname, t in root.tables("fields").items()}
    ops_table = root.tables("ops")
    if not ops_table:
        raise root.fail("ops", "a template needs at least one [ops.NAME] table")
    # Bulk ops are read after the others: each one is built from the write op it batches.
    ops = {oname: _op(oname, t, fields) for oname, t in ops_table.items() if not _is_bulk(t)}
    ops.update({oname: _bulk(oname, t, ops) for oname, t in ops_table.items() if _is_bulk(t)})
    ops = {oname: ops[oname] for oname in ops_table}   # declared order, for listings
    return Template(
        name=name,
        datasource=root.text("datasource"),
        description=root.text("description", ""),
        broker=root.text("broker", None, pattern=IDENT_RE),
        allow=root.names("allow", None),
        fields=fields,
        ops=ops,
        path=path,
        warehouse=parse_policy(root.table("warehouse"), fields, ops)
        if root.has("warehouse") else None,
    )


def _field(name: str, t: Table) -> Field:
    if not IDENT_RE.fullmatch(name):
        raise t.fail("", f"field name must match {IDENT_RE.pattern}")
    t.reject_unknown(_FIELD_KEYS)
    ftype = FieldType(t.text("type", choices=[f.value for f in FieldType]))
    pattern = t.text("pattern", None)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise t.fail("pattern", f"not a valid regular expression: {exc}") from None
    choices = t.raw("choices", None)
    if choices is not None and (not isinstance(choices, list) or not choices):
        raise t.fail("choices", "expected a non-empty list")
    numeric = (FieldType.INT, FieldType.FLOAT, FieldType.DECIMAL)
    for key in ("min", "max"):
        if t.has(key) and ftype not in numeric:
            raise t.fail(key, f"only int, float and decimal fields take {key}")
    for key in ("max_length", "pattern"):
        if t.has(key) and ftype is not FieldType.STR:
            raise t.fail(key, f"only str fields take {key}")
    return Field(
        name=name,
        type=ftype,
        required=t.flag("required", True),
        min=t.number("min", None),
        max=t.number("max", None),
        max_length=t.integer("max_length", None, minimum=1),
        pattern=pattern,
        choices=tuple(choices) if choices is not None else None,
        protected=t.flag("protected", False),
        description=t.text("description", ""),
    )


def _op(name: str, t: Table, fields: dict[str, Field]) -> Op:
    if not IDENT_RE.fullmatch(name):
        raise t.fail("", f"op name must match {IDENT_RE.pattern}")
    t.reject_unknown(_OP_KEYS)
    targets = [target for target in OpTarget if t.has(target.value)]
    if len(targets) != 1:
        raise t.fail("", "an op names exactly one of procedure, view or function")
    target = targets[0]
    obj = t.text(target.value, pattern=IDENT_RE)
    params = t.names("params", (), pattern=IDENT_RE)
    filters = t.names("filters", (), pattern=IDENT_RE)
    optional = t.names("optional", ())
    out = t.names("out", (), pattern=IDENT_RE)
    order = t.names("order_by", (), pattern=_ORDER_RE)
    for key, names in (("params", params), ("filters", filters)):
        for fname in names:
            if fname not in fields:
                raise t.fail(key, f"{fname!r} is not declared in [fields]")
    for fname in optional:
        if fname not in params:
            raise t.fail("optional", f"{fname!r} is not one of this op's params")
    if target is OpTarget.VIEW:
        if params or out:
            raise t.fail("params" if params else "out",
                         "a view op takes filters, not params or out")
    elif filters or t.has("limit") or order:
        raise t.fail("filters" if filters else "limit" if t.has("limit") else "order_by",
                     f"only view ops take filters, order_by and limit, not {target.value} ops")
    key = t.text("idempotency_key", None)
    if key is not None and key not in params:
        raise t.fail("idempotency_key", f"{key!r} is not one of this op's params")
    kind = OpKind(t.text("kind", choices=[k.value for k in OpKind]))
    on_repeat = _on_repeat(t, kind, key)
    if target is OpTarget.FUNCTION and out:
        raise t.fail("out", "a function returns its value as data [{\"value\": ...}], not out")
    consistency = t.text("consistency", "any", choices=CONSISTENCY)
    if t.has("consistency") and kind is not OpKind.READ:
        raise t.fail("consistency", f"only read ops choose where they run; a {kind.value} op "
                                    "always runs on the primary")
    return Op(
        name=name,
        kind=kind,
        target=target,
        object_name=obj,
        params=params,
        optional=frozenset(optional),
        out=out,
        filters=filters,
        order_by=tuple(OrderBy(o.lstrip("-"), o.startswith("-")) for o in order),
        limit=t.integer("limit", 100, minimum=1),
        broker=t.text("broker", None, pattern=IDENT_RE),
        allow=t.names("allow", None),
        idempotency_key=key,
        on_repeat=on_repeat,
        description=t.text("description", ""),
        consistency=consistency,
    )


def _on_repeat(t: Table, kind: OpKind, key: str | None) -> str | None:
    """Why running this write twice is acceptable: only writes without a key say so."""
    text: str | None = t.text("on_repeat", None)
    if text is None:
        return None
    if kind is OpKind.READ:
        raise t.fail("on_repeat", "only write and bulk ops say what a repeat does; a read "
                                  "may always run again")
    if key is not None:
        raise t.fail("on_repeat", f"the op declares idempotency_key = {key!r}: a repeat "
                                  "returns the first outcome, there is nothing to explain")
    if not text.strip():
        raise t.fail("on_repeat", "expected a sentence saying what a second run does and why "
                                  "that is acceptable")
    return text


def _is_bulk(t: Table) -> bool:
    return bool(t.raw("kind", None) == OpKind.BULK.value)


def _bulk(name: str, t: Table, ops: dict[str, Op]) -> Op:
    """`kind = "bulk"`, `of = "<write op>"`: many calls of that op in one request. The target,
    params, optional, out and idempotency key are the write op's, so the schema needs nothing
    new and `beds templates check` checks the same routine."""
    if not IDENT_RE.fullmatch(name):
        raise t.fail("", f"op name must match {IDENT_RE.pattern}")
    for key in (*(target.value for target in OpTarget), "params", "out", "optional"):
        if t.has(key):
            raise t.fail(key, "a bulk op takes the target and params of the write op it "
                              "batches (of = ...), not its own")
    t.reject_unknown(_BULK_KEYS)
    of = t.text("of", pattern=IDENT_RE)
    write = ops.get(of)
    writes = sorted(o.name for o in ops.values() if o.kind is OpKind.WRITE)
    if write is None or write.kind is not OpKind.WRITE:
        what = "is not an op of this template" if write is None else f"is a {write.kind} op"
        raise t.fail("of", f"{of!r} {what}; expected one of its write ops: "
                           f"{', '.join(writes) or '(none)'}")
    if write.target is OpTarget.VIEW:
        raise t.fail("of", f"{of!r} reads a view; a bulk op batches a procedure or function")
    allow = t.names("allow", None)
    return Op(
        name=name,
        kind=OpKind.BULK,
        target=write.target,
        object_name=write.object_name,
        params=write.params,
        optional=write.optional,
        out=write.out,
        broker=t.text("broker", None, pattern=IDENT_RE),
        # Never looser than the op it batches: without its own list it takes the write op's.
        allow=allow if allow is not None else write.allow,
        idempotency_key=write.idempotency_key,
        on_repeat=_on_repeat(t, OpKind.BULK, write.idempotency_key) or write.on_repeat,
        description=t.text("description", ""),
        of=of,
        max_rows=_max_rows(t),
    )


def _max_rows(t: Table) -> int:
    rows: int = t.integer("max_rows", 100, minimum=1)
    if rows > MAX_BULK_ROWS:
        raise t.fail("max_rows", f"expected int between 1 and {MAX_BULK_ROWS}, got {rows}")
    return rows
