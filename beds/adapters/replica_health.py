"""What the node knows about each read replica, and which one serves the next read.

Layer: infrastructure. Pure: no I/O and no clock of its own (callers pass `now`), so the routing
decisions are unit-tested as they are.

Lag is measured by positions, the same way for both engines: every probe the primary's current
position is recorded with the time it was seen; the replica's lag is how long ago the oldest
recorded position it has not applied yet was seen (0 once it has applied all of them). An idle
primary therefore never makes a caught-up replica look stale (PostgreSQL's
`now() - pg_last_xact_replay_timestamp()` does). When the replica is behind, the engine's own
figure (Seconds_Behind_Master, replay timestamp age) is taken if it is larger.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from beds.adapters.replica_positions import Dialect, ReplicaProbe


@dataclass
class ReplicaState:
    label: str                           # "host:port", for metrics and /ready
    up: bool = False                     # answered its last probe (and is a replica)
    lag: float | None = None             # seconds; None until first measured
    applied: Any = None                  # its applied position, as the dialect parses it
    applying: bool = True
    reason: str = "not probed yet"       # why it is down or skipped, for /ready
    reads: int = 0                       # reads it served
    _behind: deque[tuple[float, str]] = field(default_factory=deque)   # (seen at, position)

    def observe(self, dialect: Dialect, probe: ReplicaProbe, primary: str | None,
                now: float) -> None:
        """A successful probe; `primary`: the primary's position read just before it (None
        when the primary did not answer: the lag is then kept as it was)."""
        if not probe.is_replica:
            self.mark_down("the DSN points at a server that is not a replica")
            return
        self.up, self.applying, self.applied = True, probe.applying, probe.applied
        if primary is None:
            self.reason = "lag unknown: the primary does not answer"
            return
        if primary and (not self._behind or self._behind[-1][1] != primary):
            self._behind.append((now, primary))
        while self._behind and dialect.covers(probe.applied, self._behind[0][1]):
            self._behind.popleft()
        if not self._behind:
            self.lag = 0.0
        else:
            self.lag = max(now - self._behind[0][0], probe.native_lag or 0.0)
        self.reason = "" if probe.applying else "replication stopped (the SQL thread / replay)"

    def mark_down(self, reason: str) -> None:
        self.up, self.reason = False, reason

    def serves(self, max_lag: float) -> bool:
        return self.up and self.lag is not None and self.lag <= max_lag

    def describe(self, max_lag: float) -> dict[str, Any]:
        """Its entry in /ready."""
        state = ("serving" if self.serves(max_lag) else "down" if not self.up else
                 "lagging" if self.lag is not None else "unknown")
        out: dict[str, Any] = {"state": state, "lag_s": None if self.lag is None
                               else round(self.lag, 3), "reads": self.reads}
        if self.reason:
            out["reason"] = self.reason
        return out


class RoundRobin:
    """Healthy replicas in turn; an empty answer sends the read to the primary."""

    def __init__(self) -> None:
        self._next = 0

    def order(self, states: list[ReplicaState], max_lag: float) -> list[int]:
        """Indexes of the replicas that may serve now, the next one in turn first."""
        count = len(states)
        start = self._next
        self._next = (self._next + 1) % count if count else 0
        return [i for i in ((start + k) % count for k in range(count))
                if states[i].serves(max_lag)]
