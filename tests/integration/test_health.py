"""/live, /ready and /metrics of a real node. /ready follows the database: the outage is a TCP
proxy between the node and MariaDB that resets and refuses connections (the machine's MariaDB is
shared, so it is never stopped), and /ready comes back by itself when the proxy does."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w

from beds.client import Client
from beds.config import load_settings
from tests.conftest import (
    AMQP_URL,
    ROOT,
    MysqlDb,
    RunningNode,
    Stack,
    _env_data,
    delete_namespace,
    host_port,
    start_node,
    wait_for,
)
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


@pytest.fixture
async def node(rabbitmq: str, mysql_db: MysqlDb,
               tmp_path: Path) -> AsyncIterator[tuple[RunningNode, TcpProxy, str]]:
    host, port = host_port(mysql_db.admin_dsn, 3306)
    proxy = await TcpProxy(host, port).start()
    datasource: dict[str, Any] = mysql_db.datasource()
    datasource["dsn"] = mysql_db.dsn.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    datasource["connect_timeout"] = 1
    exchange = f"beds-test-health-{secrets.token_hex(3)}"
    data = _env_data(datasource, exchange)
    data["ops"]["http_listen"] = "127.0.0.1:0"   # any free port; the node says which
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps(data))
    running = await start_node(Stack(load_settings(ROOT / "config/beds.toml", env, environ={}),
                                     env, exchange))
    port_bound = running.node.ops.http_port   # type: ignore[attr-defined]
    assert port_bound, "the node did not bind its HTTP port"
    try:
        yield running, proxy, f"http://127.0.0.1:{port_bound}"
    finally:
        running.stop.set()
        await running.task
        await proxy.close()
        await delete_namespace(running.stack.settings)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_live_ready_and_metrics(node) -> None:
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


async def test_ready_follows_the_database(node) -> None:
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
