"""Basic content properties (`Properties`) and their encoding behind the 16-bit flag word.

Layer: infrastructure. Bit 15 of the flag word is content_type, bit 2 cluster_id (the order of
the basic class's properties in the AMQP spec); bit 0 would announce a second flag word, which
basic never needs. Decoding is straight-line code: it runs once per delivery.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from beds.amqp.codec import (
    UINT8,
    UINT16,
    UINT64,
    Buffer,
    decode_shortstr,
    decode_table,
    encode_shortstr,
    encode_table,
)

FIELDS = ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
          "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
          "user_id", "app_id", "cluster_id")


class Properties:
    """The properties of a message; every field defaults to None (not sent)."""

    __slots__ = FIELDS

    def __init__(self, *, content_type: str | None = None, content_encoding: str | None = None,
                 headers: dict[str, Any] | None = None, delivery_mode: int | None = None,
                 priority: int | None = None, correlation_id: str | None = None,
                 reply_to: str | None = None, expiration: str | None = None,
                 message_id: str | None = None, timestamp: dt.datetime | None = None,
                 type: str | None = None, user_id: str | None = None,
                 app_id: str | None = None, cluster_id: str | None = None) -> None:
        self.content_type = content_type
        self.content_encoding = content_encoding
        self.headers = headers
        self.delivery_mode = delivery_mode
        self.priority = priority
        self.correlation_id = correlation_id
        self.reply_to = reply_to
        self.expiration = expiration
        self.message_id = message_id
        self.timestamp = timestamp
        self.type = type
        self.user_id = user_id
        self.app_id = app_id
        self.cluster_id = cluster_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Properties):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        set_ = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS
                         if getattr(self, name) is not None)
        return f"Properties({set_})"


EMPTY = b"\x00\x00"


def encode_properties(props: Properties | None) -> bytes:
    """The flag word and the fields that are set."""
    if props is None:
        return EMPTY
    flags = 0
    parts = [b""]
    if props.content_type is not None:
        flags |= 0x8000
        parts.append(encode_shortstr(props.content_type))
    if props.content_encoding is not None:
        flags |= 0x4000
        parts.append(encode_shortstr(props.content_encoding))
    if props.headers is not None:
        flags |= 0x2000
        parts.append(encode_table(props.headers))
    if props.delivery_mode is not None:
        flags |= 0x1000
        parts.append(UINT8.pack(props.delivery_mode))
    if props.priority is not None:
        flags |= 0x0800
        parts.append(UINT8.pack(props.priority))
    if props.correlation_id is not None:
        flags |= 0x0400
        parts.append(encode_shortstr(props.correlation_id))
    if props.reply_to is not None:
        flags |= 0x0200
        parts.append(encode_shortstr(props.reply_to))
    if props.expiration is not None:
        flags |= 0x0100
        parts.append(encode_shortstr(props.expiration))
    if props.message_id is not None:
        flags |= 0x0080
        parts.append(encode_shortstr(props.message_id))
    if props.timestamp is not None:
        flags |= 0x0040
        stamp = props.timestamp
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
        parts.append(UINT64.pack(int(stamp.timestamp())))
    if props.type is not None:
        flags |= 0x0020
        parts.append(encode_shortstr(props.type))
    if props.user_id is not None:
        flags |= 0x0010
        parts.append(encode_shortstr(props.user_id))
    if props.app_id is not None:
        flags |= 0x0008
        parts.append(encode_shortstr(props.app_id))
    if props.cluster_id is not None:
        flags |= 0x0004
        parts.append(encode_shortstr(props.cluster_id))
    parts[0] = UINT16.pack(flags)
    return b"".join(parts)


def decode_properties(buf: Buffer, off: int) -> Properties:
    flags = UINT16.unpack_from(buf, off)[0]
    off += 2
    props = Properties()
    if not flags:
        return props
    if flags & 0x0001:
        raise ValueError("basic properties with a second flag word")
    if flags & 0x8000:
        props.content_type, off = decode_shortstr(buf, off)
    if flags & 0x4000:
        props.content_encoding, off = decode_shortstr(buf, off)
    if flags & 0x2000:
        props.headers, off = decode_table(buf, off)
    if flags & 0x1000:
        props.delivery_mode = buf[off]
        off += 1
    if flags & 0x0800:
        props.priority = buf[off]
        off += 1
    if flags & 0x0400:
        props.correlation_id, off = decode_shortstr(buf, off)
    if flags & 0x0200:
        props.reply_to, off = decode_shortstr(buf, off)
    if flags & 0x0100:
        props.expiration, off = decode_shortstr(buf, off)
    if flags & 0x0080:
        props.message_id, off = decode_shortstr(buf, off)
    if flags & 0x0040:
        props.timestamp = dt.datetime.fromtimestamp(UINT64.unpack_from(buf, off)[0], dt.UTC)
        off += 8
    if flags & 0x0020:
        props.type, off = decode_shortstr(buf, off)
    if flags & 0x0010:
        props.user_id, off = decode_shortstr(buf, off)
    if flags & 0x0008:
        props.app_id, off = decode_shortstr(buf, off)
    if flags & 0x0004:
        props.cluster_id, off = decode_shortstr(buf, off)
    if off > len(buf):
        raise ValueError("basic properties run past the end of their frame")
    return props
