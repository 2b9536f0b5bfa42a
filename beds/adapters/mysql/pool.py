"""The MariaDB connection pool, and the one place the MySQL client is chosen: BEDS's own
(beds.mysql).

Layer: infrastructure (used by `adapter`, `errors` and `schema` only). Every client import
lives here: the others see `connect`, `DriverError`, `DriverInterfaceError` and `is_closed`, so
the client can be swapped in this module alone (bench/ab.py and bench/adapter_micro.py measured
aiomysql, asyncmy and beds.mysql; README, Dependencies).

The pool: connections at most `maxsize`, opened on demand. Why not a driver's own pool:
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

from beds.mysql import Connection, InterfaceError, MysqlError, ResultTooLarge
from beds.mysql import connect as _connect

RECYCLE_SECONDS = 3600.0    # an idle connection older than this is closed, not reused

DriverError = MysqlError                # every error the client raises; args = (errno, message)
DriverInterfaceError = InterfaceError   # the client's own state is broken, not the server's


async def connect(kwargs: dict[str, Any]) -> Connection:
    """A new connection (the caller bounds the wait). `kwargs` as built by
    `MysqlAdapter.connect_kwargs`: beds.mysql.connect's parameters."""
    return await _connect(**kwargs)


def is_closed(conn: Connection) -> bool:
    return not conn.connected


class _Slots:
    """A counting semaphore whose free slot can also be taken without an await (`try_take`):
    a request that finds an idle connection pays for no coroutine and no timer."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()   # handed a slot just as the wait was given up: pass it on
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():   # a waiter whose wait was given up is skipped
                waiter.set_result(None)
                return
        self._free += 1


class MysqlPool:
    def __init__(self, maxsize: int, connect_kwargs: dict[str, Any],
                 connect_timeout: float) -> None:
        self.maxsize = maxsize
        self._kwargs = connect_kwargs
        self._connect_timeout = connect_timeout
        self._slots = _Slots(maxsize)
        self._free: deque[tuple[Connection, float]] = deque()   # (connection, when it was released)
        self._used: set[Connection] = set()
        self._closing = False
        self._returned = asyncio.Event()   # set whenever a connection comes back
        self.waiting = 0                   # acquirers waiting for a slot now (for /metrics)

    @property
    def size(self) -> int:
        return len(self._free) + len(self._used)

    @property
    def freesize(self) -> int:
        return len(self._free)

    async def connect(self, kwargs: dict[str, Any] | None = None) -> Connection:
        """A new connection (pooled, or outside the pool with other `kwargs`, for KILL QUERY),
        TCP open and handshake bounded by connect_timeout."""
        async with asyncio.timeout(self._connect_timeout):
            return await connect(kwargs or self._kwargs)

    async def acquire(self) -> Connection:
        """A connection; the caller bounds the wait (for a slot, and for a new connection)."""
        if self._closing:
            raise ConnectionError("the pool is closed")
        self.waiting += 1
        try:
            await self._slots.take()
        finally:
            self.waiting -= 1
        try:
            conn = self._idle() or await self.connect()
        except BaseException:
            self._slots.give()
            raise
        self._used.add(conn)
        return conn

    def take_idle(self) -> Connection | None:
        """An idle connection now, when a slot is free and nobody waits for one; else None
        (then `acquire`)."""
        if self._closing or not self._slots.try_take():
            return None
        conn = self._idle()
        if conn is None:
            self._slots.give()
            return None
        self._used.add(conn)
        return conn

    def server_version(self) -> str | None:
        """The version string an open connection's server announced, if one is open."""
        for conn in (*(c for c, _ in self._free), *self._used):
            return conn.server_version
        return None

    def _idle(self) -> Connection | None:
        now = time.monotonic()
        while self._free:
            conn, since = self._free.pop()    # the most recently used first
            if not is_closed(conn) and now - since < RECYCLE_SECONDS:
                return conn
            conn.close()
        return None

    def release(self, conn: Connection) -> None:
        """Back to the pool if it is still good, else closed; either way the slot is free."""
        if conn not in self._used:
            return
        self._used.discard(conn)
        if self._closing or is_closed(conn) or conn.in_transaction:
            conn.close()
        else:
            self._free.append((conn, time.monotonic()))
        self._slots.give()
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


__all__ = ["DriverError", "DriverInterfaceError", "MysqlPool", "ResultTooLarge", "connect",
           "is_closed"]
