"""Which write ops may run twice without saying why: the template half of `beds templates check`.

Layer: domain. Pure; reads loaded templates only.

A redelivery (a node died before its ack, a caller retried after a timeout) runs a write again
unless its procedure records an idempotency key. Every write therefore either declares
`idempotency_key` or says in `on_repeat` what a second run does and why that is acceptable.
"""

from __future__ import annotations

from collections.abc import Iterable

from beds.config import OpKind
from beds.templates.model import Template


def unexplained_repeats(templates: Iterable[Template]) -> list[tuple[str, str]]:
    """(where, message) for each write or bulk op with neither an idempotency key nor an
    `on_repeat` explanation."""
    found = []
    for template in templates:
        for op in template.ops.values():
            if op.kind is OpKind.READ or op.idempotency_key or op.on_repeat:
                continue
            found.append((f"{template.path}: ops.{op.name}",
                          f"{template.name}.{op.name} is a {op.kind.value} op without "
                          "idempotency_key: a redelivery or a caller's retry runs it again. "
                          "Declare a key (see schema/mysql/060_idempotency.sql) or say why a "
                          "repeat is harmless with on_repeat = \"...\""))
    return found
