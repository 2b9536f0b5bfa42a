"""What the server sends to a channel: deliveries assembled from deliver + header + body
frames, confirms, returns, server-sent cancel and close, flow, and the replies to RPCs.

Layer: infrastructure. `ChannelFrames` is the receiving half of `beds.amqp.channel.Channel`;
the connection calls `on_method`, `on_header` and `on_body` from data_received, so nothing here
may raise anything but ProtocolViolation for a bad frame: a consumer callback's exception is
logged, never propagated.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Callable
from typing import Any, Protocol

from beds.amqp import methods, spec
from beds.amqp.codec import Buffer
from beds.amqp.errors import PublishNacked, PublishReturned, channel_error
from beds.amqp.properties import Properties, decode_properties
from beds.log import get_logger

log = get_logger("beds.amqp")

class ProtocolViolation(Exception):
    """A frame the client cannot accept; the connection turns it into a FrameError."""

    def __init__(self, reason: str, reply_code: int = spec.UNEXPECTED_FRAME) -> None:
        super().__init__(reason)
        self.reply_code = reply_code



class ConnectionSide(Protocol):
    """What a channel uses of its connection (beds.amqp.connection.Connection)."""

    loop: asyncio.AbstractEventLoop
    frame_max: int
    max_body_bytes: int | None

    @property
    def is_closed(self) -> bool: ...

    def send(self, data: bytes) -> None: ...

    def release(self, channel: Any) -> None: ...


_NO_CONTENT, _HEADER, _BODY = 0, 1, 2


class ChannelFrames:
    """The state a channel keeps for frames from the server."""

    def __init__(self, connection: ConnectionSide, number: int) -> None:
        self._conn = connection
        self._loop = connection.loop
        self._send = connection.send
        self.number = number
        self.closing: asyncio.Future[None] = self._loop.create_future()
        self.flow_active = True
        self.on_cancel: set[Callable[[str], None]] = set()
        self._waiters: collections.deque[
            tuple[int, asyncio.Future[Any], Callable[[Any], Any] | None]] = collections.deque()
        # consumer tag -> (callback, the context basic_consume was called in); typed in Channel
        self._consumers: dict[str, tuple[Callable[[Any], Any], contextvars.Context]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._unconfirmed: dict[int, asyncio.Future[None]] = {}
        self._mandatory: dict[int, tuple[str, str, str | None, str | None]] = {}
        self._expect = _NO_CONTENT
        self._method: tuple[Any, ...] = ()
        self._props = Properties()
        self._body_size = 0
        self._received = 0
        self._parts: list[bytes] = []
        self._skip = False

    def fail(self, exc: BaseException | None) -> None:
        raise NotImplementedError

    def on_method(self, method_key: int, payload: Buffer) -> None:
        if self._expect:
            raise ProtocolViolation(f"{spec.method_name(method_key)} on channel {self.number} "
                                    "where a content frame was due")
        handler = _HANDLERS.get(method_key)
        if handler is None:
            raise ProtocolViolation(f"unknown method {spec.method_name(method_key)} on channel "
                                    f"{self.number}", spec.COMMAND_INVALID)
        handler(self, payload)

    def _reply(self, method_key: int, value: Any = None) -> None:
        if not self._waiters:
            raise ProtocolViolation(f"{spec.method_name(method_key)} on channel {self.number}, "
                                    "which asked nothing")
        expected = self._waiters[0][0]
        if expected != method_key:   # left in place: failing the channel fails its waiter too
            raise ProtocolViolation(f"{spec.method_name(method_key)} on channel {self.number} "
                                    f"where {spec.method_name(expected)} was due")
        _expected, waiter, hook = self._waiters.popleft()
        if hook is not None:
            value = hook(value)
        if not waiter.done():
            waiter.set_result(value)

    def on_header(self, payload: Buffer) -> None:
        if self._expect != _HEADER:
            raise ProtocolViolation(f"content header on channel {self.number} without "
                                    "basic.deliver or basic.return before it")
        _class_id, body_size = methods.decode_content_header(payload, 0)
        self._props = decode_properties(payload, 12)
        self._body_size = body_size
        limit = self._conn.max_body_bytes
        self._skip = limit is not None and body_size > limit
        if body_size:
            self._expect = _BODY
            self._received = 0
        else:
            self._complete(b"")

    def on_body(self, data: Buffer, start: int, end: int) -> None:
        if self._expect != _BODY:
            raise ProtocolViolation(f"content body on channel {self.number} without a content "
                                    "header before it")
        received = self._received + end - start
        if received > self._body_size:
            raise ProtocolViolation(f"content body on channel {self.number} longer than the "
                                    f"{self._body_size} bytes its header announced")
        self._received = received
        if self._skip:
            if received == self._body_size:
                self._complete(b"")
        elif received == self._body_size:
            if self._parts:
                self._parts.append(bytes(data[start:end]))
                body = b"".join(self._parts)
                self._parts = []
                self._complete(body)
            else:
                self._complete(bytes(data[start:end]))
        else:
            self._parts.append(bytes(data[start:end]))

    def _complete(self, body: bytes) -> None:
        self._expect = _NO_CONTENT
        method = self._method
        if method[0] == spec.BASIC_DELIVER:
            self._deliver(method, body)
        else:
            self._returned(method)

    def _deliver(self, method: tuple[Any, ...], body: bytes) -> None:
        raise NotImplementedError   # Channel hands the delivery to its consumer

    def _returned(self, method: tuple[Any, ...]) -> None:
        _key, reply_code, reply_text, exchange, routing_key = method
        props = self._props
        wanted = (exchange, routing_key, props.message_id, props.correlation_id)
        for seq, published in self._mandatory.items():   # oldest first
            if published == wanted:
                del self._mandatory[seq]
                confirmed = self._unconfirmed.pop(seq, None)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_exception(
                        PublishReturned(reply_code, reply_text, exchange, routing_key))
                return
        log.warning("amqp.returned", channel=self.number, reply_code=reply_code,
                    reply_text=reply_text, exchange=exchange, routing_key=routing_key)

    def _confirm(self, payload: Buffer, nacked: bool) -> None:
        delivery_tag, multiple, _requeue = methods.decode_confirm(payload, 4)
        unconfirmed = self._unconfirmed
        tags = [tag for tag in unconfirmed if tag <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            confirmed = unconfirmed.pop(tag, None)
            if self._mandatory:
                self._mandatory.pop(tag, None)
            if confirmed is None or confirmed.done():
                continue
            if nacked:
                confirmed.set_exception(PublishNacked(f"the broker nacked publish {tag} on "
                                                      f"channel {self.number}"))
            else:
                confirmed.set_result(None)


def _on_close(channel: ChannelFrames, payload: Buffer) -> None:
    reply_code, reply_text, class_id, method_id = methods.decode_close(payload, 4)
    channel._send(methods.close_ok(channel.number))
    channel.fail(channel_error(reply_code, reply_text, class_id, method_id))


def _on_server_cancel(channel: ChannelFrames, payload: Buffer) -> None:
    consumer_tag, nowait = methods.decode_server_cancel(payload, 4)
    channel._consumers.pop(consumer_tag, None)
    if not nowait:
        channel._send(methods.basic_cancel_ok(channel.number, consumer_tag))
    for callback in list(channel.on_cancel):
        try:
            callback(consumer_tag)
        except Exception as exc:
            log.error("amqp.on_cancel_failed", channel=channel.number,
                      error=f"{type(exc).__name__}: {exc}", exc_info=exc)


def _on_flow(channel: ChannelFrames, payload: Buffer) -> None:
    channel.flow_active = methods.decode_bit(payload, 4)
    channel._send(methods.flow_ok(channel.number, channel.flow_active))


def _on_deliver(channel: ChannelFrames, payload: Buffer) -> None:
    channel._method = (spec.BASIC_DELIVER, *methods.decode_deliver(payload, 4))
    channel._expect = _HEADER


def _on_return(channel: ChannelFrames, payload: Buffer) -> None:
    channel._method = (spec.BASIC_RETURN, *methods.decode_return(payload, 4))
    channel._expect = _HEADER


def _reply_with(method_key: int, decode: Callable[[Buffer, int], Any] | None
                ) -> Callable[[ChannelFrames, Buffer], None]:
    if decode is None:
        return lambda channel, _payload: channel._reply(method_key)
    return lambda channel, payload: channel._reply(method_key, decode(payload, 4))


_HANDLERS: dict[int, Callable[[ChannelFrames, Buffer], None]] = {
    spec.BASIC_DELIVER: _on_deliver,
    spec.BASIC_ACK: lambda channel, payload: channel._confirm(payload, False),
    spec.BASIC_NACK: lambda channel, payload: channel._confirm(payload, True),
    spec.BASIC_RETURN: _on_return,
    spec.BASIC_CANCEL: _on_server_cancel,
    spec.CHANNEL_CLOSE: _on_close,
    spec.CHANNEL_FLOW: _on_flow,
    spec.BASIC_CONSUME_OK: _reply_with(spec.BASIC_CONSUME_OK, methods.decode_shortstr_arg),
    spec.BASIC_CANCEL_OK: _reply_with(spec.BASIC_CANCEL_OK, methods.decode_shortstr_arg),
    spec.QUEUE_DECLARE_OK: _reply_with(spec.QUEUE_DECLARE_OK, methods.decode_queue_declare_ok),
    spec.QUEUE_PURGE_OK: _reply_with(spec.QUEUE_PURGE_OK, methods.decode_message_count),
    spec.QUEUE_DELETE_OK: _reply_with(spec.QUEUE_DELETE_OK, methods.decode_message_count),
    **{key: _reply_with(key, None) for key in (
        spec.CHANNEL_OPEN_OK, spec.CHANNEL_CLOSE_OK, spec.CONFIRM_SELECT_OK, spec.BASIC_QOS_OK,
        spec.QUEUE_BIND_OK, spec.QUEUE_UNBIND_OK, spec.EXCHANGE_DECLARE_OK,
        spec.EXCHANGE_DELETE_OK)},
}
