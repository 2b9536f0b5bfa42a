"""The node lifespan: build (pure) -> open pools -> declare topology -> start brokers -> wait ->
drain -> close.

Layer: application, top. `Node.build` validates templates, routes and statements before anything
connects, so a bad template stops the node before it touches RabbitMQ or a database.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from typing import Any

from beds.adapters import Adapter
from beds.brokers.consumer import Consumer, Shared
from beds.brokers.link import AmqpLink, LinkStopped, ReplyPublisher
from beds.brokers.pool import run_pool
from beds.brokers.topology import declare, unrouted_broker
from beds.config import BrokerSettings, RoleSettings, Settings
from beds.errors import BedsError
from beds.factory import Dispatcher, adapters_for
from beds.log import flush_every, flush_logs, get_logger
from beds.reload import build_checked, rebind, rejected
from beds.templates import TemplateRegistry, load_templates

log = get_logger("beds.node")


@dataclass
class Node:
    settings: Settings
    role: RoleSettings
    registry: TemplateRegistry
    adapters: dict[str, Adapter]
    dispatcher: Dispatcher
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _shared: Shared | None = field(default=None, repr=False)
    _link: AmqpLink | None = field(default=None, repr=False)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    def build(cls, settings: Settings, role_name: str) -> Node:
        """Everything that can be checked without a socket. Raises ConfigError/TemplateError."""
        role = settings.role(role_name)
        registry = TemplateRegistry(load_templates(settings.node.templates_dir))
        registry.freeze()
        adapters = adapters_for(settings, registry)
        dispatcher = Dispatcher.build(settings, registry, adapters)
        return cls(settings, role, registry, adapters, dispatcher)

    def brokers(self) -> list[BrokerSettings]:
        return [self.settings.brokers[name] for name in self.role.brokers]

    async def run(self, stop: asyncio.Event | None = None, handle_signals: bool = True) -> None:
        """Serve until `stop` is set (or SIGTERM/SIGINT), then drain and close."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        s = self.settings

        def request_stop(signame: str) -> None:
            if not stop.is_set():
                log.info("node.stopping", signal=signame, grace_seconds=s.node.grace_seconds)
                stop.set()

        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if handle_signals else ()
        for sig in signals[:2]:
            loop.add_signal_handler(sig, request_stop, sig.name)
        if handle_signals:
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

        flusher = asyncio.ensure_future(flush_every(0.2))
        await asyncio.gather(*(self._open(name, a) for name, a in self.adapters.items()))
        consume = AmqpLink(s.amqp.url, f"beds:{s.node.name}:consume", s.amqp.heartbeat,
                           s.amqp.reconnect_max_seconds, stop)
        publish = AmqpLink(s.amqp.url, f"beds:{s.node.name}:publish", s.amqp.heartbeat,
                           s.amqp.reconnect_max_seconds, stop)
        try:
            try:
                channel = await consume.channel()
            except LinkStopped:
                return   # asked to stop before RabbitMQ was ever reachable: nothing to drain
            await declare(channel, s.amqp,
                          {b: self.dispatcher.keys_for(b.name) for b in self.brokers()})
            await channel.close()
            shared = Shared(node=s.node.name, dispatcher=self.dispatcher, link=consume,
                            publisher=ReplyPublisher(publish),
                            max_message_bytes=s.amqp.max_message_bytes,
                            max_reply_bytes=s.amqp.max_reply_bytes,
                            log_requests=s.node.log_requests,
                            grace_seconds=s.node.grace_seconds)
            self._shared, self._link = shared, consume
            consumers = [Consumer(b, i, shared) for b in self.brokers() for i in range(b.instances)]
            consumers.append(Consumer(unrouted_broker(s.amqp), 0, shared))
            pool = asyncio.ensure_future(run_pool(consumers, stop, s.amqp.reconnect_max_seconds))
            await self._announce_ready(consumers, stop, pool)
            await pool
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await asyncio.gather(*(a.close() for a in self.adapters.values()),
                                 return_exceptions=True)
            await publish.close()
            await consume.close()
            log.info("node.stopped", node=s.node.name)
            flusher.cancel()
            flush_logs()

    async def reload(self) -> bool:
        """Reload templates/ (SIGHUP): the new set serves only if it is valid and matches the
        live database; otherwise the old set keeps serving. True if the new set is in."""
        async with self._reloading:
            try:
                new = await build_checked(self.settings, self.adapters)
            except BedsError as exc:
                rejected(exc)
                return False
            old = self.dispatcher
            self.registry, self.adapters, self.dispatcher = new.registry, new.adapters, new.dispatcher
            if self._shared is not None:
                self._shared.dispatcher = new.dispatcher   # consumers read it per message
            added: list[str] = []
            removed: list[str] = []
            if self._link is not None:
                channel = await self._link.channel()
                queues = {b.name: b.queue for b in self.brokers()}
                added, removed = await rebind(channel, self.settings.amqp.exchange, queues,
                                              old, new.dispatcher)
                await channel.close()
            log.info("templates.reloaded", templates=self.registry.names(),
                     routes=len(new.dispatcher.routes), bound=added, unbound=removed)
            return True

    async def _open(self, name: str, adapter: Adapter) -> None:
        try:
            await adapter.open()
        except Exception as exc:  # the node serves DB_UNAVAILABLE until the database is back
            log.warning("datasource.unavailable", datasource=name,
                        error=f"{type(exc).__name__}: {exc}")

    async def _announce_ready(self, consumers: list[Consumer], stop: asyncio.Event,
                              pool: asyncio.Future[None]) -> None:
        waits = [asyncio.ensure_future(c.consuming.wait()) for c in consumers]
        stopping = asyncio.ensure_future(stop.wait())
        try:
            if waits:
                watched: list[asyncio.Future[Any]] = [asyncio.gather(*waits), stopping, pool]
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            for w in waits:
                w.cancel()
        if not stop.is_set():
            self.ready.set()
            log.info("node.ready", node=self.settings.node.name, role=self.role.name,
                     brokers={b.name: b.instances for b in self.brokers()},
                     templates=self.registry.names(), routes=len(self.dispatcher.routes))

