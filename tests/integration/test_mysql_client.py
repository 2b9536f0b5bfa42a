"""beds.mysql against the real MariaDB: values of every column type read back as the replies
need them, any text bound as a value comes back as itself (with and without
NO_BACKSLASH_ESCAPES), logins with a password, the server's errors, and a connection the server
kills."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import tracemalloc
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beds.mysql import (
    Connection,
    Done,
    InterfaceError,
    OperationalError,
    ResultTooLarge,
    Rows,
    ServerError,
)
from beds.mysql import connect as mysql_connect
from tests.support.services import MYSQL_ADMIN_DSN, host_port

pytestmark = pytest.mark.mariadb
HOST, PORT = host_port(MYSQL_ADMIN_DSN, 3306)


async def connect(**kwargs: Any) -> Connection:
    return await mysql_connect(host=HOST, port=PORT, **{"user": "root", **kwargs})


@pytest.fixture
async def conn() -> AsyncIterator[Connection]:
    c = await connect(multi_statements=True)
    yield c
    c.close()


async def one_row(conn: Connection, sql: str, args: list[Any] | None = None) -> dict[str, Any]:
    (rows,) = await conn.query(sql, args)
    assert isinstance(rows, Rows)
    return rows.dicts()[0]


async def test_column_types_read_as_python_values(conn: Connection) -> None:
    row = await one_row(conn, (
        "SELECT 1 AS i, CAST(18446744073709551615 AS UNSIGNED) AS big, 2.5e0 AS f, "
        "CAST(0.99 AS DECIMAL(4,2)) AS d, 'Ünï' AS s, CAST('2006-02-15 05:03:42.5' AS "
        "DATETIME(1)) AS t, CAST('2026-01-31' AS DATE) AS day, CAST('-01:02:03' AS TIME) AS tm, "
        "X'00ff' AS bin, CAST('x' AS BINARY) AS vb, NULL AS n, JSON_OBJECT('a', 1) AS j, "
        "b'101' AS bits, YEAR('2006-01-01') AS y"))
    assert row == {
        "i": 1, "big": 2**64 - 1, "f": 2.5, "d": Decimal("0.99"), "s": "Ünï",
        "t": dt.datetime(2006, 2, 15, 5, 3, 42, 500000), "day": dt.date(2026, 1, 31),
        "tm": -dt.timedelta(hours=1, minutes=2, seconds=3), "bin": b"\x00\xff", "vb": b"x",
        "n": None, "j": '{"a": 1}', "bits": b"\x05", "y": 2006}


async def test_bound_values_come_back_as_themselves(conn: Connection) -> None:
    values = [None, True, 7, -2**63, 1.25, Decimal("-12.50"), "it's \\ \"q\" \n\0 ☃",
              b"\x00'\\\xff", dt.date(2026, 1, 31), dt.datetime(2026, 1, 31, 12, 0, 1, 5)]
    holders = ", ".join(f"%s AS v{i}" for i in range(len(values)))
    row = await one_row(conn, f"SELECT {holders}", values)
    assert list(row.values()) == [None, 1, 7, -2**63, 1.25, Decimal("-12.50"), values[6],
                                  values[7], "2026-01-31", "2026-01-31 12:00:01.000005"]


_NASTY = st.text(alphabet=st.sampled_from(["'", '"', "\\", "\0", "\n", "\r", "\x1a", "%",
                                           "a", "é", "☃", "😀", " ", ";", "-"]), max_size=24)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_NASTY)
async def test_any_text_is_only_ever_a_value(conn: Connection, text: str) -> None:
    for mode in ("", "NO_BACKSLASH_ESCAPES"):
        # The session's mode reaches the client in the OK's status flags; the next literal
        # follows it.
        await conn.query(f"SET SESSION sql_mode = '{mode}'")
        assert await one_row(conn, "SELECT %s AS v, 1 AS one", [text]) == {"v": text, "one": 1}


async def test_a_multi_statement_error_carries_what_ran_before_it(conn: Connection) -> None:
    with pytest.raises(ServerError) as caught:
        await conn.query("START TRANSACTION; SELECT 1 AS a; SELECT * FROM no_such_table_here")
    assert caught.value.args[0] in (1046, 1146)   # no database selected / no such table
    assert [type(o) for o in caught.value.outcomes] == [Done, Rows]
    assert conn.in_transaction
    await conn.rollback()
    assert not conn.in_transaction


async def test_a_password_login_and_a_wrong_one() -> None:
    user, password = f"bedsmy_{secrets.token_hex(3)}", secrets.token_hex(8)
    admin = await connect()
    await admin.query("CREATE USER %s@'%%' IDENTIFIED BY %s", [user, password])
    try:
        app = await connect(user=user, password=password)
        assert await one_row(app, "SELECT CURRENT_USER() LIKE %s AS me", [f"{user}@%"]) == \
            {"me": 1}
        app.close()
        with pytest.raises(OperationalError) as caught:
            await connect(user=user, password=password + "x")
        assert caught.value.args[0] == 1045
    finally:
        await admin.query("DROP USER %s@'%%'", [user])
        admin.close()


async def test_a_killed_connection_fails_its_query_and_then_refuses(conn: Connection) -> None:
    killer = await connect()
    try:
        running = asyncio.ensure_future(conn.query("SELECT SLEEP(5)"))
        await asyncio.sleep(0.2)
        await killer.query("KILL CONNECTION %s", [conn.thread_id])
        with pytest.raises((OperationalError, ServerError)):
            await asyncio.wait_for(running, 10)
    finally:
        killer.close()
    await asyncio.sleep(0.1)
    assert not conn.connected
    with pytest.raises(InterfaceError, match="closed"):
        await conn.query("SELECT 1")


async def test_autocommit_is_on_and_can_be_off() -> None:
    on, off = await connect(), await connect(autocommit=False)
    try:
        assert (await one_row(on, "SELECT @@autocommit AS a"))["a"] == 1
        assert (await one_row(off, "SELECT @@autocommit AS a"))["a"] == 0
    finally:
        on.close()
        off.close()


async def test_a_result_past_its_budget_is_not_held_in_memory(conn: Connection) -> None:
    # 10,000 rows of 1 KB against a 64 KiB budget: read to the end, dropped as they come.
    digits = "(" + " UNION ALL ".join(f"SELECT {i} AS d" for i in range(10)) + ")"
    sql = (f"SELECT a.d, REPEAT('x', 1000) AS pad FROM {digits} a, {digits} b, {digits} c, "
           f"{digits} e")
    tracemalloc.start()
    try:
        with pytest.raises(ResultTooLarge):
            await conn.query(sql, max_row_bytes=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes while reading a 10 MB result"
    assert (await one_row(conn, "SELECT 1 AS one")) == {"one": 1}   # the connection serves on
