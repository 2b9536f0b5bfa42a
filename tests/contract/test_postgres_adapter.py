"""PostgreSQL adapter behaviour the example domain does not reach: reply types, set-returning
functions, cursors, statement time limits, SQLSTATE translation, transactions and broken
connections. Real PostgreSQL, called through the adapter; test routines live next to the
contract schema in the session's database."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from beds.adapters import schema_tool
from beds.adapters.base import Call
from beds.adapters.postgres.adapter import PostgresAdapter
from beds.adapters.schema import Problem
from beds.config import DatasourceSettings, Engine, OpKind
from beds.errors import Conflict, DbError, DbUnavailable, DeadlineExceeded, RequestError
from beds.protocol import Result, encode_ok
from beds.templates.model import Op, OpTarget, Template
from tests.contract.conftest import EngineDb
from tests.support.proxy import TcpProxy
from tests.support.services import ROOT

pytestmark = [pytest.mark.postgres]

SCRATCH = """
CREATE OR REPLACE FUNCTION public.beds_test_types()
RETURNS TABLE (n numeric, big bigint, f float8, ts timestamptz, tsn timestamp, d date,
               j jsonb, js json, u uuid, ints integer[], texts text[], b bytea, flag boolean,
               nothing text)
LANGUAGE sql AS $$
    SELECT 12345678901234567890.125::numeric, 9007199254740993::bigint, 0.5::float8,
           '2024-02-14 22:04:36.5+00'::timestamptz, '2024-02-14 22:04:36'::timestamp,
           '2024-02-14'::date, '{"a": [1, 2.5, null], "b": {"c": true}}'::jsonb,
           '[1, "x"]'::json, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, ARRAY[1, 2, 3],
           ARRAY['x', NULL], '\\x00ff'::bytea, true, NULL::text
$$;
CREATE OR REPLACE FUNCTION public.beds_test_series(p_n integer) RETURNS SETOF integer
LANGUAGE sql AS $$ SELECT generate_series(1, p_n) $$;
CREATE OR REPLACE FUNCTION public.beds_test_echo(p_doc jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT p_doc $$;
CREATE OR REPLACE FUNCTION public.beds_test_sleep(p_seconds float8) RETURNS integer
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(p_seconds); RETURN 1; END $$;
CREATE OR REPLACE FUNCTION public.beds_test_raise(p_state text, p_message text) RETURNS integer
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = p_message; END $$;

-- One cursor whose columns depend on the argument, or that stays closed.
CREATE OR REPLACE PROCEDURE public.beds_test_shapes(
    IN p_kind integer, INOUT p_seen integer, INOUT c refcursor)
LANGUAGE plpgsql AS $$
BEGIN
    p_seen := p_kind;
    IF p_kind = 1 THEN
        OPEN c FOR SELECT 1 AS one;
    ELSIF p_kind = 2 THEN
        OPEN c FOR SELECT 'two' AS two, 2 AS n;
    END IF;
END $$;

-- Writes, then fails when asked: nothing of a failed call may stay.
CREATE TABLE IF NOT EXISTS public.beds_test_log (id serial PRIMARY KEY, note text UNIQUE);
CREATE OR REPLACE PROCEDURE public.beds_test_write(IN p_note text, IN p_fail boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.beds_test_log (note) VALUES (p_note);
    IF p_fail THEN
        RAISE EXCEPTION 'failed after writing';
    END IF;
END $$;
CREATE OR REPLACE FUNCTION public.beds_test_notes() RETURNS SETOF text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT note FROM public.beds_test_log ORDER BY id $$;

-- For `templates check`: not executable by the application role; definer without search_path.
CREATE OR REPLACE FUNCTION public.beds_test_private() RETURNS integer
LANGUAGE sql AS $$ SELECT 1 $$;
REVOKE EXECUTE ON FUNCTION public.beds_test_private() FROM PUBLIC;
CREATE OR REPLACE FUNCTION public.beds_test_definer() RETURNS integer
LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$;
CREATE OR REPLACE PROCEDURE public.beds_test_out_first(INOUT p_out integer, IN p_in integer)
LANGUAGE plpgsql AS $$ BEGIN p_out := p_in; END $$;
"""


@pytest.fixture(scope="session")
async def scratch(postgres_contract_db: EngineDb) -> EngineDb:
    db = postgres_contract_db
    conn = await asyncpg.connect(db.admin_dsn, database=db.database)
    try:
        await conn.execute(SCRATCH)
    finally:
        await conn.close()
    return db


def settings(dsn: str, statement_timeout: float = 30.0) -> DatasourceSettings:
    return DatasourceSettings(name="main", engine=Engine.POSTGRES, dsn=dsn, admin_dsn=None,
                              pool_min=1, pool_max=4, connect_timeout=2.0,
                              statement_timeout=statement_timeout,
                              schema_dir=ROOT / "schema/postgres")


@pytest.fixture
async def adapter(scratch: EngineDb) -> AsyncIterator[PostgresAdapter]:
    a = PostgresAdapter(settings(scratch.dsn))
    await a.open()
    yield a
    await a.close()


def op(target: OpTarget, name: str, params: int = 0, out: tuple[str, ...] = (),
       kind: OpKind = OpKind.READ) -> tuple[Template, Op]:
    the_op = Op(name="op", kind=kind, target=target, object_name=name,
                params=tuple(f"p{i}" for i in range(params)), out=out)
    return Template("t", "main", {}, {"op": the_op}, Path("t.toml")), the_op


async def run(adapter: PostgresAdapter, target: OpTarget, name: str, *args: Any,
              out: tuple[str, ...] = (), kind: OpKind = OpKind.READ,
              timeout: float | None = 30.0) -> Result:
    prepared = adapter.prepare(*op(target, name, len(args), out, kind))
    return await adapter.run(prepared, Call(args=list(args), timeout=timeout))


def wire(result: Result) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(encode_ok(result, {}))
    return reply


# -- replies ------------------------------------------------------------------------------

async def test_types_reach_the_wire_as_the_protocol_says(adapter: PostgresAdapter) -> None:
    row = wire(await run(adapter, OpTarget.FUNCTION, "beds_test_types"))["data"][0]
    assert row == {
        "n": "12345678901234567890.125",          # numeric: exact, as a string
        "big": 9007199254740993,
        "f": 0.5,
        "ts": "2024-02-14T22:04:36.500000Z",
        "tsn": "2024-02-14T22:04:36",
        "d": "2024-02-14",
        "j": {"a": [1, 2.5, None], "b": {"c": True}},
        "js": [1, "x"],
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "ints": [1, 2, 3],
        "texts": ["x", None],
        "b": base64.b64encode(b"\x00\xff").decode(),
        "flag": True,
        "nothing": None,
    }


async def test_json_params_are_bound_as_json(adapter: PostgresAdapter) -> None:
    # A template's json field arrives as JSON text (templates.params): bound as is, not re-encoded.
    result = await run(adapter, OpTarget.FUNCTION, "beds_test_echo", '{"k": ["v", 1]}')
    assert result.rows == [{"value": {"k": ["v", 1]}}]


async def test_set_returning_function_gives_one_row_per_value(adapter: PostgresAdapter) -> None:
    result = await run(adapter, OpTarget.FUNCTION, "beds_test_series", 3)
    assert (result.rows, result.out, result.sets) == ([{"value": 1}, {"value": 2},
                                                       {"value": 3}], None, None)


async def test_cursor_columns_may_change_between_calls(adapter: PostgresAdapter) -> None:
    """One portal name, different columns per call; a NULL cursor is no result set."""
    for kind, rows in ((1, [{"one": 1}]), (2, [{"two": "two", "n": 2}]), (1, [{"one": 1}])):
        result = await run(adapter, OpTarget.PROCEDURE, "beds_test_shapes", kind,
                           out=("seen",))
        assert (result.rows, result.out, result.sets) == (rows, {"seen": kind}, None)
    result = await run(adapter, OpTarget.PROCEDURE, "beds_test_shapes", 3, out=("seen",))
    assert (result.rows, result.out, result.sets) == ([], {"seen": 3}, None)


# -- transactions and errors ----------------------------------------------------------------

async def test_a_failed_write_leaves_nothing(adapter: PostgresAdapter) -> None:
    write = OpKind.WRITE
    result = await run(adapter, OpTarget.PROCEDURE, "beds_test_write", "kept", False, kind=write)
    assert (result.rows, result.out, result.sets) == ([], None, None)
    with pytest.raises(DbError, match="^database error: failed after writing$"):
        await run(adapter, OpTarget.PROCEDURE, "beds_test_write", "lost", True, kind=write)
    with pytest.raises(Conflict) as conflict:
        await run(adapter, OpTarget.PROCEDURE, "beds_test_write", "kept", False, kind=write)
    assert conflict.value.details == {"sqlstate": "23505"}
    notes = await run(adapter, OpTarget.FUNCTION, "beds_test_notes")
    assert notes.rows == [{"value": "kept"}]


@pytest.mark.parametrize(("state", "error", "retryable"), [
    ("40001", DbUnavailable, True),      # serialization_failure
    ("40P01", DbUnavailable, True),      # deadlock_detected
    ("55P03", DbUnavailable, True),      # lock_not_available
    ("23505", Conflict, False),          # unique_violation
    ("57014", DeadlineExceeded, False),  # query_canceled
    ("P0001", DbError, False),           # RAISE EXCEPTION
    ("BEDS1", DbError, False),           # a DBA's own SQLSTATE
    ("22012", DbError, False),           # division_by_zero
])
async def test_sqlstates_are_translated(adapter: PostgresAdapter, state: str,
                                        error: type[RequestError], retryable: bool) -> None:
    with pytest.raises(error) as raised:
        await run(adapter, OpTarget.FUNCTION, "beds_test_raise", state, f"raised {state}")
    assert type(raised.value) is error and raised.value.retryable is retryable
    assert raised.value.details == {"sqlstate": state}
    if error is DbError:
        assert raised.value.message == f"database error: raised {state}"
    assert await adapter.ping()


async def test_statement_time_limit_is_enforced_by_the_server(
        adapter: PostgresAdapter) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as raised:
        await run(adapter, OpTarget.FUNCTION, "beds_test_sleep", 10.0, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert raised.value.details == {"sqlstate": "57014"}
    assert (await run(adapter, OpTarget.FUNCTION, "beds_test_sleep", 0.0)).rows == [{"value": 1}]


async def test_datasource_time_limit_holds_without_a_transaction(scratch: EngineDb) -> None:
    """A read whose limit is the datasource's own runs bare: the connection's setting stops it."""
    a = PostgresAdapter(settings(scratch.dsn, statement_timeout=0.3))
    await a.open()
    try:
        with pytest.raises(DeadlineExceeded):
            await run(a, OpTarget.FUNCTION, "beds_test_sleep", 10.0, timeout=0.3)
    finally:
        await a.close()


# -- the server away ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_a_node_starts_while_the_database_is_down() -> None:
    a = PostgresAdapter(settings(f"postgresql://nobody@127.0.0.1:{free_port()}/none"))
    await a.open()      # never connects
    try:
        with pytest.raises(DbUnavailable) as raised:
            await run(a, OpTarget.FUNCTION, "beds_test_series", 1)
        assert raised.value.retryable
        assert not await a.ping()
    finally:
        await a.close()


async def test_a_broken_connection_is_not_reused(scratch: EngineDb) -> None:
    address = scratch.dsn.split("@", 1)[1].split("/", 1)[0]
    host, port = address.split(":")
    proxy = await TcpProxy(host, int(port)).start()
    a = PostgresAdapter(settings(scratch.dsn.replace(address, f"127.0.0.1:{proxy.port}")))
    await a.open()
    try:
        assert (await run(a, OpTarget.FUNCTION, "beds_test_series", 1)).rows == [{"value": 1}]
        # The connection dies under a write: the caller hears DB_UNAVAILABLE, not a retry.
        slow = asyncio.ensure_future(run(a, OpTarget.FUNCTION, "beds_test_sleep", 2.0,
                                         kind=OpKind.WRITE))
        await asyncio.sleep(0.3)
        proxy.cut()
        with pytest.raises(DbUnavailable):
            await slow
        with pytest.raises(DbUnavailable):
            await run(a, OpTarget.FUNCTION, "beds_test_series", 1)
        proxy.restore()
        # Back without a restart, on fresh connections.
        for _ in range(3):
            assert (await run(a, OpTarget.FUNCTION, "beds_test_series", 2,
                              kind=OpKind.WRITE)).rows == [{"value": 1}, {"value": 2}]
    finally:
        await a.close()
        await proxy.close()


# -- templates check, PostgreSQL specifics ------------------------------------------------------

async def test_check_reports_privileges_order_and_search_path(scratch: EngineDb) -> None:
    a = PostgresAdapter(settings(scratch.dsn))
    templates = [op(OpTarget.FUNCTION, "beds_test_private")[0],
                 op(OpTarget.FUNCTION, "beds_test_definer")[0],
                 op(OpTarget.PROCEDURE, "beds_test_out_first", 1, out=("out",))[0],
                 op(OpTarget.PROCEDURE, "beds_test_series", 1)[0],
                 op(OpTarget.VIEW, "beds_test_log")[0]]
    problems = await schema_tool(a).check(templates)
    where = "t.toml: ops.op"
    assert problems == [
        Problem(where, "the configured user may not execute function 'beds_test_private' "
                       "(GRANT EXECUTE ON FUNCTION ... TO it)"),
        Problem(where, "function 'beds_test_definer' is SECURITY DEFINER without SET "
                       "search_path = pg_catalog, pg_temp", warning=True),
        Problem(where, "procedure 'beds_test_out_first' takes its parameters in the order "
                       "INOUT integer, IN integer; BEDS passes every IN parameter first, then "
                       "one INOUT per out, then one INOUT refcursor per result set"),
        Problem(where, "'beds_test_series' is a function, not a procedure"),
        Problem(where, "'beds_test_log' is a table, not a view"),
        Problem(where, "the configured user may not read view 'beds_test_log' "
                       "(GRANT SELECT ON ... TO it)"),
    ]
