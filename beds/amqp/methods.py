"""Encoders for the methods the client sends (whole frames) and decoders for the methods it
receives (the arguments after the 4-byte class/method id).

Layer: infrastructure. One small function per method, no reflection: the per-message ones
(publish, ack, reject, nack, deliver) are a single precompiled struct each where the layout is
fixed. Decoders take the method payload and the offset of its first argument.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from beds.amqp import spec
from beds.amqp.codec import (
    FRAME_END_BYTE,
    FRAME_HEAD,
    UINT8,
    UINT32,
    Buffer,
    decode_longstr_bytes,
    decode_shortstr,
    decode_table,
    encode_longstr,
    encode_shortstr,
    encode_table,
    frame,
)

_KEY = struct.Struct(">I")
_SETTLE = struct.Struct(">BHIIQBB")       # a whole ack/reject/nack frame: 13-byte payload
_PUBLISH_HEAD = struct.Struct(">BHIIHB")  # frame head, key, ticket, exchange length
_CONTENT_HEAD = struct.Struct(">BHIHHQ")  # frame head, class, weight, body size
_TUNE = struct.Struct(">HIH")
_CLOSE = struct.Struct(">HH")
_COUNTS = struct.Struct(">II")
_DELIVERY_TAG = struct.Struct(">QB")


def method_frame(channel: int, method_key: int, args: bytes = b"") -> bytes:
    return frame(spec.FRAME_METHOD, channel, _KEY.pack(method_key) + args)


# --- connection -------------------------------------------------------------------------------

def start_ok(client_properties: Mapping[str, Any], user: str, password: str) -> bytes:
    response = b"\x00" + user.encode() + b"\x00" + password.encode()
    return method_frame(0, spec.CONNECTION_START_OK,
                        encode_table(client_properties) + encode_shortstr("PLAIN")
                        + encode_longstr(response) + encode_shortstr("en_US"))


def tune_ok(channel_max: int, frame_max: int, heartbeat: int) -> bytes:
    return method_frame(0, spec.CONNECTION_TUNE_OK, _TUNE.pack(channel_max, frame_max, heartbeat))


def connection_open(vhost: str) -> bytes:
    return method_frame(0, spec.CONNECTION_OPEN, encode_shortstr(vhost) + b"\x00\x00")


def close(channel: int, reply_code: int, reply_text: str, class_id: int = 0,
          method_id: int = 0) -> bytes:
    """connection.close on channel 0, channel.close on any other."""
    method_key = spec.CONNECTION_CLOSE if channel == 0 else spec.CHANNEL_CLOSE
    return method_frame(channel, method_key,
                        reply_code.to_bytes(2, "big") + encode_shortstr(reply_text[:255])
                        + _CLOSE.pack(class_id, method_id))


def close_ok(channel: int) -> bytes:
    return method_frame(channel, spec.CONNECTION_CLOSE_OK if channel == 0
                        else spec.CHANNEL_CLOSE_OK)


def decode_start(buf: Buffer, off: int) -> tuple[int, int, dict[str, Any], bytes, bytes]:
    major, minor = buf[off], buf[off + 1]
    server_properties, off = decode_table(buf, off + 2)
    mechanisms, off = decode_longstr_bytes(buf, off)
    locales, off = decode_longstr_bytes(buf, off)
    return major, minor, server_properties, mechanisms, locales


def decode_tune(buf: Buffer, off: int) -> tuple[int, int, int]:
    channel_max, frame_max, heartbeat = _TUNE.unpack_from(buf, off)
    return channel_max, frame_max, heartbeat


def decode_close(buf: Buffer, off: int) -> tuple[int, str, int, int]:
    """connection.close and channel.close: reply code, reply text, class id, method id."""
    reply_code = _CLOSE.unpack_from(buf, off)[0]
    reply_text, off = decode_shortstr(buf, off + 2)
    class_id, method_id = _CLOSE.unpack_from(buf, off)
    return reply_code, reply_text, class_id, method_id


def decode_shortstr_arg(buf: Buffer, off: int) -> str:
    """The one short-string argument of connection.blocked, basic.consume-ok, cancel-ok."""
    return decode_shortstr(buf, off)[0]


# --- channel ----------------------------------------------------------------------------------

def channel_open(channel: int) -> bytes:
    return method_frame(channel, spec.CHANNEL_OPEN, b"\x00")


def flow_ok(channel: int, active: bool) -> bytes:
    return method_frame(channel, spec.CHANNEL_FLOW_OK, b"\x01" if active else b"\x00")


def decode_bit(buf: Buffer, off: int) -> bool:
    """The single bit argument of channel.flow."""
    return bool(buf[off] & 1)


def confirm_select(channel: int) -> bytes:
    return method_frame(channel, spec.CONFIRM_SELECT, b"\x00")


# --- exchange and queue -------------------------------------------------------------------

def _bits(*flags: bool) -> bytes:
    return UINT8.pack(sum(1 << i for i, flag in enumerate(flags) if flag))


def exchange_declare(channel: int, exchange: str, exchange_type: str, passive: bool,
                     durable: bool, auto_delete: bool, internal: bool,
                     arguments: Mapping[str, Any] | None) -> bytes:
    return method_frame(channel, spec.EXCHANGE_DECLARE,
                        b"\x00\x00" + encode_shortstr(exchange) + encode_shortstr(exchange_type)
                        + _bits(passive, durable, auto_delete, internal, False)
                        + encode_table(arguments))


def exchange_delete(channel: int, exchange: str, if_unused: bool) -> bytes:
    return method_frame(channel, spec.EXCHANGE_DELETE,
                        b"\x00\x00" + encode_shortstr(exchange) + _bits(if_unused, False))


def queue_declare(channel: int, queue: str, passive: bool, durable: bool, exclusive: bool,
                  auto_delete: bool, arguments: Mapping[str, Any] | None) -> bytes:
    return method_frame(channel, spec.QUEUE_DECLARE,
                        b"\x00\x00" + encode_shortstr(queue)
                        + _bits(passive, durable, exclusive, auto_delete, False)
                        + encode_table(arguments))


def decode_queue_declare_ok(buf: Buffer, off: int) -> tuple[str, int, int]:
    queue, off = decode_shortstr(buf, off)
    message_count, consumer_count = _COUNTS.unpack_from(buf, off)
    return queue, message_count, consumer_count


def queue_bind(channel: int, queue: str, exchange: str, routing_key: str,
               arguments: Mapping[str, Any] | None) -> bytes:
    return method_frame(channel, spec.QUEUE_BIND,
                        b"\x00\x00" + encode_shortstr(queue) + encode_shortstr(exchange)
                        + encode_shortstr(routing_key) + b"\x00" + encode_table(arguments))


def queue_unbind(channel: int, queue: str, exchange: str, routing_key: str,
                 arguments: Mapping[str, Any] | None) -> bytes:
    return method_frame(channel, spec.QUEUE_UNBIND,
                        b"\x00\x00" + encode_shortstr(queue) + encode_shortstr(exchange)
                        + encode_shortstr(routing_key) + encode_table(arguments))


def queue_purge(channel: int, queue: str) -> bytes:
    return method_frame(channel, spec.QUEUE_PURGE, b"\x00\x00" + encode_shortstr(queue) + b"\x00")


def queue_delete(channel: int, queue: str, if_unused: bool, if_empty: bool) -> bytes:
    return method_frame(channel, spec.QUEUE_DELETE, b"\x00\x00" + encode_shortstr(queue)
                        + _bits(if_unused, if_empty, False))


def decode_message_count(buf: Buffer, off: int) -> int:
    """queue.purge-ok and queue.delete-ok."""
    return int(UINT32.unpack_from(buf, off)[0])


# --- basic ------------------------------------------------------------------------------------

def basic_qos(channel: int, prefetch_size: int, prefetch_count: int, global_: bool) -> bytes:
    return method_frame(channel, spec.BASIC_QOS,
                        UINT32.pack(prefetch_size) + prefetch_count.to_bytes(2, "big")
                        + _bits(global_))


def basic_consume(channel: int, queue: str, consumer_tag: str, no_ack: bool, exclusive: bool,
                  arguments: Mapping[str, Any] | None) -> bytes:
    return method_frame(channel, spec.BASIC_CONSUME,
                        b"\x00\x00" + encode_shortstr(queue) + encode_shortstr(consumer_tag)
                        + _bits(False, no_ack, exclusive, False) + encode_table(arguments))


def basic_cancel(channel: int, consumer_tag: str) -> bytes:
    return method_frame(channel, spec.BASIC_CANCEL, encode_shortstr(consumer_tag) + b"\x00")


def basic_cancel_ok(channel: int, consumer_tag: str) -> bytes:
    return method_frame(channel, spec.BASIC_CANCEL_OK, encode_shortstr(consumer_tag))


def decode_server_cancel(buf: Buffer, off: int) -> tuple[str, bool]:
    consumer_tag, off = decode_shortstr(buf, off)
    return consumer_tag, bool(buf[off] & 1)


def publish_frames(channel: int, exchange: bytes, routing_key: bytes, mandatory: bool,
                   properties: bytes, body_size: int, body: bytes = b"") -> bytes:
    """basic.publish and its content header as one piece, with `body` as the one body frame
    when given (a body that fits in a frame); otherwise the body frames follow."""
    size = 9 + len(exchange) + len(routing_key)
    return b"".join((
        _PUBLISH_HEAD.pack(spec.FRAME_METHOD, channel, size, spec.BASIC_PUBLISH, 0, len(exchange)),
        exchange, UINT8.pack(len(routing_key)), routing_key,
        b"\x01\xce" if mandatory else b"\x00\xce",
        _CONTENT_HEAD.pack(spec.FRAME_HEADER, channel, 12 + len(properties), spec.BASIC, 0,
                           body_size),
        properties, FRAME_END_BYTE,
        FRAME_HEAD.pack(spec.FRAME_BODY, channel, body_size) + body + FRAME_END_BYTE
        if body else b""))


def body_frame_head(channel: int, size: int) -> bytes:
    return FRAME_HEAD.pack(spec.FRAME_BODY, channel, size)


def basic_ack(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    return _SETTLE.pack(spec.FRAME_METHOD, channel, 13, spec.BASIC_ACK, delivery_tag,
                        multiple, spec.FRAME_END)


def basic_reject(channel: int, delivery_tag: int, requeue: bool) -> bytes:
    return _SETTLE.pack(spec.FRAME_METHOD, channel, 13, spec.BASIC_REJECT, delivery_tag,
                        requeue, spec.FRAME_END)


def basic_nack(channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> bytes:
    return _SETTLE.pack(spec.FRAME_METHOD, channel, 13, spec.BASIC_NACK, delivery_tag,
                        multiple | requeue << 1, spec.FRAME_END)


def decode_deliver(buf: Buffer, off: int) -> tuple[str, int, bool, str, str]:
    """consumer tag, delivery tag, redelivered, exchange, routing key."""
    consumer_tag, off = decode_shortstr(buf, off)
    delivery_tag, bits = _DELIVERY_TAG.unpack_from(buf, off)
    exchange, off = decode_shortstr(buf, off + 9)
    routing_key, off = decode_shortstr(buf, off)
    return consumer_tag, delivery_tag, bool(bits & 1), exchange, routing_key


def decode_return(buf: Buffer, off: int) -> tuple[int, str, str, str]:
    """reply code, reply text, exchange, routing key."""
    reply_code = _CLOSE.unpack_from(buf, off)[0]
    reply_text, off = decode_shortstr(buf, off + 2)
    exchange, off = decode_shortstr(buf, off)
    routing_key, off = decode_shortstr(buf, off)
    return reply_code, reply_text, exchange, routing_key


def decode_confirm(buf: Buffer, off: int) -> tuple[int, bool, bool]:
    """basic.ack / basic.nack from the broker: delivery tag, multiple, requeue (nack only)."""
    delivery_tag, bits = _DELIVERY_TAG.unpack_from(buf, off)
    return delivery_tag, bool(bits & 1), bool(bits & 2)


_CONTENT_SIZE = struct.Struct(">HHQ")


def decode_content_header(buf: Buffer, off: int) -> tuple[int, int]:
    """class id and body size of a content header frame (the properties follow at off + 12)."""
    class_id, _weight, body_size = _CONTENT_SIZE.unpack_from(buf, off)
    return class_id, body_size

