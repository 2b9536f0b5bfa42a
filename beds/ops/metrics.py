"""A node's metrics: Prometheus series for /metrics and the snapshot the node publishes.

Layer: operations. One registry per node (not the process-global one), so tests can run several
nodes in one process. The per-request counters are plain Python (one dict lookup, one bisect and
a few additions per message, measured ~3x cheaper than prometheus_client's labelled children with
their locks); a custom collector turns them into Prometheus families when /metrics is scraped.
docs/metrics.md lists every family; names follow Prometheus practice (base units, `_total`).

Label values come only from the node's own configuration: a template.op the node does not serve
(a caller-chosen name) is counted under one fixed `<unknown>` series, so callers cannot grow
/metrics or the snapshot.
"""

from __future__ import annotations

import bisect
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

import beds

# Seconds. Sub-millisecond to tens of seconds: a cached view read through a statement timeout.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0)
UNKNOWN = "<unknown>"
"""Template and op label of every request whose template.op this node does not serve."""
MAX_OPS = 2000
"""A second fence behind `known`: past this many series, new keys count as UNKNOWN."""

# What happened to a request besides its answer, counted per broker. The consumer's outcome
# names on the left; the metric (without `beds_` and `_total`) on the right.
BROKER_EVENTS = {
    "retry": ("request_retries", "Requests requeued for another attempt after a transient "
              "failure (DB_UNAVAILABLE, ...)"),
    "requeued": ("requests_requeued", "Requests put back on their queue because the reply could "
                 "not be published"),
    "unacked": ("requests_unsettled", "Requests whose ack/reject was lost with the channel; "
                "RabbitMQ delivers them again"),
    "dead_lettered": ("requests_dead_lettered", "Requests rejected to the dead-letter exchange "
                      "(poison: BAD_REQUEST, TOO_LARGE, INTERNAL, ...)"),
    "redelivered": ("redeliveries", "Deliveries RabbitMQ flagged as redelivered"),
}
_UNKNOWN_KEY = (UNKNOWN, UNKNOWN)


@dataclass
class OpStats:
    """Cumulative figures of one template op since the node started."""

    outcomes: dict[str, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))   # last: +Inf
    seconds: float = 0.0
    count: int = 0


class NodeMetrics:
    def __init__(self, node: str,
                 known: Callable[[tuple[str, str]], bool] | None = None) -> None:
        """`known(key)`: whether the node serves that (template, op); the others are counted as
        UNKNOWN. It is asked once per new key, never per request."""
        self.node = node
        self.ops: dict[tuple[str, str], OpStats] = {}
        self.broker_events: dict[tuple[str, str], int] = {}
        self.queues: dict[str, tuple[int, int]] = {}     # queue -> (messages ready, consumers)
        self._known = known
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(_RequestCollector(self))
        ProcessCollector(registry=r)   # process_resident_memory_bytes, _open_fds, _cpu_seconds
        build = Gauge("beds_build_info", "Always 1; the labels say which BEDS and Python run",
                      ["version", "python"], registry=r)
        build.labels(beds.__version__, platform.python_version()).set(1)
        self.inflight = Gauge("beds_requests_in_flight", "Requests being handled now",
                              registry=r)
        self.restarts = Counter("beds_broker_restarts", "Broker instances restarted after a "
                                "crash or a lost channel", ["broker"], registry=r)
        self.instances = Gauge("beds_broker_instances", "Running instances per broker",
                               ["broker"], registry=r)
        self.dead_letters = Gauge("beds_dead_letter_messages",
                                  "Messages in the dead-letter queue", registry=r)
        self.pool_size = Gauge("beds_pool_connections", "Database connections open",
                               ["datasource"], registry=r)
        self.pool_used = Gauge("beds_pool_connections_in_use", "Database connections lent to "
                               "a request now", ["datasource"], registry=r)
        self.pool_waiting = Gauge("beds_pool_waiting_requests", "Requests waiting for a "
                                  "database connection now (pool exhausted)", ["datasource"],
                                  registry=r)
        self.ready = Gauge("beds_ready", "1 when the node is ready (see /ready)", registry=r)
        self._inflight_read: Callable[[], float] = lambda: 0

    def observe(self, template: str | None, op: str | None, outcome: str, seconds: float,
                broker: str = "") -> None:
        """One handled request (the hot path: keep it cheap)."""
        if outcome in BROKER_EVENTS:   # not an answer: the request comes back
            self.count(broker, outcome)
            return
        key = (template or UNKNOWN, op or UNKNOWN)
        stats = self.ops.get(key)
        if stats is None:
            stats = self._admit(key)
        stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
        stats.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        stats.seconds += seconds
        stats.count += 1

    def _admit(self, key: tuple[str, str]) -> OpStats:
        if len(self.ops) >= MAX_OPS or (self._known is not None and not self._known(key)):
            key = _UNKNOWN_KEY
        stats = self.ops.get(key)
        if stats is None:
            stats = self.ops[key] = OpStats()
        return stats

    def count(self, broker: str, event: str) -> None:
        """A BROKER_EVENTS event of a request on `broker` (rare: not per answer)."""
        key = (broker, event)
        self.broker_events[key] = self.broker_events.get(key, 0) + 1

    def track_inflight(self, read: Callable[[], float]) -> None:
        self._inflight_read = read
        self.inflight.set_function(read)

    def snapshot(self) -> dict[str, Any]:
        """Cumulative counters the admin node turns into rates and percentiles."""
        ops = {f"{t}.{o}": {"outcomes": dict(s.outcomes), "buckets": list(s.buckets),
                            "seconds": round(s.seconds, 6), "count": s.count}
               for (t, o), s in self.ops.items()}
        events: dict[str, dict[str, int]] = {}
        for (broker, event), n in self.broker_events.items():
            events.setdefault(broker, {})[event] = n
        return {"ops": ops, "bucket_bounds": list(BUCKETS),
                "inflight": int(self._inflight_read()),
                "errors": sum(n for s in self.ops.values() for k, n in s.outcomes.items()
                              if k != "ok"),
                "broker_events": events,
                "queues": {q: {"messages": m, "consumers": c}
                           for q, (m, c) in self.queues.items()}}

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _RequestCollector:
    """The plain-Python counters of NodeMetrics as Prometheus families, built per scrape."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []   # families appear once requests do

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        requests = CounterMetricFamily("beds_requests", "Requests answered, by template, op and "
                                       "outcome (ok or the error code)",
                                       labels=["template", "op", "outcome"])
        latency = HistogramMetricFamily("beds_request_seconds", "Time from delivery to reply",
                                        labels=["template", "op"])
        for (t, o), s in list(m.ops.items()):
            for outcome, n in s.outcomes.items():
                requests.add_metric([t, o, outcome], n)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), s.buckets, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric([t, o], buckets, s.seconds)
        yield requests
        yield latency
        for event, (name, doc) in BROKER_EVENTS.items():
            family = CounterMetricFamily(f"beds_{name}", doc, labels=["broker"])
            for (broker, seen), n in list(m.broker_events.items()):
                if seen == event:
                    family.add_metric([broker], n)
            yield family
        messages = Metric("beds_queue_messages", "Messages ready in a queue this node consumes "
                          "(RabbitMQ's count at the last snapshot)", "gauge")
        consumers = Metric("beds_queue_consumers", "Consumers on a queue this node consumes, "
                           "all nodes together", "gauge")
        for queue, (ready, count) in list(m.queues.items()):
            messages.add_sample("beds_queue_messages", {"queue": queue}, ready)
            consumers.add_sample("beds_queue_consumers", {"queue": queue}, count)
        yield messages
        yield consumers
