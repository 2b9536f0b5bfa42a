"""The cluster as the admin node sees it: the metric snapshots every node publishes, turned into
request and error rates, latency percentiles, broker instances and dead-letter depth, with a
bounded history for the dashboard's charts.

Layer: admin (operations). Pure: no I/O and no clock of its own; callers say when a snapshot
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

LOST_AFTER = 3          # snapshot intervals without news after which a node is shown as lost
MAX_POINTS = 300        # points per chart series; the step widens for long histories
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
MAX_OPS = 500           # template.op series kept per node; the rest are summed under OTHER
MAX_OP_NAME = 160       # longer keys are not a template.op a node could serve: OTHER too
OTHER = "<other>"
"""Where a snapshot's surplus ops go: a node (or anyone publishing on the metrics exchange) with
thousands of op names must not make every chart bin and summary grow with them."""
_COLUMNS = ("rps", "errors_per_s", *(label for label, _ in QUANTILES))


@dataclass(frozen=True)
class Counters:
    """Answers, errors and per-bucket latency counts of one template.op (or a sum of them)."""

    count: float = 0.0
    errors: float = 0.0
    buckets: tuple[float, ...] = ()

    def plus(self, other: Counters, scale: float = 1.0) -> Counters:
        if not self.buckets:
            buckets = tuple(b * scale for b in other.buckets)
        elif len(other.buckets) == len(self.buckets):
            buckets = tuple(a + b * scale for a, b in zip(self.buckets, other.buckets, strict=True))
        else:
            buckets = self.buckets   # different bounds: the counts add, the latencies cannot
        return Counters(self.count + other.count * scale, self.errors + other.errors * scale,
                        buckets)

    def increase_since(self, before: Counters | None) -> Counters:
        """What happened since `before`; all of self when a counter went down (a restart)."""
        if before is None or self.count < before.count or self.errors < before.errors or \
                len(self.buckets) != len(before.buckets) or \
                any(a < b for a, b in zip(self.buckets, before.buckets, strict=True)):
            return self
        return Counters(self.count - before.count, self.errors - before.errors,
                        tuple(a - b for a, b in zip(self.buckets, before.buckets, strict=True)))


def quantile(q: float, bounds: Sequence[float], buckets: Sequence[float]) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket that holds the
    q-th observation; the +Inf bucket answers the highest finite bound. None without data.
    `buckets` are per-bucket counts (not cumulative), one more than `bounds` (the last is +Inf)."""
    total = sum(max(n, 0.0) for n in buckets)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    below = 0.0
    for i, n in enumerate(buckets):
        n = max(n, 0.0)
        if n > 0 and below + n >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = float(bounds[i - 1]) if i > 0 else 0.0
            return lower + (float(bounds[i]) - lower) * max(rank - below, 0.0) / n
        below += n
    return float(bounds[-1])


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
        at = _number(snapshot.get("at"), received_at)
        bounds = tuple(float(b) for b in snapshot.get("bucket_bounds") or () if _is_num(b))
        raw = _read_ops(snapshot.get("ops"), len(bounds) + 1)
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
            total = _total(per_op.values()) if live else Counters()
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
                **_rates(total, covered, node.bounds)}
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
            row.update(_rates(recent.get(op, Counters()), 1.0, bounds))
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
                hit = (b.version, _rates(_total(b.ops.values()), b.covered, node.bounds))
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
            hit = (signature, {op: _rates(c, 1.0, bounds) for op, c in sums.items()})
            self._op_points[k] = hit
        return hit[1]


def _rates(c: Counters, seconds: float, bounds: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"rps": round(c.count / seconds, 3) if seconds > 0 else 0.0,
                           "errors_per_s": round(c.errors / seconds, 3) if seconds > 0 else 0.0}
    for label, q in QUANTILES:
        value = quantile(q, bounds, c.buckets) if len(c.buckets) == len(bounds) + 1 else None
        out[label] = round(value * 1000, 3) if value is not None else None
    return out


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


def _total(counters: Iterable[Counters]) -> Counters:
    total = Counters()
    for c in counters:
        total = total.plus(c)
    return total


def _carry(values: list[int | None]) -> list[int | None]:
    """Depth is a gauge sampled now and then: between samples the last one holds."""
    out: list[int | None] = []
    for v in values:
        out.append(v if v is not None else (out[-1] if out else None))
    return out


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any, default: float) -> float:
    return float(value) if _is_num(value) else default


def _read_ops(ops: Any, width: int) -> dict[str, Counters]:
    """The cumulative counters of a snapshot's `ops`; malformed entries are left out, and past
    MAX_OPS (or with an implausible name) an entry is added to the OTHER key."""
    out: dict[str, Counters] = {}
    if not isinstance(ops, dict):
        return out
    for name, entry in ops.items():
        if not isinstance(name, str) or not isinstance(entry, dict):
            continue
        counters = _read_entry(entry, width)
        if counters is None:
            continue
        if len(name) > MAX_OP_NAME or (name not in out and len(out) >= MAX_OPS):
            name = OTHER
        out[name] = out[name].plus(counters) if name in out else counters
    return out


def _read_entry(entry: dict[str, Any], width: int) -> Counters | None:
    outcomes = entry.get("outcomes")
    if not isinstance(outcomes, dict) or not all(_is_num(v) for v in outcomes.values()):
        return None
    errors = sum(float(v) for k, v in outcomes.items() if k != "ok")
    count = _number(entry.get("count"), sum(float(v) for v in outcomes.values()))
    buckets = entry.get("buckets")
    hist = tuple(float(b) for b in buckets) if isinstance(buckets, list) and \
        len(buckets) == width and all(_is_num(b) for b in buckets) else ()
    return Counters(count, errors, hist)


def _brokers(brokers: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(brokers, dict):
        return {}
    keep = ("queue", "service", "instances", "desired", "consuming")
    return {str(name): {k: b.get(k) for k in keep} for name, b in sorted(brokers.items())
            if isinstance(b, dict)}


def _instances(brokers: Any) -> dict[str, int]:
    return {name: int(b["instances"]) for name, b in _brokers(brokers).items()
            if _is_num(b.get("instances"))}

