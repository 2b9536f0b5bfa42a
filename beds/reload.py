"""Live template reload (SIGHUP): build and check the new set, then swap it in between messages.

Layer: application. The new templates are loaded, validated, routed, prepared and checked against
the live database before anything changes; an invalid set is rejected with a log line naming the
problem and the old set keeps serving. Queues are bound to the new ops' routing keys before the
swap and unbound from the old ones after it, so no request lands on a queue whose node cannot
serve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiormq.abc import AbstractChannel

from beds.adapters import Adapter, schema_tool
from beds.config import Settings
from beds.dispatch import Dispatcher, adapters_for
from beds.errors import BedsError, TemplateError
from beds.log import get_logger
from beds.templates import TemplateRegistry, load_templates
from beds.templates.names import refuse_clashes

log = get_logger("beds.reload")


@dataclass(frozen=True)
class Catalogue:
    """What a node serves: its templates, their adapters and the routes built from both."""

    registry: TemplateRegistry
    adapters: dict[str, Adapter]
    dispatcher: Dispatcher


async def build_checked(settings: Settings, current: Mapping[str, Adapter],
                        role: str | None = None) -> Catalogue:
    """The templates on disk as a new catalogue, checked against the live database. Reuses the
    open adapters; opens one for a datasource the current set did not use, and closes it again
    when the new set is rejected."""
    registry = TemplateRegistry(load_templates(settings.templates_dir(role)))
    registry.freeze()
    if role is not None:
        refuse_clashes(settings, role, registry)
    adapters = adapters_for(settings, registry, current)
    opened = {name: a for name, a in adapters.items() if name not in current}
    try:
        for adapter in opened.values():
            await adapter.open()
        dispatcher = Dispatcher.build(settings, registry, adapters)
        problems = []
        for name, adapter in adapters.items():
            templates = [t for t in registry if t.datasource == name]
            if templates:
                problems += [p for p in await schema_tool(adapter).check(templates) if not p.warning]
        if problems:
            raise TemplateError("; ".join(str(p) for p in problems))
    except BaseException:
        await asyncio.gather(*(a.close() for a in opened.values()), return_exceptions=True)
        raise
    return Catalogue(registry, adapters, dispatcher)


async def bind_new(channel: AbstractChannel, exchange: str, queues: Mapping[str, str],
                   old: Dispatcher, new: Dispatcher) -> list[str]:
    """Bind each broker queue to the routing keys its new ops add. Before the swap: a request
    for a moved op then reaches both queues for a moment, never neither (dead-lettered)."""
    added: list[str] = []
    for broker, queue in queues.items():
        for key in sorted(set(new.keys_for(broker)) - set(old.keys_for(broker))):
            await channel.queue_bind(queue, exchange, routing_key=key)
            added.append(key)
    return added


async def unbind_gone(channel: AbstractChannel, exchange: str, queues: Mapping[str, str],
                      old: Dispatcher, new: Dispatcher) -> list[str]:
    """After the swap: unbind the routing keys of the ops a broker no longer serves."""
    removed: list[str] = []
    for broker, queue in queues.items():
        for key in sorted(set(old.keys_for(broker)) - set(new.keys_for(broker))):
            await channel.queue_unbind(queue, exchange, routing_key=key)
            removed.append(key)
    return removed


def rejected(exc: BedsError) -> None:
    log.error("templates.reload_rejected", error=str(exc),
              hint="the templates that were serving keep serving")
