"""PostgreSQL adapter on asyncpg: CALL procedures, SELECT functions, page through views.

Layer: infrastructure. With `errors`, the only serving module that imports asyncpg. Driver errors
are translated once, by `errors._translate`; the SQL text comes from `statements`. DBA tooling
(templates check, schema apply) lives in `schema`.

Replies match the MariaDB adapter's for the same template, so one template file serves both:

- function op: `SELECT * FROM "fn"($1, ...) AS "value"`. A scalar function gives
  [{"value": ...}] (the alias names its column), like MariaDB; a set-returning, RETURNS TABLE
  or OUT-parameter function gives its rows under its own column names.
- view op: `SELECT * FROM "view" WHERE "col" = $1 ... ORDER BY ... LIMIT $n OFFSET $m`.
- procedure op: a PostgreSQL procedure cannot return result sets, so BEDS uses refcursors. The
  DBA's procedure declares the template's `params` as IN parameters, in order; then one INOUT
  (or OUT) parameter per name in the template's `out`, in order; then one INOUT refcursor
  parameter per result set. BEDS runs, in a transaction,
      CALL "p"($1, ..., NULL, ...)        -- one NULL per out value and per cursor
  reads the out values from the row CALL returns (by position, named as the template names
  them), then `FETCH ALL FROM` each cursor the procedure opened (`OPEN c FOR SELECT ...` names
  the portal and returns its name), in order; a cursor left NULL is no result set. data is the
  first set; sets appear when there are two or more. How many cursor parameters a procedure has
  is looked up in pg_proc on its first call and cached.

Every op runs on a pooled connection; writes, procedures and calls whose time limit differs from
the pool's default run in a transaction that commits only on success.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import Any

import asyncpg
import msgspec

from beds.adapters.base import (
    Call,
    acquire_budget,
    parse_dsn,
    time_left,
    wait_failed,
)
from beds.adapters.batch import at_row
from beds.adapters.postgres.errors import _details, _is_connection_error, _reason, _state, _translate
from beds.adapters.postgres.statements import ROUTINES_SQL, PostgresStatement, _statement, quote
from beds.config import DatasourceSettings, OpKind
from beds.errors import RequestError
from beds.protocol import Result
from beds.templates.model import Op, OpTarget, Template

GUARD_SECONDS = 2.0     # client-side wait beyond the server's statement_timeout
DEADLINE_GRACE = 0.25   # ... but at most this long past the caller's deadline
CLOSE_SECONDS = 10.0

_UNDEFINED_FUNCTION = "42883"
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError,
                  asyncpg.OutdatedSchemaCacheError, OSError, TimeoutError)

class PostgresAdapter:
    track_position = False   # replicas configured: a write's reply carries the WAL position

    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings
        parse_dsn(settings)          # a malformed dsn is a ConfigError at build time
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._calls: dict[str, str] = {}    # procedure name -> full CALL text, once known
        self._releasing: set[asyncio.Task[None]] = set()
        timeout = settings.statement_timeout
        self._default_ms = round(timeout * 1000) if timeout else 0

    # -- lifecycle ------------------------------------------------------------------------
    def connect_kwargs(self, dsn: str | None = None) -> dict[str, Any]:
        settings: dict[str, str] = {"application_name": "beds"}
        if self._default_ms:
            # The server stops every statement at the datasource's limit, with or without a
            # transaction around it.
            settings["statement_timeout"] = str(self._default_ms)
        return {"dsn": dsn or self.settings.dsn, "timeout": self.settings.connect_timeout,
                "server_settings": settings}

    async def open(self) -> None:
        # min_size=0: creating the pool never connects, so a node starts while the database is
        # down and answers DB_UNAVAILABLE until it is back.
        guard = self.settings.statement_timeout + GUARD_SECONDS \
            if self.settings.statement_timeout else None
        self._pool = await asyncpg.create_pool(
            min_size=0, max_size=self.settings.pool_max, command_timeout=guard,
            init=init_connection, **self.connect_kwargs(),
        )
        warm = [self._warm() for _ in range(self.settings.pool_min)]
        await asyncio.gather(*warm, return_exceptions=True)

    async def _warm(self) -> None:
        conn = await self._pool.acquire()
        await self._pool.release(conn)

    def pool_usage(self) -> tuple[int, int] | None:
        """(connections open, connections in use), for /metrics."""
        if self._pool is None:
            return None
        size = self._pool.get_size()
        return size, size - self._pool.get_idle_size()

    def pool_waiting(self) -> int | None:
        """Requests waiting for a connection now, for /metrics. asyncpg has no public count:
        an acquire waits as a getter of the pool's holder queue; a changed asyncpg gives None."""
        getters = getattr(getattr(self._pool, "_queue", None), "_getters", None)
        return None if getters is None else len(getters)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CLOSE_SECONDS)
            except TimeoutError:
                pool.terminate()

    async def ping(self) -> bool:
        try:
            await self.run(PostgresStatement(OpTarget.FUNCTION, "ping", "SELECT 1 AS value", 0,
                                             (), False), Call())
        except RequestError:
            return False
        return True

    # -- statements, built once per op ----------------------------------------------------
    def prepare(self, template: Template, op: Op) -> PostgresStatement:
        name = quote(op.object_name)
        holders = tuple(f"${i}" for i in range(1, len(op.params) + 1))
        write = op.kind is not OpKind.READ
        if op.target is OpTarget.PROCEDURE:
            return PostgresStatement(op.target, op.object_name, f"CALL {name}", len(op.params),
                                     op.out, write,
                                     call_args=holders + ("NULL",) * len(op.out))
        if op.target is OpTarget.FUNCTION:
            return PostgresStatement(op.target, op.object_name,
                                     f'SELECT * FROM {name}({", ".join(holders)}) AS "value"',
                                     len(op.params), (), write)
        order = ", ".join(quote(o.column) + (" DESC" if o.descending else "")
                          for o in op.order_by)
        return PostgresStatement(op.target, op.object_name, f"SELECT * FROM {name}", 0, (),
                                 False, f" ORDER BY {order}" if order else "")

    # -- the call -------------------------------------------------------------------------
    async def run(self, prepared: PostgresStatement, call: Call) -> Result:
        # A pooled connection may have died while idle (server restart): a read is safe to
        # run again once on a fresh connection; a write is not.
        attempts = 1 if prepared.write else 2
        for attempt in range(attempts):
            try:
                return (await self._run_once(prepared, [call], []))[0]
            except _StaleConnection as stale:
                if attempt + 1 == attempts:
                    raise stale.error from None
        raise AssertionError("unreachable")

    async def run_batch(self, prepared: PostgresStatement, calls: list[Call]) -> list[Result]:
        """A bulk op: every call on one connection, in one transaction; all rows or none."""
        results: list[Result] = []
        try:
            return await self._run_once(prepared, calls, results)
        except _StaleConnection as stale:
            raise at_row(stale.error, len(results), len(calls), 0) from stale.__cause__
        except RequestError as error:
            raise at_row(error, len(results), len(calls), 0) from error

    async def _run_once(self, prepared: PostgresStatement, calls: list[Call],
                        results: list[Result]) -> list[Result]:
        """`results` grows as calls finish: on failure its length is the failed call's index."""
        call = calls[0]
        conn = await self._acquire(call)
        broken = False
        try:
            # The time limit again, after the pool wait that came out of the caller's time.
            call = replace(call, timeout=time_left(call))
            # One bound for everything a request runs here: a bulk op's rows share it.
            async with asyncio.timeout(_guard(call)):
                await self._execute(conn, prepared, [call, *calls[1:]], results)
            return results
        except _DRIVER_ERRORS as exc:
            broken = _is_connection_error(exc) or _closed(conn)
            if _state(exc) == _UNDEFINED_FUNCTION:
                self._calls.pop(prepared.name, None)   # the DBA may be replacing it
            limit = call.timeout if call.timeout is not None else self._default_ms / 1000
            error = _translate(exc, limit or None)
            if broken and not isinstance(exc, TimeoutError):
                raise _StaleConnection(error) from exc
            raise error from exc
        except asyncio.CancelledError:
            broken = True    # cancelled mid-statement: the connection's state is unknown
            raise
        finally:
            if broken and not _closed(conn):
                # Never hand a connection in an unknown state to the next request: the pool
                # replaces a terminated connection with a fresh one. A terminated connection is
                # released without a reset, so a silent server cannot hold the release either.
                conn.terminate()
            self._release(conn)

    def _release(self, conn: Any) -> None:
        """Hand a connection back without making the reply wait for asyncpg's reset query: a
        round trip on every request, and for ever on a server that froze after answering (the
        reply is already decided). A reset that fails or times out terminates the connection,
        and the pool opens a fresh one."""
        task = asyncio.ensure_future(self._release_bounded(self._pool, conn))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release_bounded(self, pool: Any, conn: Any) -> None:
        with contextlib.suppress(*_DRIVER_ERRORS, asyncio.CancelledError):
            # a no-op when the pool already took it back (a terminated connection)
            await pool.release(conn, timeout=self.settings.connect_timeout)

    async def _acquire(self, call: Call) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    await self.open()
        try:
            return await self._pool.acquire(
                timeout=acquire_budget(call, self.settings.connect_timeout))
        except _DRIVER_ERRORS as exc:
            error = wait_failed(call, self.settings.name, _reason(exc))
            error.details.update(_details(exc))
            raise error from exc

    async def _execute(self, conn: Any, prepared: PostgresStatement, calls: list[Call],
                       results: list[Result]) -> None:
        call = calls[0]    # the calls of a bulk op share one time limit
        guard = _guard(call)
        limit_ms = round(call.timeout * 1000) if call.timeout else 0
        own_limit = call.timeout is not None and limit_ms != self._default_ms
        sql = prepared.sql
        if prepared.target is OpTarget.PROCEDURE:
            sql = self._calls.get(prepared.name) or await self._call_text(conn, prepared)
        if not (prepared.write or prepared.target is OpTarget.PROCEDURE or own_limit):
            sql, args = _statement(prepared, call)
            results.append(Result(rows=_rows(await conn.fetch(sql, *args, timeout=guard))))
            return
        # One round trip opens the transaction and sets its own statement time limit.
        begin = f"BEGIN; SET LOCAL statement_timeout = {limit_ms}" if own_limit else "BEGIN"
        await conn.execute(begin, timeout=guard)
        try:
            for each in calls:
                if prepared.target is OpTarget.PROCEDURE:
                    result = await _call_procedure(conn, prepared, sql, each.args, guard)
                else:
                    text, args = _statement(prepared, each)
                    result = Result(rows=_rows(await conn.fetch(text, *args, timeout=guard)))
                results.append(result)
            await conn.execute("COMMIT", timeout=guard)
        except (TimeoutError, asyncio.CancelledError):
            # The server did not answer in time (or the request's bound ran out): a ROLLBACK
            # would wait on the same silent server. Closing the socket rolls back server-side.
            conn.terminate()
            raise
        except BaseException:
            await _quiet_rollback(conn)
            raise
        if prepared.write and self.track_position and results:
            results[-1].position = await _wal_position(conn, guard)

    async def _call_text(self, conn: Any, prepared: PostgresStatement) -> str:
        """The CALL with one NULL per trailing refcursor parameter. A procedure that does not
        fit the convention gets none, and PostgreSQL's own error explains."""
        fixed = prepared.params + len(prepared.out_names)
        cursors = 0
        for row in await conn.fetch(ROUTINES_SQL, prepared.name):
            types = row["types"]
            if row["prokind"] == "p" and len(types) >= fixed and all(
                    t == "refcursor" for t in types[fixed:]):
                cursors = len(types) - fixed
                break
        sql = f"{prepared.sql}({', '.join([*prepared.call_args, *['NULL'] * cursors])})"
        self._calls[prepared.name] = sql
        return sql


def _guard(call: Call) -> float | None:
    """How long the client waits for a statement: a little past its server-side limit, but
    never long past the caller's deadline (a stalled server says nothing)."""
    if not call.timeout:
        return None
    guard = call.timeout + GUARD_SECONDS
    if call.deadline is not None:
        guard = min(guard, call.deadline - time.time() + DEADLINE_GRACE)
    return max(guard, 0.001)


async def _call_procedure(conn: Any, prepared: PostgresStatement, sql: str, args: list[Any],
                          guard: float | None) -> Result:
    row = await conn.fetchrow(sql, *args, timeout=guard)
    values = list(row.values()) if row is not None else []
    n_out = len(prepared.out_names)
    out = dict(zip(prepared.out_names, values[:n_out], strict=True)) if n_out else None
    sets: list[list[dict[str, Any]]] = []
    for cursor in values[n_out:]:
        if cursor is None:          # a cursor the procedure did not open: no result set
            continue
        # Not conn.fetch(): its statement cache is keyed by text, and the same portal name can
        # describe different columns from one call to the next.
        fetch = await conn.prepare(f"FETCH ALL FROM {quote(cursor)}", timeout=guard)
        sets.append(_rows(await fetch.fetch(timeout=guard)))
    return Result(rows=sets[0] if sets else [], out=out, sets=sets if len(sets) > 1 else None)


def _rows(records: list[Any]) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in records]


async def _wal_position(conn: Any, timeout: float | None) -> str | None:
    """The WAL position after a commit (at or past its commit record), for read-your-writes;
    None when it cannot be read: the write did commit, its caller must not hear of a failure."""
    try:
        return str(await conn.fetchval("SELECT pg_current_wal_lsn()::text", timeout=timeout))
    except _DRIVER_ERRORS:
        return None


async def init_connection(conn: Any) -> None:
    """Per new connection: JSON as JSON values, uuid as text (the reply format)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", format="text",
                                  encoder=_json_text, decoder=msgspec.json.decode)
    await conn.set_type_codec("uuid", schema="pg_catalog", format="text",
                              encoder=str, decoder=str)


def _json_text(value: Any) -> str:
    # A template's json field reaches the adapter as JSON text already (see templates.params).
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        # asyncpg's pool takes a connection back as soon as it closes, and detaches it.
        return True


async def _quiet_rollback(conn: Any) -> None:
    if _closed(conn) or not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK", timeout=CLOSE_SECONDS)
    except _DRIVER_ERRORS:
        conn.terminate()


class _StaleConnection(Exception):
    def __init__(self, error: RequestError) -> None:
        super().__init__(str(error))
        self.error = error


__all__ = ["PostgresAdapter", "PostgresStatement"]
