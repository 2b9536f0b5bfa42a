"""What the metric snapshots say per template.op: cumulative counters read defensively (a
snapshot comes off the metrics exchange, where anyone may publish), summed, and turned into
request and error rates and latency quantiles.

Layer: operations (admin node). Pure: no I/O and no clock. `beds.admin.cluster` keeps these per
node and per time bin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
MAX_OPS = 500           # template.op series kept per node; the rest are summed under OTHER
MAX_OP_NAME = 160       # longer keys are not a template.op a node could serve: OTHER too
OTHER = "<other>"
"""Where a snapshot's surplus ops go: a node (or anyone publishing on the metrics exchange) with
thousands of op names must not make every chart bin and summary grow with them."""


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


def rates(c: Counters, seconds: float, bounds: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"rps": round(c.count / seconds, 3) if seconds > 0 else 0.0,
                           "errors_per_s": round(c.errors / seconds, 3) if seconds > 0 else 0.0}
    for label, q in QUANTILES:
        value = quantile(q, bounds, c.buckets) if len(c.buckets) == len(bounds) + 1 else None
        out[label] = round(value * 1000, 3) if value is not None else None
    return out


def sum_counters(counters: Iterable[Counters]) -> Counters:
    total = Counters()
    for c in counters:
        total = total.plus(c)
    return total


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number_or(value: Any, default: float) -> float:
    return float(value) if is_number(value) else default


def read_ops(ops: Any, width: int) -> dict[str, Counters]:
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
    if not isinstance(outcomes, dict) or not all(is_number(v) for v in outcomes.values()):
        return None
    errors = sum(float(v) for k, v in outcomes.items() if k != "ok")
    count = number_or(entry.get("count"), sum(float(v) for v in outcomes.values()))
    buckets = entry.get("buckets")
    hist = tuple(float(b) for b in buckets) if isinstance(buckets, list) and \
        len(buckets) == width and all(is_number(b) for b in buckets) else ()
    return Counters(count, errors, hist)
