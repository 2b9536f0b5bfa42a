"""The blocking client for synchronous code (scripts, Django, Flask): the async Client running on
one background I/O thread with its own event loop.

    with SyncClient("amqp://guest:guest@127.0.0.1:5672/") as c:
        reply = c.call("film", "fetch", {"film_id": 1}, timeout=5)

Layer: interface. Thread-safe: any number of threads may call at once; their calls share one
connection and are in flight together on the I/O thread. A call's exception is re-raised in the
calling thread as the same object the async client raised (same class, code, details).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from beds.client import Client, Reply
from beds.errors import CallTimeout

T = TypeVar("T")
_GRACE_SECONDS = 5.0
"""How long past a call's own timeout the calling thread waits for the I/O thread to answer;
only a wedged I/O thread ever uses it."""
_CLOSE_SECONDS = 10.0   # Client.close() gives up on a frozen broker after 5 s


class SyncClient:
    """The blocking BEDS client: the same calls, arguments, replies and errors as `Client`.

    One background thread runs an event loop with an async `Client` on it; `call` hands the
    request to that thread and blocks the calling thread until the reply (or the timeout).
    Use `with SyncClient(...) as c:`, or `connect()` and `close()`; `close()` joins the thread.
    """

    def __init__(self, url: str | None = None, exchange: str = "beds",
                 default_timeout: float = 10.0, user_id: str | None = None, *,
                 urls: Sequence[str] | None = None, connection_name: str | None = None,
                 heartbeat: int = 30, reconnect_max_seconds: float = 5.0,
                 connect_timeout: float | None = None) -> None:
        if url is not None and urls is not None:
            raise ValueError("SyncClient: give url or urls, not both")
        self.default_timeout = default_timeout
        self.connect_timeout = default_timeout if connect_timeout is None else connect_timeout
        self._options: dict[str, Any] = {
            "url": url, "exchange": exchange, "default_timeout": default_timeout,
            "user_id": user_id, "urls": urls, "connection_name": connection_name,
            "heartbeat": heartbeat, "reconnect_max_seconds": reconnect_max_seconds,
            "connect_timeout": connect_timeout}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The async client on the I/O thread (its properties: connected, connects, ...)."""
        if self._client is None:
            raise RuntimeError("SyncClient is not connected: use `with SyncClient(...)` or "
                               "call connect() first")
        return self._client

    def __enter__(self) -> SyncClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Start the I/O thread and connect; raises what `Client.connect` raises."""
        with self._lock:
            if self._client is not None:
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="beds-sync-client",
                                      daemon=True)   # a forgotten close() must not block exit
            thread.start()
            self._loop, self._thread = loop, thread
            try:
                self._client = self._run(self._open(), self.connect_timeout)
            except BaseException:
                self._stop_thread()
                raise

    def close(self) -> None:
        """Close the connection (calls still waiting fail with Disconnected), stop and join the
        I/O thread. Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            try:
                if client is not None:
                    self._run(client.close(), _CLOSE_SECONDS)
            finally:
                self._stop_thread()

    def call(self, template: str, op: str, params: dict[str, Any] | None = None, *,
             limit: int | None = None, offset: int | None = None, cursor: str | None = None,
             timeout: float | None = None, message_id: str | None = None,
             deadline: float | None = None, read_after: str | None = None) -> Reply:
        """One request; returns its Reply or raises the reply's typed error. `read_after`: a
        write's meta.position (read-your-writes, docs/replicas.md)."""
        return self._run(self.client.call(template, op, params, limit=limit, offset=offset,
                                          cursor=cursor, timeout=timeout,
                                          message_id=message_id, deadline=deadline,
                                          read_after=read_after),
                         self.default_timeout if timeout is None else timeout)

    def call_raw(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                 limit: int | None = None, offset: int | None = None, cursor: str | None = None,
                 timeout: float | None = None, message_id: str | None = None,
                 deadline: float | None = None, read_after: str | None = None) -> dict[str, Any]:
        """One request; returns the reply body as a dict, whether ok or not."""
        return self._run(self.client.call_raw(template, op, params, limit=limit, offset=offset,
                                              cursor=cursor, timeout=timeout,
                                              message_id=message_id, deadline=deadline,
                                          read_after=read_after),
                         self.default_timeout if timeout is None else timeout)

    async def _open(self) -> Client:
        client = Client(**self._options)
        await client.connect()
        return client

    def _run(self, coro: Coroutine[Any, Any, T], seconds: float) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("SyncClient is not connected")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(seconds + _GRACE_SECONDS)
        except TimeoutError:
            if future.done():
                raise   # the call's own CallTimeout (a TimeoutError), not ours
            future.cancel()
            raise CallTimeout(f"the I/O thread did not answer within {seconds}s") from None

    def _stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
