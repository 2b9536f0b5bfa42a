"""The cluster as the admin node sees it: the metric snapshots every node publishes, turned into
request and error rates, latency percentiles, broker instances and dead-letter depth, with a
bounded history for the dashboard's charts.

Layer: operations (admin node). Pure: no I/O and no clock of its own; callers say when a snapshot
arrived and what time a summary is for. adminGraphBroker (admin/graph.py) feeds it; the
dashboard's /api/cluster and `beds status` read `summary()`.

A snapshot carries cumulative counters since its node process started: answers per outcome and
latency histogram buckets per template.op. Between two snapshots of a node the increase is the
difference, Prometheus-style: a counter that drops, or a new pid or start time, means the node
restarted, and the new value is the whole increase. Each increase is spread over fixed time
bins (`step` seconds wide) in proportion to how much of its interval falls in each, so rates
over any run of bins are what linear interpolation of the counters would give, and the series
of every node and op share one time axis. Intervals use the node's own clock (`at`): a backlog of
snapshots delivered at once is not a burst. Liveness uses the admin's clock (arrival time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from beds.admin.counters import (
    QUANTILES,
    Counters,
    is_number,
    number_or,
    rates,
    read_ops,
    sum_counters,
)

LOST_AFTER = 3          # snapshot intervals without news after which a node is shown as lost
MAX_POINTS = 300        # points per chart series; the step widens for long histories
_COLUMNS = ("rps", "errors_per_s", *(label for label, _ in QUANTILES))


@dataclass
class _Bin:
    covered: float = 0.0                       # seconds of this bin the node's intervals cover
    version: int = 0                           # changes with every update: derived values cache
    ops: dict[str, Counters] = field(default_factory=dict)
    instances: dict[str, int] | None = None    # from the last snapshot taken inside the bin
    dead_letters: int | None = None


@dataclass
class _Node:
    name: str
    last: dict[str, Any]                 # the latest snapshot, as sent
    last_at: float                       # its `at` (the node's clock)
    last_seen: float                     # when it arrived (the admin's clock)
    identity: tuple[Any, Any]            # (pid, started_at): a change is a restart
    bounds: tuple[float, ...]
    raw: dict[str, Counters]             # cumulative counters of the latest snapshot
    bins: dict[int, _Bin] = field(default_factory=dict)


class ClusterView:
    """What the admin knows of every node, from their snapshots. Not thread-safe; one event loop."""

    def __init__(self, snapshot_seconds: float, history_seconds: float,
                 window_seconds: float | None = None) -> None:
        self.snapshot_seconds = snapshot_seconds
        self.history_seconds = history_seconds
        # Rates and percentiles in the node table: recent enough to follow load, wide enough to
        # hold several snapshots.
        self.window_seconds = window_seconds or max(5.0, 5 * snapshot_seconds)
        self.step = max(snapshot_seconds, history_seconds / MAX_POINTS)
        self._nodes: dict[str, _Node] = {}
        self._tick = 0
        # Chart points of bins already computed, keyed by what they were computed from.
        self._node_points: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
        self._op_points: dict[int, tuple[Any, dict[str, dict[str, Any]]]] = {}

    # -- feeding ------------------------------------------------------------------------------

    def add(self, snapshot: Any, received_at: float) -> None:
        """Take one node's snapshot. Raises ValueError when it is not a node snapshot."""
        if not isinstance(snapshot, dict):
            raise ValueError("a snapshot is a JSON object")
        name = snapshot.get("node")
        if not isinstance(name, str) or not name:
            raise ValueError("snapshot.node: expected a node name")
        at = number_or(snapshot.get("at"), received_at)
        bounds = tuple(float(b) for b in snapshot.get("bucket_bounds") or () if is_number(b))
        raw = read_ops(snapshot.get("ops"), len(bounds) + 1)
        identity = (snapshot.get("pid"), snapshot.get("started_at"))
        node = self._nodes.get(name)
        if node is None or node.bounds != bounds:
            # First news of the node (or its histograms changed shape): a baseline, no rates yet.
            self._nodes[name] = _Node(name, snapshot, at, received_at, identity, bounds, raw)
            self._at_bin(self._nodes[name], snapshot, at)
        elif at <= node.last_at:
            node.last_seen = max(node.last_seen, received_at)   # a duplicate or a late one
        else:
            restarted = identity != node.identity
            increase = {op: c.increase_since(None if restarted else node.raw.get(op))
                        for op, c in raw.items()}
            self._spread(node, node.last_at, at, increase)
            node.last, node.last_at, node.identity, node.raw = snapshot, at, identity, raw
            node.last_seen = max(node.last_seen, received_at)
            self._at_bin(node, snapshot, at)
        self._prune(received_at)

    def _spread(self, node: _Node, t0: float, t1: float, increase: dict[str, Counters]) -> None:
        span = t1 - t0
        start = max(t0, t1 - self.history_seconds)   # a long silence: only its recent part
        for k in range(self._bin(start), self._bin(t1) + 1):
            lo, hi = max(start, k * self.step), min(t1, (k + 1) * self.step)
            if hi <= lo:
                continue
            share = (hi - lo) / span
            b = self._touch(node, k)
            b.covered += hi - lo
            for op, inc in increase.items():
                b.ops[op] = b.ops.get(op, Counters()).plus(inc, share)

    def _at_bin(self, node: _Node, snapshot: dict[str, Any], at: float) -> None:
        b = self._touch(node, self._bin(at))
        b.instances = _instances(snapshot.get("brokers"))
        dead = snapshot.get("dead_letters")
        if isinstance(dead, int) and not isinstance(dead, bool):
            b.dead_letters = dead

    def _touch(self, node: _Node, k: int) -> _Bin:
        self._tick += 1
        b = node.bins.setdefault(k, _Bin())
        b.version = self._tick
        return b

    def _prune(self, now: float) -> None:
        for name in [n for n, node in self._nodes.items()
                     if now - node.last_seen > self.history_seconds]:
            del self._nodes[name]
        for node in self._nodes.values():
            oldest = self._bin(node.last_at - self.history_seconds) - 1
            for k in [k for k in node.bins if k < oldest]:
                del node.bins[k]

    def _bin(self, t: float) -> int:
        return math.floor(t / self.step)

    # -- reading ------------------------------------------------------------------------------

    def state(self, name: str, now: float) -> str:
        """starting | ready | draining | stopped (it said `stopping`) | lost (silent too long)."""
        node = self._nodes[name]
        reported = str(node.last.get("state") or "unknown")
        if reported == "stopping":
            return "stopped"
        if now - node.last_seen > LOST_AFTER * self.snapshot_seconds:
            return "lost"
        return reported

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """The JSON-able view the dashboard and `beds status` show (the shape is in the README
        section "Dashboard"); `now` defaults to the wall clock. Latencies are milliseconds,
        rates per second, over the last `window_seconds` of each node's snapshots."""
        now = time.time() if now is None else now
        nodes: dict[str, Any] = {}
        ops: dict[str, dict[str, Any]] = {}
        recent: dict[str, Counters] = {}
        bounds: tuple[float, ...] = ()
        dead: tuple[float, int | None] = (-math.inf, None)
        for name in sorted(self._nodes):
            node = self._nodes[name]
            state = self.state(name, now)
            lo, hi = self._bin(node.last_at - self.window_seconds) + 1, self._bin(node.last_at)
            per_op, covered = _sum_bins(node.bins.get(k) for k in range(lo, hi + 1))
            live = state != "lost" and covered > 0
            total = sum_counters(per_op.values()) if live else Counters()
            nodes[name] = {
                "node": name, "role": node.last.get("role"), "state": state,
                "reported_state": node.last.get("state"), "pid": node.last.get("pid"),
                "host": node.last.get("host"), "uptime": node.last.get("uptime"),
                "last_seen": round(node.last_seen, 3), "age": round(now - node.last_seen, 3),
                "brokers": _brokers(node.last.get("brokers")),
                "requests": int(sum(c.count for c in node.raw.values())),
                "errors": int(sum(c.errors for c in node.raw.values())),
                "inflight": node.last.get("inflight"),
                "dead_letters": node.last.get("dead_letters"),
                "restarts": node.last.get("restarts") or {},
                **rates(total, covered, node.bounds)}
            bounds = bounds or node.bounds
            if node.last.get("dead_letters") is not None and node.last_at > dead[0]:
                dead = (node.last_at, node.last.get("dead_letters"))
            for op, raw in node.raw.items():
                row = ops.setdefault(op, {"op": op, "requests": 0, "errors": 0, "nodes": []})
                row["requests"] += int(raw.count)
                row["errors"] += int(raw.errors)
                row["nodes"].append(name)
                if live and op in per_op and node.bounds == bounds:
                    # per-node rates add up; the node's own covered time is its denominator
                    recent[op] = recent.get(op, Counters()).plus(per_op[op], 1 / covered)
        for op, row in ops.items():
            row.update(rates(recent.get(op, Counters()), 1.0, bounds))
        live_nodes = [n for n in nodes.values() if n["state"] != "lost"]
        return {
            "at": round(now, 3), "step": self.step, "window_seconds": self.window_seconds,
            "snapshot_seconds": self.snapshot_seconds, "history_seconds": self.history_seconds,
            "latency_unit": "ms",
            "nodes": nodes, "ops": dict(sorted(ops.items())), "dead_letters": dead[1],
            "totals": {"nodes": len(nodes), "lost": len(nodes) - len(live_nodes),
                       "rps": round(sum(n["rps"] for n in live_nodes), 3),
                       "errors_per_s": round(sum(n["errors_per_s"] for n in live_nodes), 3),
                       "requests": sum(n["requests"] for n in nodes.values()),
                       "errors": sum(n["errors"] for n in nodes.values())},
            "series": self._series(bounds),
        }

    def _series(self, bounds: tuple[float, ...]) -> dict[str, Any]:
        if not self._nodes:
            return {"t": [], "nodes": {}, "ops": {}, "dead_letters": []}
        end = self._bin(max(n.last_at for n in self._nodes.values()))
        first = min(min(n.bins, default=end) for n in self._nodes.values())
        keys = list(range(max(first, end - MAX_POINTS + 1), end + 1))
        for stale in [key for key in self._node_points if key[1] < keys[0]]:
            del self._node_points[stale]
        for gone in [k for k in self._op_points if k < keys[0]]:
            del self._op_points[gone]
        width = len(keys)
        node_series = {name: self._node_series(name, self._nodes[name], keys)
                       for name in sorted(self._nodes)}
        op_series: dict[str, dict[str, list[Any]]] = {}
        dead: list[int | None] = [None] * width
        for i, k in enumerate(keys):
            bins = [(name, node.bins[k]) for name, node in sorted(self._nodes.items())
                    if k in node.bins]
            for _, b in bins:
                if b.dead_letters is not None:
                    dead[i] = b.dead_letters   # every node counts the same queue
            for op, point in self._op_point(k, bins, bounds).items():
                cols = op_series.setdefault(op, {key: [None] * width for key in _COLUMNS})
                for key in _COLUMNS:
                    cols[key][i] = point[key]
        t = [round((k + 1) * self.step, 3) for k in keys]
        return {"t": t, "nodes": node_series, "ops": dict(sorted(op_series.items())),
                "dead_letters": _carry(dead)}

    def _node_series(self, name: str, node: _Node, keys: list[int]) -> dict[str, Any]:
        width = len(keys)
        cols: dict[str, Any] = {key: [None] * width for key in _COLUMNS}
        instances: dict[str, list[int | None]] = {}
        current: dict[str, int] | None = None
        for i, k in enumerate(keys):
            b = node.bins.get(k)
            if b is None:
                continue
            current = b.instances if b.instances is not None else current
            for broker, n in (current or {}).items():
                instances.setdefault(broker, [None] * width)[i] = n
            if b.covered <= 0:
                continue
            hit = self._node_points.get((name, k))
            if hit is None or hit[0] != b.version:
                # A bin no new interval reaches never changes again: computed once.
                hit = (b.version, rates(sum_counters(b.ops.values()), b.covered, node.bounds))
                self._node_points[(name, k)] = hit
            for key in _COLUMNS:
                cols[key][i] = hit[1][key]
        cols["instances"] = instances
        return cols

    def _op_point(self, k: int, bins: list[tuple[str, _Bin]],
                  bounds: tuple[float, ...]) -> dict[str, dict[str, Any]]:
        signature = (bounds, tuple((name, b.version) for name, b in bins))
        hit = self._op_points.get(k)
        if hit is None or hit[0] != signature:
            sums: dict[str, Counters] = {}
            for _, b in bins:
                if b.covered > 0:
                    for op, c in b.ops.items():
                        sums[op] = sums.get(op, Counters()).plus(c, 1 / b.covered)
            hit = (signature, {op: rates(c, 1.0, bounds) for op, c in sums.items()})
            self._op_points[k] = hit
        return hit[1]


def _sum_bins(bins: Iterable[_Bin | None]) -> tuple[dict[str, Counters], float]:
    per_op: dict[str, Counters] = {}
    covered = 0.0
    for b in bins:
        if b is None:
            continue
        covered += b.covered
        for op, c in b.ops.items():
            per_op[op] = per_op.get(op, Counters()).plus(c)
    return per_op, covered


def _carry(values: list[int | None]) -> list[int | None]:
    """Depth is a gauge sampled now and then: between samples the last one holds."""
    out: list[int | None] = []
    for v in values:
        out.append(v if v is not None else (out[-1] if out else None))
    return out


def _brokers(brokers: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(brokers, dict):
        return {}
    keep = ("queue", "service", "instances", "desired", "consuming")
    return {str(name): {k: b.get(k) for k in keep} for name, b in sorted(brokers.items())
            if isinstance(b, dict)}


def _instances(brokers: Any) -> dict[str, int]:
    return {name: int(b["instances"]) for name, b in _brokers(brokers).items()
            if is_number(b.get("instances"))}

