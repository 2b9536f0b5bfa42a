"""The MySQL client/server protocol's packets, as this client reads and writes them: framing,
length-encoded integers and strings, OK / ERR / EOF, column definitions.

Layer: infrastructure. Pure. A packet is a 3-byte little-endian length, a sequence number and
the payload; a payload of 16 MiB - 1 or more is split, and a packet of exactly 0xFFFFFF bytes
says that another one follows.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from beds.mysql.errors import CR_MALFORMED_PACKET, InterfaceError, ServerError
from beds.mysql.values import reader

MAX_PAYLOAD = 0xFFFFFF
OK, EOF, ERR, LOCAL_INFILE, NULL_VALUE = 0x00, 0xFE, 0xFF, 0xFB, 0xFB

# Server status flags (in OK and EOF packets).
STATUS_IN_TRANS = 0x0001
STATUS_MORE_RESULTS = 0x0008
STATUS_NO_BACKSLASH_ESCAPES = 0x0200

# Capability flags.
LONG_PASSWORD, FOUND_ROWS, LONG_FLAG, CONNECT_WITH_DB = 0x1, 0x2, 0x4, 0x8
PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION = 0x200, 0x2000, 0x8000
MULTI_STATEMENTS, MULTI_RESULTS, PLUGIN_AUTH = 0x10000, 0x20000, 0x80000
PLUGIN_AUTH_LENENC_DATA, DEPRECATE_EOF = 0x200000, 0x1000000

header = struct.Struct("<I").unpack_from   # length (low 3 bytes) and sequence (high byte)
_U16 = struct.Struct("<H").unpack_from
_OK_TAIL = struct.Struct("<HH").unpack_from


def frame(payload: bytes, seq: int = 0) -> bytes:
    """`payload` as one or more packets, numbered from `seq`."""
    out = bytearray()
    view = memoryview(payload)
    while True:
        chunk = view[:MAX_PAYLOAD]
        out += (len(chunk) | (seq & 0xFF) << 24).to_bytes(4, "little")
        out += chunk
        seq += 1
        view = view[MAX_PAYLOAD:]
        if len(chunk) < MAX_PAYLOAD:
            return bytes(out)


def lenenc_int(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); NULL (0xFB) reads as -1."""
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFC:
        return _U16(data, pos + 1)[0], pos + 3
    if first == 0xFD:
        return int.from_bytes(data[pos + 1:pos + 4], "little"), pos + 4
    if first == 0xFE:
        return int.from_bytes(data[pos + 1:pos + 9], "little"), pos + 9
    return -1, pos + 1


def lenenc_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = lenenc_int(data, pos)
    return data[pos:pos + size], pos + size


def pack_lenenc(value: bytes) -> bytes:
    size = len(value)
    if size < 0xFB:
        return bytes((size,)) + value
    if size < 1 << 16:
        return b"\xfc" + size.to_bytes(2, "little") + value
    if size < 1 << 24:
        return b"\xfd" + size.to_bytes(3, "little") + value
    return b"\xfe" + size.to_bytes(8, "little") + value


@dataclass(slots=True)
class Done:
    """A statement's OK: what it changed."""
    affected_rows: int
    insert_id: int
    status: int
    warnings: int


def parse_ok(data: bytes) -> Done:
    """An OK packet (0x00), or the OK that ends a result set (0xFE) under DEPRECATE_EOF."""
    affected, pos = lenenc_int(data, 1)
    insert_id, pos = lenenc_int(data, pos)
    status, warnings = _OK_TAIL(data, pos) if len(data) >= pos + 4 else (0, 0)
    return Done(affected, insert_id, status, warnings)


def parse_eof_status(data: bytes) -> int:
    """The status flags of an EOF packet (0xFE, under 9 bytes)."""
    return _U16(data, 3)[0] if len(data) >= 5 else 0


def parse_err(data: bytes, outcomes: list[Any] | None = None) -> ServerError:
    errno = _U16(data, 1)[0]
    if data[3:4] == b"#":
        sqlstate, message = data[4:9].decode("ascii", "replace"), data[9:]
    else:
        sqlstate, message = "HY000", data[3:]
    return ServerError(errno, message.decode("utf-8", "replace"), sqlstate, outcomes)


Column = tuple[str, Callable[[bytes], Any]]   # name, how its values are read
_columns: dict[bytes, Column] = {}
_COLUMN_CACHE = 4096


def parse_column(data: bytes) -> Column:
    """A column definition packet as (name, reader). The same statement sends the same bytes
    every time: parsed once, then looked up (the cache is bounded: cleared when full)."""
    found = _columns.get(data)
    if found is not None:
        return found
    try:
        pos = 0
        for _ in range(4):                       # catalog, schema, table, org_table
            _, pos = lenenc_bytes(data, pos)
        name, pos = lenenc_bytes(data, pos)
        _, pos = lenenc_bytes(data, pos)         # org_name
        # then 0x0C, charset (2), length (4), type (1), flags (2), decimals (1)
        charset = _U16(data, pos + 1)[0]
        column_type = data[pos + 7]
    except (IndexError, struct.error) as exc:
        raise InterfaceError(CR_MALFORMED_PACKET, "malformed column definition") from exc
    column = (name.decode("utf-8"), reader(column_type, charset))
    if len(_columns) >= _COLUMN_CACHE:
        _columns.clear()
    _columns[data] = column
    return column


def parse_row(data: bytes, readers: list[Callable[[bytes], Any]]) -> tuple[Any, ...]:
    """A text-protocol row: one length-encoded string per column, 0xFB for NULL."""
    values: list[Any] = []
    pos = 0
    for read in readers:
        size = data[pos]
        if size < 0xFB:
            pos += 1
        elif size == NULL_VALUE:
            values.append(None)
            pos += 1
            continue
        else:
            size, pos = lenenc_int(data, pos)
        values.append(read(data[pos:pos + size]))
        pos += size
    if pos != len(data):
        raise InterfaceError(CR_MALFORMED_PACKET, "malformed row: length does not match")
    return tuple(values)
