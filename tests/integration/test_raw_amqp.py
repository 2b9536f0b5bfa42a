"""Bad input over raw AMQP (aio-pika, an ordinary reply queue): each gets the right error code,
poison is dead-lettered (never requeued), and the node keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from tests.support.services import AMQP_URL, queue_depth
from tests.support.stack import RunningNode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


class RawCaller:
    """Publishes arbitrary bytes and collects replies on its own exclusive queue."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, queue: aio_pika.abc.AbstractQueue,
                 exchange: str) -> None:
        self.channel, self.queue, self.exchange = channel, queue, exchange
        self.replies: dict[str, dict[str, Any]] = {}
        self.count = 0

    async def on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.replies[message.correlation_id or ""] = json.loads(message.body)

    async def send(self, body: bytes, routing_key: str, via_exchange: bool = True,
                   **props: Any) -> dict[str, Any]:
        self.count += 1
        cid = f"c{self.count}"
        message = aio_pika.Message(body, correlation_id=cid, reply_to=self.queue.name, **props)
        exchange = (await self.channel.get_exchange(self.exchange) if via_exchange
                    else self.channel.default_exchange)
        await exchange.publish(message, routing_key=routing_key)
        await wait_for(lambda: cid in self.replies, 10)
        return self.replies[cid]


@pytest.fixture
async def raw(running: RunningNode) -> AsyncIterator[RawCaller]:
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    caller = RawCaller(channel, queue, running.stack.exchange)
    await queue.consume(caller.on_reply, no_ack=True)
    yield caller
    await connection.close()


def request(template: str, op: str, params: dict[str, Any] | None = None, **extra: Any) -> bytes:
    return json.dumps({"template": template, "op": op, "params": params or {}, **extra}).encode()


async def test_bad_input_gets_the_right_code_and_the_node_keeps_serving(
        raw: RawCaller, running: RunningNode) -> None:
    settings = running.stack.settings
    r_queue = settings.brokers["rBroker"].queue
    dead_before = await queue_depth(settings.amqp.dlq)
    cases: list[tuple[bytes, str, bool, str, str]] = [
        (b"{not json", r_queue, False, "BAD_REQUEST", "body: not valid JSON"),
        (b"\xc3\x28 invalid utf-8", r_queue, False, "BAD_REQUEST", "body: not valid UTF-8 at byte 0"),
        (b"[1,2,3]", r_queue, False, "BAD_REQUEST", "body: expected a JSON object"),
        (request("nosuch", "fetch"), "nosuch.fetch", True, "TEMPLATE_NOT_FOUND", "template:"),
        (request("film", "nosuch"), "film.nosuch", True, "OP_NOT_FOUND", "op: template 'film'"),
        (request("film", "fetch", {"film_id": "x"}), "film.fetch", True, "VALIDATION_FAILED",
         "params.film_id: expected int >= 1, got 'x'"),
        (request("film", "fetch", {}), "film.fetch", True, "VALIDATION_FAILED",
         "params.film_id: required parameter is missing"),
        (request("film", "list", {"title": "x"}), "film.list", True, "VALIDATION_FAILED",
         "params.title: not accepted by this op; expected: category, rating"),
        (request("customer", "create", {"store_id": 1}), r_queue, False, "WRONG_BROKER",
         "op: customer.create (write) is served by wBroker"),
        (request("film", "list", {"category": "x" * 2_000_000}), "film.list", True, "TOO_LARGE",
         "body: 2000"),
    ]
    for body, key, via_exchange, code, message in cases:
        reply = await raw.send(body, key, via_exchange)
        assert reply["ok"] is False, (code, reply)
        assert reply["error"]["code"] == code, (code, reply)
        assert reply["error"]["message"].startswith(message), (code, reply)
        assert reply["error"]["retryable"] is False
    # Poison is dead-lettered once each, never requeued.
    await wait_for(lambda: _depth_is(settings.amqp.dlq, dead_before + len(cases)), 10)
    assert await queue_depth(r_queue) == 0
    ok = await raw.send(request("film", "fetch", {"film_id": 2}), "film.fetch")
    assert ok["ok"] is True and ok["data"][0]["FID"] == 2


async def _depth_is(queue: str, expected: int) -> bool:
    return await queue_depth(queue) == expected


async def test_a_request_without_reply_to_still_runs(raw: RawCaller,
                                                     running: RunningNode) -> None:
    """Fire-and-forget: no reply is possible, the write still happens and is acked."""
    exchange = await raw.channel.get_exchange(running.stack.exchange)
    email = "fire-and-forget@example.com"
    await exchange.publish(aio_pika.Message(request("customer", "create", {
        "store_id": 2, "first_name": "F", "last_name": "F", "email": email})),
        routing_key="customer.create")
    async def created() -> bool:
        reply = await raw.send(request("customer", "list", {"store_id": 2}, limit=50), "customer.list")
        return any(r["email"] == email for r in reply["data"])
    await wait_for(created, 10)


async def test_concurrent_raw_requests_keep_their_correlation(raw: RawCaller) -> None:
    replies = await asyncio.gather(*(
        raw.send(request("film", "fetch", {"film_id": i}), "film.fetch") for i in range(1, 21)))
    assert [r["data"][0]["FID"] for r in replies] == list(range(1, 21))


async def test_the_unrouted_and_dead_letter_queues_are_bounded_quorum_queues(
        running: RunningNode) -> None:
    # L10: both were classic and unbounded (at-most-once dead-lettering, no delivery limit).
    import aiormq

    from beds.brokers.topology import (
        DEAD_MAX,
        DEAD_MAX_BYTES,
        UNROUTED_MAX,
        bounded_quorum,
        queue_arguments,
        unrouted_broker,
    )
    from tests.support.services import AMQP_URL as URL

    amqp = running.stack.settings.amqp
    expected = {
        f"{amqp.exchange}.unrouted": {**queue_arguments(amqp, unrouted_broker(amqp)),
                                      **bounded_quorum(UNROUTED_MAX)},
        amqp.dlq: bounded_quorum(DEAD_MAX, DEAD_MAX_BYTES),
    }
    conn = await aiormq.connect(URL)
    try:
        for queue, arguments in expected.items():
            assert arguments["x-queue-type"] == "quorum" and arguments["x-max-length"] > 0
            # RabbitMQ accepts a redeclaration only with the arguments the queue has ...
            await (await conn.channel()).queue_declare(queue, durable=True, arguments=arguments)
            # ... and refuses the classic, unbounded shape of before.
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
                await (await conn.channel()).queue_declare(queue, durable=True)
    finally:
        await conn.close()
