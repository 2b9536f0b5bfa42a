"""A node over several RabbitMQ endpoints ([amqp] urls): a dead endpoint is skipped, a lost one
is left for the next live one (the topology declared there, consumers registered again), and a
consumer RabbitMQ cancels (its queue deleted) consumes again.

The lost endpoint is a private RabbitMQ node this module starts and stops (tests/chaos/broker.py);
the node then moves to the shared RabbitMQ, where only this test's own namespace is touched.
Endpoints are taken in the listed order here (`beds.node.shuffled` is the identity), so the test
knows which one the node starts on; tests/unit/test_endpoints.py covers the shuffle."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import aiormq
import pytest

from beds.client import Client
from tests.chaos.broker import PrivateRabbit, private_node
from tests.support.services import (
    AMQP_URL,
    SESSION,
    consumer_count,
)
from tests.support.stack import NodeFactory
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


@pytest.fixture(scope="module")
def lone_rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbit]:
    with private_node(tmp_path_factory.mktemp("rabbit-failover"), f"failover-{SESSION}") as node:
        yield node


@pytest.fixture(autouse=True)
def listed_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("beds.node.shuffled", list)


def closed_port_url() -> str:
    """An endpoint nobody listens on (a port the kernel just handed out and took back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}/"


async def fetch_film(urls: list[str], exchange: str) -> list[dict[str, object]]:
    async with Client(urls=urls, exchange=exchange, default_timeout=15) as client:
        return (await client.call("film", "fetch", {"film_id": 1})).data


async def test_a_dead_first_endpoint_is_skipped(node_factory: NodeFactory) -> None:
    urls = [closed_port_url(), AMQP_URL]
    node = await node_factory(amqp={"urls": urls})
    assert (await fetch_film(urls, node.stack.exchange))[0]["FID"] == 1
    assert node.node._link is not None and node.node._link.endpoint == "127.0.0.1:5672/"


async def test_a_stopped_endpoint_is_left_for_the_next_live_one(
        node_factory: NodeFactory, lone_rabbit: PrivateRabbit) -> None:
    urls = [lone_rabbit.url, AMQP_URL]
    node = await node_factory(amqp={"urls": urls})
    exchange, rbroker = node.stack.exchange, node.stack.settings.brokers["rBroker"]
    assert (await fetch_film([lone_rabbit.url], exchange))[0]["FID"] == 1
    await lone_rabbit.ctl("stop_app")   # the node's RabbitMQ goes away
    try:
        # On the shared RabbitMQ: the node declared its queues there and consumes again,
        # every instance (a consumer lost in the move would show as a lower count).
        await wait_for(lambda: _consumers(rbroker.queue, rbroker.instances), 30, interval=0.3)
        assert await consumer_count(rbroker.queue) == rbroker.instances
        # A client with the same list moves too (its first endpoint is down).
        assert (await fetch_film(urls, exchange))[0]["FID"] == 1
    finally:
        await lone_rabbit.ctl("start_app")


async def test_a_deleted_queue_is_declared_again_and_consumed(node_factory: NodeFactory) -> None:
    """RabbitMQ cancels the consumers of a deleted queue (basic.cancel); aiormq only drops
    them. The node notices, declares its topology again and consumes."""
    node = await node_factory(amqp={"urls": [AMQP_URL]})
    rbroker = node.stack.settings.brokers["rBroker"]
    conn = await aiormq.connect(AMQP_URL)
    try:
        await (await conn.channel()).queue_delete(rbroker.queue)
    finally:
        await conn.close()
    await wait_for(lambda: _consumers(rbroker.queue, rbroker.instances), 30, interval=0.3)
    assert (await fetch_film([AMQP_URL], node.stack.exchange))[0]["FID"] == 1


async def _consumers(queue: str, expected: int = 1) -> bool:
    try:
        return await consumer_count(queue) >= expected
    except (aiormq.AMQPError, ConnectionError):
        return False   # not declared (again) yet
