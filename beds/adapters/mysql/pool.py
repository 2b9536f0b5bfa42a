"""The MariaDB connection pool, and the one place the MySQL driver is chosen: asyncmy.

Layer: infrastructure (used by `adapter`, `errors` and `schema` only). Every driver import
lives here: the others see `connect`, `DriverError`, `DriverInterfaceError` and `is_closed`, so
the driver can be swapped in this module alone (bench/ab.py measured asyncmy against aiomysql;
README, Dependencies).

The pool: connections at most `maxsize`, opened on demand. Why not the driver's own pool:
aiomysql's (and asyncmy's, built the same way) bounds only the TCP open, not the handshake, and
connects while holding the lock every other acquirer waits on, so one server that accepts and
never answers wedges every request; and releasing a connection that was closed in use wakes no
waiter. Here a slot is a semaphore permit: the whole connect (TCP + handshake) is bounded, no
lock is held while connecting, and a released slot wakes the next waiter whatever happened to
its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import asyncmy
from asyncmy.constants import CLIENT, CR
from asyncmy.cursors import Cursor
from asyncmy.errors import InterfaceError, MySQLError, OperationalError

RECYCLE_SECONDS = 3600.0    # an idle connection older than this is closed, not reused

DriverError = MySQLError                # every error the driver raises; args = (errno, message)
DriverInterfaceError = InterfaceError   # the driver's own state is broken, not the server's
# One COM_QUERY may carry several statements (CALL ...; SELECT @out): a procedure call with OUT
# parameters, a write's transaction around it, is one round trip. Safe because the adapter
# never sends text from a request: names come from validated templates, values are escaped by
# the driver.
MULTI_STATEMENTS = CLIENT.MULTI_STATEMENTS


class _QuietCursor(Cursor):
    """asyncmy's cursor sends SHOW WARNINGS after any statement that left warnings and logs
    each one: an extra round trip and a log line per call a DBA's procedure may cause on
    every request. BEDS reports what a procedure returns or raises, not its notes."""

    async def _show_warnings(self, conn: Any) -> None:
        return None


async def connect(kwargs: dict[str, Any]) -> Any:
    """A new driver connection (the caller bounds the wait). `kwargs` as built by
    `MysqlAdapter.connect_kwargs`: PyMySQL-style names, which asyncmy accepts."""
    try:
        return await asyncmy.connect(cursor_cls=_QuietCursor, **kwargs)
    except RuntimeError as exc:
        # asyncmy 0.2.18 lets uvloop's "Transport does not expose socket instance" through when
        # the server resets the connection between the TCP open and the keep-alive set-up (seen
        # in tests/e2e/test_cluster.py's outage): a failed connect like any other.
        raise OperationalError(CR.CR_CONN_HOST_ERROR,
                               f"Can't connect to MySQL server ({exc})") from exc


def is_closed(conn: Any) -> bool:
    return not conn.connected


class MysqlPool:
    def __init__(self, maxsize: int, connect_kwargs: dict[str, Any],
                 connect_timeout: float) -> None:
        self.maxsize = maxsize
        self._kwargs = connect_kwargs
        self._connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(maxsize)
        self._free: deque[tuple[Any, float]] = deque()   # (connection, when it was released)
        self._used: set[Any] = set()
        self._closing = False
        self._returned = asyncio.Event()   # set whenever a connection comes back
        self.waiting = 0                   # acquirers waiting for a slot now (for /metrics)

    @property
    def size(self) -> int:
        return len(self._free) + len(self._used)

    @property
    def freesize(self) -> int:
        return len(self._free)

    async def connect(self, kwargs: dict[str, Any] | None = None) -> Any:
        """A new connection (pooled, or outside the pool with other `kwargs`, for KILL QUERY),
        TCP open and handshake bounded by connect_timeout."""
        async with asyncio.timeout(self._connect_timeout):
            return await connect(kwargs or self._kwargs)

    async def acquire(self) -> Any:
        """A connection; the caller bounds the wait (for a slot, and for a new connection)."""
        if self._closing:
            raise ConnectionError("the pool is closed")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            conn = self._idle() or await self.connect()
        except BaseException:
            self._slots.release()
            raise
        self._used.add(conn)
        return conn

    def server_version(self) -> str | None:
        """The version string an open connection's server announced, if one is open."""
        for conn in (*(c for c, _ in self._free), *self._used):
            return str(conn.get_server_info())
        return None

    def _idle(self) -> Any:
        now = time.monotonic()
        while self._free:
            conn, since = self._free.pop()    # the most recently used first
            if not is_closed(conn) and now - since < RECYCLE_SECONDS:
                return conn
            conn.close()
        return None

    def release(self, conn: Any) -> None:
        """Back to the pool if it is still good, else closed; either way the slot is free."""
        if conn not in self._used:
            return
        self._used.discard(conn)
        if self._closing or is_closed(conn) or conn.get_transaction_status():
            conn.close()
        else:
            self._free.append((conn, time.monotonic()))
        self._slots.release()
        self._returned.set()

    def discard_idle(self) -> None:
        """Close the idle connections without network I/O (they died with the server)."""
        while self._free:
            self._free.popleft()[0].close()

    def close(self) -> None:
        self._closing = True
        self.discard_idle()

    async def wait_closed(self, timeout: float) -> None:
        """Wait up to `timeout` for connections in use to come back, then close them anyway."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._used:
                    self._returned.clear()
                    await self._returned.wait()
        for conn in list(self._used):
            conn.close()
        self._used.clear()
