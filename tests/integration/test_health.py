"""/live, /ready and /metrics of a real node. /ready follows the database: the outage is a TCP
proxy between the node and MariaDB that resets and refuses connections (the machine's MariaDB is
shared, so it is never stopped), and /ready comes back by itself when the proxy does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from beds.client import Client
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URL, MysqlDb
from tests.support.stack import NodeFactory, RunningNode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
NodeAndProxy = tuple[RunningNode, TcpProxy, str]
"""A node whose MariaDB is behind a proxy the test can cut, and its HTTP base URL."""


@pytest.fixture
async def node(node_factory: NodeFactory, mysql_db: MysqlDb,
               mysql_proxy: TcpProxy) -> AsyncIterator[NodeAndProxy]:
    running = await node_factory(datasource=mysql_db.via(mysql_proxy.port),
                                 ops={"http_listen": "127.0.0.1:0"})   # the node says which port
    yield running, mysql_proxy, running.http_url
    await running.stopped()   # before its database goes away


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_live_ready_and_metrics(node: NodeAndProxy) -> None:
    running, _proxy, base = node
    assert (await get(f"{base}/live"))[0] == 200
    status, body = await get(f"{base}/ready")
    assert status == 200, body
    async with Client(AMQP_URL, running.stack.exchange) as client:
        for film_id in (1, 2, 3):
            await client.call("film", "fetch", {"film_id": film_id})
        await client.call_raw("film", "fetch", {"film_id": "one"})   # VALIDATION_FAILED
    status, text = await get(f"{base}/metrics")
    assert status == 200
    assert 'beds_requests_total{op="fetch",outcome="ok",template="film"} 3.0' in text
    assert 'beds_requests_total{op="fetch",outcome="VALIDATION_FAILED",template="film"} 1.0' in text
    assert 'beds_request_seconds_count{op="fetch",template="film"} 4.0' in text
    assert 'beds_broker_instances{broker="rBroker"} 2.0' in text
    assert "beds_ready 1.0" in text
    assert 'beds_pool_connections{datasource="main"}' in text
    assert 'beds_pool_waiting_requests{datasource="main"} 0.0' in text
    assert "beds_build_info{" in text and "process_resident_memory_bytes " in text


async def test_ready_follows_the_database(node: NodeAndProxy) -> None:
    _running, proxy, base = node
    assert (await get(f"{base}/ready"))[0] == 200
    proxy.cut()
    await wait_for(lambda: _status_is(f"{base}/ready", 503), 15, interval=0.2)
    _status, body = await get(f"{base}/ready")
    assert '"datasource:main": "not answering"' in body, body
    assert (await get(f"{base}/live"))[0] == 200   # alive, just not ready
    proxy.restore()
    await wait_for(lambda: _status_is(f"{base}/ready", 200), 15, interval=0.2)


async def _status_is(url: str, expected: int) -> bool:
    return (await get(url))[0] == expected
