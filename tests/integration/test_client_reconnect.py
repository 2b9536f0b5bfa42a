"""The client comes back after RabbitMQ closes its connection: real RabbitMQ, a real node in
this process. Only the test client's own connection is closed (found by its connection_name);
nobody else's connection is touched."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from beds import CallTimeout, Client, Disconnected
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URL, host_port, queue_depth, require_tool
from tests.support.stack import RunningNode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


def require_rabbitmqctl() -> None:
    require_tool("rabbitmqctl", "closing one connection from the broker side")


def close_connection(name: str) -> None:
    """Close, from the broker side, the one connection whose connection_name is `name`."""
    listing = subprocess.run(["rabbitmqctl", "list_connections", "pid", "client_properties",
                              "-q"], capture_output=True, text=True, timeout=60, check=True)
    pids = [line.split("\t", 1)[0] for line in listing.stdout.splitlines()
            if f'{{"connection_name","{name}"}}' in line]
    assert len(pids) == 1, f"expected one connection named {name}, found {pids}"
    subprocess.run(["rabbitmqctl", "close_connection", pids[0], "beds reconnect test"],
                   capture_output=True, text=True, timeout=60, check=True)


async def test_calls_in_flight_fail_cleanly_and_the_client_reconnects(running: RunningNode) -> None:
    require_rabbitmqctl()
    name = f"beds-test-reconnect-{secrets.token_hex(4)}"
    queue = running.stack.settings.brokers["rBroker"].queue
    async with Client(AMQP_URL, running.stack.exchange, connection_name=name,
                      reconnect_max_seconds=0.5) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data[0]["FID"] == 1
        # Held in the queue by a drained node, these calls are certainly in flight when the
        # connection goes; their own timeout (120 s) is far beyond the bound below.
        await running.node.drain()
        in_flight = [asyncio.ensure_future(client.call("film", "fetch", {"film_id": 2},
                                                       timeout=120)) for _ in range(5)]
        await wait_for(lambda: _depth_at_least(queue, 5), 20)
        await asyncio.to_thread(close_connection, name)
        outcomes = await asyncio.wait_for(
            asyncio.gather(*in_flight, return_exceptions=True), 30)
        assert all(isinstance(o, Disconnected) for o in outcomes), outcomes
        assert "may or may not have run" in str(outcomes[0])
        assert "film.fetch" in str(outcomes[0])
        await running.node.resume()
        # A new call made while the client reconnects waits for the connection, then succeeds.
        reply = await client.call("film", "fetch", {"film_id": 3}, timeout=30)
        assert reply.data[0]["FID"] == 3
        assert client.connects == 2 and client.connected
        replies = await asyncio.gather(*(client.call("film", "fetch", {"film_id": 1 + i % 10})
                                         for i in range(50)))
        assert [r.data[0]["FID"] for r in replies] == [1 + i % 10 for i in range(50)]


async def _depth_at_least(queue: str, count: int) -> bool:
    return await queue_depth(queue) >= count


async def test_a_call_fails_with_disconnected_when_no_endpoint_answers() -> None:
    # Port 9 (discard) on localhost: nothing listens, the connect is refused at once.
    client = Client(urls=["amqp://guest:guest@127.0.0.1:9/"], connect_timeout=0.5)
    with pytest.raises(Disconnected, match=r"cannot connect to RabbitMQ \(127.0.0.1:9/:"):
        await client.connect()


async def test_the_endpoint_list_skips_a_dead_endpoint(running: RunningNode) -> None:
    async with Client(urls=["amqp://guest:guest@127.0.0.1:9/", AMQP_URL],
                      exchange=running.stack.exchange) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data[0]["FID"] == 1
        assert client.connects == 1


async def test_calls_after_close_and_before_connect_say_so() -> None:
    client = Client(AMQP_URL)
    with pytest.raises(RuntimeError, match="not connected"):
        await client.call("film", "fetch", {"film_id": 1})
    with pytest.raises(ValueError, match="give url or urls, not both"):
        Client(AMQP_URL, urls=[AMQP_URL])


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of RabbitMQ, to cut or stall the client's connection alone."""
    proxy = await TcpProxy(*host_port(AMQP_URL, 5672)).start()
    yield proxy
    await proxy.close()


def through(proxy: TcpProxy) -> str:
    parts = urlsplit(AMQP_URL)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}"
                                            f"@127.0.0.1:{proxy.port}"))


async def test_new_calls_wait_for_the_reconnect_up_to_their_own_timeout(
        running: RunningNode, proxy: TcpProxy) -> None:
    async with Client(through(proxy), running.stack.exchange,
                      reconnect_max_seconds=0.2) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data
        proxy.cut()   # RabbitMQ "goes away": the connection resets, reconnects are refused
        await wait_for(lambda: not client.connected, 20)
        with pytest.raises(Disconnected, match="film.fetch before its timeout .* the "
                                               "request was not sent"):
            await client.call("film", "fetch", {"film_id": 1}, timeout=0.5)
        assert not client.connected
        waiting = asyncio.ensure_future(client.call("film", "fetch", {"film_id": 4},
                                                    timeout=60))
        proxy.restore()
        assert (await asyncio.wait_for(waiting, 60)).data[0]["FID"] == 4
        assert client.connects == 2


async def test_a_stalled_connection_never_holds_a_call_past_its_timeout(
        running: RunningNode, proxy: TcpProxy) -> None:
    async with Client(through(proxy), running.stack.exchange) as client:
        proxy.stall()   # a frozen broker: bytes stop both ways, the socket stays open
        with pytest.raises(CallTimeout, match="no reply to film.fetch within 1s"):
            await asyncio.wait_for(client.call("film", "fetch", {"film_id": 1}, timeout=1),
                                   30)
        proxy.restore()
        assert (await client.call("film", "fetch", {"film_id": 5}, timeout=30)).data


async def test_close_fails_waiting_calls_and_returns_even_when_the_broker_is_frozen(
        running: RunningNode, proxy: TcpProxy) -> None:
    client = Client(through(proxy), running.stack.exchange)
    await client.connect()
    proxy.stall()
    waiting = asyncio.ensure_future(client.call("film", "fetch", {"film_id": 1}, timeout=120))
    await asyncio.sleep(0)   # let the call start publishing
    await asyncio.wait_for(client.close(), 30)
    with pytest.raises(Disconnected, match="film.fetch: .*closed"):
        await asyncio.wait_for(waiting, 30)
