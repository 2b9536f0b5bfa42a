"""The one query a MariaDB call sends (its statements in order, values left to the driver), and
the driver's connect failures as driver errors."""

from __future__ import annotations

import asyncmy
import pytest

from beds.adapters.mysql import pool as mysql_pool
from beds.adapters.mysql.wire import CallScript, MysqlStatement, limited
from beds.templates.model import OpTarget

WRITE = MysqlStatement(OpTarget.PROCEDURE, "CALL `customer_create`(%s, %s, @beds_o0)",
                       "SELECT @beds_o0 AS `customer_id`", ("customer_id",), True)


def test_a_write_with_out_values_and_its_position_is_one_query() -> None:
    script = CallScript(WRITE, limited(WRITE.sql, 1.5), begins=True, commits=True, position=True)
    assert script.sql == (
        "START TRANSACTION; "
        "SET STATEMENT max_statement_time=1.500 FOR CALL `customer_create`(%s, %s, @beds_o0); "
        "SELECT @beds_o0 AS `customer_id`; COMMIT; SELECT @@last_gtid")


def test_a_read_without_out_values_is_the_statement_alone() -> None:
    read = MysqlStatement(OpTarget.PROCEDURE, "CALL `film_fetch`(%s)", None, (), False)
    script = CallScript(read, limited(read.sql, None), begins=False, commits=False,
                        position=False)
    assert script.sql == "CALL `film_fetch`(%s)"


def test_inner_rows_of_a_bulk_op_neither_begin_nor_commit() -> None:
    script = CallScript(WRITE, WRITE.sql, begins=False, commits=False, position=False)
    assert script.sql == WRITE.sql + "; SELECT @beds_o0 AS `customer_id`"


async def test_a_connect_the_server_cut_short_is_a_driver_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What asyncmy 0.2.18 raised under uvloop when the server reset the connection right after
    # the TCP open: it must reach the adapter as a connect failure (DB_UNAVAILABLE), not escape
    # as INTERNAL.
    async def cut_short(**kwargs: object) -> None:
        raise RuntimeError("Transport does not expose socket instance")

    monkeypatch.setattr(asyncmy, "connect", cut_short)
    with pytest.raises(mysql_pool.DriverError) as caught:
        await mysql_pool.connect({"host": "127.0.0.1"})
    assert caught.value.args[0] == 2003
