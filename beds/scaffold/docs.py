"""Markdown for a template: what each op takes and returns, with an example request and reply.

Layer: tooling (scaffold docs). Pure. Used twice: `beds scaffold` writes `docs/templates/NAME.md` with
`ReplyHint`s it knows from the spec (the columns a fetch returns, what an out value means);
`beds docs` renders every loaded template into the catalogue, where only the template is known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from beds.scaffold.examples import made_up_example
from beds.templates.model import Field, FieldType, Op, OpTarget, Template

DEFAULT_BROKERS = {"read": "rBroker", "write": "wBroker", "bulk": "mBroker"}
_FORMATS = {FieldType.DECIMAL: 'exact: a string such as "12.50" (or a number)',
            FieldType.DATE: "YYYY-MM-DD", FieldType.DATETIME: "ISO 8601, e.g. 2026-01-31T12:00:00",
            FieldType.BOOL: "true or false", FieldType.JSON: "any JSON value"}


@dataclass(frozen=True)
class ReplyHint:
    """What the scaffold knows about an op's reply beyond its template."""

    rows: list[dict[str, Any]] = field(default_factory=list)   # example data rows
    out: dict[str, Any] | None = None                           # example out values
    returns: str = ""                                           # one line: what comes back


def examples_for(template: Template, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An example value per field: the given one, else made up (None when none fits)."""
    given = given or {}
    return {name: given.get(name, made_up_example(f)) for name, f in template.fields.items()}


def render_template_doc(template: Template, *, exchange: str = "beds", level: int = 1,
                        hints: Mapping[str, ReplyHint] | None = None,
                        examples: Mapping[str, Any] | None = None,
                        brokers: Mapping[str, str] | None = None, intro: str = "") -> str:
    h = "#" * level
    values = dict(examples) if examples is not None else examples_for(template)
    lines = [f"{h} {template.name}", ""]
    if template.description:
        lines += [template.description, ""]
    if intro:
        lines += [intro, ""]
    lines += [f"Datasource `{template.datasource}`. Each op is a request/reply on the "
              f"`{exchange}` exchange with routing key `{template.name}.<op>` (see the README's "
              "wire protocol).", "",
              "| op | kind | takes | returns |", "|---|---|---|---|"]
    for op in template.ops.values():
        takes = ", ".join(f"`{n}`" for n in (op.filters or op.params)) or "nothing"
        lines.append(f"| [{op.name}](#{template.name}{op.name}) | {op.kind.value} | {takes} | "
                     f"{_returns(op, (hints or {}).get(op.name))} |")
    lines += ["", f"{h}# Fields", "", "| field | type | constraints | description |",
              "|---|---|---|---|"]
    for f in template.fields.values():
        lines.append(f"| `{f.name}` | {f.type.value} | {constraints(f)} | "
                     f"{_cell(f.description)} |")
    for op in template.ops.values():
        hint = (hints or {}).get(op.name)
        broker = (brokers or {}).get(op.name, DEFAULT_BROKERS[op.kind.value])
        lines += ["", *_op_section(template, op, hint, values, exchange, broker, level + 1)]
    return "\n".join(lines) + "\n"


def constraints(f: Field, say_optional: bool = True) -> str:
    found = ["optional"] if say_optional and not f.required else []
    if f.type in _FORMATS:
        found.append(_FORMATS[f.type])
    integral = f.type is FieldType.INT

    def num(v: float) -> str:
        return str(int(v)) if integral else format(Decimal(repr(v)).normalize(), "f")

    if f.min is not None:
        found.append(f">= {num(f.min)}")
    if f.max is not None:
        found.append(f"<= {num(f.max)}")
    if f.max_length is not None:
        found.append(f"at most {f.max_length} characters")
    if f.pattern is not None:
        found.append(f"matches `{f.pattern}`")
    if f.choices is not None:
        found.append("one of " + ", ".join(f"`{json.dumps(c)}`" for c in f.choices))
    if f.protected:
        found.append("protected: never returned or logged")
    return _cell("; ".join(found)) or "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _returns(op: Op, hint: ReplyHint | None) -> str:
    if hint is not None and hint.returns:
        return _cell(hint.returns)
    if op.target is OpTarget.VIEW:
        text = f"rows of view `{op.object_name}` (a page: at most {op.limit})"
    elif op.target is OpTarget.FUNCTION:
        text = f'`[{{"value": ...}}]` from function `{op.object_name}`'
    else:
        text = f"the result sets of procedure `{op.object_name}`"
    if op.out:
        text += "; out: " + ", ".join(f"`{n}`" for n in op.out)
    return _cell(text)


def example_request(template: Template, op: Op, values: Mapping[str, Any]) -> dict[str, Any]:
    if op.target is OpTarget.VIEW:
        names = list(op.filters[:1])
    else:   # the required params and one optional one: enough to show the shape
        wanted = [n for n in op.params if n != op.idempotency_key]
        required = [n for n in wanted if n not in op.optional and template.fields[n].required]
        optional = [n for n in wanted if n not in required and values.get(n) is not None]
        names = [n for n in wanted if n in required or n in optional[:1]]
    params = {n: values[n] for n in names if values.get(n) is not None}
    request: dict[str, Any] = {"template": template.name, "op": op.name, "params": params}
    if op.target is OpTarget.VIEW:
        request["limit"] = min(op.limit, 10)
    return request


def example_reply(template: Template, op: Op, hint: ReplyHint | None,
                  broker: str) -> dict[str, Any] | None:
    if hint is None:
        return None
    reply: dict[str, Any] = {"ok": True, "data": hint.rows}
    if op.out:
        reply["out"] = hint.out or {n: None for n in op.out}
    reply["meta"] = {"template": template.name, "op": op.name, "node": "n1", "broker": broker,
                     "rows": len(hint.rows), "elapsed_ms": 1.4}
    return reply


def _op_section(template: Template, op: Op, hint: ReplyHint | None, values: Mapping[str, Any],
                exchange: str, broker: str, level: int) -> list[str]:
    h = "#" * level
    target = f"{op.target.value} `{op.object_name}`"
    lines = [f'<a id="{template.name}{op.name}"></a>', f"{h} {template.name}.{op.name}", ""]
    if op.description:
        lines += [op.description, ""]
    lines += [f"- routing key `{template.name}.{op.name}` on exchange `{exchange}`; kind "
              f"`{op.kind.value}` (broker `{broker}`); runs {target}"]
    lines += _takes(template, op)
    lines += [f"- returns: {_returns(op, hint)}", ""]
    lines += ["Example request:", "", "```json",
              json.dumps(example_request(template, op, values), ensure_ascii=False), "```"]
    reply = example_reply(template, op, hint, broker)
    if reply is not None:
        lines += ["", "Example reply:", "", "```json",
                  json.dumps(reply, ensure_ascii=False, indent=2), "```"]
    return lines


def _takes(template: Template, op: Op) -> list[str]:
    if op.target is OpTarget.VIEW:
        if not op.filters:
            return ["- takes: no filters; `limit` and `offset` page through the rows"]
        names = ", ".join(f"`{n}`" for n in op.filters)
        order = ", ".join(o.column + (" desc" if o.descending else "") for o in op.order_by)
        return [f"- takes: optional equality filters {names}; `limit` (at most {op.limit}) and "
                f"`offset`; rows ordered by {order or 'the view'}"]
    if not op.params:
        return ["- takes: no params"]
    lines = ["- takes:"]
    for name in op.params:
        f = template.fields[name]
        required = "required" if name not in op.optional and f.required else "optional"
        if name == op.idempotency_key:
            required = "optional, defaults to the AMQP `message_id`"
        lines.append(f"  - `{name}` ({f.type.value}, {required}): "
                     f"{constraints(f, say_optional=False)}")
    return lines
