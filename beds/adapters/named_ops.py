"""Named operations: what a DBA writes for engines that have no stored procedures (MongoDB,
DynamoDB), and the parts of their format both engines share.

Layer: infrastructure (shared by the `mongodb` and `dynamodb` adapter packages). Pure: reads files,
never connects.

A datasource's `schema_dir` holds JSON files, applied and read in file-name order; each file is an
object of sections (which sections an engine has is in its `catalog` module). The `operations`
section is what a template's `procedure = "NAME"` or `function = "NAME"` names. Every operation
declares, besides its engine-specific body:

    params   {"name": "type", ...}     typed like template fields, in order: the template's params
                                       bind by position, as IN parameters of a procedure do
    values   {"name": derivation}      computed by BEDS before anything runs:
               "now"                   the current UTC time, whole seconds
               {"lower": "p"}          a str param in lower case (case-insensitive unique keys)
               {"sha256": "p"}         hex SHA-256 of a str param (secrets stored hashed)
               {"const": json}         a constant
    read     [...]                     engine reads, in order, that capture fields as values and
                                       may end the call with an outcome when nothing is found
    next     {"name": "counter"}       the next number of an atomic counter, taken after the reads
                                       (like a sequence: a failed write leaves a gap)
    out      {"out_name": source}      the reply's `out`, by the template's out names
    data     [{"column": source}]      rows of the reply's `data`, for write operations

A source is a value name ("customer_id"), a field of the engine's result ("$modifiedCount",
"$document._id", "$Count"), a JSON scalar (0, true, null), or on DynamoDB a reduction
({"sum": "column", "scale": 2}).

An outcome ends a call early: "conflict" or {"conflict": message} (CONFLICT), {"error": message}
(DB_ERROR carrying the DBA's message, like a SIGNAL), or a successful reply {"out": {...},
"data": [...]} that may first "read" a stored result (the repeat of an idempotent write).

Values only ever fill value positions the DBA marked; nothing a caller sends becomes a key, an
operator, an expression or a name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from beds.errors import ConfigError, Conflict, DbError, RequestError
from beds.table import IDENT_RE, Table, describe
from beds.templates.model import FieldType, Op, OpTarget, Template

Decode = Callable[[str], Any]
_DERIVATIONS = ("lower", "sha256", "const")
_SCALARS = (int, float, bool, type(None))


# -- schema files ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SchemaFile:
    path: Path
    sections: dict[str, Table]       # section name -> its table, in the order the file has them


@dataclass
class SchemaDir:
    """Every JSON file of a schema directory, and each section's entries merged across files."""

    directory: Path
    files: list[SchemaFile] = field(default_factory=list)
    # section -> name -> the section's table in the file that defines it (.table(name) reads it)
    entries: dict[str, dict[str, Table]] = field(default_factory=dict)


def read_schema(directory: Path, sections: Iterable[str], decode: Decode,
                files: list[Path] | None = None) -> SchemaDir:
    """Read `files` (default: every `*.json` of `directory`, by name). A name defined twice in a
    section, an unknown section or a file that is not a JSON object is a ConfigError naming the
    file and the key."""
    allowed = tuple(sections)
    if files is None:
        if not directory.is_dir():
            raise ConfigError(f"{directory}: schema directory not found")
        files = sorted(p for p in directory.glob("*.json") if p.is_file())
    schema = SchemaDir(directory, entries={s: {} for s in allowed})
    for path in files:
        if path.suffix != ".json":
            raise ConfigError(f"{path}: expected a .json schema file")
        try:
            data = decode(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object with sections "
                              f"({', '.join(allowed)})")
        root = Table(data, _origin(path))
        root.reject_unknown(allowed)
        found: dict[str, Table] = {}
        for section in data:
            table = root.table(section)
            found[section] = table
            for name in table.data:
                if not IDENT_RE.fullmatch(name):
                    raise table.fail(name, f"expected a name matching {IDENT_RE.pattern}")
                earlier = schema.entries[section].get(name)
                if earlier is not None:
                    raise table.fail(name, f"already defined in {earlier.origin('')}")
                schema.entries[section][name] = table
        schema.files.append(SchemaFile(path, found))
    return schema


def _origin(path: Path) -> Callable[[str], str]:
    text = str(path)
    return lambda _key: text


def read_json_number_exact(text: str) -> Any:
    """JSON whose fractional numbers stay exact (Decimal), for engines that store decimals."""
    return json.loads(text, parse_float=Decimal)


# -- params, values, sources, outcomes ---------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    type: FieldType


@dataclass(frozen=True)
class Derivation:
    kind: str            # now | lower | sha256 | const
    arg: Any = None      # the param name, or the constant


@dataclass(frozen=True)
class Source:
    kind: str            # value | result | literal | sum
    ref: str = ""        # value name, result path, or the column a sum adds up
    literal: Any = None
    scale: int | None = None


@dataclass(frozen=True)
class Outcome:
    kind: str                                        # conflict | error | reply
    message: str = ""
    out: tuple[tuple[str, Source], ...] = ()
    data: tuple[tuple[tuple[str, Source], ...], ...] = ()
    read: Any = None                                 # an engine read step, before the reply


CONFLICT = Outcome("conflict")


@dataclass(frozen=True)
class Signature:
    """The engine-independent part of a named operation."""

    name: str
    params: tuple[Param, ...]
    values: tuple[tuple[str, Derivation], ...] = ()
    next: tuple[tuple[str, str], ...] = ()           # value name -> counter name
    out: tuple[tuple[str, Source], ...] | None = None
    data: tuple[tuple[tuple[str, Source], ...], ...] | None = None

    def spelled(self) -> str:
        return ", ".join(f"{p.name} {p.type.value}" for p in self.params)


def parse_params(t: Table) -> tuple[Param, ...]:
    table = t.table("params")
    params = []
    for name, kind in table.data.items():
        if not IDENT_RE.fullmatch(name):
            raise table.fail(name, f"expected a name matching {IDENT_RE.pattern}")
        table.text(name, choices=[f.value for f in FieldType])
        params.append(Param(name, FieldType(kind)))
    return tuple(params)


def parse_values(t: Table, params: tuple[Param, ...]) -> tuple[tuple[str, Derivation], ...]:
    table = t.table("values")
    known = {p.name for p in params}
    derived = []
    for name, spec in table.data.items():
        if not IDENT_RE.fullmatch(name) or name in known:
            raise table.fail(name, "expected a new name (not a param) matching "
                                   f"{IDENT_RE.pattern}")
        if spec == "now":
            derived.append((name, Derivation("now")))
            continue
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _DERIVATIONS:
            raise table.fail(name, 'expected "now", {"lower": param}, {"sha256": param} or '
                                   f'{{"const": value}}, got {describe(spec)}')
        kind, arg = next(iter(spec.items()))
        if kind != "const" and arg not in known:
            raise table.fail(f"{name}.{kind}", f"{describe(arg)} is not a param of this operation")
        derived.append((name, Derivation(kind, arg)))
        known.add(name)
    return tuple(derived)


def parse_next(t: Table, taken: set[str]) -> tuple[tuple[str, str], ...]:
    table = t.table("next")
    found = []
    for name in table.data:
        if not IDENT_RE.fullmatch(name) or name in taken:
            raise table.fail(name, f"expected a new value name matching {IDENT_RE.pattern}")
        found.append((name, table.text(name, pattern=IDENT_RE)))
    return tuple(found)


def parse_source(t: Table, key: str, names: set[str], results: bool = True,
                 sums: bool = False) -> Source:
    raw = t.raw(key)
    if isinstance(raw, str):
        if raw.startswith("$"):
            if not results or len(raw) < 2:
                raise t.fail(key, f"no result field to read here, got {describe(raw)}")
            return Source("result", raw[1:])
        if raw not in names:
            known = ", ".join(sorted(names)) or "(none)"
            raise t.fail(key, f"{describe(raw)} is not a value of this operation; known: {known}")
        return Source("value", raw)
    if isinstance(raw, dict) and sums:
        spec = t.table(key)
        spec.reject_unknown(["sum", "scale"])
        return Source("sum", spec.text("sum"), scale=spec.integer("scale", None, minimum=0))
    if isinstance(raw, _SCALARS):
        return Source("literal", literal=raw)
    raise t.fail(key, f'expected a value name, "$result_field" or a JSON scalar, got {describe(raw)}')


def parse_out(t: Table, key: str, names: set[str], results: bool = True,
              sums: bool = False) -> tuple[tuple[str, Source], ...]:
    table = t.table(key)
    return tuple((name, parse_source(table, name, names, results, sums)) for name in table.data)


def parse_rows(t: Table, key: str, names: set[str], results: bool = True,
               sums: bool = False) -> tuple[tuple[tuple[str, Source], ...], ...]:
    raw = t.raw(key)
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise t.fail(key, f"expected a list of row objects, got {describe(raw)}")
    rows = []
    for index, row in enumerate(raw):
        table = Table(row, t.origin, f"{t.key_path(key)}[{index}]", t.error)
        rows.append(tuple((col, parse_source(table, col, names, results, sums))
                          for col in row))
    return tuple(rows)


def parse_outcome(t: Table, key: str, names: set[str],
                  parse_read: Callable[[Table, set[str]], tuple[Any, set[str]]] | None = None,
                  ) -> Outcome:
    """`"conflict"`, {"conflict": msg}, {"error": msg}, or a reply {"read"?, "out"?, "data"?}."""
    raw = t.raw(key)
    if raw == "conflict":
        return CONFLICT
    if not isinstance(raw, dict):
        raise t.fail(key, f'expected "conflict", {{"conflict": message}}, {{"error": message}} '
                          f'or {{"out": ..., "data": ...}}, got {describe(raw)}')
    spec = t.table(key)
    if "conflict" in raw or "error" in raw:
        kind = "conflict" if "conflict" in raw else "error"
        spec.reject_unknown([kind])
        return Outcome(kind, spec.text(kind))
    spec.reject_unknown(["read", "out", "data"] if parse_read else ["out", "data"])
    read = None
    known = set(names)
    if "read" in raw and parse_read is not None:
        read, captured = parse_read(spec.table("read"), known)
        known |= captured
    out = parse_out(spec, "out", known, results=False) if spec.has("out") else ()
    data = parse_rows(spec, "data", known, results=False) if spec.has("data") else ()
    return Outcome("reply", out=out, data=data, read=read)


def outcome_error(outcome: Outcome, default: str, **details: Any) -> RequestError:
    """The error an outcome stands for (never called for a reply)."""
    if outcome.kind == "error":
        return DbError(f"database error: {outcome.message}", **details)
    return Conflict(outcome.message or default, **details)


# -- running: values in, reply out -------------------------------------------------------------------

def bind_params(sig: Signature, args: list[Any]) -> dict[str, Any]:
    """The template's IN values by the operation's param names (positional)."""
    if len(args) != len(sig.params):
        raise DbError(f"database error: operation {sig.name!r} takes {len(sig.params)} params "
                      f"({sig.spelled()}); the template passes {len(args)}")
    return {p.name: value for p, value in zip(sig.params, args, strict=True)}


def derive(sig: Signature, values: dict[str, Any], now: datetime | None = None) -> None:
    """Add the derived values of `sig` to `values`, in declared order."""
    for name, d in sig.values:
        if d.kind == "now":
            values[name] = now or utc_now()
        elif d.kind == "const":
            values[name] = d.arg
        else:
            source = values.get(d.arg)
            if source is None:
                values[name] = None
            elif d.kind == "lower":
                values[name] = str(source).lower()
            else:
                values[name] = hashlib.sha256(str(source).encode()).hexdigest()


def utc_now() -> datetime:
    """Naive UTC, whole seconds: what `"now"` stores (engines keep UTC; replies show it as is)."""
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


def resolve(source: Source, values: Mapping[str, Any], result: Mapping[str, Any] | None = None,
            rows: list[dict[str, Any]] | None = None) -> Any:
    if source.kind == "value":
        return values.get(source.ref)
    if source.kind == "literal":
        return source.literal
    if source.kind == "result":
        return get_path(result or {}, source.ref)
    total = sum((r.get(source.ref) or 0 for r in rows or []), start=0)
    if source.scale is None:
        return total
    return Decimal(total).quantize(Decimal(1).scaleb(-source.scale))


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def build_out(template_out: tuple[str, ...], spec: tuple[tuple[str, Source], ...] | None,
              values: Mapping[str, Any], result: Mapping[str, Any] | None = None,
              rows: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """`out` by the template's names (a name the operation does not give is null), or None when
    the template declares none."""
    if not template_out:
        return None
    given = dict(spec or ())
    return {name: resolve(given[name], values, result, rows) if name in given else None
            for name in template_out}


def build_rows(spec: tuple[tuple[tuple[str, Source], ...], ...], values: Mapping[str, Any],
               result: Mapping[str, Any] | None = None,
               rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [{col: resolve(src, values, result, rows) for col, src in row} for row in spec]


# -- templates check, the part that needs no database ---------------------------------------------

def signature_problems(op: Op, template: Template, sig: Signature, writes: bool) -> list[str]:
    """How a template op and the operation it names disagree."""
    kind = op.target.value
    given = {name for name, _ in sig.out or ()}
    wanted = f"{len(op.params)} params and {len(op.out)} out"
    if op.target is OpTarget.FUNCTION:
        wanted = f"{len(op.params)} params"
    if len(sig.params) != len(op.params) or set(op.out) != given:
        outs = ", ".join(sorted(given)) or "none"
        return [f"{kind} {sig.name!r} takes {len(sig.params)} params ({sig.spelled()}) and gives "
                f"out {outs}; the template declares {wanted}"]
    found = []
    for index, (name, param) in enumerate(zip(op.params, sig.params, strict=True), 1):
        declared = template.fields[name].type
        if declared is not param.type:
            found.append(f"{kind} {sig.name!r} takes param {index} ({param.name}) as "
                         f"{param.type.value}; the template's {name!r} is {declared.value}")
    if writes and op.kind.value == "read":
        found.append(f"{kind} {sig.name!r} writes; the template declares a read op "
                     "(served by the read broker)")
    return found

