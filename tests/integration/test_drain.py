"""SIGTERM / stop with a statement still running (F10): `/ready` answers 503 from the moment
the node is asked to stop, and a statement still running at the end of the grace is killed in
the database, not left holding its locks while the redelivered copy waits on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_deadlines import raw_call, scans_running, start_slow_node
from tests.support.services import MysqlDb
from tests.support.stack import NodeFactory
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_a_stopping_node_is_not_ready_and_kills_what_outlives_the_grace(
        node_factory: NodeFactory, mysql_db: MysqlDb, tmp_path: Path) -> None:
    node = await start_slow_node(node_factory, mysql_db, tmp_path, node={"grace_seconds": 1},
                                 ops={"http_listen": "127.0.0.1:0"})
    ready = f"{node.http_url}/ready"
    scan = asyncio.ensure_future(raw_call(node.stack.exchange, "slow.scan", {
        "template": "slow", "op": "scan", "params": {"n": 5}}, int(time.time() * 1000) + 60000))
    await wait_for(lambda: _positive(scans_running(mysql_db)), 10)
    async with aiohttp.ClientSession() as http:
        async with http.get(ready) as before:
            assert before.status == 200
        node.stop.set()
        async with http.get(ready) as during:
            assert during.status == 503
            assert (await during.json())["checks"]["serving"] == "stopping"
        assert not node.task.done()   # still draining: the scan outlives the 1 s grace
    await asyncio.wait_for(node.task, 30)
    # killed in the database, not merely abandoned by the client
    await wait_for(lambda: _zero(scans_running(mysql_db)), 10)
    scan.cancel()


async def _positive(count: Awaitable[int]) -> bool:
    return bool(await count)


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0
