"""The MariaDB connection pool: aiomysql connections, at most `maxsize`, opened on demand.

Layer: infrastructure (used by `adapter` only). Why not aiomysql's own Pool: its `connect_timeout` bounds
only the TCP open, not the handshake, and it connects while holding the lock every other
acquirer waits on, so one server that accepts and never answers wedges every request; and
releasing a connection that was closed in use wakes no waiter. Here a slot is a semaphore
permit: the whole connect (TCP + handshake) is bounded, no lock is held while connecting, and a
released slot wakes the next waiter whatever happened to its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import aiomysql

RECYCLE_SECONDS = 3600.0    # an idle connection older than this is closed, not reused


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
            return await aiomysql.connect(**(kwargs or self._kwargs))

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
            if not conn.closed and now - since < RECYCLE_SECONDS:
                return conn
            conn.close()
        return None

    def release(self, conn: Any) -> None:
        """Back to the pool if it is still good, else closed; either way the slot is free."""
        if conn not in self._used:
            return
        self._used.discard(conn)
        if self._closing or conn.closed or conn.get_transaction_status():
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
