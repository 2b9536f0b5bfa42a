"""beds.mysql's packet reader fed what a broken or hostile server could send in answer to a
query: the valid answer cut into any chunks, truncated, with bytes flipped, packets reordered or
dropped, garbage appended. Whatever arrives, the query ends (once the server hangs up at the
latest) with its outcomes or one MysqlError; after any error but the server's own ERR the
connection is closed; nothing else escapes, from the query or from `data_received`."""

from __future__ import annotations

import asyncio
import itertools
import struct
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from beds.mysql import Connection, MysqlError, Rows, ServerError
from beds.mysql import packets as p
from beds.mysql import values as v


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def column(name: str, column_type: int) -> bytes:
    return (b"".join(p.pack_lenenc(x) for x in (b"def", b"db", b"t", b"t", name.encode(),
                                                 name.encode()))
            + b"\x0c" + struct.pack("<HIBHB", 45, 255, column_type, 0, 0) + b"\0\0")


# A CALL's answer: one result set (EOF packets, as without DEPRECATE_EOF), then the CALL's OK.
ANSWER = [b"\x03", column("id", v.LONG), column("title", v.VAR_STRING),
          column("price", v.NEWDECIMAL), b"\xfe\x00\x00\x22\x00",
          p.pack_lenenc(b"1") + p.pack_lenenc(b"Academy") + p.pack_lenenc(b"0.99"),
          p.pack_lenenc(b"2") + b"\xfb" + p.pack_lenenc(b"4.99"),
          b"\xfe\x00\x00\x0a\x00", b"\x00\x00\x00\x02\x00\x00\x00"]
EXPECTED = [(1, "Academy", Decimal("0.99")), (2, None, Decimal("4.99"))]


def wire(packets: list[bytes]) -> bytes:
    return b"".join(p.frame(x, i + 1) for i, x in enumerate(packets))


async def answer_with(data: bytes, cuts: list[int]) -> tuple[Connection, Any]:
    """Run one query against `data`, delivered in chunks at `cuts`; then the server hangs up.
    Returns the connection and the query's outcomes or the exception it raised."""
    conn = Connection()   # the default Login: the tests start at the query
    transport = FakeTransport()
    conn.connection_made(transport)   # type: ignore[arg-type]
    conn._on_packet = conn._unexpected   # logged in: the tests start at the query
    query = asyncio.ensure_future(conn.query("CALL p()"))
    await asyncio.sleep(0)
    assert transport.written, "the query was not sent"
    bounds = sorted({0, *(c % (len(data) + 1) for c in cuts), len(data)})
    for start, end in itertools.pairwise(bounds):
        conn.data_received(data[start:end])   # must never raise
    for _ in range(3):   # let the query's task take what its future got
        await asyncio.sleep(0)
    if not query.done():
        conn.connection_lost(None)
    async with asyncio.timeout(1):
        try:
            return conn, await query
        except Exception as exc:   # classified by the caller
            return conn, exc


def check(conn: Connection, outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, MysqlError), repr(outcome)
        if not isinstance(outcome, ServerError):
            assert not conn.connected


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=12))
async def test_the_valid_answer_in_any_chunks_reads_the_same(cuts: list[int]) -> None:
    conn, outcome = await answer_with(wire(ANSWER), cuts)
    rows, _done = outcome
    assert isinstance(rows, Rows) and rows.rows == EXPECTED
    assert conn.connected


@settings(max_examples=400, deadline=None)
@given(data=st.data(), cuts=st.lists(st.integers(min_value=0), max_size=6))
async def test_a_damaged_answer_ends_in_outcomes_or_one_clear_error(
        data: st.DataObject, cuts: list[int]) -> None:
    packets = list(ANSWER)
    damage = data.draw(st.sampled_from(["truncate", "flip", "reorder", "drop", "garbage",
                                        "oversize"]))
    raw = wire(packets)
    if damage == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip":
        at = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]
    elif damage == "reorder":
        order = data.draw(st.permutations(range(len(packets))))
        raw = wire([packets[i] for i in order])
    elif damage == "drop":
        del packets[data.draw(st.integers(0, len(packets) - 1))]
        raw = wire(packets)
    elif damage == "garbage":
        raw += data.draw(st.binary(min_size=1, max_size=64))
    else:   # a packet that announces more than will ever come
        raw = raw[:4] + b"\xff\xff\xff\x01" + data.draw(st.binary(max_size=64))
    conn, outcome = await answer_with(raw, cuts)
    check(conn, outcome)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200), cuts=st.lists(st.integers(min_value=0), max_size=6))
async def test_garbage_alone_ends_in_one_clear_error(raw: bytes, cuts: list[int]) -> None:
    conn, outcome = await answer_with(raw, cuts)
    check(conn, outcome)


async def test_a_row_much_longer_than_the_chunks_it_comes_in_reads_whole() -> None:
    # A 1 MB value in 1,000-byte chunks: its packet is gathered over a thousand chunks and read
    # whole, once.
    big = b"y" * 1_000_000
    answer = [b"\x01", column("pad", v.VAR_STRING), b"\xfe\x00\x00\x02\x00",
              p.pack_lenenc(big), b"\xfe\x00\x00\x02\x00"]
    data = wire(answer)
    conn, outcome = await answer_with(data, list(range(1000, len(data), 1000)))
    (rows,) = outcome
    assert isinstance(rows, Rows) and rows.rows == [(big.decode(),)] and conn.connected
