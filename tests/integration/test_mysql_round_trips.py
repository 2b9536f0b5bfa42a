"""One round trip per MariaDB call: the adapter's commands counted on the wire.

A proxy between the adapter and the real MariaDB parses the client's side of the MySQL protocol
and counts command packets (sequence id 0): each is one request the client waits on. A
procedure with OUT parameters, one with two result sets, a write (its transaction around it),
a function and a view each take one; a failed write takes two (the call, then its rollback) and
commits nothing; a procedure that leaves warnings still takes one (the driver does not ask
SHOW WARNINGS).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from beds.adapters.base import Call
from beds.adapters.mysql.adapter import MysqlAdapter, MysqlStatement
from beds.errors import Conflict
from beds.templates.loader import load_template
from beds.templates.model import OpTarget
from tests.support.mysql import query
from tests.support.proxy import TcpProxy
from tests.support.services import ROOT, MysqlDb, host_port
from tests.support.stack import make_stack

pytestmark = pytest.mark.mariadb


class CountingProxy(TcpProxy):
    """Counts the client's commands: MySQL packets from the client with sequence id 0."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.commands = 0
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:3], "little")
            if len(self._buffer) < 4 + length:
                return
            self.commands += self._buffer[3] == 0
            self._buffer = self._buffer[4 + length:]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Duck-typed: the proxy's pipe only calls read() on the client's side.
        await super()._accept(cast(asyncio.StreamReader, _Tap(reader, self)), writer)


@dataclass
class _Tap:
    reader: Any
    proxy: CountingProxy

    async def read(self, n: int) -> bytes:
        data: bytes = await self.reader.read(n)
        self.proxy.feed(data)
        return data


@dataclass
class Wire:
    adapter: MysqlAdapter
    proxy: CountingProxy
    database: str

    def statement(self, template: str, op: str) -> MysqlStatement:
        loaded = load_template(ROOT / "templates" / f"{template}.toml")
        return self.adapter.prepare(loaded, loaded.ops[op])

    async def commands(self, statement: MysqlStatement, call: Call) -> tuple[int, Any]:
        """(commands the call sent, its result or the error it raised)."""
        before = self.proxy.commands
        try:
            outcome: Any = await self.adapter.run(statement, call)
        except Exception as exc:   # the error is part of what the caller checks
            outcome = exc
        return self.proxy.commands - before, outcome


@pytest.fixture
async def wire(mysql_db: MysqlDb, tmp_path: Path) -> AsyncIterator[Wire]:
    host, port = host_port(mysql_db.admin_dsn, 3306)
    proxy = CountingProxy(host, port)
    await proxy.start()
    datasource: dict[str, Any] = mysql_db.datasource()
    datasource["dsn"] = mysql_db.dsn.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    datasource["pool_min"] = datasource["pool_max"] = 1
    try:
        settings = make_stack(datasource, tmp_path, f"rt{secrets.token_hex(2)}").settings
        adapter = MysqlAdapter(settings.datasources["main"])
        await adapter.open()
    except BaseException:
        await proxy.close()
        raise
    try:
        yield Wire(adapter, proxy, mysql_db.database)
    finally:
        await adapter.close()
        await proxy.close()


async def test_each_kind_of_call_is_one_round_trip(wire: Wire) -> None:
    sent, result = await wire.commands(wire.statement("film", "fetch"), Call(args=[1]))
    assert (sent, result.rows[0]["FID"]) == (1, 1)

    # OUT parameter and a result set, with a statement time limit in front of the CALL.
    sent, result = await wire.commands(wire.statement("film", "in_stock"),
                                       Call(args=[1, 1], timeout=5.0))
    assert sent == 1
    assert result.out == {"film_count": len(result.rows)} and result.rows

    sent, result = await wire.commands(wire.statement("film", "store_report"), Call(args=[1]))
    assert sent == 1 and result.sets is not None and len(result.sets) == 2

    sent, result = await wire.commands(wire.statement("customer", "balance"),
                                       Call(args=[1, "2030-01-01 00:00:00"]))
    assert sent == 1 and list(result.rows[0]) == ["value"]

    sent, result = await wire.commands(wire.statement("film", "list"), Call(limit=3))
    assert sent == 1 and len(result.rows) == 3


async def test_a_write_is_one_round_trip_and_commits(wire: Wire) -> None:
    email = f"rt{secrets.token_hex(4)}@example.org"
    create = wire.statement("customer", "create")
    sent, result = await wire.commands(create, Call(args=[1, "Round", "Trip", email, None]))
    assert sent == 1
    new_id = result.out["customer_id"]
    assert result.rows == [{"customer_id": new_id}]
    rows = await query(wire.database, "SELECT customer_id FROM customer WHERE email = %s", email)
    assert rows == [(new_id,)]

    # The duplicate fails inside the transaction: the call, then a rollback; nothing stays.
    sent, error = await wire.commands(create, Call(args=[1, "Again", "Trip", email, None]))
    assert isinstance(error, Conflict) and sent == 2
    rows = await query(wire.database, "SELECT COUNT(*) FROM customer WHERE email = %s", email)
    assert rows == [(1,)]
    sent, result = await wire.commands(wire.statement("film", "fetch"), Call(args=[2]))
    assert (sent, result.rows[0]["FID"]) == (1, 2)     # the connection is clean for the next


async def test_a_write_with_its_position_is_one_round_trip(wire: Wire) -> None:
    wire.adapter.track_position = True
    email = f"rt{secrets.token_hex(4)}@example.org"
    sent, result = await wire.commands(wire.statement("customer", "create"),
                                       Call(args=[1, "Gtid", "Trip", email, None]))
    assert sent == 1 and result.out["customer_id"]
    # The shared server may run without a binary log: then a commit gets no GTID.
    ((binlog,),) = await query(wire.database, "SELECT @@log_bin")
    if binlog:
        assert re.fullmatch(r"\d+-\d+-\d+", result.position or "")
    else:
        assert result.position is None


async def test_warnings_cost_no_round_trip(wire: Wire, mysql_db: MysqlDb) -> None:
    name = f"rt_warn_{secrets.token_hex(3)}"
    await query(wire.database, f"CREATE PROCEDURE `{name}`() "
                               "SELECT CAST('12abc' AS INTEGER) AS value")
    await query(wire.database, f"GRANT EXECUTE ON PROCEDURE `{wire.database}`.`{name}` "
                               f"TO '{mysql_db.user}'@'%'")
    try:
        statement = MysqlStatement(OpTarget.PROCEDURE, f"CALL `{name}`()", None, (), False)
        sent, result = await wire.commands(statement, Call())
        assert (sent, result.rows) == (1, [{"value": 12}])
    finally:
        await query(wire.database, f"DROP PROCEDURE `{name}`")
