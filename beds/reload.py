"""Live template reload (SIGHUP): build and check the new set, then swap it in between messages.

Layer: application. The new templates are loaded, validated, routed, prepared and checked against
the live database before anything changes; an invalid set is rejected with a log line naming the
problem and the old set keeps serving. After the swap the queue bindings follow the new ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiormq.abc import AbstractChannel

from beds.adapters import Adapter
from beds.config import Settings
from beds.errors import BedsError, TemplateError
from beds.factory import Dispatcher, adapters_for
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
    open adapters; opens one for a datasource the current set did not use."""
    registry = TemplateRegistry(load_templates(settings.templates_dir(role)))
    registry.freeze()
    if role is not None:
        refuse_clashes(settings, role, registry)
    adapters = adapters_for(settings, registry, current)
    for name, adapter in adapters.items():
        if name not in current:
            await adapter.open()
    dispatcher = Dispatcher.build(settings, registry, adapters)
    problems = []
    for name, adapter in adapters.items():
        templates = [t for t in registry if t.datasource == name]
        if templates:
            problems += [p for p in await adapter.check(templates) if not p.warning]
    if problems:
        raise TemplateError("; ".join(str(p) for p in problems))
    return Catalogue(registry, adapters, dispatcher)


async def rebind(channel: AbstractChannel, exchange: str, queues: Mapping[str, str],
                 old: Dispatcher, new: Dispatcher) -> tuple[list[str], list[str]]:
    """Bind each broker queue to the routing keys of its new ops, unbind the ones gone."""
    added: list[str] = []
    removed: list[str] = []
    for broker, queue in queues.items():
        before, after = set(old.keys_for(broker)), set(new.keys_for(broker))
        for key in sorted(after - before):
            await channel.queue_bind(queue, exchange, routing_key=key)
            added.append(key)
        for key in sorted(before - after):
            await channel.queue_unbind(queue, exchange, routing_key=key)
            removed.append(key)
    return added, removed


def rejected(exc: BedsError) -> None:
    log.error("templates.reload_rejected", error=str(exc),
              hint="the templates that were serving keep serving")
