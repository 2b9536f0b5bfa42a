"""Field values, tables, short/long strings and frames of AMQP 0-9-1, with precompiled structs.

Layer: infrastructure. Decoders take a buffer and an offset and return (value, next offset);
they raise ValueError (or struct.error, a ValueError) on a value that runs past its buffer, which
the connection turns into a FrameError. Table value types are the ones RabbitMQ sends (its errata:
`s` is a signed 16-bit int, `l` a signed 64-bit int, `x` a byte array).
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from beds.amqp.spec import FRAME_END

UINT8 = struct.Struct(">B")
INT8 = struct.Struct(">b")
UINT16 = struct.Struct(">H")
INT16 = struct.Struct(">h")
UINT32 = struct.Struct(">I")
INT32 = struct.Struct(">i")
UINT64 = struct.Struct(">Q")
INT64 = struct.Struct(">q")
FLOAT = struct.Struct(">f")
DOUBLE = struct.Struct(">d")
DECIMAL = struct.Struct(">Bi")
FRAME_HEAD = struct.Struct(">BHI")      # frame type, channel, payload size
FRAME_END_BYTE = bytes((FRAME_END,))

Buffer = bytes | bytearray


def decode_shortstr(buf: Buffer, off: int) -> tuple[str, int]:
    end = off + 1 + buf[off]
    if end > len(buf):
        raise ValueError("short string runs past the end of its frame")
    return buf[off + 1:end].decode(), end


def decode_longstr_bytes(buf: Buffer, off: int) -> tuple[bytes, int]:
    end = off + 4 + UINT32.unpack_from(buf, off)[0]
    if end > len(buf):
        raise ValueError("long string runs past the end of its frame")
    return bytes(buf[off + 4:end]), end


def decode_longstr(buf: Buffer, off: int) -> tuple[str | bytes, int]:
    """A long string as text; bytes when it is not UTF-8 (a header may carry binary)."""
    raw, end = decode_longstr_bytes(buf, off)
    try:
        return raw.decode(), end
    except UnicodeDecodeError:
        return raw, end


def encode_shortstr(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"short string of {len(raw)} bytes (the limit is 255): {value[:40]!r}...")
    return UINT8.pack(len(raw)) + raw


def encode_longstr(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return UINT32.pack(len(raw)) + raw


def _fixed(fmt: struct.Struct) -> Callable[[Buffer, int], tuple[Any, int]]:
    size = fmt.size

    def decode(buf: Buffer, off: int) -> tuple[Any, int]:
        return fmt.unpack_from(buf, off)[0], off + size
    return decode


def _decode_bool(buf: Buffer, off: int) -> tuple[bool, int]:
    return bool(buf[off]), off + 1


def _decode_decimal(buf: Buffer, off: int) -> tuple[decimal.Decimal, int]:
    scale, value = DECIMAL.unpack_from(buf, off)
    return decimal.Decimal(value).scaleb(-scale), off + 5


def _decode_timestamp(buf: Buffer, off: int) -> tuple[dt.datetime, int]:
    return dt.datetime.fromtimestamp(UINT64.unpack_from(buf, off)[0], dt.UTC), off + 8


def _decode_array(buf: Buffer, off: int) -> tuple[list[Any], int]:
    end = off + 4 + UINT32.unpack_from(buf, off)[0]
    if end > len(buf):
        raise ValueError("field array runs past the end of its frame")
    off += 4
    values = []
    while off < end:
        value, off = decode_value(buf, off)
        values.append(value)
    if off != end:
        raise ValueError("field array overruns its declared size")
    return values, end


def _decode_void(buf: Buffer, off: int) -> tuple[None, int]:
    return None, off


def decode_table(buf: Buffer, off: int) -> tuple[dict[str, Any], int]:
    end = off + 4 + UINT32.unpack_from(buf, off)[0]
    if end > len(buf):
        raise ValueError("field table runs past the end of its frame")
    off += 4
    table = {}
    while off < end:
        name, off = decode_shortstr(buf, off)
        table[name], off = decode_value(buf, off)
    if off != end:
        raise ValueError("field table overruns its declared size")
    return table, end


_DECODERS: dict[int, Callable[[Buffer, int], tuple[Any, int]]] = {
    ord("t"): _decode_bool, ord("b"): _fixed(INT8), ord("B"): _fixed(UINT8),
    ord("s"): _fixed(INT16), ord("U"): _fixed(INT16), ord("u"): _fixed(UINT16),
    ord("I"): _fixed(INT32), ord("i"): _fixed(UINT32), ord("l"): _fixed(INT64),
    ord("L"): _fixed(UINT64), ord("f"): _fixed(FLOAT), ord("d"): _fixed(DOUBLE),
    ord("D"): _decode_decimal, ord("S"): decode_longstr, ord("x"): decode_longstr_bytes,
    ord("A"): _decode_array, ord("T"): _decode_timestamp, ord("F"): decode_table,
    ord("V"): _decode_void,
}


def decode_value(buf: Buffer, off: int) -> tuple[Any, int]:
    decoder = _DECODERS.get(buf[off])
    if decoder is None:
        raise ValueError(f"unknown field value type {bytes(buf[off:off + 1])!r}")
    return decoder(buf, off + 1)


def encode_value(value: Any) -> bytes:
    """One typed field value: bool t, int I or l, float d, Decimal D, str S, bytes x,
    datetime T, Mapping F, list/tuple A, None V."""
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, int):
        if -0x80000000 <= value <= 0x7FFFFFFF:
            return b"I" + INT32.pack(value)
        return b"l" + INT64.pack(value)
    if isinstance(value, str):
        return b"S" + encode_longstr(value)
    if isinstance(value, bytes | bytearray):
        return b"x" + encode_longstr(bytes(value))
    if isinstance(value, float):
        return b"d" + DOUBLE.pack(value)
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        scale = -int(exponent) if isinstance(exponent, int) and exponent < 0 else 0
        unscaled = int(value.scaleb(scale))
        return b"D" + DECIMAL.pack(scale, unscaled)
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return b"T" + UINT64.pack(int(stamp.timestamp()))
    if isinstance(value, Mapping):
        return b"F" + encode_table(value)
    if isinstance(value, Sequence):
        items = b"".join(encode_value(item) for item in value)
        return b"A" + UINT32.pack(len(items)) + items
    if value is None:
        return b"V"
    raise TypeError(f"cannot encode {type(value).__name__} in an AMQP field table")


def encode_table(table: Mapping[str, Any] | None) -> bytes:
    if not table:
        return b"\x00\x00\x00\x00"
    body = b"".join(encode_shortstr(name) + encode_value(value) for name, value in table.items())
    return UINT32.pack(len(body)) + body


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return FRAME_HEAD.pack(frame_type, channel, len(payload)) + payload + FRAME_END_BYTE
