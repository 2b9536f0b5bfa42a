"""From a spec to the objects every engine generates: names, the op signatures, the view columns.

Layer: tooling. Pure. The template writer, each engine's generator and the docs all read this,
so the procedure a template names and the procedure a schema file creates cannot disagree.

    op      object                 params (IN, in order)                         out
    fetch   procedure NAME_fetch   the fetch key                                 -
    list    view NAME_list         filters (equality), order_by, limit           -
    create  procedure NAME_create  request_id, every field but a generated key   the generated key
    update  procedure NAME_update  request_id, key, the changeable fields        updated (0 or 1)
    delete  procedure NAME_delete  request_id, key                               deleted (0 or 1)

create/update/delete take the idempotency key `request_id` FIRST and record it in request_log
in the same transaction as the write (the pattern of schema/*/060_idempotency.sql).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from beds.config import OpKind
from beds.scaffold.spec import INDEXABLE_CHARS, Spec, SpecField
from beds.templates.model import Field, FieldType, OpTarget

REQUEST_ID = "request_id"
REQUEST_ID_FIELD = Field(
    name=REQUEST_ID, type=FieldType.STR, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
    description="Idempotency key: a repeat with the same key returns the first outcome "
                "(default: the AMQP message_id)")
MAX_IDENT = 63     # PostgreSQL's limit; MariaDB's is 64


@dataclass(frozen=True)
class OpDesign:
    name: str
    kind: OpKind
    target: OpTarget
    object_name: str
    params: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    out: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    limit: int = 0
    idempotency_key: str | None = None
    description: str = ""


def view_name(spec: Spec) -> str:
    return f"{spec.name}_list"


def audit_table(spec: Spec) -> str:
    return f"{spec.name}_audit"


def view_columns(spec: Spec) -> list[str]:
    """What fetch and list return, in order: every field, then when the row was written."""
    return [*spec.fields, "created_at", "updated_at"]


def index_name(prefix: str, table: str, columns: tuple[str, ...]) -> str:
    name = f"{prefix}_{table}_{'_'.join(columns)}"
    if len(name) <= MAX_IDENT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_IDENT - 9]}_{digest}"


def index_columns(spec: Spec) -> list[tuple[str, ...]]:
    """List filters get an index unless a key already starts with that column (or it is text
    too long to index whole)."""
    led = {spec.primary_key, *(key[0] for key in spec.unique)}
    filters = spec.list.filters if spec.list else ()
    return [(f,) for f in filters
            if f not in led and (spec.fields[f].max_length or 0) <= INDEXABLE_CHARS]


def create_fields(spec: Spec) -> list[SpecField]:
    return [f for f in spec.fields.values() if not (spec.generated_key and f.name == spec.primary_key)]


def ops(spec: Spec) -> list[OpDesign]:
    found: list[OpDesign] = []
    noun = spec.name.replace("_", " ")
    say = spec.descriptions
    if spec.fetch_by is not None:
        found.append(OpDesign(
            "fetch", OpKind.READ, OpTarget.PROCEDURE, f"{spec.name}_fetch", (spec.fetch_by,),
            description=say.get("fetch") or f"One {noun} by {spec.fetch_by} (no rows when "
                                             "there is none)"))
    if spec.list is not None:
        found.append(OpDesign(
            "list", OpKind.READ, OpTarget.VIEW, view_name(spec), filters=spec.list.filters,
            order_by=spec.list.order_by, limit=spec.list.limit,
            description=say.get("list") or _list_text(spec, noun)))
    if spec.create:
        fields = create_fields(spec)
        found.append(OpDesign(
            "create", OpKind.WRITE, OpTarget.PROCEDURE, f"{spec.name}_create",
            (REQUEST_ID, *(f.name for f in fields)),
            tuple(f.name for f in fields if not f.required),
            (spec.primary_key,) if spec.generated_key else (), idempotency_key=REQUEST_ID,
            description=say.get("create") or f"Create a {noun}" + (
                f"; returns its new {spec.primary_key}" if spec.generated_key else "")))
    if spec.update is not None:
        found.append(OpDesign(
            "update", OpKind.WRITE, OpTarget.PROCEDURE, f"{spec.name}_update",
            (REQUEST_ID, spec.primary_key, *spec.update), spec.update, ("updated",),
            idempotency_key=REQUEST_ID,
            description=say.get("update") or f"Change a {noun}: a field left out (or null) "
                        "keeps its value; updated is 1, or 0 when there is no such " + noun))
    if spec.delete:
        how = "mark" if spec.soft_delete else "remove"
        found.append(OpDesign(
            "delete", OpKind.WRITE, OpTarget.PROCEDURE, f"{spec.name}_delete",
            (REQUEST_ID, spec.primary_key), (), ("deleted",), idempotency_key=REQUEST_ID,
            description=say.get("delete") or f"Delete a {noun} ({how} it); deleted is 1, "
                        f"or 0 when there is no such {noun}"))
    return found


def _list_text(spec: Spec, noun: str) -> str:
    assert spec.list is not None
    text = f"Page through {noun} rows"
    if spec.list.filters:
        text += ", optionally filtered by " + " and ".join(spec.list.filters)
    order = ", ".join(o.lstrip("-") + (" descending" if o.startswith("-") else "")
                      for o in spec.list.order_by)
    return f"{text}, ordered by {order}"
