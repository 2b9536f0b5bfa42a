"""Read replicas: one adapter object over a primary and its replicas, deciding who serves a call.

Layer: infrastructure. A replica is another instance of the same adapter class on the replica's DSN;
the per-connection code is theirs. The dispatcher keeps calling one adapter (this one):
  - write and bulk ops, and read ops with `consistency = "primary"`, run on the primary;
  - other reads run on a healthy replica in turn (up, lag <= max_lag_seconds), else on the
    primary; a replica that fails to answer (DB_UNAVAILABLE) is marked down and the read runs
    on the next one or the primary, so a dead replica costs no failed call;
  - a read carrying `x-read-after` (Call.read_after: a write's meta.position) runs on a replica
    only once that replica has applied the position, waiting at most ryw_wait_ms, else on the
    primary: it never sees data older than that write.
A monitor task probes every replica (and the primary's position) every PROBE_SECONDS.
See docs/replicas.md.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlsplit

from beds.adapters.base import Adapter, Call
from beds.adapters.batch import BatchAdapter
from beds.adapters.replica_health import ReplicaState, RoundRobin
from beds.adapters.replica_positions import dialect_of
from beds.config import DatasourceSettings, OpKind
from beds.errors import DbUnavailable, RequestError
from beds.log import get_logger
from beds.protocol import Result
from beds.templates.model import Op, Template

PROBE_SECONDS = 0.5
_log = get_logger("beds.replicas")


@dataclass(frozen=True)
class RoutedStatement:
    """An op prepared on the primary and, when replicas may serve it, on each replica."""

    primary: Any
    replicas: tuple[Any, ...]     # empty: the op always runs on the primary
    read: bool                    # a read op (pinned or not): its reply says who served it


class ReplicatedAdapter:
    """The `Adapter` of a datasource with `replicas = [...]`."""

    def __init__(self, settings: DatasourceSettings, primary: Adapter,
                 replicas: list[Adapter]) -> None:
        self.settings = settings
        self.primary = primary
        self.replicas = replicas
        self.states = [ReplicaState(_label(r.settings.dsn)) for r in replicas]
        self.dialect = dialect_of(settings.engine)
        self.primary_reads = 0
        self._turn = RoundRobin()
        self._status_refused: set[int] = set()   # replicas that refuse SHOW SLAVE STATUS
        self._monitor: asyncio.Task[None] | None = None
        # Writes report their position for read-your-writes (one extra round trip per write).
        setattr(primary, "track_position", True)   # noqa: B010 - not on the Adapter protocol

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        await asyncio.gather(self.primary.open(), *(r.open() for r in self.replicas))
        await self.probe()   # route by a real look, not "not probed yet", from the first read
        self._monitor = asyncio.create_task(self._watch(), name=f"replicas:{self.settings.name}")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
            self._monitor = None
        await asyncio.gather(self.primary.close(), *(r.close() for r in self.replicas))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                await self.probe()
            except Exception:   # a bug here must not end the monitoring: log it, go on
                _log.exception("replicas.probe_failed", datasource=self.settings.name)

    async def probe(self) -> None:
        """One look at the primary's position and at every replica."""
        primary: str | None
        try:
            rows = await self._query(self.primary, self.dialect.primary_position_sql)
            primary = str(rows[0]["value"] or "")
        except (RequestError, TimeoutError):   # down, or accepting and not answering
            primary = None
        await asyncio.gather(*(self._probe_one(i, primary) for i in range(len(self.replicas))))

    async def _probe_one(self, index: int, primary: str | None) -> None:
        state, adapter = self.states[index], self.replicas[index]
        sets: list[list[dict[str, Any]]] = []
        try:
            for number, sql in enumerate(self.dialect.probe_sqls):
                if number and index in self._status_refused:
                    break
                try:
                    sets.append(await self._query(adapter, sql))
                except DbUnavailable:
                    raise
                except RequestError:
                    if not number:
                        raise
                    self._status_refused.add(index)   # only lag by positions, then
            probe = self.dialect.probe(sets)
        except (RequestError, TimeoutError) as error:
            reason = error.message if isinstance(error, RequestError) else \
                f"no answer within {self.settings.connect_timeout} s"
            if state.up:
                _log.warning("replica.down", datasource=self.settings.name,
                             replica=state.label, error=reason)
            state.mark_down(reason)
            return
        was = state.serves(self.settings.max_lag_seconds)
        state.observe(self.dialect, probe, primary, time.monotonic())
        now = state.serves(self.settings.max_lag_seconds)
        if was != now:
            _log.info("replica.serving" if now else "replica.skipped",
                      datasource=self.settings.name, replica=state.label,
                      lag_s=state.lag, reason=state.reason)

    async def _query(self, adapter: Adapter, sql: str, *args: Any) -> list[dict[str, Any]]:
        call = Call(args=list(args))   # bounded here, not by a server-side statement limit
        async with asyncio.timeout(self.settings.connect_timeout):
            return (await adapter.run(self.dialect.statement(sql), call)).rows

    # -- statements ---------------------------------------------------------------------
    def prepare(self, template: Template, op: Op) -> RoutedStatement:
        on_replicas = op.kind is OpKind.READ and op.consistency != "primary"
        return RoutedStatement(
            self.primary.prepare(template, op),
            tuple(r.prepare(template, op) for r in self.replicas) if on_replicas else (),
            op.kind is OpKind.READ)

    # -- the call -------------------------------------------------------------------------
    async def run(self, prepared: RoutedStatement, call: Call) -> Result:
        if not prepared.replicas:
            return await self._on_primary(prepared, call)
        target = None if call.read_after is None else self.dialect.check(call.read_after)
        for index in self._turn.order(self.states, self.settings.max_lag_seconds):
            state = self.states[index]
            if (target is not None and not self.dialect.covers(state.applied, target)
                    and not await self._caught_up(index, call.read_after or "")):
                break   # read-your-writes: the primary has it for sure
            try:
                result = await self.replicas[index].run(prepared.replicas[index], call)
            except DbUnavailable as error:
                state.mark_down(error.message)   # the monitor brings it back when it answers
                _log.warning("replica.read_failed", datasource=self.settings.name,
                             replica=state.label, error=error.message)
                continue
            state.reads += 1
            result.served_by, result.lag_seconds = state.label, state.lag
            return result
        return await self._on_primary(prepared, call)

    async def _on_primary(self, prepared: RoutedStatement, call: Call) -> Result:
        result = await self.primary.run(prepared.primary, call)
        if prepared.read:
            self.primary_reads += 1
            result.served_by = "primary"
        return result

    async def _caught_up(self, index: int, position: str) -> bool:
        """Whether replica `index` applies `position` within ryw_wait_ms."""
        wait = self.settings.ryw_wait_ms / 1000
        if wait <= 0:
            return False
        adapter = self.replicas[index]
        try:
            if "%s" in self.dialect.wait_sql:   # MariaDB waits server-side
                rows = await self._query(adapter, self.dialect.wait_sql, position, wait)
                return bool(rows and rows[0]["value"] == 0)
            deadline = time.monotonic() + wait   # PostgreSQL < 19 has no wait: poll
            while True:
                rows = await self._query(adapter, self.dialect.wait_sql, position)
                if rows and rows[0]["value"]:
                    return True
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(min(0.01, max(deadline - time.monotonic(), 0)))
        except (RequestError, TimeoutError):
            return False

    async def run_batch(self, prepared: RoutedStatement, calls: list[Call]) -> list[Result]:
        batch = cast(BatchAdapter, self.primary)   # mysql and postgres both have run_batch
        return await batch.run_batch(prepared.primary, calls)

    # -- everything else is the primary's ---------------------------------------------------
    async def ping(self) -> bool:
        return await self.primary.ping()

    def __getattr__(self, name: str) -> Any:
        # pool_usage, pool_waiting, db_system, ...: what metrics and tracing ask of an adapter
        return getattr(self.primary, name)

    def replica_report(self) -> dict[str, Any]:
        """Each replica's state and lag, and reads per target, for /ready and /metrics."""
        limit = self.settings.max_lag_seconds
        return {"max_lag_s": limit, "primary_reads": self.primary_reads,
                "replicas": {s.label: s.describe(limit) for s in self.states}}


def replica_settings(settings: DatasourceSettings, dsn: str) -> DatasourceSettings:
    """A replica's settings: the primary's, on the replica's DSN, with no admin account."""
    return replace(settings, dsn=dsn, admin_dsn=None, replicas=())


def _label(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
