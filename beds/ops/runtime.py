"""A node's operations runtime: metrics, events, the periodic snapshot, /live /ready /metrics,
and log shipping (warning-and-above lines and audit events, see beds.ops.logship).

Layer: operations. The node owns one; nothing here is on the per-message path except
`NodeMetrics.observe` and the `audit` hook, both called by the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import msgspec

from beds.brokers.link import AMQP_ERRORS, AmqpLink, ReplyPublisher, sleep_unless
from beds.config import RoleSettings, Settings
from beds.log import get_logger
from beds.ops.context import ServingNode
from beds.ops.events import Events
from beds.ops.http import HttpEndpoint, health_app, passed
from beds.ops.logship import LogShipper, bind_node
from beds.ops.metrics import NodeMetrics
from beds.ops.replica_metrics import replica_reports, track_replicas

log = get_logger("beds.ops")
PING_TIMEOUT = 2.0     # a datasource slower than this to answer `SELECT 1` is not ready


class OpsRuntime:
    def __init__(self, settings: Settings, role: RoleSettings, node: ServingNode) -> None:
        self.settings = settings
        self.role = role
        self.node = node
        self.name = settings.node.name
        # Series only for what the node serves (read per new key: reloads change the routes).
        self.metrics = NodeMetrics(self.name, known=lambda key: key in node.dispatcher.routes)
        track_replicas(self.metrics.registry, lambda: node.adapters)
        self.events: Events = _NoEvents()
        self.audit: Callable[[dict[str, Any]], None] | None = None
        self.started_at = time.time()
        self.stopping = False
        self._link: AmqpLink | None = None
        self._publisher: ReplyPublisher | None = None
        self._http: HttpEndpoint | None = None
        self.shipper: LogShipper | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._dead_letters: int | None = None

    def attach(self, link: AmqpLink, publisher: ReplyPublisher) -> None:
        self._link, self._publisher = link, publisher
        self.events = Events(publisher, self.settings.ops.control_exchange, self.name,
                             self.role.name)
        ops = self.settings.ops
        # Lines are taken from here on (they wait in the buffer until `start`); the node's
        # consumers are built after this, with `audit` as their hook.
        self.shipper = LogShipper(publisher, ops.logs_exchange, self.name, self.role.name,
                                  ops.ship_level)
        bind_node(self.name)   # this node's tasks: their lines are this node's (in-process nodes)
        self.shipper.register()
        if ops.audit_writes:
            self.audit = self.shipper.audit

    async def start(self) -> None:
        listen = self.settings.ops.http_listen
        if listen:
            endpoint = HttpEndpoint(health_app(self.readiness, self.exposition), listen,
                                    "/live /ready /metrics")
            if await endpoint.start():
                self._http = endpoint
        self._loop_task = asyncio.create_task(self._snapshots(), name="ops:snapshots")
        if self.shipper is not None:
            self.shipper.start()

    @property
    def http_port(self) -> int | None:
        return self._http.port if self._http else None

    def broker_event(self, broker: str, event: str) -> None:
        if event == "restarted":
            self.metrics.restarts.labels(broker).inc()
        self.events.emit(f"broker_{event}", broker=broker)

    def state(self) -> str:
        if self.stopping:
            return "stopping"
        if self.node.draining:
            return "draining"
        return "ready" if self.node.ready.is_set() else "starting"

    def describe(self, brokers: dict[str, Any], templates: list[str],
                 routes: int) -> dict[str, Any]:
        for name, b in brokers.items():
            self.metrics.instances.labels(name).set(b["instances"])
        return {"node": self.name, "role": self.role.name, "pid": os.getpid(),
                "host": socket.gethostname(), "state": self.state(),
                "started_at": round(self.started_at, 3),
                "uptime": round(time.time() - self.started_at, 1), "at": round(time.time(), 3),
                "http_port": self.http_port, "brokers": brokers, "templates": templates,
                "routes": routes, "dead_letters": self._dead_letters,
                "restarts": {k: int(v) for k, v in self._restart_counts().items()},
                **self.metrics.snapshot()}

    def _restart_counts(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in self.metrics.restarts.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["broker"]] = sample.value
        return out

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {
            "rabbitmq": True if self._link is not None and self._link.connected
            else "not connected",
            "consumers": True if self.node.ready.is_set() else "not registered yet",
            "serving": "draining" if self.node.draining else
            "stopping" if self.stopping else True,
        }
        names = list(self.node.adapters)
        results = await asyncio.gather(*(self._ping(self.node.adapters[n]) for n in names))
        for name, ok in zip(names, results, strict=True):
            checks[f"datasource:{name}"] = True if ok else "not answering"
        # Shown, never failed: a lagging or dead replica only sends its reads to the primary.
        for name, report in replica_reports(self.node.adapters).items():
            checks[f"replicas:{name}"] = report
        self.metrics.ready.set(1 if passed(checks) else 0)
        return checks

    @staticmethod
    async def _ping(adapter: Any) -> bool:
        try:
            return bool(await asyncio.wait_for(adapter.ping(), PING_TIMEOUT))
        except Exception:   # any failure to answer is "not ready"; the reason is in its own log
            return False

    async def exposition(self) -> bytes:
        await self.readiness()   # keeps beds_ready current for scrapers
        for name, adapter in self.node.adapters.items():
            usage = getattr(adapter, "pool_usage", None)
            if callable(usage) and (sizes := usage()) is not None:
                self.metrics.pool_size.labels(name).set(sizes[0])
                self.metrics.pool_used.labels(name).set(sizes[1])
            waiting = getattr(adapter, "pool_waiting", None)
            if callable(waiting) and (count := waiting()) is not None:
                self.metrics.pool_waiting.labels(name).set(count)
        if self._dead_letters is not None:
            self.metrics.dead_letters.set(self._dead_letters)
        return self.metrics.exposition()

    async def _snapshots(self) -> None:
        every = self.settings.ops.snapshot_seconds
        while not self._stop.is_set():
            await self._publish_snapshot()
            await sleep_unless(self._stop, every)

    async def _publish_snapshot(self) -> None:
        if self._publisher is None:
            return
        await self._count_queues()
        try:
            body = msgspec.json.encode(await self.node.describe())
            await self._publisher.publish_to(self.settings.ops.metrics_exchange,
                                             f"node.{self.name}", body)
        except AMQP_ERRORS as exc:
            log.info("snapshot.unpublished", error=f"{type(exc).__name__}: {exc}")

    async def _count_queues(self) -> None:
        """Depth of the dead-letter queue and of every queue this node's brokers consume."""
        if self._link is None or not self._link.connected:
            return
        dlq = self.settings.amqp.dlq
        brokers = (self.settings.brokers[name] for name in self.role.brokers)
        try:
            counts = await self._link.queue_counts([dlq, *(b.queue for b in brokers if b.queue)])
        except AMQP_ERRORS:
            return   # depths unknown this time; the last figures stay
        for queue, found in counts.items():
            if found is None:
                continue
            self.metrics.queues[queue] = (found[1], found[0])
            if queue == dlq:
                self._dead_letters = found[1]

    async def stop(self) -> None:
        self.stopping = True
        self._stop.set()
        try:
            if self._loop_task is not None:
                with contextlib.suppress(Exception):
                    await self._loop_task
                await self._publish_snapshot()   # the admin sees `stopping` at once
            await self.events.flush()
        finally:   # whatever failed above, this node stops taking lines and frees its port
            if self.shipper is not None:
                await self.shipper.stop()
            if self._http is not None:
                await self._http.stop()


class _NoEvents(Events):
    """Before the node has a publisher: events are not sent (nothing could carry them)."""

    def __init__(self) -> None:
        pass

    def emit(self, event: str, **fields: Any) -> None:
        log.debug("event.unsent", event_name=event)

    async def flush(self, timeout: float = 2.0) -> None:
        return None
