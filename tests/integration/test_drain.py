"""SIGTERM / stop with a statement still running (F10): `/ready` answers 503 from the moment
the node is asked to stop, and a statement still running at the end of the grace is killed in
the database, not left holding its locks while the redelivered copy waits on them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import MysqlDb, delete_namespace, wait_for
from tests.integration.test_deadlines import raw_call, scans_running, start_slow_node

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_a_stopping_node_is_not_ready_and_kills_what_outlives_the_grace(
        rabbitmq: str, mysql_db: MysqlDb, tmp_path: Path) -> None:
    node = await start_slow_node(mysql_db, tmp_path, {"node": {"grace_seconds": 1},
                                                      "ops": {"http_listen": "127.0.0.1:0"}})
    try:
        port = node.node.ops.http_port   # type: ignore[attr-defined]
        scan = asyncio.ensure_future(raw_call(node.stack.exchange, "slow.scan", {
            "template": "slow", "op": "scan", "params": {"n": 5}}, int(time.time() * 1000) + 60000))
        await wait_for(lambda: _positive(scans_running(mysql_db)), 10)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/ready") as before:
                assert before.status == 200
            node.stop.set()
            async with http.get(f"http://127.0.0.1:{port}/ready") as during:
                assert during.status == 503
                assert (await during.json())["checks"]["serving"] == "stopping"
            assert not node.task.done()   # still draining: the scan outlives the 1 s grace
        await asyncio.wait_for(node.task, 30)
        # killed in the database, not merely abandoned by the client
        await wait_for(lambda: _zero(scans_running(mysql_db)), 10)
        scan.cancel()
    finally:
        node.stop.set()
        await node.task
        await delete_namespace(node.stack.settings)


async def _positive(count: object) -> bool:
    return bool(await count)   # type: ignore[misc]


async def _zero(count: object) -> bool:
    return await count == 0   # type: ignore[misc]
