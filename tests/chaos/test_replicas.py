"""Read-replica faults under load (scenarios 30a-30d), on private pairs
(tests/support/dbreplicas.py): the replica stops applying (MariaDB `STOP SLAVE SQL_THREAD`,
PostgreSQL `pg_wal_replay_pause()`), and the replica is killed, each on MariaDB and PostgreSQL.

Writers each own one item and loop: `item.bump` (a non-idempotent write: the version it made
comes back in out, its position in meta.position), then a read-your-writes `item.get` carrying
that position in `x-read-after` (the checker fails it as mismatched if its version is older than
the write's), then a plain `item.get`. Effects are the item's version on the primary: every ok
bump made exactly one version, and no version was made that nobody was told about.

Checked besides the checker's columns: a plain read is served by the primary or reports a lag
within max_lag_seconds (meta.replica_lag_s); while the replica is stopped past max_lag_seconds
reads move to the primary; with the replica killed no call fails."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.checker import RESULTS, Request, tally
from tests.chaos.workload import Caller
from tests.support.replica_schema import Pair, new_id, open_pair, start_replicated_node
from tests.support.services import AMQP_URL, delete_namespace
from tests.support.stack import RunningNode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.chaos]

MAX_LAG = 2.0          # max_lag_seconds of the scenarios' node
WRITERS = 4
TIMEOUT = 10.0         # a caller's wait per request
STEADY, FAULT, HEALED = 4.0, 12.0, 6.0   # seconds of each phase (all bounded: < 60 s a run)


@pytest.fixture(scope="module", params=["mysql", "postgres"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    yield from open_pair(request.param)


@pytest.fixture
async def node(rabbitmq: str, pair: Pair, tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_replicated_node(pair, tmp_path, max_lag_seconds=MAX_LAG,
                                          ryw_wait_ms=200, pool_max=8)
    yield running
    running.stop.set()
    await asyncio.wait_for(running.task, 30)
    await delete_namespace(running.stack.settings)


@dataclass
class ReplicaLoad:
    """The writers' requests, each plain read's phase, and when each phase began."""

    caller: Caller
    requests: list[Request] = field(default_factory=list)
    plain: list[tuple[str, Request]] = field(default_factory=list)
    ryw: list[tuple[str, Request]] = field(default_factory=list)
    bumps: dict[int, list[Request]] = field(default_factory=dict)
    phase: str = "steady"
    started: dict[str, float] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: int = 0

    def request(self, key: str, params: dict[str, Any], **extra: Any) -> Request:
        self._ids += 1
        template, op = key.split(".")
        body = json.dumps({"template": template, "op": op, "params": params}).encode()
        request = Request(f"replica-{self._ids}-{new_id()}", key, body, **extra)
        self.requests.append(request)
        return request

    async def writer(self) -> None:
        item = new_id()
        while not self.stop.is_set():
            bump = self.request("item.bump", {"id": item}, counted=True, retry=False)
            self.bumps.setdefault(item, []).append(bump)
            await self.caller.attempt(bump, TIMEOUT)
            final = bump.final()
            if final is None or not final.get("ok"):
                continue
            version = final["out"]["version"]
            ryw = self.request("item.get", {"id": item}, min_version=version,
                               headers={"x-read-after": final["meta"]["position"]})
            self.ryw.append((self.phase, ryw))
            await self.caller.attempt(ryw, TIMEOUT)
            plain = self.request("item.get", {"id": item})
            self.plain.append((self.phase, plain))
            await self.caller.attempt(plain, TIMEOUT)

    def served(self, phase: str) -> list[dict[str, Any]]:
        """meta of the ok plain reads of a phase, in order."""
        return [reply["meta"] for p, r in self.plain if p == phase
                for reply in [r.final()] if reply and reply.get("ok")]


async def settle(load: ReplicaLoad, within: float = 20.0) -> None:
    """The caller's retry path: a read without an answer (its channel closed under it) is sent
    again with the same message id until answered, or `within`; writes never are."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pending = [r for r in load.requests if r.retry and r.final() is None]
        if not pending:
            return
        await asyncio.gather(*(load.caller.attempt(r, TIMEOUT) for r in pending))


async def count_effects(pair: Pair, load: ReplicaLoad, within: float = 30.0) -> None:
    """Each ok bump made the version it reports. Versions nobody was told about belong to the
    bumps without an answer (a copy RabbitMQ redelivered after a lost connection), one each;
    more than that is a re-execution (counted on the last bump). Counted once the versions
    hold still: a requeued bump may still be running."""
    finals: dict[int, int] = {}
    deadline = time.monotonic() + within
    while True:
        now = {item: await asyncio.to_thread(item_version, pair, item) for item in load.bumps}
        if now == finals or time.monotonic() > deadline:
            break
        finals = now
        await asyncio.sleep(0.5)
    for item, bumps in load.bumps.items():
        final = finals[item]
        told = {r.answer()["out"]["version"]: r for r in bumps
                if (r.final() or {}).get("ok")}
        for version, request in told.items():
            request.effects = 1 if version <= final else 0
        untold = final - len(told)
        for request in (r for r in bumps if not (r.final() or {}).get("ok")):
            if untold > 0:
                request.effects, untold = 1, untold - 1
        if untold > 0 and bumps:
            bumps[-1].effects += untold


def item_version(pair: Pair, item: int) -> int:
    if hasattr(pair, "query"):
        rows = pair.query("primary", f"SELECT version FROM {pair.database}.item WHERE id = {item}")
    else:
        rows = pair.psql("primary", f"SELECT version FROM item WHERE id = {item}")
    return int(rows[0][0]) if rows else 0


async def run_scenario(name: str, pair: Pair, node: RunningNode,
                       fault: Callable[[], None], heal: Callable[[], None],
                       check: Callable[[ReplicaLoad], Awaitable[list[str]]]) -> None:
    caller = Caller(AMQP_URL, node.stack.exchange)
    load = ReplicaLoad(caller)
    started = time.monotonic()
    writers = [asyncio.create_task(load.writer()) for _ in range(WRITERS)]
    try:
        for phase, seconds, action in (("steady", STEADY, None), ("fault", FAULT, fault),
                                       ("healed", HEALED, heal)):
            if action is not None:
                await asyncio.to_thread(action)
            load.phase, load.started[phase] = phase, time.monotonic()
            await asyncio.sleep(seconds)
        load.stop.set()
        await asyncio.gather(*writers)
        await settle(load)
    finally:
        load.stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
        await caller.close()
    await count_effects(pair, load)
    row, problems = tally(name, load.requests, time.monotonic() - started)
    notes = await check(load)
    row = type(row)(**{**row.__dict__, "notes": "; ".join([*notes, row.notes] if row.notes
                                                          else notes)})
    RESULTS.append(row)
    text = "\n".join(problems[:20])
    assert row.sent >= 300, f"{name}: only {row.sent} requests sent\n{row}"
    assert (row.lost, row.duplicated, row.mismatched, row.phantom, row.reexecuted,
            row.dropped, row.indeterminate) == (0, 0, 0, 0, 0, 0, 0), f"{row}\n{text}"
    assert row.error == 0, f"{name}: callers saw errors\n{row}\n{text}"


def lags_within_limit(load: ReplicaLoad) -> None:
    """A plain read from a replica reports a lag within max_lag_seconds."""
    for phase in ("steady", "fault", "healed"):
        for meta in load.served(phase):
            if meta["served_by"] != "primary":
                assert meta["replica_lag_s"] <= MAX_LAG, meta


def share(metas: list[dict[str, Any]]) -> str:
    on_primary = sum(1 for m in metas if m["served_by"] == "primary")
    return f"{on_primary}/{len(metas)} on the primary"


def ryw_latency(load: ReplicaLoad, phase: str) -> str:
    """Median and 95th percentile of the RYW reads' reply times in a phase, in ms."""
    times = sorted((r.reply_times[0] - r.published[r.sent_cids[0]]) * 1000
                   for p, r in load.ryw if p == phase and r.reply_times and r.sent_cids)
    if not times:
        return f"{phase}: none"
    return (f"{phase} p50 {times[len(times) // 2]:.0f} ms, "
            f"p95 {times[int(len(times) * 0.95)]:.0f} ms")


def ryw_on_primary(load: ReplicaLoad) -> str:
    metas = [reply["meta"] for r in load.requests if r.min_version is not None
             for reply in [r.final()] if reply and reply.get("ok")]
    return f"RYW reads {share(metas)}"


async def stopped_applying(load: ReplicaLoad) -> list[str]:
    lags_within_limit(load)
    during = load.served("fault")
    assert any(m["served_by"] == "primary" for m in during), (
        "replica stopped past max_lag_seconds, yet no plain read moved to the primary")
    max_lag = max((m.get("replica_lag_s", 0.0) for m in during), default=0.0)
    return [f"plain reads while stopped: {share(during)} (replica reported up to "
            f"{max_lag:.2f} s lag, max_lag {MAX_LAG} s); after resume: "
            f"{share(load.served('healed'))}; {ryw_on_primary(load)}; 0 stale RYW reads; "
            f"RYW reply time {ryw_latency(load, 'steady')}, {ryw_latency(load, 'fault')}"]


async def killed(load: ReplicaLoad) -> list[str]:
    lags_within_limit(load)
    during = load.served("fault")
    assert during and sum(m["served_by"] == "primary" for m in during) >= len(during) - WRITERS, (
        f"replica killed, yet reads did not move to the primary: {share(during)}")
    after = load.served("healed")
    return [f"plain reads while killed: {share(during)}, 0 failed; after restart: "
            f"{share(after)}; {ryw_on_primary(load)}; RYW reply time "
            f"{ryw_latency(load, 'steady')}, {ryw_latency(load, 'fault')}"]


async def test_30a_replica_stops_applying(pair: Pair, node: RunningNode) -> None:
    """The replica stops applying for 12 s under load: RYW reads never stale, plain reads
    report the lag and move to the primary past max_lag_seconds, all back after resuming."""
    engine = "MariaDB SQL thread stopped" if hasattr(pair, "query") else "PostgreSQL replay paused"
    await run_scenario(f"30a {engine}", pair, node, pair.pause_replication,
                       pair.resume_replication, stopped_applying)


async def test_30b_replica_killed(pair: Pair, node: RunningNode) -> None:
    """The replica is killed (SIGKILL mariadbd / immediate shutdown of PostgreSQL) under load
    for 12 s, then restarted: no call fails, reads move to the primary and back."""
    engine = "MariaDB replica" if hasattr(pair, "query") else "PostgreSQL standby"
    await run_scenario(f"30b {engine} killed", pair, node, pair.kill_replica,
                       pair.restart_replica, killed)
