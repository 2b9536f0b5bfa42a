"""Database down while the node serves: DB_UNAVAILABLE replies, and service comes back by itself
when the database does — no node restart. The outage is real at the TCP level: a proxy between
the node and MariaDB resets every connection and refuses new ones."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import aiormq
import pytest
from structlog.testing import capture_logs

from beds.client import Client
from beds.errors import DbUnavailable
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URL, MysqlDb, queue_depth, x_death
from tests.support.stack import NodeFactory
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
Proxied = tuple[TcpProxy, Client]
"""A client of a node whose MariaDB is behind a proxy the test can cut."""


@pytest.fixture
async def proxied(node_factory: NodeFactory, mysql_db: MysqlDb,
                  mysql_proxy: TcpProxy) -> AsyncIterator[Proxied]:
    node = await node_factory(tag="outage", datasource=mysql_db.via(mysql_proxy.port, 2))
    async with Client(AMQP_URL, node.stack.exchange, default_timeout=15) as client:
        yield mysql_proxy, client
    await node.stopped()   # before its database goes away


async def test_db_down_gives_db_unavailable_then_recovers(proxied: Proxied) -> None:
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
    assert (created.out or {})["customer_id"] > 0
    reply = await client.call("film", "fetch", {"film_id": 3})
    assert reply.data[0]["FID"] == 3


async def test_a_transient_failure_is_retried_by_the_broker_and_can_recover(proxied: Proxied) -> None:
    proxy, client = proxied
    with capture_logs() as logs:
        proxy.cut()
        call = asyncio.create_task(client.call("film", "fetch", {"film_id": 4}))
        await wait_for(lambda: any(e.get("outcome") == "retry" for e in logs), 10)
        proxy.restore()
        reply = await call          # the caller never saw the outage
        # The node writes its line after the ack, which may be after the caller has the reply.
        await wait_for(lambda: any(e.get("event") == "request" and e.get("outcome") == "ok"
                                   for e in logs), 5)
    assert reply.data[0]["FID"] == 4
    attempts = [e["attempt"] for e in logs if e.get("event") == "request"]
    assert attempts[0] == 1 and attempts[-1] >= 2 and len(attempts) >= 2


async def test_a_failure_that_never_clears_is_answered_and_dead_lettered(proxied: Proxied) -> None:
    proxy, client = proxied
    dlq = client_stack_dlq(client)
    before = await queue_depth(dlq)
    with capture_logs() as logs:
        proxy.cut()
        with pytest.raises(DbUnavailable):
            await client.call("film", "fetch", {"film_id": 5})
        # The node writes its line after the ack, which may be after the caller has the reply.
        await wait_for(lambda: any(e.get("outcome") == "DB_UNAVAILABLE" for e in logs), 5)
    outcomes = [e["outcome"] for e in logs if e.get("event") == "request"]
    assert outcomes == ["retry", "retry", "retry", "DB_UNAVAILABLE"]   # broker retries = 3
    await wait_for(lambda: _depth_above(dlq, before), 5)
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        got = await channel.basic_get(dlq, no_ack=True)
        death = x_death(got)
        assert death["reason"] == "rejected"
        assert json.loads(got.body)["op"] == "fetch"
    finally:
        await conn.close()


def client_stack_dlq(client: Client) -> str:
    return f"{client.exchange}.dead"


async def _depth_above(queue: str, before: int) -> bool:
    return await queue_depth(queue) > before
