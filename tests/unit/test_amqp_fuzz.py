"""beds.amqp against a misbehaving server (a fake AMQP server on a real 127.0.0.1 socket):
truncated, oversized, reordered, wrongly ended, unknown and random frames each close the
connection with one `amqp.bad_frame` line, fail `closing` and every pending future, and leave
no task or timer behind; a silent server is detected by missed heartbeats; an oversized message
body is skipped without breaking the next delivery."""

from __future__ import annotations

import asyncio
import contextvars
import random
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from beds.amqp import (
    Channel,
    Connection,
    ConnectionLost,
    Delivery,
    FrameError,
    Properties,
    connect,
    spec,
)
from beds.amqp.properties import encode_properties
from tests.support import amqp_wire as wire
from tests.support.amqp_wire import FakeBroker


@dataclass
class Session:
    broker: FakeBroker
    connection: Connection
    channel: Channel
    deliveries: list[Delivery]
    pending_rpc: asyncio.Future[Any]
    pending_confirm: asyncio.Future[None]


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async with FakeBroker() as broker:
        connection = await asyncio.wait_for(connect(broker.url, heartbeat=30), 5)
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=True), 5)
        deliveries: list[Delivery] = []
        await asyncio.wait_for(channel.basic_consume("q", deliveries.append), 5)
        # queue.declare is not answered by the fake server: an RPC left pending.
        pending_rpc = asyncio.ensure_future(channel.queue_declare("never-answered"))
        pending_confirm = channel.basic_publish(b"x", routing_key="q")
        assert pending_confirm is not None
        await asyncio.sleep(0)
        yield Session(broker, connection, channel, deliveries, pending_rpc, pending_confirm)
        await connection.close()


async def _fails_cleanly(s: Session, expected: type[Exception] = FrameError) -> Exception:
    """The connection died with `expected`; everything pending failed; nothing is left."""
    with pytest.raises(expected) as caught:
        await asyncio.wait_for(asyncio.shield(s.connection.closing), 5)
    for future in (s.pending_rpc, s.pending_confirm, s.channel.closing):
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(future, 5)
    assert s.connection.is_closed and s.channel.is_closed
    assert s.connection._timer is None
    await asyncio.wait_for(s.broker.eof.wait(), 5)   # the client closed its socket
    assert not [t for t in asyncio.all_tasks() if "beds/amqp" in repr(t.get_coro())]
    return caught.value


BAD_FRAMES = {
    "truncated method arguments": wire.frame(spec.FRAME_METHOD, 1,
                                             struct.pack(">I", spec.BASIC_DELIVER) + b"\x30ab"),
    "oversized frame": struct.pack(">BHI", spec.FRAME_METHOD, 1, 200_000) + b"\x00" * 64,
    "body before header": wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag",
                                      delivery_tag=1, exchange="", routing_key="q")
    + wire.frame(spec.FRAME_BODY, 1, b"body"),
    "header without deliver": wire.content(1, b"body"),
    "body without anything": wire.frame(spec.FRAME_BODY, 1, b"body"),
    "method inside a message": wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag",
                                           delivery_tag=1, exchange="", routing_key="q")
    + wire.method(1, spec.BASIC_QOS_OK),
    "body longer than announced": wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag",
                                              delivery_tag=1, exchange="", routing_key="q")
    + wire.content(1, b"0123456789", body_size=4),
    "wrong frame end": wire.frame(spec.FRAME_HEARTBEAT, 0, b"", end=0x00),
    "unknown method": wire.frame(spec.FRAME_METHOD, 1, struct.pack(">HH", 60, 999)),
    "unknown connection method": wire.frame(spec.FRAME_METHOD, 0, struct.pack(">HH", 10, 99)),
    "unknown frame type": wire.frame(7, 0, b"??"),
    "reply nobody asked for": wire.method(1, spec.BASIC_QOS_OK) + wire.method(1, spec.BASIC_QOS_OK),
    "frame for a channel not open": wire.method(9, spec.CHANNEL_OPEN_OK),
    "unknown table value type": wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag", delivery_tag=1, exchange="",
                  routing_key="q")
    + wire.frame(spec.FRAME_HEADER, 1, struct.pack(">HHQH", 60, 0, 0, 0x2000)
                 + struct.pack(">I", 3) + b"\x01kZ"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_a_bad_frame_closes_the_connection_with_one_line(session: Session,
                                                               case: str) -> None:
    with capture_logs() as logs:
        session.broker.write(BAD_FRAMES[case])
        error = await _fails_cleanly(session)
    bad = [line for line in logs if line["event"] == "amqp.bad_frame"]
    assert len(bad) == 1, logs
    assert bad[0]["log_level"] == "error" and str(error).endswith(bad[0]["error"])
    closes = session.broker.methods(spec.CONNECTION_CLOSE)
    assert closes and closes[-1]["reply_code"] in (spec.FRAME_ERROR, spec.UNEXPECTED_FRAME,
                                                   spec.COMMAND_INVALID, spec.CHANNEL_ERROR)
    with pytest.raises(ConnectionError):
        await session.connection.channel()


async def test_a_frame_cut_by_the_socket_closing(session: Session) -> None:
    frame = wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag", delivery_tag=1,
                        exchange="", routing_key="q")
    session.broker.write(frame[:len(frame) // 2])
    await asyncio.sleep(0.05)
    session.broker.close_socket()
    error = await _fails_cleanly(session, ConnectionLost)
    assert "in the middle of a frame" in str(error)


@pytest.mark.parametrize("seed", range(12))
async def test_random_garbage(session: Session, seed: int) -> None:
    draw = random.Random(seed)
    garbage = draw.randbytes(draw.randint(1, 600))
    with capture_logs() as logs:
        session.broker.write(garbage)
        await asyncio.sleep(0.05)
        if not session.connection.closing.done():
            session.broker.close_socket()   # too little to be a frame: then the socket ends
        await _fails_cleanly(session, ConnectionLost)
    assert len([line for line in logs if line["event"] == "amqp.bad_frame"]) <= 1


async def test_missed_heartbeats_lose_the_connection() -> None:
    async with FakeBroker(heartbeat=1) as broker:
        connection = await asyncio.wait_for(connect(broker.url), 5)
        assert connection.heartbeat == 1
        pending = asyncio.ensure_future(
            (await asyncio.wait_for(connection.channel(), 5)).queue_declare("never-answered"))
        broker.silent = True
        with capture_logs() as logs, pytest.raises(ConnectionLost, match="missed heartbeats"):
            await asyncio.wait_for(asyncio.shield(connection.closing), 10)
        with pytest.raises(ConnectionLost):
            await pending
        assert [line["event"] for line in logs] == ["amqp.heartbeat_missed"]
        assert connection._timer is None
        await asyncio.wait_for(broker.eof.wait(), 5)


async def test_the_client_sends_heartbeats_when_idle() -> None:
    async with FakeBroker(heartbeat=1) as broker:
        connection = await asyncio.wait_for(connect(broker.url), 5)
        writes: list[bytes] = []
        transport = connection._transport
        assert transport is not None
        original = transport.write

        def recorded(data: Any) -> None:
            writes.append(bytes(data))
            original(data)
        transport.write = recorded  # type: ignore[method-assign]
        broker.write(wire.frame(spec.FRAME_HEARTBEAT, 0, b""))
        for _ in range(30):
            if wire.frame(spec.FRAME_HEARTBEAT, 0, b"") in writes:
                break
            await asyncio.sleep(0.1)
        assert wire.frame(spec.FRAME_HEARTBEAT, 0, b"") in writes
        await connection.close()
        assert connection._timer is None


async def test_an_oversized_body_is_skipped_and_the_next_delivery_is_intact() -> None:
    async with FakeBroker() as broker:
        connection = await asyncio.wait_for(connect(broker.url, max_body_bytes=100), 5)
        channel = await asyncio.wait_for(connection.channel(), 5)
        got: asyncio.Queue[Delivery] = asyncio.Queue()
        await asyncio.wait_for(channel.basic_consume("q", got.put_nowait), 5)
        props = encode_properties(Properties(correlation_id="big"))
        broker.write(wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag", delivery_tag=1,
                                 exchange="", routing_key="q")
                     + wire.content(1, b"B" * 1000, props, frame_body=300)
                     + wire.deliver(1, b"small", 2,
                                    properties=encode_properties(Properties(correlation_id="s"))))
        big = await asyncio.wait_for(got.get(), 5)
        small = await asyncio.wait_for(got.get(), 5)
        assert (big.oversized, big.body, big.body_size, big.properties.correlation_id) == (
            True, b"", 1000, "big")
        assert (small.oversized, small.body, small.body_size, small.delivery_tag) == (
            False, b"small", 5, 2)
        assert not connection.closing.done()
        await connection.close()


async def test_running_consumer_tasks_are_cancelled_with_their_connection() -> None:
    """A delivery's task still running when its channel dies is cancelled (its message goes
    back to the queue: a node must not keep working on it); the callback runs in the context
    basic_consume was called in."""
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="connection")
    async with FakeBroker() as broker:
        connection = await asyncio.wait_for(connect(broker.url), 5)
        channel = await asyncio.wait_for(connection.channel(), 5)
        started: asyncio.Queue[str] = asyncio.Queue()
        cancelled = asyncio.Event()

        async def work(_delivery: Delivery) -> None:
            started.put_nowait(marker.get())
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
        marker.set("consumer")
        await asyncio.wait_for(channel.basic_consume("q", work), 5)
        broker.write(wire.deliver(1, b"job", 1))
        assert await asyncio.wait_for(started.get(), 5) == "consumer"
        broker.close_socket()
        await asyncio.wait_for(cancelled.wait(), 5)
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(asyncio.shield(connection.closing), 5)


async def test_connect_failures_name_the_endpoint() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()   # until the client gives up and closes
        writer.close()
        await writer.wait_closed()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}/ within 0.3 s"):
            await connect(f"amqp://u:p@127.0.0.1:{port}/", timeout=0.3)
    finally:
        silent.close()
        await silent.wait_closed()
    with pytest.raises(ConnectionRefusedError):   # an OSError: nothing listens there any more
        await connect(f"amqp://u:p@127.0.0.1:{port}/", timeout=2)


async def test_drain_waits_while_the_transport_is_full_and_never_on_a_dead_connection() -> None:
    async with FakeBroker() as broker:
        connection = await asyncio.wait_for(connect(broker.url), 5)
        await asyncio.wait_for(connection.drain(), 5)          # nothing queued: returns
        connection.pause_writing()
        waiting = asyncio.ensure_future(connection.drain())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        connection.resume_writing()
        await asyncio.wait_for(waiting, 5)
        connection.pause_writing()
        waiting = asyncio.ensure_future(connection.drain())
        broker.close_socket()
        await asyncio.wait_for(waiting, 5)                     # the connection died: released
        assert connection.is_closed
