"""A node's metrics: Prometheus series for /metrics and the snapshot the node publishes.

Layer: operations. One registry per node (not the process-global one), so tests can run several
nodes in one process. The per-request counters are plain Python (one dict lookup, one bisect and
a few additions per message, measured ~3x cheaper than prometheus_client's labelled children with
their locks); a custom collector turns them into Prometheus families when /metrics is scraped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

# Seconds. Sub-millisecond to tens of seconds: a cached view read through a statement timeout.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0)
_NOT_ANSWERS = frozenset(("retry", "requeued", "unacked"))   # the request comes back


@dataclass
class OpStats:
    """Cumulative figures of one template op since the node started."""

    outcomes: dict[str, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))   # last: +Inf
    seconds: float = 0.0
    count: int = 0


class NodeMetrics:
    def __init__(self, node: str) -> None:
        self.node = node
        self.ops: dict[tuple[str, str], OpStats] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(_RequestCollector(self))
        self.inflight = Gauge("beds_inflight", "Requests being handled now", registry=r)
        self.restarts = Counter("beds_broker_restarts", "Broker instances restarted after a "
                                "crash or a lost channel", ["broker"], registry=r)
        self.instances = Gauge("beds_broker_instances", "Running instances per broker",
                               ["broker"], registry=r)
        self.dead_letters = Gauge("beds_dead_letter_depth", "Messages in the dead-letter queue",
                                  registry=r)
        self.pool_size = Gauge("beds_pool_connections", "Database connections open",
                               ["datasource"], registry=r)
        self.pool_used = Gauge("beds_pool_in_use", "Database connections in use",
                               ["datasource"], registry=r)
        self.ready = Gauge("beds_ready", "1 when the node is ready (see /ready)", registry=r)
        self._inflight_read: Callable[[], float] = lambda: 0

    def observe(self, template: str | None, op: str | None, outcome: str,
                seconds: float) -> None:
        """One answered request (the hot path: keep it cheap)."""
        if outcome in _NOT_ANSWERS:
            return
        key = (template or "-", op or "-")
        stats = self.ops.get(key)
        if stats is None:
            stats = self.ops[key] = OpStats()
        stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
        stats.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        stats.seconds += seconds
        stats.count += 1

    def track_inflight(self, read: Callable[[], float]) -> None:
        self._inflight_read = read
        self.inflight.set_function(read)

    def snapshot(self) -> dict[str, Any]:
        """Cumulative counters the admin node turns into rates and percentiles."""
        ops = {f"{t}.{o}": {"outcomes": dict(s.outcomes), "buckets": list(s.buckets),
                            "seconds": round(s.seconds, 6), "count": s.count}
               for (t, o), s in self.ops.items()}
        return {"ops": ops, "bucket_bounds": list(BUCKETS),
                "inflight": int(self._inflight_read()),
                "errors": sum(n for s in self.ops.values() for k, n in s.outcomes.items()
                              if k != "ok")}

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _RequestCollector:
    """beds_requests_total and beds_request_seconds, built from NodeMetrics.ops per scrape."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []   # families appear once requests do

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("beds_requests", "Requests answered, by template, op and "
                                       "outcome (ok or the error code)",
                                       labels=["template", "op", "outcome"])
        latency = HistogramMetricFamily("beds_request_seconds", "Time from delivery to reply",
                                        labels=["template", "op"])
        for (t, o), s in list(self._metrics.ops.items()):
            for outcome, n in s.outcomes.items():
                requests.add_metric([t, o, outcome], n)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), s.buckets, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric([t, o], buckets, s.seconds)
        yield requests
        yield latency
