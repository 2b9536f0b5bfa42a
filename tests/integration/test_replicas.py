"""Read replicas through a real node, RabbitMQ and a private database pair (MariaDB primary +
GTID replica, PostgreSQL primary + streaming standby; tests/support/dbreplicas.py): reads go to
the replica, writes and pinned reads to the primary, read-your-writes returns the row just
written, a stale or dead replica is skipped. Who served a read is in its data (`server`: 1 the
primary, 2 the replica), not only in meta."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from beds.client import Client
from beds.errors import BadRequest
from tests.support.replica_schema import Pair, new_id, open_pair, start_replicated_node
from tests.support.services import AMQP_URL, delete_namespace
from tests.support.stack import RunningNode

pytestmark = [pytest.mark.rabbitmq]


@pytest.fixture(scope="module", params=["mysql", "postgres"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    yield from open_pair(request.param)


@pytest.fixture
async def node(rabbitmq: str, pair: Pair, tmp_path: Path) -> AsyncIterator[RunningNode]:
    running = await start_replicated_node(pair, tmp_path, max_lag_seconds=1.0, ryw_wait_ms=200)
    yield running
    running.stop.set()
    await asyncio.wait_for(running.task, 30)
    await delete_namespace(running.stack.settings)
    pair.resume_replication()


@pytest.fixture
async def client(node: RunningNode) -> AsyncIterator[Client]:
    async with Client(AMQP_URL, node.stack.exchange, default_timeout=10) as c:
        yield c


def router(node: RunningNode) -> Any:
    return node.node.adapters["main"]


async def wait_for_state(node: RunningNode, state: str, timeout: float = 20.0) -> None:
    """Until the node's monitor reports the replica in `state` (serving, lagging, down)."""
    async with asyncio.timeout(timeout):
        while True:
            report = router(node).replica_report()["replicas"]
            if all(r["state"] == state for r in report.values()):
                return
            await asyncio.sleep(0.1)


async def test_reads_go_to_the_replica_and_writes_to_the_primary(client: Client,
                                                                 node: RunningNode,
                                                                 pair: Pair) -> None:
    item = new_id()
    wrote = await client.call("item", "bump", {"id": item})
    assert wrote.out == {"version": 1} and wrote.meta["position"]
    await wait_for_state(node, "serving")
    pair.wait_caught_up()
    read = await client.call("item", "get", {"id": item})
    assert read.data == [{"id": item, "version": 1, "server": 2}]
    assert read.meta["served_by"] == router(node).states[0].label
    assert router(node).replica_report()["replicas"][read.meta["served_by"]]["reads"] >= 1
    pinned = await client.call("item", "get_primary", {"id": item})
    assert pinned.data == [{"id": item, "version": 1, "server": 1}]
    assert pinned.meta["served_by"] == "primary"


async def test_read_your_writes_sees_the_write_even_when_the_replica_stopped_applying(
        client: Client, node: RunningNode, pair: Pair) -> None:
    item = new_id()
    await client.call("item", "bump", {"id": item})
    await wait_for_state(node, "serving")
    pair.wait_caught_up()
    pair.pause_replication()
    wrote = await client.call("item", "bump", {"id": item})
    assert wrote.out == {"version": 2}
    fresh = await client.call("item", "get", {"id": item}, read_after=wrote.meta["position"])
    assert fresh.data[0]["version"] == 2 and fresh.data[0]["server"] == 1
    stale = await client.call("item", "get", {"id": item})   # within max_lag: the replica
    if stale.meta["served_by"] != "primary":
        assert stale.data[0] == {"id": item, "version": 1, "server": 2}
        assert "replica_lag_s" in stale.meta
    pair.resume_replication()
    pair.wait_caught_up()
    again = await client.call("item", "get", {"id": item}, read_after=wrote.meta["position"])
    assert again.data[0]["version"] == 2


async def test_the_client_carries_positions_by_itself(node: RunningNode, pair: Pair) -> None:
    item = new_id()
    async with Client(AMQP_URL, node.stack.exchange, default_timeout=10,
                      read_your_writes=True) as c:
        await c.call("item", "bump", {"id": item})
        await wait_for_state(node, "serving")
        pair.pause_replication()
        try:
            for version in (2, 3):
                await c.call("item", "bump", {"id": item})
                read = await c.call("item", "get", {"id": item})
                assert read.data[0]["version"] == version
            assert "item" in c.positions
        finally:
            pair.resume_replication()


async def test_a_replica_past_max_lag_is_skipped(client: Client, node: RunningNode,
                                                 pair: Pair) -> None:
    item = new_id()
    await client.call("item", "bump", {"id": item})
    await wait_for_state(node, "serving")
    pair.pause_replication()
    await client.call("item", "bump", {"id": item})
    await wait_for_state(node, "lagging")        # max_lag_seconds = 1
    read = await client.call("item", "get", {"id": item})
    assert read.data == [{"id": item, "version": 2, "server": 1}]
    assert read.meta["served_by"] == "primary"
    pair.resume_replication()
    await wait_for_state(node, "serving")
    read = await client.call("item", "get", {"id": item})
    assert read.data == [{"id": item, "version": 2, "server": 2}]


async def test_a_dead_replica_costs_no_failed_read(client: Client, node: RunningNode,
                                                   pair: Pair) -> None:
    item = new_id()
    await client.call("item", "bump", {"id": item})
    await wait_for_state(node, "serving")
    pair.kill_replica()
    try:
        # The first reads may reach the dead replica before the monitor notices: they move on.
        for _ in range(20):
            read = await client.call("item", "get", {"id": item})
            assert read.data == [{"id": item, "version": 1, "server": 1}]
        await wait_for_state(node, "down")
    finally:
        pair.restart_replica()
    await wait_for_state(node, "serving")
    read = await client.call("item", "get", {"id": item})
    assert read.data[0]["server"] == 2


async def test_a_malformed_read_after_is_a_bad_request(client: Client) -> None:
    with pytest.raises(BadRequest) as info:
        await client.call("item", "get", {"id": 1}, read_after="yesterday")
    assert str(info.value).startswith("x-read-after: expected")


async def test_ready_and_metrics_show_the_replica_and_lag_does_not_make_the_node_unready(
        client: Client, node: RunningNode, pair: Pair) -> None:
    ops = node.ops
    item = new_id()
    await client.call("item", "bump", {"id": item})
    await wait_for_state(node, "serving")
    await client.call("item", "get", {"id": item})
    label = router(node).states[0].label
    checks = await ops.readiness()
    assert checks["replicas:main"]["replicas"][label]["state"] == "serving"
    text = (await ops.exposition()).decode()
    assert f'beds_replica_up{{datasource="main",replica="{label}"}} 1.0' in text
    assert f'beds_replica_reads_total{{datasource="main",target="{label}"}}' in text
    pair.pause_replication()
    await client.call("item", "bump", {"id": item})
    await wait_for_state(node, "lagging")
    checks = await ops.readiness()
    assert checks["replicas:main"]["replicas"][label]["state"] == "lagging"
    assert checks["replicas:main"]["replicas"][label]["lag_s"] > 1.0
    assert 'beds_ready 1.0' in (await ops.exposition()).decode()
