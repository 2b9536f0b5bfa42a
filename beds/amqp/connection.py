"""`connect()` and `Connection`, the asyncio.Protocol: handshake, frame parser, heartbeats,
blocked/unblocked, close.

Layer: infrastructure. Received bytes are parsed where they arrive (`data_received`), straight
from the chunk when nothing is left over from the previous one; only a partial frame is kept in
a bytearray. Outgoing frames are appended to a list and written by ONE `transport.write` per
event-loop iteration, so a reply publish and the ack of its request share a system call.
Heartbeats are one `call_later` timer, no task. Any frame the client cannot accept closes the
connection (AMQP 501/505), logs one `amqp.bad_frame` line and fails `closing` with FrameError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from beds.amqp import methods, spec
from beds.amqp.channel import Channel
from beds.amqp.codec import FRAME_HEAD, UINT32, Buffer, frame
from beds.amqp.errors import (
    AuthenticationError,
    ConnectionClosed,
    ConnectionLost,
    FrameError,
    finish,
)
from beds.amqp.inbound import ProtocolViolation
from beds.amqp.params import Params, client_properties
from beds.log import get_logger

log = get_logger("beds.amqp")

HEARTBEAT_FRAME = frame(spec.FRAME_HEARTBEAT, 0, b"")
_SILENT_TICKS = 4   # ticks of heartbeat/2 s without a byte received: 2 x heartbeat
_STARTING, _AUTHENTICATING, _OPENING, _OPEN = range(4)


class Connection(asyncio.Protocol):
    """One AMQP connection. Made by `connect()`; callers wait on `closing` to learn it died."""

    def __init__(self, params: Params, max_body_bytes: int | None,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.params = params
        self.endpoint = params.endpoint
        self.max_body_bytes = max_body_bytes
        self.closing: asyncio.Future[None] = loop.create_future()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.server_properties: dict[str, Any] = {}
        self.heartbeat = 0
        self.frame_max = spec.CLIENT_FRAME_MAX
        self.channel_max = params.channel_max or spec.CLIENT_CHANNEL_MAX
        self.blocked = False
        self.blocked_reason: str | None = None
        self._transport: asyncio.Transport | None = None
        self._state = _STARTING
        self._closed = False
        self._close_ok: asyncio.Future[None] | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._flush_due = False
        self._paused: asyncio.Future[None] | None = None   # set while the transport is full
        self._channels: dict[int, Channel] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._received = False
        self._sent = False
        self._silent = 0

    @property
    def is_closed(self) -> bool:
        return self._closed or self._close_ok is not None

    # --- public API ---------------------------------------------------------------------------

    async def channel(self, publisher_confirms: bool = False) -> Channel:
        if self.is_closed:
            reason = self.closing.exception() if self.closing.done() else None
            raise ConnectionClosed(spec.CONNECTION_FORCED,
                                   f"connection to {self.endpoint} is closed"
                                   + (f": {reason}" if reason else ""))
        number = next((n for n in range(1, self.channel_max + 1) if n not in self._channels), 0)
        if not number:
            raise ConnectionClosed(spec.CHANNEL_ERROR, f"all {self.channel_max} channels of "
                                                       f"{self.endpoint} are in use")
        channel = self._channels[number] = Channel(self, number)
        await channel.open(publisher_confirms)
        return channel

    async def close(self, reply_code: int = spec.REPLY_SUCCESS, reply_text: str = "bye") -> None:
        if self._closed:
            return
        if self._close_ok is not None:
            await asyncio.wait([self.closing])
            return
        self._close_ok = self.loop.create_future()
        self.send(methods.close(0, reply_code, reply_text))
        try:
            await asyncio.wait([self._close_ok, self.closing], timeout=self.params.timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._close_ok.cancel()
            self._finish(None)

    # --- output -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_due:
            self._flush_due = True
            self.loop.call_soon(self._flush)

    async def drain(self) -> None:
        """Write what is queued now, then wait while the transport's buffer is over its high
        mark (a big publish sent frame by frame holds one frame at a time, not all of it)."""
        self._flush()
        if self._paused is not None:
            await asyncio.shield(self._paused)

    def pause_writing(self) -> None:
        if self._paused is None:
            self._paused = self.loop.create_future()

    def resume_writing(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    def _flush(self) -> None:
        self._flush_due = False
        out = self._out
        transport = self._transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._sent = True
        out.clear()

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(spec.PROTOCOL_HEADER)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._received = True
        buffer = self._buffer
        chunk: Buffer = data
        if buffer:
            buffer += data
            chunk = buffer
        try:
            used = self._parse(chunk)
        except ProtocolViolation as exc:
            self._bad_frame(str(exc), exc.reply_code)
            return
        except Exception as exc:   # a value that runs past its frame, bad UTF-8, ...
            self._bad_frame(f"malformed frame: {type(exc).__name__}: {exc}", spec.FRAME_ERROR)
            return
        if buffer:
            del buffer[:used]
        elif used < len(data):
            buffer += memoryview(data)[used:]

    def _parse(self, data: Buffer) -> int:
        pos = 0
        size_of = len(data)
        frame_max = self.frame_max
        channels = self._channels
        while size_of - pos >= spec.FRAME_OVERHEAD and not self._closed:
            frame_type, number, size = FRAME_HEAD.unpack_from(data, pos)
            if size + spec.FRAME_OVERHEAD > frame_max:
                raise ProtocolViolation(f"frame of {size + spec.FRAME_OVERHEAD} bytes (type "
                                        f"{frame_type}) exceeds frame_max {frame_max}",
                                        spec.FRAME_ERROR)
            start = pos + 7
            end = start + size
            if end >= size_of:
                break
            if data[end] != spec.FRAME_END:
                raise ProtocolViolation(f"frame end byte {data[end]:#04x}, expected 0xce",
                                        spec.FRAME_ERROR)
            pos = end + 1
            if frame_type == spec.FRAME_BODY:
                channel = channels.get(number)
                if channel is None:
                    raise ProtocolViolation(f"content body for channel {number}, not open",
                                            spec.CHANNEL_ERROR)
                channel.on_body(data, start, end)
            elif frame_type == spec.FRAME_METHOD:
                payload = data[start:end]
                method_key = UINT32.unpack_from(payload, 0)[0]
                if number == 0:
                    self._on_method(method_key, payload)
                    continue
                channel = channels.get(number)
                if channel is None:
                    raise ProtocolViolation(f"{spec.method_name(method_key)} for channel "
                                            f"{number}, not open", spec.CHANNEL_ERROR)
                channel.on_method(method_key, payload)
            elif frame_type == spec.FRAME_HEADER:
                channel = channels.get(number)
                if channel is None:
                    raise ProtocolViolation(f"content header for channel {number}, not open",
                                            spec.CHANNEL_ERROR)
                channel.on_header(data[start:end])
            elif frame_type != spec.FRAME_HEARTBEAT or number:
                raise ProtocolViolation(f"unknown frame type {frame_type} on channel {number}",
                                        spec.FRAME_ERROR)
        return pos

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._closed:
            return
        if self._state == _AUTHENTICATING:
            self._finish(AuthenticationError(
                spec.ACCESS_REFUSED, f"{self.endpoint} closed the connection after the login "
                                     f"of user {self.params.user!r}: wrong user or password?"))
            return
        detail = f": {exc}" if exc else ""
        partial = " (in the middle of a frame)" if self._buffer else ""
        self._finish(ConnectionLost(f"connection to {self.endpoint} lost{partial}{detail}"))

    # --- connection methods ---------------------------------------------------------------

    def _on_method(self, method_key: int, payload: Buffer) -> None:
        handler = _HANDLERS.get(method_key)
        if handler is None:
            raise ProtocolViolation(f"unknown method {spec.method_name(method_key)} on "
                                    "channel 0", spec.COMMAND_INVALID)
        handler(self, payload)

    def _expect_state(self, state: int, method_key: int) -> None:
        if self._state != state:
            raise ProtocolViolation(f"{spec.method_name(method_key)} out of order")

    def _on_start(self, payload: Buffer) -> None:
        self._expect_state(_STARTING, spec.CONNECTION_START)
        _major, _minor, self.server_properties, mechanisms, _locales = \
            methods.decode_start(payload, 4)
        if b"PLAIN" not in mechanisms.split():
            raise ProtocolViolation(f"{self.endpoint} offers no PLAIN login "
                                    f"({mechanisms.decode(errors='replace')})",
                                    spec.NOT_ALLOWED)
        self._state = _AUTHENTICATING
        self.send(methods.start_ok(client_properties(self.params.name), self.params.user,
                                   self.params.password))

    def _on_tune(self, payload: Buffer) -> None:
        self._expect_state(_AUTHENTICATING, spec.CONNECTION_TUNE)
        channel_max, frame_max, heartbeat = methods.decode_tune(payload, 4)
        self.channel_max = _lowest(self.channel_max, channel_max) or 65535
        self.frame_max = _lowest(self.params.frame_max or spec.CLIENT_FRAME_MAX, frame_max)
        wanted = self.params.heartbeat
        self.heartbeat = heartbeat if wanted is None else (wanted and _lowest(wanted, heartbeat))
        self._state = _OPENING
        self.send(methods.tune_ok(self.channel_max, self.frame_max, self.heartbeat))
        self.send(methods.connection_open(self.params.vhost))
        if self.heartbeat:
            self._timer = self.loop.call_later(self.heartbeat / 2, self._tick)

    def _on_open_ok(self, _payload: Buffer) -> None:
        self._expect_state(_OPENING, spec.CONNECTION_OPEN_OK)
        self._state = _OPEN
        self.opened.set_result(None)

    def _on_close(self, payload: Buffer) -> None:
        reply_code, reply_text, _class_id, _method_id = methods.decode_close(payload, 4)
        self.send(methods.close_ok(0))
        self._flush()
        error: ConnectionClosed
        if self._state < _OPEN and reply_code == spec.ACCESS_REFUSED:
            error = AuthenticationError(reply_code, f"{reply_text} (user {self.params.user!r} "
                                                    f"at {self.endpoint})")
        else:
            error = ConnectionClosed(reply_code, reply_text)
        self._finish(error)

    def _on_close_ok(self, _payload: Buffer) -> None:
        if self._close_ok is None:
            raise ProtocolViolation("connection.close-ok without connection.close")
        if not self._close_ok.done():
            self._close_ok.set_result(None)

    def _on_blocked(self, payload: Buffer) -> None:
        self.blocked = True
        self.blocked_reason = methods.decode_shortstr_arg(payload, 4)
        log.warning("amqp.blocked", endpoint=self.endpoint, reason=self.blocked_reason)

    def _on_unblocked(self, _payload: Buffer) -> None:
        self.blocked = False
        self.blocked_reason = None
        log.info("amqp.unblocked", endpoint=self.endpoint)

    # --- heartbeats, failure ------------------------------------------------------------------

    def _tick(self) -> None:
        if self._received:
            self._received = False
            self._silent = 0
        else:
            self._silent += 1
            if self._silent >= _SILENT_TICKS:
                host = self.endpoint.split("/", 1)[0]
                log.warning("amqp.heartbeat_missed", endpoint=self.endpoint,
                            seconds=self.heartbeat * 2)
                self._finish(ConnectionLost(f"missed heartbeats from {host}"))
                return
        if not self._sent and not self._out and self._transport is not None:
            self._transport.write(HEARTBEAT_FRAME)
        self._sent = False
        self._timer = self.loop.call_later(self.heartbeat / 2, self._tick)

    def _bad_frame(self, reason: str, reply_code: int) -> None:
        log.error("amqp.bad_frame", endpoint=self.endpoint, error=reason)
        self._out.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(methods.close(0, reply_code, reason[:255]))
        self._finish(FrameError(f"{self.endpoint}: {reason}"))

    def _finish(self, exc: BaseException | None) -> None:
        """Closed: by us (None) or with `exc`. Every channel, waiter and timer ends here."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()
        if self._transport is not None:
            self._transport.close()
        self.resume_writing()   # a drain() waiting on a dead connection returns
        error = exc or ConnectionClosed(spec.REPLY_SUCCESS, f"connection to {self.endpoint} "
                                                            "closed by the client")
        for channel in list(self._channels.values()):
            channel.fail(error if exc is not None else None)
        self._channels.clear()
        finish(self.opened, error)
        finish(self.closing, exc)

    def release(self, channel: Channel) -> None:
        if self._channels.get(channel.number) is channel:
            del self._channels[channel.number]

    def abort(self, exc: BaseException) -> None:
        """Give up on a connection that did not open in time."""
        self._finish(exc)
        if self._transport is not None:
            self._transport.abort()


def _lowest(ours: int, theirs: int) -> int:
    """The lower of two limits where 0 means none."""
    return min(ours, theirs) if ours and theirs else ours or theirs


_HANDLERS: dict[int, Callable[[Connection, Buffer], None]] = {
    spec.CONNECTION_START: Connection._on_start,
    spec.CONNECTION_TUNE: Connection._on_tune,
    spec.CONNECTION_OPEN_OK: Connection._on_open_ok,
    spec.CONNECTION_CLOSE: Connection._on_close,
    spec.CONNECTION_CLOSE_OK: Connection._on_close_ok,
    spec.CONNECTION_BLOCKED: Connection._on_blocked,
    spec.CONNECTION_UNBLOCKED: Connection._on_unblocked,
}


async def connect(url: str, *, name: str | None = None, heartbeat: int | None = None,
                  max_body_bytes: int | None = None, timeout: float = 10.0) -> Connection:
    """An open connection to `url` (amqp://user:pass@host:port/vhost?heartbeat=N&name=S)."""
    params = Params.from_url(url, name=name, heartbeat=heartbeat, timeout=timeout)
    loop = asyncio.get_running_loop()
    connection = Connection(params, max_body_bytes, loop)
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: connection, params.host, params.port,
                                         ssl=params.ssl_context())
            await connection.opened
    except TimeoutError:
        error = TimeoutError(f"no AMQP answer from {params.endpoint} within {timeout} s")
        connection.abort(ConnectionLost(str(error)))
        raise error from None
    except BaseException as exc:
        connection.abort(exc if isinstance(exc, Exception) else ConnectionLost("cancelled"))
        raise
    return connection
