"""Read replicas in /metrics and /ready: each replica's state, lag and reads, per datasource.

Layer: operations. Reads what the replica router reports (`replica_report()` of an adapter
over a datasource with `replicas = [...]`); it never talks to a database itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

Reports = Callable[[], dict[str, dict[str, Any]]]


def replica_reports(adapters: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """datasource -> its router's report, for the datasources that have replicas."""
    out: dict[str, dict[str, Any]] = {}
    for name, adapter in adapters.items():
        report = getattr(type(adapter), "replica_report", None)
        if report is not None:
            out[name] = report(adapter)
    return out


class ReplicaCollector:
    """beds_replica_up, beds_replica_lag_seconds and beds_replica_reads_total, per scrape."""

    def __init__(self, reports: Reports) -> None:
        self._reports = reports

    def describe(self) -> list[Metric]:
        return []   # families appear once a datasource has replicas

    def collect(self) -> Iterator[Metric]:
        reports = self._reports()
        if not reports:
            return
        up = GaugeMetricFamily("beds_replica_up", "1 when the read replica answers its probes",
                               labels=["datasource", "replica"])
        lag = GaugeMetricFamily("beds_replica_lag_seconds", "How far the read replica is "
                                "behind its primary (absent until first measured)",
                                labels=["datasource", "replica"])
        reads = CounterMetricFamily("beds_replica_reads", "Reads of a datasource with replicas, "
                                    "by the server that answered (target: a replica or "
                                    "primary)", labels=["datasource", "target"])
        for name, report in reports.items():
            reads.add_metric([name, "primary"], report["primary_reads"])
            for label, state in report["replicas"].items():
                up.add_metric([name, label], 0 if state["state"] == "down" else 1)
                if state["lag_s"] is not None:
                    lag.add_metric([name, label], state["lag_s"])
                reads.add_metric([name, label], state["reads"])
        yield from (up, lag, reads)


def track_replicas(registry: CollectorRegistry,
                   adapters: Callable[[], Mapping[str, Any]]) -> None:
    """`adapters()`: the node's adapters now (a reload may replace them)."""
    registry.register(ReplicaCollector(lambda: replica_reports(adapters())))
