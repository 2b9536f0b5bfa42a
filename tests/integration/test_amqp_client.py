"""beds.amqp against the real RabbitMQ: handshake and tune, declare/bind/delete and the server's
errors, qos, consume with ack/reject/nack, pipelined confirms, mandatory returns, direct
reply-to, server-sent cancel, redelivery counting on a quorum queue, and interoperation with
aio-pika (the independent client)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest

from beds.amqp import (
    Channel,
    Connection,
    Delivery,
    NotFound,
    PreconditionFailed,
    Properties,
    PublishReturned,
    connect,
)
from tests.support.services import AMQP_URL

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def conn(rabbitmq: str) -> AsyncIterator[Connection]:
    connection = await connect(rabbitmq, name="beds-amqp-test")
    yield connection
    await connection.close()


@pytest.fixture
async def queues(conn: Connection) -> AsyncIterator[Callable[[str], str]]:
    """Unique queue names, deleted at the end of the test."""
    names: list[str] = []

    def name(label: str) -> str:
        names.append(f"test.amqp.{label}.{secrets.token_hex(4)}")
        return names[-1]
    yield name
    channel = await conn.channel()
    for queue in names:
        await channel.queue_delete(queue)
    await channel.close()


async def _next(inbox: asyncio.Queue[Delivery]) -> Delivery:
    return await asyncio.wait_for(inbox.get(), 10)


async def test_connect_tunes_and_names_the_connection(conn: Connection) -> None:
    assert conn.heartbeat == 60          # RabbitMQ's default when the URL asks for none
    assert conn.frame_max == 131072 and conn.channel_max == 2047
    assert conn.server_properties["product"] == "RabbitMQ"
    assert conn.endpoint.endswith(":5672/")
    tuned = await connect(AMQP_URL + "?heartbeat=7&frame_max=8192", name="tuned")
    try:
        assert (tuned.heartbeat, tuned.frame_max) == (7, 8192)
        channel = await tuned.channel()
        ok = await channel.queue_declare("", exclusive=True)
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        await channel.basic_consume(ok.queue, inbox.put_nowait, no_ack=True)
        body = secrets.token_bytes(50_000)   # split into body frames of frame_max - 8 bytes
        channel.basic_publish(body, routing_key=ok.queue)
        assert (await _next(inbox)).body == body
    finally:
        await tuned.close()
    assert tuned.is_closed and tuned.closing.done() and tuned.closing.result() is None


async def test_declare_bind_unbind_delete_and_passive(conn: Connection, queues: Any) -> None:
    channel = await conn.channel()
    queue, exchange = queues("decl"), f"test.amqp.x.{secrets.token_hex(4)}"
    ok = await channel.queue_declare(queue, durable=False, arguments={"x-max-length": 10})
    assert ok == (queue, 0, 0)
    await channel.exchange_declare(exchange, "topic", auto_delete=False)
    await channel.queue_bind(queue, exchange, "a.#")
    channel.basic_publish(b"one", exchange=exchange, routing_key="a.b")
    await channel.queue_unbind(queue, exchange, "a.#")
    channel.basic_publish(b"two", exchange=exchange, routing_key="a.b")   # unbound: dropped
    assert (await channel.queue_declare(queue, passive=True)).message_count == 1
    assert await channel.queue_purge(queue) == 1
    await channel.exchange_delete(exchange)
    missing = f"test.amqp.missing.{secrets.token_hex(4)}"
    with pytest.raises(NotFound, match=f"NOT_FOUND - no queue '{missing}' in vhost '/'"):
        await channel.queue_declare(missing, passive=True)
    assert channel.is_closed
    with pytest.raises(NotFound):
        await channel.closing
    other = await conn.channel()     # the connection survives a channel error
    assert await other.queue_delete(queue) == 0
    await other.close()
    await other.close()              # idempotent


async def test_redeclare_with_other_arguments_is_precondition_failed(conn: Connection,
                                                                     queues: Any) -> None:
    channel = await conn.channel()
    queue = queues("pre")
    await channel.queue_declare(queue, arguments={"x-max-length": 10})
    with pytest.raises(PreconditionFailed, match="PRECONDITION_FAILED") as caught:
        await channel.queue_declare(queue, arguments={"x-max-length": 20})
    assert caught.value.reply_code == 406 and (caught.value.class_id,
                                               caught.value.method_id) == (50, 10)
    with pytest.raises(PreconditionFailed):
        channel.basic_ack(1)          # a closed channel refuses at once, with its reason


async def test_consume_ack_reject_nack_multiple(conn: Connection, queues: Any) -> None:
    channel = await conn.channel()
    queue = queues("settle")
    await channel.queue_declare(queue)
    await channel.basic_qos(prefetch_count=10)
    for n in range(6):
        channel.basic_publish(str(n).encode(), routing_key=queue)
    inbox: asyncio.Queue[Delivery] = asyncio.Queue()
    tag = await channel.basic_consume(queue, inbox.put_nowait)
    got = [await _next(inbox) for _ in range(6)]
    assert [d.body for d in got] == [b"0", b"1", b"2", b"3", b"4", b"5"]
    channel.basic_ack(got[0].delivery_tag)
    channel.basic_reject(got[1].delivery_tag, requeue=False)           # dropped
    channel.basic_nack(got[3].delivery_tag, multiple=True, requeue=True)  # 2 and 3 back
    again = [await _next(inbox) for _ in range(2)]
    assert sorted(d.body for d in again) == [b"2", b"3"] and all(d.redelivered for d in again)
    channel.basic_reject(got[4].delivery_tag, requeue=True)
    redelivered = await _next(inbox)
    assert (redelivered.body, redelivered.redelivered) == (b"4", True)
    channel.basic_ack(redelivered.delivery_tag, multiple=True)   # all that is still unacked
    await channel.basic_cancel(tag)
    await channel.close()
    check = await conn.channel()
    assert (await check.queue_declare(queue, passive=True)).message_count == 0   # none requeued


async def test_pipelined_confirms_all_resolve(conn: Connection, queues: Any) -> None:
    channel = await conn.channel(publisher_confirms=True)
    queue = queues("confirm")
    await channel.queue_declare(queue)
    confirms = [channel.basic_publish(b"m%d" % n, routing_key=queue,
                                      properties=Properties(message_id=str(n)))
                for n in range(1000)]
    assert all(f is not None for f in confirms)
    await asyncio.wait_for(asyncio.gather(*confirms), 30)   # type: ignore[arg-type]
    assert (await channel.queue_declare(queue, passive=True)).message_count == 1000


async def test_mandatory_unroutable_is_returned(conn: Connection, queues: Any) -> None:
    channel = await conn.channel(publisher_confirms=True)
    queue = queues("ret")
    await channel.queue_declare(queue)
    lost = channel.basic_publish(b"x", routing_key=f"nobody.{secrets.token_hex(4)}",
                                 mandatory=True, properties=Properties(correlation_id="c1"))
    kept = channel.basic_publish(b"y", routing_key=queue, mandatory=True,
                                 properties=Properties(correlation_id="c1"))
    assert lost is not None and kept is not None
    with pytest.raises(PublishReturned, match="NO_ROUTE") as caught:
        await asyncio.wait_for(lost, 10)
    assert caught.value.reply_code == 312 and caught.value.routing_key.startswith("nobody.")
    await asyncio.wait_for(kept, 10)
    plain = await conn.channel()    # without confirms a return is logged and dropped
    assert plain.basic_publish(b"z", routing_key="nobody", mandatory=True) is None
    await plain.queue_declare(queue, passive=True)   # the channel is still fine


async def test_direct_reply_to_round_trip(conn: Connection, queues: Any) -> None:
    caller = await conn.channel()
    server = await conn.channel(publisher_confirms=True)
    queue = queues("rpc")
    await server.queue_declare(queue)

    def serve(request: Delivery) -> None:
        props = request.properties
        assert props.reply_to and props.reply_to.startswith("amq.rabbitmq.reply-to")
        server.basic_publish(request.body.upper(), routing_key=props.reply_to,
                             properties=Properties(correlation_id=props.correlation_id))
        server.basic_ack(request.delivery_tag)
    await server.basic_consume(queue, serve)
    replies: asyncio.Queue[Delivery] = asyncio.Queue()
    await caller.basic_consume("amq.rabbitmq.reply-to", replies.put_nowait, no_ack=True)
    caller.basic_publish(b"ping", routing_key=queue, properties=Properties(
        reply_to="amq.rabbitmq.reply-to", correlation_id="r1"))
    reply = await _next(replies)
    assert (reply.body, reply.properties.correlation_id) == (b"PING", "r1")


async def test_server_cancel_when_the_queue_is_deleted(conn: Connection, queues: Any) -> None:
    channel = await conn.channel()
    queue = queues("cancel")
    await channel.queue_declare(queue)
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    channel.on_cancel.add(cancelled.put_nowait)
    tag = await channel.basic_consume(queue, lambda _d: None)
    other = await conn.channel()
    await other.queue_delete(queue)
    assert await asyncio.wait_for(cancelled.get(), 10) == tag
    assert not channel.is_closed
    await channel.queue_declare(queue)   # the channel still works


async def test_quorum_reject_requeue_counts_deliveries(conn: Connection, queues: Any) -> None:
    """BEDS requeues a failed attempt with basic.reject(requeue=True): on every RabbitMQ version
    that raises x-delivery-count (from 4.3 basic.nack no longer does, rabbitmq-server #15387)."""
    version = conn.server_properties["version"]
    channel = await conn.channel()
    queue = queues("quorum")
    await channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_publish(b"retry me", routing_key=queue)
    inbox: asyncio.Queue[Delivery] = asyncio.Queue()
    await channel.basic_consume(queue, inbox.put_nowait)
    counts = []
    for _ in range(3):
        delivery = await _next(inbox)
        counts.append((delivery.properties.headers or {}).get("x-delivery-count", 0))
        channel.basic_reject(delivery.delivery_tag, requeue=True)
    assert counts == [0, 1, 2], f"RabbitMQ {version}"
    delivery = await _next(inbox)
    channel.basic_nack(delivery.delivery_tag, requeue=True)
    after_nack = ((await _next(inbox)).properties.headers or {}).get("x-delivery-count", 0)
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    assert after_nack == (3 if major_minor >= (4, 3) else 4), f"RabbitMQ {version}"


async def test_interoperates_with_aio_pika(conn: Connection, queues: Any) -> None:
    queue = queues("interop")
    channel = await conn.channel(publisher_confirms=True)
    await channel.queue_declare(queue)
    pika = await aio_pika.connect(AMQP_URL)
    try:
        pika_channel = await pika.channel()
        await pika_channel.default_exchange.publish(
            aio_pika.Message(b"from aio-pika", correlation_id="p1", headers={"n": 5, "s": "t"},
                             content_type="application/json"), routing_key=queue)
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        await channel.basic_consume(queue, inbox.put_nowait)
        got = await _next(inbox)
        assert (got.body, got.properties.correlation_id, got.properties.headers,
                got.properties.content_type) == (b"from aio-pika", "p1", {"n": 5, "s": "t"},
                                                 "application/json")
        channel.basic_ack(got.delivery_tag)
        pika_queue = await pika_channel.declare_queue(exclusive=True)
        confirmed = channel.basic_publish(b"from beds", routing_key=pika_queue.name,
                                          properties=Properties(message_id="b1",
                                                                headers={"k": [1, "v"]}))
        await asyncio.wait_for(confirmed, 10)   # type: ignore[arg-type]
        message = await pika_queue.get(timeout=10)
        assert (message.body, message.message_id, message.headers) == (
            b"from beds", "b1", {"k": [1, "v"]})
        await message.ack()
    finally:
        await pika.close()


async def test_channel_errors_do_not_leak_into_other_channels(conn: Connection,
                                                              queues: Any) -> None:
    good: Channel = await conn.channel()
    bad = await conn.channel()
    with pytest.raises(NotFound):
        await bad.queue_declare(f"test.amqp.none.{secrets.token_hex(4)}", passive=True)
    queue = queues("good")
    assert (await good.queue_declare(queue)).queue == queue
    assert not conn.is_closed


async def test_works_on_uvloop(rabbitmq: str) -> None:
    """The node runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    import uvloop

    async def round_trip() -> bytes:
        connection = await connect(rabbitmq)
        try:
            channel = await connection.channel(publisher_confirms=True)
            ok = await channel.queue_declare("", exclusive=True)
            inbox: asyncio.Queue[Delivery] = asyncio.Queue()
            await channel.basic_consume(ok.queue, inbox.put_nowait, no_ack=True)
            await asyncio.wait_for(channel.basic_publish(b"uv", routing_key=ok.queue), 10)  # type: ignore[arg-type]
            return (await asyncio.wait_for(inbox.get(), 10)).body
        finally:
            await connection.close()
    assert await asyncio.to_thread(uvloop.run, round_trip()) == b"uv"


async def test_a_wrong_password_is_an_authentication_error(rabbitmq: str) -> None:
    from urllib.parse import urlsplit

    from beds.amqp import AuthenticationError
    parts = urlsplit(rabbitmq)
    wrong = f"amqp://guest:not-the-password@{parts.hostname}:{parts.port or 5672}/"
    with pytest.raises(AuthenticationError, match="guest") as caught:
        await connect(wrong)
    assert caught.value.reply_code == 403 and str(parts.hostname) in str(caught.value)
