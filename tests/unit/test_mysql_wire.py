"""The one query a MariaDB call sends: its statements in order, values left to beds.mysql."""

from __future__ import annotations

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
