"""Database down while the node serves: DB_UNAVAILABLE replies, and service comes back by itself
when the database does — no node restart. The outage is real at the TCP level: a proxy between
the node and MariaDB resets every connection and refuses new ones."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beds.client import Client
from beds.errors import DbUnavailable
from tests.conftest import (
    AMQP_URL,
    MysqlDb,
    delete_namespace,
    host_port,
    make_stack,
    start_node,
)
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


@pytest.fixture
async def proxied(rabbitmq: str, mysql_db: MysqlDb,
                  tmp_path: Path) -> AsyncIterator[tuple[TcpProxy, Client]]:
    host, port = host_port(mysql_db.admin_dsn, 3306)
    proxy = await TcpProxy(host, port).start()
    datasource = mysql_db.datasource()
    datasource["dsn"] = mysql_db.dsn.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    datasource["connect_timeout"] = 2   # type: ignore[assignment]
    stack = make_stack(datasource, tmp_path, "outage")
    node = await start_node(stack)
    try:
        async with Client(AMQP_URL, stack.exchange, default_timeout=15) as client:
            yield proxy, client
    finally:
        node.stop.set()
        await node.task
        await proxy.close()
        await delete_namespace(stack.settings)


async def test_db_down_gives_db_unavailable_then_recovers(proxied) -> None:
    proxy, client = proxied
    # Several pooled connections are open and idle when the database goes away.
    await asyncio.gather(*(client.call("film", "fetch", {"film_id": 1}) for _ in range(20)))

    proxy.cut()
    for _ in range(3):   # several calls: the node keeps answering while the database is gone
        with pytest.raises(DbUnavailable) as info:
            await client.call("film", "fetch", {"film_id": 1})
        assert info.value.retryable
    with pytest.raises(DbUnavailable):
        await client.call("customer", "create", {"store_id": 1, "first_name": "a",
                                                 "last_name": "b", "email": "down@example.com"})

    proxy.restore()
    # The first call after recovery is a write, which BEDS never retries by itself: it must not
    # land on a stale pooled connection.
    email = f"back-{secrets.token_hex(3)}@example.com"
    created = await client.call("customer", "create", {"store_id": 1, "first_name": "a",
                                                       "last_name": "b", "email": email})
    assert created.out["customer_id"] > 0
    reply = await client.call("film", "fetch", {"film_id": 3})
    assert reply.data[0]["FID"] == 3
