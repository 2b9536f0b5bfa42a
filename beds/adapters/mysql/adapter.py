"""MariaDB / MySQL adapter: CALL procedures, SELECT functions, page through views.

Layer: infrastructure. The client (beds.mysql) is chosen in `pool`, the only module that imports
it; its errors are translated once, by `errors._translate`. DBA tooling (templates check, schema
apply) lives in `schema`.

One round trip per call: `wire` sends a call's statements (a write's transaction around it, its
OUT values after it) as one multi-statement query.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from beds.adapters.base import (
    Call,
    Dsn,
    acquire_budget,
    parse_dsn,
    quote_ident,
    refuse_cursor,
    time_left,
    wait_failed,
)
from beds.adapters.batch import at_row
from beds.adapters.mysql.errors import _errno, _is_connection_error, _reason, _translate
from beds.adapters.mysql.pool import DriverError, MysqlPool
from beds.adapters.mysql.wire import CallScript, MysqlStatement, limited
from beds.config import DatasourceSettings, OpKind
from beds.errors import RequestError
from beds.log import get_logger
from beds.mysql import Connection
from beds.protocol import Result
from beds.templates.model import Op, OpTarget, Template

_UNKNOWN_THREAD = 1094
_log = get_logger("beds.mysql")
SERVER_GRACE = 2.0      # seconds the client waits past a statement's limit for the server
DEADLINE_GRACE = 0.25   # ... but at most this long past the caller's deadline


class MysqlAdapter:
    track_position = False   # replicas configured: a write's reply carries its GTID

    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings
        self.dsn: Dsn = parse_dsn(settings)
        self._pool: MysqlPool | None = None
        self._kills: set[asyncio.Task[None]] = set()   # KILL QUERY side connections running

    # -- lifecycle ------------------------------------------------------------------------
    def connect_kwargs(self, dsn: Dsn | None = None) -> dict[str, Any]:
        d = dsn or self.dsn
        kwargs: dict[str, Any] = {
            "host": d.host, "port": d.port or 3306, "user": d.user or "root",
            "password": d.password or "",
            # Reads must see fresh data, not a snapshot held open by a pooled connection;
            # writes open their own transaction.
            "autocommit": True,
            # One COM_QUERY may carry several statements (CALL ...; SELECT @out): a procedure
            # call with OUT parameters, a write's transaction around it, is one round trip.
            # Safe because the adapter never sends text from a request: names come from
            # validated templates, values are escaped by beds.mysql.
            "multi_statements": True,
        }
        if d.database:
            kwargs["database"] = d.database
        if "unix_socket" in d.options:
            kwargs["unix_socket"] = d.options["unix_socket"]
        return kwargs

    async def open(self) -> None:
        # Creating the pool never connects, so a node starts while the database is down and
        # answers DB_UNAVAILABLE until it is back; warming is bounded by connect_timeout.
        self._pool = MysqlPool(self.settings.pool_max, self.connect_kwargs(),
                               self.settings.connect_timeout)
        warm = [self._warm() for _ in range(self.settings.pool_min)]
        await asyncio.gather(*warm, return_exceptions=True)

    async def _warm(self) -> None:
        async with asyncio.timeout(self.settings.connect_timeout):
            conn = await self._pooled().acquire()
        self._pooled().release(conn)

    def pool_usage(self) -> tuple[int, int] | None:
        """(connections open, connections in use), for /metrics."""
        if self._pool is None:
            return None
        return self._pool.size, self._pool.size - self._pool.freesize

    def db_system(self) -> str:
        """`mariadb` or `mysql` (OpenTelemetry's db.system.name), from the version a pooled
        connection's server announced; `mysql` until one is open."""
        flavour: str | None = getattr(self, "_flavour", None)
        if flavour is None and self._pool is not None:
            version = self._pool.server_version()
            if version is not None:
                flavour = "mariadb" if "mariadb" in version.lower() else "mysql"
                self._flavour = flavour
        return flavour or "mysql"

    def pool_waiting(self) -> int | None:
        """Requests waiting for a connection now, for /metrics."""
        return None if self._pool is None else self._pool.waiting

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed(self.settings.connect_timeout)
            self._pool = None
        if self._kills:
            await asyncio.wait(self._kills, timeout=self.settings.connect_timeout)

    async def ping(self) -> bool:
        try:
            await self.run(MysqlStatement(OpTarget.FUNCTION, "SELECT 1 AS value", None, (),
                                          False), Call(timeout=self.settings.connect_timeout))
        except RequestError:
            return False
        return True

    # -- statements, built once per op ----------------------------------------------------
    def prepare(self, template: Template, op: Op) -> MysqlStatement:
        name = quote_ident(op.object_name, "`")
        if op.target is OpTarget.PROCEDURE:
            holders = ["%s"] * len(op.params) + [f"@beds_o{i}" for i in range(len(op.out))]
            out_sql = None
            if op.out:
                out_sql = "SELECT " + ", ".join(
                    f"@beds_o{i} AS {quote_ident(n, '`')}" for i, n in enumerate(op.out))
            return MysqlStatement(op.target, f"CALL {name}({', '.join(holders)})", out_sql,
                                  op.out, op.kind is not OpKind.READ)
        if op.target is OpTarget.FUNCTION:
            args = ", ".join(["%s"] * len(op.params))
            return MysqlStatement(op.target, f"SELECT {name}({args}) AS `value`", None, (),
                                  op.kind is not OpKind.READ)
        order = ", ".join(quote_ident(o.column, "`") + (" DESC" if o.descending else "")
                          for o in op.order_by)
        return MysqlStatement(op.target, f"SELECT * FROM {name}", None, (), False,
                              f" ORDER BY {order}" if order else "")

    # -- the call -------------------------------------------------------------------------
    async def run(self, prepared: MysqlStatement, call: Call) -> Result:
        statement = self._statement(prepared, call)
        # A pooled connection may have died while idle (server restart): a read is safe to
        # run again once on a fresh connection; a write is not.
        attempts = 1 if prepared.write else 2
        for attempt in range(attempts):
            try:
                return (await self._run_once(prepared, [statement], call))[0]
            except _StaleConnection as stale:
                if attempt + 1 == attempts:
                    raise stale.error from None
        raise AssertionError("unreachable")

    async def run_batch(self, prepared: MysqlStatement, calls: list[Call]) -> list[Result]:
        """A bulk op: every call on one connection, in one transaction, under one time limit
        for the whole of it; all rows or none."""
        statements = [(prepared.sql, call.args) for call in calls]
        results: list[Result] = []
        try:
            return await self._run_once(prepared, statements, calls[0], results)
        except _StaleConnection as stale:
            raise at_row(stale.error, len(results), len(calls), 0) from stale.__cause__
        except RequestError as error:
            raise at_row(error, len(results), len(calls), 0) from error

    def _statement(self, prepared: MysqlStatement, call: Call) -> tuple[str, list[Any]]:
        if prepared.target is not OpTarget.VIEW:
            return prepared.sql, call.args
        refuse_cursor(call, "MariaDB")
        sql = prepared.sql
        args: list[Any] = []
        if call.filters:
            sql += " WHERE " + " AND ".join(f"{quote_ident(c, '`')} = %s" for c, _ in call.filters)
            args = [v for _, v in call.filters]
        sql += prepared.order_sql + " LIMIT %s OFFSET %s"
        args += [call.limit, call.offset]
        return sql, args

    async def _run_once(self, prepared: MysqlStatement, statements: list[tuple[str, list[Any]]],
                        call: Call, results: list[Result] | None = None) -> list[Result]:
        """The statements on one connection (a write: in one transaction), one round trip each,
        each result appended to `results` as it comes: on failure its length is the index of
        the failed one (its length is len(statements) when the commit failed)."""
        results = [] if results is None else results
        conn = await self._acquire(call)
        broken = False
        limit = None
        try:
            limit = time_left(call)   # after the pool wait, which came out of the caller's time
            clock = _Clock(limit, call.deadline)
            last = len(statements) - 1
            for i, (sql, args) in enumerate(statements):
                script = CallScript(prepared, limited(sql, clock.left()),
                                    begins=prepared.write and i == 0,
                                    commits=prepared.write and i == last,
                                    position=self.track_position and prepared.write and i == last)
                # asyncio.timeout, not wait_for: no extra task per call on the hot path.
                async with asyncio.timeout(clock.client_wait()):
                    await script.run(conn, args, results, call.max_result_bytes)
            return results
        except (TimeoutError, DriverError, OSError) as exc:
            broken = _is_connection_error(exc)
            error = _translate(exc, limit)
            if isinstance(exc, TimeoutError) and not isinstance(exc, _OutOfTime):
                # The server did not stop the statement in time (max_statement_time counts per
                # statement inside a procedure, and a stalled server answers nothing): stop it
                # ourselves, or a write runs on to commit. In the background: the caller's
                # answer must not wait for a side connection to a server that may not answer.
                self._kill_later(conn.thread_id)
            if broken and not isinstance(exc, TimeoutError):
                self._pooled().discard_idle()
                raise _StaleConnection(error) from exc
            raise error from exc
        except asyncio.CancelledError:
            # The node stopped waiting (a drain ran past its grace): the server would run the
            # statement on, holding its locks while the redelivered copy waits on them.
            broken = True
            self._kill_later(conn.thread_id)
            raise
        finally:
            if broken:
                conn.close()
            elif prepared.write and conn.in_transaction:
                await _quiet_rollback(conn, self.settings.connect_timeout)
            self._pooled().release(conn)

    def _kill_later(self, thread_id: int) -> None:
        task = asyncio.ensure_future(self._kill_query(thread_id))
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)

    async def _kill_query(self, thread_id: int) -> None:
        """KILL QUERY on a side connection, all of it bounded by connect_timeout. As the admin
        account when there is one: while a SQL SECURITY DEFINER routine runs, its thread belongs
        to the definer, and the application account is refused (1095, not owner)."""
        conn = None
        dsn = parse_dsn(self.settings, self.settings.admin_dsn) if self.settings.admin_dsn \
            else None
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                conn = await self._pooled().connect(self.connect_kwargs(dsn))
                await conn.query("KILL QUERY %s", (thread_id,))
        except (TimeoutError, DriverError, OSError) as exc:
            if _errno(exc) == _UNKNOWN_THREAD:
                return   # it finished meanwhile
            # The database is gone (the statement with it), or the kill was refused.
            _log.warning("statement.kill_failed", datasource=self.settings.name,
                         thread=thread_id, error=_reason(exc),
                         hint="set datasources.NAME.admin_dsn to an account that may kill "
                              "the application's queries (MariaDB: CONNECTION ADMIN)")
        finally:
            if conn is not None:
                conn.close()

    def _pooled(self) -> MysqlPool:
        if self._pool is None:
            self._pool = MysqlPool(self.settings.pool_max, self.connect_kwargs(),
                                   self.settings.connect_timeout)
        return self._pool

    async def _acquire(self, call: Call) -> Connection:
        pool = self._pooled()
        conn = pool.take_idle()
        if conn is not None:
            return conn
        try:
            async with asyncio.timeout(acquire_budget(call, self.settings.connect_timeout)):
                return await pool.acquire()
        except (TimeoutError, DriverError, OSError) as exc:
            raise wait_failed(call, self.settings.name, _reason(exc)) from exc

class _StaleConnection(Exception):
    def __init__(self, error: RequestError) -> None:
        super().__init__(str(error))
        self.error = error


class _OutOfTime(TimeoutError):
    """The request's time ran out between two statements."""


class _Clock:
    """One time limit for everything a request runs on its connection (a bulk op's statements
    share it), and how long the client waits for each step."""

    def __init__(self, limit: float | None, deadline: float | None) -> None:
        self._end = time.monotonic() + limit if limit else None
        self._deadline = deadline

    def left(self) -> float | None:
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            raise _OutOfTime   # -> DEADLINE_EXCEEDED; no statement of ours is running
        return left

    def client_wait(self) -> float | None:
        """The server stops a statement at its limit; the client waits a little longer for it
        to say so, but never long past the caller's deadline (a stalled server says nothing)."""
        left = self.left()
        if left is None:
            return None
        wait = left + SERVER_GRACE
        if self._deadline is not None:
            wait = min(wait, self._deadline - time.time() + DEADLINE_GRACE)
        return max(wait, 0.0)


async def _quiet_rollback(conn: Connection, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await conn.rollback()
    except (TimeoutError, DriverError, OSError):
        conn.close()


__all__ = ["MysqlAdapter", "MysqlStatement"]
