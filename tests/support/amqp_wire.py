"""An independent, table-driven AMQP 0-9-1 method codec (from the spec's argument lists) and a
fake AMQP server on a real local socket, for testing beds.amqp.

The codec here is deliberately generic (argument list -> bytes and back), unlike beds.amqp's
hand-written per-method functions: the property tests check that both agree. Field tables use
beds.amqp.codec (tested on its own). The fake server completes the AMQP handshake, answers the
RPCs a test needs, records what the client sent, and lets the test write any bytes it likes.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any

from beds.amqp import spec
from beds.amqp.codec import decode_table, encode_table

ARGS: dict[int, list[tuple[str, str]]] = {
    spec.CONNECTION_START: [("version_major", "octet"), ("version_minor", "octet"),
                            ("server_properties", "table"), ("mechanisms", "longstr"),
                            ("locales", "longstr")],
    spec.CONNECTION_START_OK: [("client_properties", "table"), ("mechanism", "shortstr"),
                               ("response", "longstr"), ("locale", "shortstr")],
    spec.CONNECTION_TUNE: [("channel_max", "short"), ("frame_max", "long"),
                           ("heartbeat", "short")],
    spec.CONNECTION_TUNE_OK: [("channel_max", "short"), ("frame_max", "long"),
                              ("heartbeat", "short")],
    spec.CONNECTION_OPEN: [("virtual_host", "shortstr"), ("capabilities", "shortstr"),
                           ("insist", "bit")],
    spec.CONNECTION_OPEN_OK: [("known_hosts", "shortstr")],
    spec.CONNECTION_CLOSE: [("reply_code", "short"), ("reply_text", "shortstr"),
                            ("class_id", "short"), ("method_id", "short")],
    spec.CONNECTION_CLOSE_OK: [],
    spec.CONNECTION_BLOCKED: [("reason", "shortstr")],
    spec.CONNECTION_UNBLOCKED: [],
    spec.CHANNEL_OPEN: [("out_of_band", "shortstr")],
    spec.CHANNEL_OPEN_OK: [("channel_id", "longstr")],
    spec.CHANNEL_FLOW: [("active", "bit")],
    spec.CHANNEL_FLOW_OK: [("active", "bit")],
    spec.CHANNEL_CLOSE: [("reply_code", "short"), ("reply_text", "shortstr"),
                         ("class_id", "short"), ("method_id", "short")],
    spec.CHANNEL_CLOSE_OK: [],
    spec.EXCHANGE_DECLARE: [("ticket", "short"), ("exchange", "shortstr"), ("type", "shortstr"),
                            ("passive", "bit"), ("durable", "bit"), ("auto_delete", "bit"),
                            ("internal", "bit"), ("nowait", "bit"), ("arguments", "table")],
    spec.EXCHANGE_DECLARE_OK: [],
    spec.EXCHANGE_DELETE: [("ticket", "short"), ("exchange", "shortstr"), ("if_unused", "bit"),
                           ("nowait", "bit")],
    spec.EXCHANGE_DELETE_OK: [],
    spec.QUEUE_DECLARE: [("ticket", "short"), ("queue", "shortstr"), ("passive", "bit"),
                         ("durable", "bit"), ("exclusive", "bit"), ("auto_delete", "bit"),
                         ("nowait", "bit"), ("arguments", "table")],
    spec.QUEUE_DECLARE_OK: [("queue", "shortstr"), ("message_count", "long"),
                            ("consumer_count", "long")],
    spec.QUEUE_BIND: [("ticket", "short"), ("queue", "shortstr"), ("exchange", "shortstr"),
                      ("routing_key", "shortstr"), ("nowait", "bit"), ("arguments", "table")],
    spec.QUEUE_BIND_OK: [],
    spec.QUEUE_PURGE: [("ticket", "short"), ("queue", "shortstr"), ("nowait", "bit")],
    spec.QUEUE_PURGE_OK: [("message_count", "long")],
    spec.QUEUE_DELETE: [("ticket", "short"), ("queue", "shortstr"), ("if_unused", "bit"),
                        ("if_empty", "bit"), ("nowait", "bit")],
    spec.QUEUE_DELETE_OK: [("message_count", "long")],
    spec.QUEUE_UNBIND: [("ticket", "short"), ("queue", "shortstr"), ("exchange", "shortstr"),
                        ("routing_key", "shortstr"), ("arguments", "table")],
    spec.QUEUE_UNBIND_OK: [],
    spec.BASIC_QOS: [("prefetch_size", "long"), ("prefetch_count", "short"), ("global", "bit")],
    spec.BASIC_QOS_OK: [],
    spec.BASIC_CONSUME: [("ticket", "short"), ("queue", "shortstr"), ("consumer_tag", "shortstr"),
                         ("no_local", "bit"), ("no_ack", "bit"), ("exclusive", "bit"),
                         ("nowait", "bit"), ("arguments", "table")],
    spec.BASIC_CONSUME_OK: [("consumer_tag", "shortstr")],
    spec.BASIC_CANCEL: [("consumer_tag", "shortstr"), ("nowait", "bit")],
    spec.BASIC_CANCEL_OK: [("consumer_tag", "shortstr")],
    spec.BASIC_PUBLISH: [("ticket", "short"), ("exchange", "shortstr"),
                         ("routing_key", "shortstr"), ("mandatory", "bit"), ("immediate", "bit")],
    spec.BASIC_RETURN: [("reply_code", "short"), ("reply_text", "shortstr"),
                        ("exchange", "shortstr"), ("routing_key", "shortstr")],
    spec.BASIC_DELIVER: [("consumer_tag", "shortstr"), ("delivery_tag", "longlong"),
                         ("redelivered", "bit"), ("exchange", "shortstr"),
                         ("routing_key", "shortstr")],
    spec.BASIC_ACK: [("delivery_tag", "longlong"), ("multiple", "bit")],
    spec.BASIC_REJECT: [("delivery_tag", "longlong"), ("requeue", "bit")],
    spec.BASIC_NACK: [("delivery_tag", "longlong"), ("multiple", "bit"), ("requeue", "bit")],
    spec.CONFIRM_SELECT: [("nowait", "bit")],
    spec.CONFIRM_SELECT_OK: [],
}
_FIXED = {"octet": struct.Struct(">B"), "short": struct.Struct(">H"), "long": struct.Struct(">I"),
          "longlong": struct.Struct(">Q")}


def encode_method(method_key: int, **values: Any) -> bytes:
    """The payload of a method frame (class/method id first); a missing argument is 0/""/{}."""
    out = [struct.pack(">I", method_key)]
    bits: list[bool] = []
    for name, kind in ARGS[method_key]:
        value = values.get(name)
        if kind == "bit":
            bits.append(bool(value))
            continue
        if bits:
            out.append(bytes([sum(1 << i for i, bit in enumerate(bits) if bit)]))
            bits = []
        if kind in _FIXED:
            out.append(_FIXED[kind].pack(value or 0))
        elif kind == "shortstr":
            raw = (value or "").encode()
            out.append(bytes([len(raw)]) + raw)
        elif kind == "longstr":
            raw = value.encode() if isinstance(value, str) else (value or b"")
            out.append(struct.pack(">I", len(raw)) + raw)
        else:
            out.append(encode_table(value))
    if bits:
        out.append(bytes([sum(1 << i for i, bit in enumerate(bits) if bit)]))
    return b"".join(out)


def decode_method(payload: bytes) -> tuple[int, dict[str, Any]]:
    method_key = struct.unpack_from(">I", payload)[0]
    off, bit, octet = 4, 8, 0
    values: dict[str, Any] = {}
    for name, kind in ARGS[method_key]:
        if kind == "bit":
            if bit == 8:
                octet, off, bit = payload[off], off + 1, 0
            values[name] = bool(octet >> bit & 1)
            bit += 1
            continue
        bit = 8
        if kind in _FIXED:
            values[name] = _FIXED[kind].unpack_from(payload, off)[0]
            off += _FIXED[kind].size
        elif kind == "shortstr":
            size = payload[off]
            values[name] = payload[off + 1:off + 1 + size].decode()
            off += 1 + size
        elif kind == "longstr":
            size = struct.unpack_from(">I", payload, off)[0]
            values[name] = payload[off + 4:off + 4 + size]
            off += 4 + size
        else:
            values[name], off = decode_table(payload, off)
    assert off == len(payload), f"{len(payload) - off} bytes left after the arguments"
    return method_key, values


def frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


def method(channel: int, method_key: int, **values: Any) -> bytes:
    return frame(spec.FRAME_METHOD, channel, encode_method(method_key, **values))


def content(channel: int, body: bytes, properties: bytes = b"\x00\x00",
            body_size: int | None = None, frame_body: int = 131064) -> bytes:
    """A content header and its body frames."""
    size = len(body) if body_size is None else body_size
    out = [frame(spec.FRAME_HEADER, channel, struct.pack(">HHQ", 60, 0, size) + properties)]
    out += [frame(spec.FRAME_BODY, channel, body[at:at + frame_body])
            for at in range(0, len(body), frame_body)]
    return b"".join(out)


def deliver(channel: int, body: bytes, delivery_tag: int, consumer_tag: str = "ctag",
            properties: bytes = b"\x00\x00") -> bytes:
    return (method(channel, spec.BASIC_DELIVER, consumer_tag=consumer_tag,
                   delivery_tag=delivery_tag, exchange="", routing_key="q")
            + content(channel, body, properties))


class FakeBroker:
    """A scripted AMQP server on 127.0.0.1: handshake, then the RPC answers in `answers` (method
    -> reply method and its arguments, or None to leave it unanswered). `received` records every
    method the client sent; `write` sends raw bytes; `silent` stops it answering at all."""

    def __init__(self, heartbeat: int = 0, frame_max: int = 131072) -> None:
        self.heartbeat = heartbeat
        self.frame_max = frame_max
        self.received: list[tuple[int, int, dict[str, Any]]] = []
        self.silent = False
        self.eof = asyncio.Event()
        self.answers: dict[int, Callable[[dict[str, Any]], bytes | None]] = {
            spec.CHANNEL_OPEN: lambda _v: encode_method(spec.CHANNEL_OPEN_OK),
            spec.CHANNEL_CLOSE: lambda _v: encode_method(spec.CHANNEL_CLOSE_OK),
            spec.CONFIRM_SELECT: lambda _v: encode_method(spec.CONFIRM_SELECT_OK),
            spec.BASIC_QOS: lambda _v: encode_method(spec.BASIC_QOS_OK),
            spec.BASIC_CONSUME: lambda v: encode_method(spec.BASIC_CONSUME_OK,
                                                        consumer_tag=v["consumer_tag"] or "ctag"),
            spec.BASIC_CANCEL: lambda v: encode_method(spec.BASIC_CANCEL_OK,
                                                       consumer_tag=v["consumer_tag"]),
            spec.CONNECTION_CLOSE: lambda _v: encode_method(spec.CONNECTION_CLOSE_OK),
        }
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()

    async def __aenter__(self) -> FakeBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    def write(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    def close_socket(self) -> None:
        assert self._writer is not None
        self._writer.close()

    def methods(self, method_key: int) -> list[dict[str, Any]]:
        return [values for _ch, key, values in self.received if key == method_key]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        try:
            assert await reader.readexactly(8) == spec.PROTOCOL_HEADER
            writer.write(method(0, spec.CONNECTION_START, version_major=0, version_minor=9,
                                server_properties={"product": "fake"}, mechanisms=b"PLAIN",
                                locales=b"en_US"))
            await self._read_method(reader, spec.CONNECTION_START_OK)
            writer.write(method(0, spec.CONNECTION_TUNE, channel_max=2047,
                                frame_max=self.frame_max, heartbeat=self.heartbeat))
            await self._read_method(reader, spec.CONNECTION_TUNE_OK)
            await self._read_method(reader, spec.CONNECTION_OPEN)
            writer.write(method(0, spec.CONNECTION_OPEN_OK))
            self.connected.set()
            while True:
                frame_type, channel, payload = await self._read_frame(reader)
                if frame_type != spec.FRAME_METHOD or self.silent:
                    continue
                key, values = decode_method(payload)
                self.received.append((channel, key, values))
                answer = self.answers.get(key)
                reply = answer(values) if answer is not None else None
                if reply is not None:
                    writer.write(frame(spec.FRAME_METHOD, channel, reply))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.eof.set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read_frame(self, reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
        frame_type, channel, size = struct.unpack(">BHI", await reader.readexactly(7))
        payload = await reader.readexactly(size)
        assert await reader.readexactly(1) == b"\xce", "the client sent a bad frame end"
        return frame_type, channel, payload

    async def _read_method(self, reader: asyncio.StreamReader, method_key: int) -> None:
        _frame_type, channel, payload = await self._read_frame(reader)
        key, values = decode_method(payload)
        assert key == method_key, f"expected {spec.method_name(method_key)}"
        self.received.append((channel, key, values))
