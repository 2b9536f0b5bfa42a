"""beds.mysql's connection against a scripted server on a local socket: the login (plugins,
switch requests), results cut at any byte, payloads split over 16 MiB packets, and what the
server can do wrong (garbage, truncation, a closed socket, an ERR instead of a greeting): the
client raises one clear error and closes the connection; it never hangs."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from beds.mysql import (
    Done,
    InterfaceError,
    OperationalError,
    ResultTooLarge,
    Rows,
    ServerError,
    connect,
)
from beds.mysql import packets as p
from beds.mysql.handshake import NATIVE, SHA2, scramble

SALT = b"abcdefghijklmnopqrst"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def greeting(plugin: str = NATIVE, caps: int = 0xFFFFFFFF & ~p.DEPRECATE_EOF) -> bytes:
    return (b"\x0a" + b"5.5.5-10.11.0-MariaDB\0" + struct.pack("<I", 7) + SALT[:8] + b"\0"
            + struct.pack("<HBHHB", caps & 0xFFFF, 45, 2, caps >> 16, 21) + bytes(10)
            + SALT[8:] + b"\0" + plugin.encode() + b"\0")


def ok(status: int = 2) -> bytes:
    return b"\x00\x00\x00" + struct.pack("<HH", status, 0)


def err(errno: int, message: str) -> bytes:
    return b"\xff" + struct.pack("<H", errno) + b"#HY000" + message.encode()


def column(name: str, column_type: int, charset: int = 45) -> bytes:
    return (b"".join(p.pack_lenenc(x) for x in (b"def", b"db", b"t", b"t", name.encode(),
                                                 name.encode()))
            + b"\x0c" + struct.pack("<HIBHB", charset, 255, column_type, 0, 0) + b"\0\0")


def result_set(names_types: list[tuple[str, int]], rows: list[list[bytes | None]],
               status: int = 2) -> list[bytes]:
    out = [bytes([len(names_types)])] + [column(n, t) for n, t in names_types]
    out.append(b"\xfe\x00\x00\x02\x00")
    for row in rows:
        out.append(b"".join(b"\xfb" if v is None else p.pack_lenenc(v) for v in row))
    out.append(b"\xfe\x00\x00" + struct.pack("<H", status))
    return out


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(4)
    size = int.from_bytes(head[:3], "little")
    return head[3], await reader.readexactly(size)


def send(writer: asyncio.StreamWriter, payloads: list[bytes], seq: int = 1) -> None:
    for payload in payloads:
        writer.write(p.frame(payload, seq))
        seq += 1


async def login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(p.frame(greeting(), 0))
    _, answer = await read_packet(reader)
    send(writer, [ok()], 2)
    return answer


@asynccontextmanager
async def server(script: Script) -> AsyncIterator[int]:
    done: list[BaseException] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except BaseException as exc:   # a broken script must fail the test, not vanish
            done.append(exc)
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
    assert not done, done


async def test_login_sends_user_scramble_database_and_multi_statements() -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await login(reader, writer))
        await reader.read()

    async with server(script) as port:
        conn = await connect(port=port, user="app", password="secret", database="films",
                             multi_statements=True)
        assert (conn.server_version, conn.thread_id) == ("10.11.0-MariaDB", 7)
        conn.close()
    flags = struct.unpack_from("<I", seen[0])[0]
    assert flags & p.MULTI_STATEMENTS and flags & p.CONNECT_WITH_DB
    body = seen[0][32:]
    assert body.startswith(b"app\0" + bytes([20]) + scramble(NATIVE, "secret", SALT))
    assert body.endswith(b"films\0" + NATIVE.encode() + b"\0")


async def test_an_auth_switch_is_answered_with_the_new_salt() -> None:
    answers: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(p.frame(greeting(SHA2), 0))
        await read_packet(reader)
        send(writer, [b"\xfe" + NATIVE.encode() + b"\0" + b"NEWSALT_NEWSALT_1234\0"], 2)
        seq, answer = await read_packet(reader)
        answers.append(answer)
        send(writer, [ok()], seq + 1)
        await reader.read()

    async with server(script) as port:
        (await connect(port=port, password="pw")).close()
    stage1 = hashlib.sha1(b"pw").digest()
    stage2 = hashlib.sha1(b"NEWSALT_NEWSALT_1234" + hashlib.sha1(stage1).digest()).digest()
    assert answers == [bytes(a ^ b for a, b in zip(stage1, stage2, strict=True))]


async def test_sha2_fast_authentication_logs_in() -> None:
    answers: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(p.frame(greeting(SHA2), 0))
        _, answer = await read_packet(reader)
        answers.append(answer)
        send(writer, [b"\x01\x03", ok()], 2)   # the server had the password cached
        await reader.read()

    async with server(script) as port:
        (await connect(port=port, user="app", password="pw")).close()
    stage1 = hashlib.sha256(b"pw").digest()
    stage2 = hashlib.sha256(hashlib.sha256(stage1).digest() + SALT).digest()
    expected = bytes(a ^ b for a, b in zip(stage1, stage2, strict=True))
    assert answers[0][32:].startswith(b"app\0" + bytes([32]) + expected)
    assert answers[0].endswith(SHA2.encode() + b"\0")


async def test_sha2_full_authentication_over_tcp_is_refused_clearly() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(p.frame(greeting(SHA2), 0))
        await read_packet(reader)
        send(writer, [b"\x01\x04"], 2)
        await reader.read()

    async with server(script) as port:
        with pytest.raises(InterfaceError, match="IDENTIFIED WITH mysql_native_password"):
            await connect(port=port, password="pw")


async def test_an_err_instead_of_a_greeting_is_the_servers_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(p.frame(err(1040, "Too many connections"), 0))

    async with server(script) as port:
        with pytest.raises(OperationalError) as caught:
            await connect(port=port)
    assert caught.value.args == (1040, "Too many connections")


async def test_results_cut_at_every_byte_read_the_same() -> None:
    reply = result_set([("id", 3), ("title", 253), ("rate", 246)],
                       [[b"1", b"Academy", b"0.99"], [b"2", None, b"4.99"]], status=0x0A)
    reply.append(ok())
    wire = b"".join(p.frame(x, i + 1) for i, x in enumerate(reply))

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        while True:
            await read_packet(reader)
            for i in range(len(wire)):   # one byte per write
                writer.write(wire[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0)

    async with server(script) as port:
        conn = await connect(port=port)
        outcomes = await conn.query("CALL p()")
        conn.close()
    rows, done = outcomes
    assert isinstance(rows, Rows) and isinstance(done, Done)
    assert rows.dicts()[1] == {"id": 2, "title": None, "rate": __import__("decimal").Decimal(
        "4.99")}


async def test_a_payload_over_16_mib_is_joined_from_its_packets() -> None:
    big = b"x" * (p.MAX_PAYLOAD + 10)
    reply = result_set([("blob", 252)], [[big]])

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        await read_packet(reader)
        seq = 1
        for payload in reply:
            writer.write(p.frame(payload, seq))
            seq += 1 + len(payload) // p.MAX_PAYLOAD
        await reader.read()

    async with server(script) as port:
        conn = await connect(port=port)
        (rows,) = await conn.query("SELECT b")
        conn.close()
    assert isinstance(rows, Rows) and rows.rows == [(big.decode(),)]


async def test_an_error_after_some_statements_carries_their_outcomes() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        await read_packet(reader)
        send(writer, [ok(status=0x0B), err(1146, "Table 'x' doesn't exist")])
        await read_packet(reader)
        send(writer, [ok()])
        await reader.read()

    async with server(script) as port:
        conn = await connect(port=port)
        with pytest.raises(ServerError) as caught:
            await conn.query("START TRANSACTION; SELECT * FROM x")
        assert caught.value.args[0] == 1146 and conn.in_transaction
        assert [type(o) for o in caught.value.outcomes] == [Done]
        assert await conn.query("ROLLBACK")   # the connection still serves
        conn.close()


@pytest.mark.parametrize("garbage", [
    b"\x05\x00\x00\x01\x03\xff\xff",                        # a packet cut short
    b"\x01\x00\x00\x01\x01" + b"\x02\x00\x00\x02\x00\x00",  # a column too short to read
    b"\x00\x00\x00\x01",                                    # an empty packet
    b"\x01\x00\x00\x01\xfb",                                # LOAD DATA LOCAL, never asked
])
async def test_garbage_closes_the_connection_with_one_clear_error(garbage: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        await read_packet(reader)
        writer.write(garbage)
        await writer.drain()   # then the server hangs up

    async with server(script) as port:
        conn = await connect(port=port)
        with pytest.raises((InterfaceError, OperationalError)):
            async with asyncio.timeout(5):
                await conn.query("SELECT 1")
        assert not conn.connected
        with pytest.raises(InterfaceError):   # and says so to the next caller at once
            await conn.query("SELECT 1")


async def test_a_server_that_closes_mid_query_is_a_lost_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        await read_packet(reader)
        writer.write(p.frame(b"\x01", 1))   # a column count, then nothing

    async with server(script) as port:
        conn = await connect(port=port)
        with pytest.raises(OperationalError) as caught:
            await conn.query("SELECT 1")
    assert caught.value.args[0] == 2013 and not conn.connected


async def test_a_query_its_caller_abandons_closes_the_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        await reader.read()   # never answers

    async with server(script) as port:
        conn = await connect(port=port)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await conn.query("SELECT SLEEP(10)")
        assert not conn.connected


async def test_nothing_listening_is_cant_connect() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    async with server(script) as port:
        pass
    with pytest.raises(OperationalError) as caught:
        await connect(port=port)
    assert caught.value.args[0] == 2003


async def test_rows_past_the_budget_are_dropped_and_the_connection_serves_on() -> None:
    many = result_set([("id", 3), ("title", 253)],
                      [[str(i).encode(), b"x" * 100] for i in range(50)])

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await login(reader, writer)
        while True:
            await read_packet(reader)
            send(writer, many)

    async with server(script) as port:
        conn = await connect(port=port)
        with pytest.raises(ResultTooLarge) as caught:
            await conn.query("SELECT big", max_row_bytes=1000)
        assert caught.value.limit == 1000 and conn.connected
        (rows,) = await conn.query("SELECT big", max_row_bytes=50 * 200)   # within the budget
        assert isinstance(rows, Rows) and len(rows.rows) == 50
        conn.close()
