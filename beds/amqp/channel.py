"""`Channel`: the API callers use: RPCs answered in order, consume, publish with confirms,
ack/reject/nack, close.

Layer: infrastructure. Frames from the server are handled by the base class
(beds.amqp.inbound). publish, ack, reject and nack only queue frames for the connection's next
flush (one write per event-loop iteration). RPCs are pipelined: RabbitMQ answers the synchronous
methods of a channel in the order they were sent, so a FIFO of waiting futures is enough, and a
caller that gives up (cancelled) still has its reply consumed in turn.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from beds.amqp import methods, spec
from beds.amqp.codec import FRAME_END_BYTE, encode_shortstr
from beds.amqp.errors import AMQPError, ChannelClosed, finish
from beds.amqp.inbound import ChannelFrames, ConnectionSide
from beds.amqp.properties import Properties, encode_properties
from beds.log import get_logger

log = get_logger("beds.amqp")


class QueueDeclareOk(NamedTuple):
    queue: str
    message_count: int
    consumer_count: int


class Delivery:
    """One message from basic.deliver. `oversized`: its body was larger than the connection's
    max_body_bytes and was not kept (body is b"", body_size the size the broker announced)."""

    __slots__ = (
        "body",
        "body_size",
        "channel",
        "consumer_tag",
        "delivery_tag",
        "exchange",
        "oversized",
        "properties",
        "redelivered",
        "routing_key",
    )

    def __init__(self, channel: Channel, consumer_tag: str, delivery_tag: int, redelivered: bool,
                 exchange: str, routing_key: str, properties: Properties, body: bytes,
                 body_size: int, oversized: bool) -> None:
        self.channel = channel
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.body_size = body_size
        self.oversized = oversized


ConsumerCallback = Callable[[Delivery], Awaitable[None] | None]


class Channel(ChannelFrames):
    """One AMQP channel, made by `Connection.channel()`."""

    def __init__(self, connection: ConnectionSide, number: int) -> None:
        super().__init__(connection, number)
        self._closed = False
        self._close_sent = False
        self._confirming = False
        self._published = 0

    @property
    def is_closed(self) -> bool:
        return self._closed or self._close_sent

    # --- RPCs ---------------------------------------------------------------------------------

    def _call(self, frame: bytes, reply: int,
              hook: Callable[[Any], Any] | None = None) -> asyncio.Future[Any]:
        self._check_open()
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiters.append((reply, waiter, hook))
        self._send(frame)
        return waiter

    async def open(self, publisher_confirms: bool) -> None:
        """channel.open (and confirm.select), pipelined; the connection calls this."""
        opened = self._call(methods.channel_open(self.number), spec.CHANNEL_OPEN_OK)
        if publisher_confirms:
            selected = self._call(methods.confirm_select(self.number), spec.CONFIRM_SELECT_OK)
            await opened
            await selected
            self._confirming = True
        else:
            await opened

    async def close(self) -> None:
        if self._closed or self._conn.is_closed:
            return
        if self._close_sent:
            await asyncio.wait([self.closing])
            return
        waiter = self._call(methods.close(self.number, spec.REPLY_SUCCESS, "bye"),
                            spec.CHANNEL_CLOSE_OK)
        self._close_sent = True
        try:
            await waiter
        except AMQPError:
            pass   # the server closed it first, or the connection died: closed either way
        finally:
            self.fail(None)

    async def basic_qos(self, prefetch_count: int = 0, prefetch_size: int = 0,
                        global_: bool = False) -> None:
        await self._call(methods.basic_qos(self.number, prefetch_size, prefetch_count, global_),
                         spec.BASIC_QOS_OK)

    async def basic_consume(self, queue: str, callback: ConsumerCallback, *, no_ack: bool = False,
                            exclusive: bool = False, consumer_tag: str = "",
                            arguments: Mapping[str, Any] | None = None) -> str:
        # Deliveries run in a copy of this caller's context (its context variables: log binding,
        # tracing), as tasks it started would; not in the context the connection was opened in.
        context = contextvars.copy_context()

        def register(tag: str) -> str:
            # At consume-ok, in the same data_received that may carry the first deliveries.
            self._consumers[tag] = (callback, context)
            return tag
        frame = methods.basic_consume(self.number, queue, consumer_tag, no_ack, exclusive,
                                      arguments)
        return str(await self._call(frame, spec.BASIC_CONSUME_OK, register))

    async def basic_cancel(self, consumer_tag: str) -> None:
        await self._call(methods.basic_cancel(self.number, consumer_tag), spec.BASIC_CANCEL_OK,
                         lambda tag: self._consumers.pop(tag, None))

    async def queue_declare(self, queue: str = "", *, passive: bool = False,
                            durable: bool = False, exclusive: bool = False,
                            auto_delete: bool = False,
                            arguments: Mapping[str, Any] | None = None) -> QueueDeclareOk:
        frame = methods.queue_declare(self.number, queue, passive, durable, exclusive,
                                      auto_delete, arguments)
        return QueueDeclareOk(*await self._call(frame, spec.QUEUE_DECLARE_OK))

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: Mapping[str, Any] | None = None) -> None:
        await self._call(methods.queue_bind(self.number, queue, exchange, routing_key, arguments),
                         spec.QUEUE_BIND_OK)

    async def queue_unbind(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: Mapping[str, Any] | None = None) -> None:
        await self._call(methods.queue_unbind(self.number, queue, exchange, routing_key,
                                              arguments), spec.QUEUE_UNBIND_OK)

    async def queue_delete(self, queue: str, *, if_unused: bool = False,
                           if_empty: bool = False) -> int:
        frame = methods.queue_delete(self.number, queue, if_unused, if_empty)
        return int(await self._call(frame, spec.QUEUE_DELETE_OK))

    async def queue_purge(self, queue: str) -> int:
        return int(await self._call(methods.queue_purge(self.number, queue), spec.QUEUE_PURGE_OK))

    async def exchange_declare(self, exchange: str, exchange_type: str = "direct", *,
                               passive: bool = False, durable: bool = False,
                               auto_delete: bool = False, internal: bool = False,
                               arguments: Mapping[str, Any] | None = None) -> None:
        frame = methods.exchange_declare(self.number, exchange, exchange_type, passive, durable,
                                         auto_delete, internal, arguments)
        await self._call(frame, spec.EXCHANGE_DECLARE_OK)

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False) -> None:
        await self._call(methods.exchange_delete(self.number, exchange, if_unused),
                         spec.EXCHANGE_DELETE_OK)

    # --- the per-message methods: queued, not awaited -------------------------------------

    def basic_publish(self, body: bytes, *, exchange: str = "", routing_key: str = "",
                      properties: Properties | None = None,
                      mandatory: bool = False) -> asyncio.Future[None] | None:
        self._check_open()
        number = self.number
        encoded = encode_properties(properties)
        exchange_raw = exchange.encode()
        key_raw = routing_key.encode()
        if len(exchange_raw) > 255 or len(key_raw) > 255:
            encode_shortstr(exchange)   # raises the ValueError that names the long one
            encode_shortstr(routing_key)
        size = len(body)
        most = self._conn.frame_max - spec.FRAME_OVERHEAD
        if size <= most:   # method, header and body frame: one piece, one append
            self._send(methods.publish_frames(number, exchange_raw, key_raw, mandatory, encoded,
                                              size, body))
        else:
            self._send(methods.publish_frames(number, exchange_raw, key_raw, mandatory, encoded,
                                              size))
            view = memoryview(body)
            for at in range(0, size, most):
                chunk = bytes(view[at:at + most])
                self._send(methods.body_frame_head(number, len(chunk)) + chunk + FRAME_END_BYTE)
        if not self._confirming:
            return None
        self._published += 1
        confirmed: asyncio.Future[None] = self._loop.create_future()
        self._unconfirmed[self._published] = confirmed
        if mandatory:
            self._mandatory[self._published] = (
                exchange, routing_key, properties.message_id if properties else None,
                properties.correlation_id if properties else None)
        return confirmed

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._check_open()
        self._send(methods.basic_ack(self.number, delivery_tag, multiple))

    def basic_reject(self, delivery_tag: int, requeue: bool) -> None:
        self._check_open()
        self._send(methods.basic_reject(self.number, delivery_tag, requeue))

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self._check_open()
        self._send(methods.basic_nack(self.number, delivery_tag, multiple, requeue))

    def _check_open(self) -> None:
        if self._closed or self._close_sent:
            reason = self.closing.exception() if self.closing.done() else None
            if isinstance(reason, ChannelClosed):
                raise type(reason)(reason.reply_code, reason.reply_text, reason.class_id,
                                   reason.method_id)
            raise ChannelClosed(0, f"channel {self.number} is closed"
                                   + (f": {reason}" if reason else ""))

    # --- frames from the connection ---------------------------------------------------------

    # --- deliveries (called by ChannelFrames once a message is complete) ------------------

    def _deliver(self, method: tuple[Any, ...], body: bytes) -> None:
        _key, consumer_tag, delivery_tag, redelivered, exchange, routing_key = method
        consumer = self._consumers.get(consumer_tag)
        if consumer is None:
            log.warning("amqp.delivery_without_consumer", channel=self.number,
                        consumer_tag=consumer_tag)
            return
        callback, context = consumer
        delivery = Delivery(self, consumer_tag, delivery_tag, redelivered,
                            exchange, routing_key, self._props, body, self._body_size, self._skip)
        try:
            own = context.copy()   # what one delivery's task sets stays in that task
            result = own.run(callback, delivery)
            if result is not None:
                task: asyncio.Future[None]
                if asyncio.iscoroutine(result):
                    task = self._loop.create_task(result, context=own)
                else:
                    task = asyncio.ensure_future(result, loop=self._loop)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
        except Exception as exc:   # a consumer's bug must not read as a bad frame
            log.error("amqp.consumer_failed", channel=self.number, consumer_tag=consumer_tag,
                      error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("amqp.consumer_failed", channel=self.number,
                      error=f"{type(exc).__name__}: {exc}", exc_info=exc)


    def fail(self, exc: BaseException | None) -> None:
        """The channel is closed: by us (None), by the server, or with its connection. Its
        consumers' tasks still running are cancelled: their deliveries go back to the queue, so
        their work must stop (a node's database call is killed, not left to run unanswered)."""
        if self._closed:
            return
        self._closed = True
        self._conn.release(self)
        if self._tasks:
            current = asyncio.current_task(self._loop)
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
        error = exc or ChannelClosed(spec.REPLY_SUCCESS, f"channel {self.number} closed")
        for _reply, waiter, _hook in self._waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self._waiters.clear()
        for confirmed in self._unconfirmed.values():
            if not confirmed.done():
                confirmed.set_exception(error)
                confirmed.exception()   # a publisher that stopped waiting must not warn
        self._unconfirmed.clear()
        self._mandatory.clear()
        self._consumers.clear()
        finish(self.closing, exc)

