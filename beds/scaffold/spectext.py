"""A validated spec back to TOML (what `--describe` writes): the canonical form, so the file
holds exactly what was validated, not the endpoint's text.

Layer: tooling. Pure.
"""

from __future__ import annotations

from typing import Any

from beds.scaffold import tomltext
from beds.scaffold.spec import Spec, SpecField
from beds.templates.model import FieldType


def dump_spec(spec: Spec, comment: str = "") -> str:
    lines = [f"# {line}" for line in comment.splitlines()]
    top: list[tuple[str, Any]] = [
        ("name", spec.name), ("description", spec.description or None),
        ("datasource", spec.datasource), ("primary_key", spec.primary_key),
        ("generated_key", spec.generated_key
         if spec.generated_key != (spec.key.type is FieldType.INT) else None),
        ("unique", [k[0] if len(k) == 1 else list(k) for k in spec.unique] or None),
        ("soft_delete", spec.soft_delete or None), ("audit", spec.audit or None),
    ]
    lines += [f"{k} = {tomltext.value(v)}" for k, v in top if v is not None]
    lines += ["", "[fields]"]
    lines += tomltext.aligned([(f.name, tomltext.inline(_field(f)))
                               for f in spec.fields.values()])
    lines += ["", "[ops]"]
    lines += [f"{name} = {tomltext.value(value)}" for name, value in _ops(spec)]
    return "\n".join(lines) + "\n"


def _field(f: SpecField) -> list[tuple[str, Any]]:
    decimal = f.type is FieldType.DECIMAL
    return [
        ("type", f.type.value), ("required", None if f.required else False),
        ("min", f.min), ("max", f.max), ("max_length", f.max_length), ("pattern", f.pattern),
        ("choices", list(f.choices) if f.choices else None),
        ("precision", f.precision if decimal else None),
        ("scale", f.scale if decimal else None),
        ("description", f.description or None), ("example", f.example),
    ]


def _ops(spec: Spec) -> list[tuple[str, Any]]:
    said = spec.descriptions

    def table(options: dict[str, Any], name: str) -> Any:
        options = {k: v for k, v in options.items() if v is not None}
        if said.get(name):
            options["description"] = said[name]
        return options or True

    found: list[tuple[str, Any]] = []
    if spec.fetch_by is not None:
        found.append(("fetch", table(
            {"by": spec.fetch_by if spec.fetch_by != spec.primary_key else None}, "fetch")))
    if spec.list is not None:
        found.append(("list", table({"filters": list(spec.list.filters) or None,
                                     "order_by": list(spec.list.order_by),
                                     "limit": spec.list.limit}, "list")))
    if spec.create:
        found.append(("create", table({}, "create")))
    if spec.update is not None:
        found.append(("update", table({"fields": list(spec.update)}, "update")))
    if spec.delete:
        found.append(("delete", table({}, "delete")))
    return found
