"""The client's connection: one AMQP connection and one reply channel over a list of endpoints,
re-opened in the background with capped, jittered backoff after RabbitMQ drops it.

Layer: interface. Each opened channel is a Session with its own table of pending calls, so a lost
channel fails exactly the calls that were waiting on it (their replies can never arrive: direct
reply-to is bound to the channel) and a call never waits on a channel that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage

from beds.brokers.link import AMQP_ERRORS, CONNECT_SECONDS, DIRECT_REPLY_TO, where, with_query
from beds.errors import Disconnected
from beds.protocol import decode_reply

CLOSED_WHILE_SENDING = ("the connection to RabbitMQ was closed while sending; the request may not "
                        "have been sent")
_CLOSE_SECONDS = 5.0      # a frozen broker never answers Connection.Close: stop waiting

log = logging.getLogger("beds.client")


def default_connection_name() -> str:
    return f"beds-client:{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False)
class Session:
    """One open connection + reply channel, and the calls waiting for a reply on it."""

    conn: AbstractConnection
    channel: AbstractChannel
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class ClientLink:
    """Keeps a Session open over `endpoints` until closed."""

    def __init__(self, endpoints: list[str], name: str, heartbeat: int,
                 max_backoff: float) -> None:
        self.endpoints = endpoints
        self.name = name
        self._heartbeat = heartbeat
        self._max_backoff = max_backoff
        self._next = 0                      # the endpoint tried first
        self._session: Session | None = None
        self._ready = asyncio.Event()       # set while a session is open (or once closed)
        self._keeper: asyncio.Task[None] | None = None
        self._closed = False
        self._last_error = ""
        self.connects = 0

    def current(self) -> Session | None:
        """The open session, or None (after noticing a closed one: its calls are failed)."""
        session = self._session
        if session is not None and session.channel.is_closed:
            self._lost(session, "the channel closed")
            return None
        return session

    async def start(self, timeout: float) -> None:
        if self._keeper is not None:
            return
        self._closed = False
        loop = asyncio.get_running_loop()
        self._use(await self._open(loop.time() + timeout))
        self._keeper = asyncio.create_task(self._keep(), name=f"beds-client-link:{self.name}")

    async def wait(self, deadline: float, key: str) -> Session:
        """The session once one is open; Disconnected at `deadline` (nothing was sent)."""
        if self._keeper is None:
            raise RuntimeError("Client is not connected: use `async with Client(...)` or "
                               "`await client.connect()`")
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise Disconnected("the client was closed; the request was not sent")
            session = self.current()
            if session is not None:
                return session
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Disconnected(f"no connection to RabbitMQ to send {key} before its timeout "
                                   f"(reconnecting; last error: {self._last_error or 'none'}); "
                                   "the request was not sent")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), remaining)

    async def close(self) -> None:
        self._closed = True
        self._ready.set()   # wake calls waiting for a connection: they fail at once
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        session = self._session
        if session is not None:
            self._lost(session, "the client was closed")
            await _close(session.conn)

    # -- keeping the connection ---------------------------------------------------------------

    async def _keep(self) -> None:
        while not self._closed:
            session = self._session
            if session is not None:
                closing = session.channel.closing
                await asyncio.wait({closing})
                reason = _reason(closing)
                self._lost(session, reason)
                log.warning("beds client %s: %s; reconnecting", self.name, reason)
                await _close(session.conn)   # even after a channel error: one recovery path
                self._next = (self._next + 1) % len(self.endpoints)   # its node may be gone
            try:
                self._use(await self._open(None))
            except Exception as exc:   # never let the keeper die: the client would stay down
                log.exception("beds client %s: reconnect failed; retrying", self.name)
                self._last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self._max_backoff)
                continue
            log.info("beds client %s: connected to %s (connects=%d)", self.name,
                     where(self.endpoints[self._next]), self.connects)

    def _use(self, session: Session) -> None:
        self._session = session
        self.connects += 1
        self._ready.set()

    def _lost(self, session: Session, reason: str) -> None:
        """Fail every call waiting on `session`; their replies can never arrive."""
        if self._session is session:
            self._session = None
            if not self._closed:
                self._ready.clear()
        self._last_error = reason
        pending, session.pending = session.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(Disconnected(
                    f"{reason} while the call was in flight; the request may or may not "
                    "have run"))
                # A call still publishing raises its own error and never awaits this future:
                # mark it seen, or asyncio logs "exception was never retrieved".
                future.exception()

    async def _open(self, deadline: float | None) -> Session:
        """Try the endpoints in turn, with backoff between rounds, until one opens; by
        `deadline` (None: no limit) raise Disconnected naming each endpoint's last error."""
        loop = asyncio.get_running_loop()
        delay = 0.1
        errors: dict[str, str] = {}
        while True:
            for _ in self.endpoints:
                url = self.endpoints[self._next]
                budget = CONNECT_SECONDS if deadline is None else deadline - loop.time()
                try:
                    return await asyncio.wait_for(self._connect(url), max(0.01, budget))
                except AMQP_ERRORS as exc:
                    errors[where(url)] = f"{type(exc).__name__}: {exc}"
                    self._last_error = f"{where(url)}: {type(exc).__name__}: {exc}"
                    self._next = (self._next + 1) % len(self.endpoints)
            if deadline is not None and loop.time() + delay >= deadline:
                tried = "; ".join(f"{k}: {v}" for k, v in errors.items())
                raise Disconnected(f"cannot connect to RabbitMQ ({tried})")
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, self._max_backoff)

    async def _connect(self, url: str) -> Session:
        conn = await aiormq.connect(with_query(url, heartbeat=self._heartbeat, name=self.name))
        try:
            channel = await conn.channel(publisher_confirms=True)
            session = Session(conn, channel)
            # Direct reply-to: consume the pseudo-queue, no ack, before the first publish.
            await channel.basic_consume(DIRECT_REPLY_TO, partial(_on_reply, session), no_ack=True)
        except BaseException:
            await _close(conn)
            raise
        return session


async def _on_reply(session: Session, message: DeliveredMessage) -> None:
    future = session.pending.pop(message.header.properties.correlation_id or "", None)
    if future is not None and not future.done():
        try:
            future.set_result(decode_reply(message.body))
        except Exception as exc:   # a reply that is not JSON is the caller's problem to see
            future.set_exception(exc)


async def _close(conn: AbstractConnection) -> None:
    # aiormq fails what still waits on the connection (a publish confirm) with `exc`; its
    # default, CancelledError, would look like the caller's own cancellation.
    with contextlib.suppress(*AMQP_ERRORS, RuntimeError):
        await asyncio.wait_for(conn.close(exc=Disconnected(CLOSED_WHILE_SENDING)), _CLOSE_SECONDS)


def _reason(closing: asyncio.Future[Any]) -> str:
    exc = closing.exception() if not closing.cancelled() else None
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return f"the connection to RabbitMQ closed{detail}"

