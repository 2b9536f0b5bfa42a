"""The node lifespan: build (pure) -> open pools -> declare topology -> start brokers -> wait ->
drain -> close.

Layer: application, top. `Node.build` validates templates, routes, statements and the role's
built-in services before anything connects, so a bad template stops the node before it touches
RabbitMQ or a database. At run time the control plane (beds.ops.control) may scale a broker,
drain and resume the node, or reload its templates.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from typing import Any

from aiormq.abc import AbstractConnection

from beds.adapters import Adapter
from beds.brokers.consumer import Consumer, Shared
from beds.brokers.limits import effective_reply_limit
from beds.brokers.link import AmqpLink, LinkStopped, ReplyPublisher, close_channel, shuffled
from beds.brokers.pool import Pool, Worker
from beds.brokers.topology import declare, declare_ops, unrouted_broker
from beds.config import BrokerSettings, QueueType, RoleSettings, Settings
from beds.config.ops import Service
from beds.dispatch import Dispatcher, adapters_for
from beds.errors import BedsError
from beds.log import flush_every, flush_logs, get_logger
from beds.ops.commands import CommandFailed, operators_of
from beds.ops.context import NodeContext, ServiceFactory
from beds.ops.control import ControlListener
from beds.ops.runtime import OpsRuntime
from beds.reload import bind_new, build_checked, rejected, unbind_gone
from beds.services import service_factory
from beds.templates import TemplateRegistry, load_templates
from beds.templates.names import refuse_clashes
from beds.tracing import Tracing, check_tracing, start_tracing

log = get_logger("beds.node")
CONTROL = BrokerSettings(name="control", queue="", kinds=(), templates=(), instances=1,
                         prefetch=1, queue_type=QueueType.CLASSIC, retries=0)


@dataclass
class Node:
    settings: Settings
    role: RoleSettings
    registry: TemplateRegistry
    adapters: dict[str, Adapter]
    dispatcher: Dispatcher
    services: dict[str, ServiceFactory]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ops: OpsRuntime | None = field(default=None, repr=False)
    # An OpenTelemetry TracerProvider for this node's spans instead of the global or OTEL_* one
    # (tests, applications that embed a node); setting one turns tracing on (beds.tracing).
    tracer_provider: Any = field(default=None, repr=False)
    _tracing: Tracing | None = field(default=None, repr=False)
    draining: bool = False
    _shared: Shared | None = field(default=None, repr=False)
    _ctx: NodeContext | None = field(default=None, repr=False)
    _link: AmqpLink | None = field(default=None, repr=False)
    _pool: Pool | None = field(default=None, repr=False)
    _desired: dict[str, int] = field(default_factory=dict)   # instances per broker, as scaled
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _scaling: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)

    @classmethod
    def build(cls, settings: Settings, role_name: str) -> Node:
        """Everything that can be checked without a socket. Raises ConfigError/TemplateError."""
        role = settings.role(role_name)
        check_tracing(settings)
        registry = TemplateRegistry(load_templates(settings.templates_dir(role_name)))
        registry.freeze()
        refuse_clashes(settings, role_name, registry)
        adapters = adapters_for(settings, registry)
        dispatcher = Dispatcher.build(settings, registry, adapters)
        services = {b: service_factory(settings.brokers[b].service) for b in role.brokers
                    if settings.brokers[b].service is not Service.REQUESTS}
        for name in role.brokers:
            if settings.brokers[name].service is Service.WAREHOUSE:
                from beds.warehouse.mover import check_policy, warehouse_templates
                for template, policy in warehouse_templates(dispatcher):
                    check_policy(dispatcher, template, policy, name)
        node = cls(settings, role, registry, adapters, dispatcher, services)
        node._desired = {b.name: b.instances for b in node.brokers()}
        return node

    def brokers(self) -> list[BrokerSettings]:
        return [self.settings.brokers[name] for name in self.role.brokers]

    def request_brokers(self) -> list[BrokerSettings]:
        return [b for b in self.brokers() if b.service is Service.REQUESTS]

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
            loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)

        flusher = asyncio.ensure_future(flush_every(0.2))
        # Each open is bounded by its datasource's connect_timeout; a stop still ends the wait.
        await _unless(stop, asyncio.gather(*(self._open(name, a)
                                             for name, a in self.adapters.items())))
        # Each node takes the cluster's endpoints in its own order, so nodes spread over it; both
        # links start on the same RabbitMQ node.
        endpoints = shuffled(s.amqp.endpoints)
        consume = AmqpLink(endpoints, f"beds:{s.node.name}:consume", s.amqp.heartbeat,
                           s.amqp.reconnect_max_seconds, stop, on_connect=self._declare)
        publish = AmqpLink(endpoints, f"beds:{s.node.name}:publish", s.amqp.heartbeat,
                           s.amqp.reconnect_max_seconds, stop)
        ops = self.ops = OpsRuntime(s, self.role, self)
        tracing = self._tracing = start_tracing(s, self.role.name, self.tracer_provider)
        try:
            try:
                await consume.connection()   # declares the topology (_declare)
            except LinkStopped:
                return   # asked to stop before RabbitMQ was ever reachable: nothing to drain
            publisher = ReplyPublisher(publish)
            ops.attach(consume, publisher)
            shared = Shared(node=s.node.name, dispatcher=self.dispatcher, link=consume,
                            publisher=publisher,
                            max_message_bytes=s.amqp.max_message_bytes,
                            max_reply_bytes=s.amqp.max_reply_bytes,
                            log_requests=s.node.log_requests,
                            grace_seconds=s.node.grace_seconds,
                            metrics=ops.metrics, audit=ops.audit,
                            redeclare=lambda: self._declare_on(consume))
            self._shared, self._link = shared, consume
            self._ctx = NodeContext(s, self.role, self, consume, publisher, ops.metrics,
                                    ops.events)
            pool = self._pool = Pool(self._make_worker, s.amqp.reconnect_max_seconds,
                                     ops.broker_event)
            ops.metrics.track_inflight(lambda: sum(w.inflight for w in pool.workers()))
            started = pool.start(CONTROL, 1) + pool.start(unrouted_broker(s.amqp), 1)
            for broker in self.brokers():
                started += pool.start(broker, broker.instances)
            await ops.start()
            # In the background: the probe moves max_reply_bytes over the wire (~0.5 s here),
            # and until it answers the configured cap stands.
            self._background(self._check_reply_limit(publish, shared))
            await self._announce_ready(started, stop)
            await stop.wait()
            for task in list(self._tasks):
                task.cancel()
            ops.stopping = True   # /ready answers 503 from now on, while in-flight work drains
            ops.events.emit("stopping")
            await pool.close()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await ops.stop()
            await asyncio.gather(*(a.close() for a in self.adapters.values()),
                                 return_exceptions=True)
            if tracing is not None:
                await tracing.close()
            await publish.close()
            await consume.close()
            log.info("node.stopped", node=s.node.name)
            flusher.cancel()
            flush_logs()

    async def _declare(self, conn: AbstractConnection) -> None:
        """The topology, on every new consume connection: after a failover the endpoint may be
        a broker that never saw it (RabbitMQ's clustering guide: clients recover their
        topology); on a cluster it is there and the declarations are no-ops."""
        channel = await conn.channel()
        try:
            await declare(channel, self.settings.amqp,
                          {b: self.dispatcher.keys_for(b.name) for b in self.request_brokers()})
            await declare_ops(channel, self.settings.ops)
        finally:
            await close_channel(channel)

    async def _declare_on(self, link: AmqpLink) -> None:
        await self._declare(await link.connection())

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("node.background_failed", error=f"{type(exc).__name__}: {exc}")

    async def _check_reply_limit(self, link: AmqpLink, shared: Shared) -> None:
        amqp = self.settings.amqp
        shared.max_reply_bytes = await effective_reply_limit(link, amqp.max_reply_bytes,
                                                             amqp.max_message_bytes)

    def _make_worker(self, broker: BrokerSettings, instance: int) -> Worker:
        assert self._shared is not None and self._ctx is not None and self.ops is not None
        if broker is CONTROL:
            return ControlListener(broker, self.settings.node.name,
                                   self.settings.ops.control_exchange, self._shared.link,
                                   self._shared.publisher, self,
                                   operators_of(self.settings.ops.operators,
                                                self.settings.amqp.url))
        if broker.service is Service.REQUESTS:
            if self._tracing is not None:
                return self._tracing.consumer(broker, instance, self._shared)
            return Consumer(broker, instance, self._shared)
        return self.services[broker.name](self._ctx, broker, instance)

    # -- the control plane --------------------------------------------------------------------

    def _reload_on_signal(self) -> None:
        task = asyncio.ensure_future(self.reload())
        self._tasks.add(task)   # referenced until done, and its failure is logged
        task.add_done_callback(self._reload_done)

    def _reload_done(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("templates.reload_failed", error=f"{type(exc).__name__}: {exc}",
                      hint="the routes may be half rebound: send SIGHUP again")

    async def reload(self) -> bool:
        """Reload templates/ (SIGHUP): the new set serves only if it is valid and matches the
        live database; otherwise the old set keeps serving. True if the new set is in."""
        async with self._reloading:
            try:
                new = await build_checked(self.settings, self.adapters, self.role.name)
            except BedsError as exc:
                rejected(exc)
                return False
            old = self.dispatcher
            added: list[str] = []
            removed: list[str] = []
            channel = await self._link.channel() if self._link is not None else None
            queues = {b.name: b.queue for b in self.request_brokers()}
            exchange = self.settings.amqp.exchange
            try:
                if channel is not None:
                    added = await bind_new(channel, exchange, queues, old, new.dispatcher)
                self.registry, self.adapters, self.dispatcher = (new.registry, new.adapters,
                                                                 new.dispatcher)
                if self._shared is not None:
                    self._shared.dispatcher = new.dispatcher   # consumers read it per message
                if channel is not None:
                    removed = await unbind_gone(channel, exchange, queues, old, new.dispatcher)
            finally:
                if channel is not None and not channel.is_closed:
                    await channel.close()
            log.info("templates.reloaded", templates=self.registry.names(),
                     routes=len(new.dispatcher.routes), bound=added, unbound=removed)
            if self.ops is not None and self.ops.events is not None:
                self.ops.events.emit("reloaded", templates=self.registry.names(), bound=added,
                                     unbound=removed)
            return True

    async def set_instances(self, broker: str, count: int) -> dict[str, Any]:
        if broker not in self.role.brokers:
            raise CommandFailed("BAD_COMMAND", f"set-instances: args.broker: node "
                                f"{self.settings.node.name} (role {self.role.name}) runs no "
                                f"broker {broker!r}; its brokers: {', '.join(self.role.brokers)}")
        async with self._scaling:
            before = self._desired.get(broker, 0)
            self._desired[broker] = count
            if self._pool is not None and not self.draining:
                await self._pool.scale(self.settings.brokers[broker], count)
        log.info("broker.scaled", broker=broker, before=before, instances=count)
        if self.ops is not None:
            self.ops.events.emit("scaled", broker=broker, before=before, instances=count)
        return {"node": self.settings.node.name, "broker": broker, "before": before,
                "instances": count, "draining": self.draining}

    async def drain(self) -> dict[str, Any]:
        """Stop taking requests (in-flight ones finish); the node stays up and controllable."""
        async with self._scaling:
            if not self.draining and self._pool is not None:
                self.draining = True
                await self._pool.stop_all([b.name for b in self.brokers()])
        log.info("node.drained", node=self.settings.node.name)
        if self.ops is not None:
            self.ops.events.emit("drained")
        return await self.describe()

    async def resume(self) -> dict[str, Any]:
        async with self._scaling:
            if self.draining and self._pool is not None:
                self.draining = False
                for broker in self.brokers():
                    self._pool.start(broker, self._desired.get(broker.name, 0))
        log.info("node.resumed", node=self.settings.node.name)
        if self.ops is not None:
            self.ops.events.emit("resumed")
        return await self.describe()

    async def describe(self) -> dict[str, Any]:
        assert self.ops is not None
        brokers = {}
        for b in self.brokers():
            running = [w for w in self._pool.workers() if w.broker.name == b.name] \
                if self._pool else []
            brokers[b.name] = {"queue": b.queue, "service": b.service.value,
                               "instances": len(running), "desired": self._desired.get(b.name, 0),
                               "consuming": sum(1 for w in running if w.consuming.is_set())}
        return self.ops.describe(brokers, self.registry.names(), len(self.dispatcher.routes))

    # -- start-up -----------------------------------------------------------------------------

    async def _open(self, name: str, adapter: Adapter) -> None:
        try:
            await adapter.open()
        except Exception as exc:  # the node serves DB_UNAVAILABLE until the database is back
            log.warning("datasource.unavailable", datasource=name,
                        error=f"{type(exc).__name__}: {exc}")

    async def _announce_ready(self, workers: list[Worker], stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(w.consuming.wait()) for w in workers]
        stopping = asyncio.ensure_future(stop.wait())
        try:
            if waits:
                watched: list[asyncio.Future[Any]] = [asyncio.gather(*waits), stopping]
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            for w in waits:
                w.cancel()
        if not stop.is_set():
            self.ready.set()
            assert self.ops is not None
            self.ops.events.emit("started", brokers=self._desired)
            log.info("node.ready", node=self.settings.node.name, role=self.role.name,
                     brokers={b.name: b.instances for b in self.brokers()},
                     templates=self.registry.names(), routes=len(self.dispatcher.routes))


async def _unless(stop: asyncio.Event, work: asyncio.Future[Any]) -> None:
    """Await `work`, or cancel it as soon as `stop` is set."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not work.done():
            work.cancel()
