"""A reply that cannot be delivered never makes a write run again (F2, L11), requeues are
counted by the broker (F1), and a channel error on the operations side never fails a reply in
flight (F2). Real RabbitMQ and MariaDB."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiomysql
import aiormq
import pytest
from pamqp.commands import Basic
from structlog.testing import capture_logs

from beds import amqp
from beds.brokers.consumer import Consumer
from beds.brokers.link import AmqpLink, ReplyPublisher
from tests.support.services import AMQP_URL, MysqlDb, host_port, queue_depth
from tests.support.stack import RunningNode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def customers_with(db: MysqlDb, email: str) -> int:
    host, port = host_port(db.admin_dsn, 3306)
    conn = await aiomysql.connect(host=host, port=port, user="root", db=db.database)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT COUNT(*) FROM customer WHERE email = %s", (email,))
            (count,) = await cur.fetchone()
            return int(count)
    finally:
        conn.close()


async def publish_request(exchange: str, key: str, body: dict[str, Any], reply_to: str,
                          declare: dict[str, Any] | None = None) -> None:
    """One request from a raw caller whose reply queue is `reply_to` (declared with `declare`
    arguments when given)."""
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        if declare is not None:
            # x-expires: a queue nobody ever consumes is not auto-deleted; let RabbitMQ drop it.
            await channel.queue_declare(reply_to, auto_delete=True,
                                        arguments={**declare, "x-expires": 60_000})
        await channel.basic_publish(
            json.dumps(body).encode(), exchange=exchange, routing_key=key,
            properties=Basic.Properties(reply_to=reply_to, correlation_id=secrets.token_hex(4),
                                        message_id=secrets.token_hex(8)))
    finally:
        await conn.close()


def create(email: str) -> dict[str, Any]:
    return {"template": "customer", "op": "create",
            "params": {"store_id": 1, "first_name": "a", "last_name": "b", "email": email}}


async def test_a_write_whose_reply_queue_refuses_it_runs_once(running: RunningNode,
                                                              mysql_db: MysqlDb) -> None:
    # F2 (a): a reply queue that rejects every publish. Before: the request was requeued after
    # each refused reply and the write ran up to the delivery limit (~20 times).
    email = f"refused-{secrets.token_hex(4)}@example.com"
    refusing = f"refuse-{secrets.token_hex(4)}"
    settings = running.stack.settings
    with capture_logs() as logs:
        await publish_request(running.stack.exchange, "customer.create", create(email), refusing,
                              {"x-max-length": 0, "x-overflow": "reject-publish"})
        await wait_for(lambda: any(e["event"] == "reply.lost" for e in logs), 15)
    assert await customers_with(mysql_db, email) == 1
    assert [e.get("outcome") for e in logs if e["event"] == "request"] == ["reply_lost"]
    assert await queue_depth(settings.brokers["wBroker"].queue) == 0


async def test_a_read_whose_reply_is_refused_is_retried_a_bounded_number_of_times(
        running: RunningNode) -> None:
    # F2: a read may run again, but with the retry back-off and within the queue's count.
    refusing = f"refuse-{secrets.token_hex(4)}"
    retries = running.stack.settings.brokers["rBroker"].retries
    with capture_logs() as logs:
        await publish_request(running.stack.exchange, "film.fetch",
                              {"template": "film", "op": "fetch", "params": {"film_id": 1}},
                              refusing, {"x-max-length": 0, "x-overflow": "reject-publish"})
        await wait_for(lambda: any(e["event"] == "reply.lost" for e in logs), 30)
    outcomes = [e.get("outcome") for e in logs if e["event"] == "request"]
    assert outcomes == ["requeued"] * retries + ["reply_lost"]
    attempts = [e["attempt"] for e in logs if e["event"] == "request"]
    assert attempts == list(range(1, retries + 2))   # the broker counted every requeue (F1)


async def test_a_reply_to_a_queue_that_is_gone_is_logged_not_silently_acked(
        running: RunningNode, mysql_db: MysqlDb) -> None:
    # L11: replies to a named queue are mandatory; a missing queue is a lost reply, said so.
    email = f"gone-{secrets.token_hex(4)}@example.com"
    with capture_logs() as logs:
        await publish_request(running.stack.exchange, "customer.create", create(email),
                              f"nosuch-{secrets.token_hex(4)}")
        await wait_for(lambda: any(e["event"] == "reply.lost" for e in logs), 15)
    assert await customers_with(mysql_db, email) == 1
    failed = [e for e in logs if e["event"] == "reply.failed"]
    assert failed and "PublishReturned: NO_ROUTE" in failed[0]["error"]


async def test_requeue_is_a_counted_basic_reject_never_a_nack(rabbitmq: str) -> None:
    # RabbitMQ 4.3+ counts only basic.reject in x-delivery-count; a nack-based retry never
    # ends there. Pin the method on a real channel, and that the broker counted the requeue.
    queue = f"beds-test-requeue-{secrets.token_hex(4)}"
    conn = await amqp.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        # x-expires: a run cut short (a failed assertion, an interrupted session) must not leave
        # the queue on the shared broker.
        await channel.queue_declare(queue, durable=True,
                                    arguments={"x-queue-type": "quorum", "x-expires": 60_000})
        channel.basic_publish(b"{}", exchange="", routing_key=queue)

        def no_nack(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("requeue used basic.nack")

        channel.basic_nack = no_nack   # type: ignore[method-assign]
        inbox: asyncio.Queue[amqp.Delivery] = asyncio.Queue()
        await channel.basic_consume(queue, inbox.put_nowait)
        first = await asyncio.wait_for(inbox.get(), 10)
        assert Consumer._settle(channel, first.delivery_tag, requeue=True)
        again = await asyncio.wait_for(inbox.get(), 10)
        assert again.redelivered
        assert again.properties.headers is not None
        assert again.properties.headers["x-delivery-count"] == 1
        channel.basic_ack(again.delivery_tag)
        await channel.queue_delete(queue)
    finally:
        await conn.close()


async def test_an_operations_channel_error_never_fails_a_reply_in_flight(rabbitmq: str) -> None:
    # Snapshots, events and log batches publish on a channel of their own: one channel error
    # there (an oversized snapshot, a missing exchange) must never fail a reply in flight.
    stop = asyncio.Event()
    link = AmqpLink(AMQP_URL, "beds-test-publisher", 10, 1.0, stop)
    publisher = ReplyPublisher(link)
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        replies = (await channel.queue_declare(exclusive=True)).queue
        assert replies
        sends = [publisher.publish(replies, b"{}", f"c{i}") for i in range(200)]
        broken = publisher.publish_to(f"nosuch-{secrets.token_hex(4)}", "x", b"{}")
        outcome = await asyncio.gather(broken, *sends, return_exceptions=True)
        assert isinstance(outcome[0], amqp.NotFound)
        assert [o for o in outcome[1:] if o is not None] == []
        await wait_for(lambda: _depth(channel, replies, 200), 10)
    finally:
        await conn.close()
        await link.close()


async def _depth(channel: aiormq.abc.AbstractChannel, queue: str, expected: int) -> bool:
    ok = await channel.queue_declare(queue, passive=True)
    return ok.message_count == expected
