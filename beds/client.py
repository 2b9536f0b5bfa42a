"""Async RPC client: direct reply-to, many calls in flight on one channel, typed errors, and a
connection that comes back after RabbitMQ drops it.

    async with Client("amqp://guest:guest@127.0.0.1:5672/") as c:
        reply = await c.call("film", "fetch", {"film_id": 1}, timeout=5)
        reply.data, reply.out, reply.meta

Layer: interface (what services import). A failed call raises the RequestError subclass of the
reply's code (ValidationFailed, Conflict, DbUnavailable, ...); no reply in time raises
CallTimeout; no queue bound to the routing key raises NoRoute; a connection lost under a call
raises Disconnected. The connection itself is kept by beds.clientlink.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiormq
from pamqp.commands import Basic

from beds.brokers.link import DIRECT_REPLY_TO
from beds.clientlink import (
    CLOSED_WHILE_SENDING,
    ClientLink,
    Session,
    default_connection_name,
)
from beds.errors import CallTimeout, Disconnected, Forbidden, NoRoute, error_from_reply
from beds.protocol import encode_request, newer_position
from beds.tracecontext import inject_context

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"

_SEND_LOST = (aiormq.exceptions.AMQPConnectionError, aiormq.exceptions.ChannelInvalidStateError,
              aiormq.exceptions.ChannelClosed, ConnectionError, OSError)
"""What a publish raises when the connection or channel went away under it."""


@dataclass
class Reply:
    """A successful reply: rows, OUT values, every result set, the next page's cursor, and the
    node's `meta` (template, op, node, broker, rows, elapsed_ms). `raw` is the reply body."""

    data: list[dict[str, Any]]
    out: dict[str, Any] | None = None
    sets: list[list[dict[str, Any]]] | None = None
    next_cursor: str | None = None   # pass as `cursor=` for the next page (cursor engines)
    meta: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def reply_from_body(body: dict[str, Any]) -> Reply:
    """The Reply of an ok body, or raise the typed error a failed one carries (the reply body
    is kept in the error's `details["reply"]`)."""
    if not body.get("ok"):
        error = error_from_reply(body.get("error") or {})
        error.details.setdefault("reply", body)
        raise error
    return Reply(data=body.get("data", []), out=body.get("out"), sets=body.get("sets"),
                 next_cursor=body.get("next_cursor"), meta=body.get("meta", {}), raw=body)


class Client:
    """The async BEDS client: `call(template, op, params)` publishes one request and waits for
    its reply; any number of calls may be in flight at once.

    `url` (one endpoint) or `urls` (several, tried in order, then rotated when one is lost).
    After a lost connection the client reconnects in the background with capped, jittered
    backoff: calls in flight fail at once with Disconnected, new calls wait for the connection
    up to their own timeout. `user_id` is sent on every request as the AMQP user_id property;
    RabbitMQ refuses it unless it is the user this connection logged in as, so nodes can trust
    it. `connection_name` shows in RabbitMQ's connection list (default: beds-client, host, pid).

    Read-your-writes (datasources with read replicas, docs/replicas.md): a write's reply carries
    `meta.position`; a call with `read_after=<position>` is served by a replica only once it has
    applied that write. With `read_your_writes=True` the client does this by itself: it keeps the
    newest position each template's replies carried and sends it with every later call of that
    template (`positions` shows them).
    """

    def __init__(self, url: str | None = None, exchange: str = "beds",
                 default_timeout: float = 10.0, user_id: str | None = None, *,
                 urls: Sequence[str] | None = None, connection_name: str | None = None,
                 heartbeat: int = 30, reconnect_max_seconds: float = 5.0,
                 connect_timeout: float | None = None, read_your_writes: bool = False) -> None:
        if url is not None and urls is not None:
            raise ValueError("Client: give url or urls, not both")
        endpoints = list(urls) if urls is not None else [url or DEFAULT_URL]
        if not endpoints:
            raise ValueError("Client: urls: expected at least one amqp:// URL")
        self.urls = endpoints
        self.url = endpoints[0]
        self.user_id = user_id
        self.exchange = exchange
        self.default_timeout = default_timeout
        self.connect_timeout = default_timeout if connect_timeout is None else connect_timeout
        self._link = ClientLink(endpoints, connection_name or default_connection_name(),
                                heartbeat, reconnect_max_seconds)
        self.read_your_writes = read_your_writes
        self.positions: dict[str, str] = {}   # template -> newest write position seen

    @property
    def connection_name(self) -> str:
        return self._link.name

    @property
    def connected(self) -> bool:
        """True while a connection and its reply channel are open."""
        return self._link.current() is not None

    @property
    def connects(self) -> int:
        """How many times a connection was opened (1 after connect, +1 per reconnect)."""
        return self._link.connects

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the first endpoint that answers, within `connect_timeout`; raises Disconnected
        naming each endpoint's last error when none does."""
        await self._link.start(self.connect_timeout)

    async def close(self) -> None:
        """Close the connection; calls still waiting fail with Disconnected. Idempotent."""
        await self._link.close()

    async def call(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                   limit: int | None = None, offset: int | None = None,
                   cursor: str | None = None, timeout: float | None = None,
                   message_id: str | None = None, deadline: float | None = None,
                   read_after: str | None = None) -> Reply:
        """One request; returns its Reply or raises the reply's typed error. `read_after`: a
        write's `meta.position`; the node answers from data at least that new."""
        return reply_from_body(await self.call_raw(
            template, op, params, limit=limit, offset=offset, cursor=cursor, timeout=timeout,
            message_id=message_id, deadline=deadline, read_after=read_after))

    async def call_raw(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                       limit: int | None = None, offset: int | None = None,
                       cursor: str | None = None, timeout: float | None = None,
                       message_id: str | None = None,
                       deadline: float | None = None,
                       read_after: str | None = None) -> dict[str, Any]:
        """One request; returns the reply body as a dict, whether ok or not.

        `timeout`: seconds to wait for the reply. `deadline`: seconds the node has to take and
        run the request (the `expiration` and `x-deadline` it is sent with); default: what is
        left of `timeout` when it is sent. `read_after`: a write's `meta.position`; the node
        answers from data at least that new (with `read_your_writes`, the newest seen).
        """
        if read_after is None and self.read_your_writes:
            read_after = self.positions.get(template)
        seconds = self.default_timeout if timeout is None else timeout
        key = f"{template}.{op}"
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + seconds
        session = self._link.current() or await self._link.wait(deadline_at, key)
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        session.pending[correlation_id] = future
        body = encode_request(template, op, params, limit, offset, cursor)
        try:
            async with asyncio.timeout_at(deadline_at):
                budget = deadline_at - loop.time() if deadline is None else deadline
                await self._publish(session, key, body, correlation_id, message_id, budget,
                                    read_after)
                reply = await future
            if self.read_your_writes:
                self._remember(template, reply)
            return reply
        except TimeoutError:
            raise CallTimeout(f"no reply to {key} within {seconds}s; the request may still "
                              "have run") from None
        except Disconnected as exc:
            raise Disconnected(f"{key}: {exc}") from exc.__cause__
        finally:
            session.pending.pop(correlation_id, None)

    def _remember(self, template: str, reply: dict[str, Any]) -> None:
        meta = reply.get("meta")
        position = meta.get("position") if isinstance(meta, dict) else None
        if isinstance(position, str):
            # Replies of concurrent writes arrive in any order: keep the newest position.
            self.positions[template] = newer_position(self.positions.get(template), position)

    def _request_headers(self, seconds: float, read_after: str | None = None) -> dict[str, Any]:
        """The AMQP headers of one request: the one place they are built."""
        headers: dict[str, Any] = {"x-deadline": int((time.time() + seconds) * 1000)}
        if read_after is not None:
            headers["x-read-after"] = read_after
        inject_context(headers)   # the caller's trace continues on the node (beds[otel])
        return headers

    async def _publish(self, session: Session, key: str, body: bytes, correlation_id: str,
                       message_id: str | None, seconds: float,
                       read_after: str | None = None) -> None:
        try:
            await session.channel.basic_publish(
                body, exchange=self.exchange, routing_key=key, mandatory=True,
                properties=Basic.Properties(
                    reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id,
                    content_type="application/json", delivery_mode=2,
                    message_id=message_id or correlation_id,
                    # A request nobody took in time is dropped, not run after we gave up; one
                    # taken late is answered DEADLINE_EXCEEDED without touching the database,
                    # and the statement gets only the time that is left.
                    expiration=str(max(1, int(seconds * 1000))),
                    headers=self._request_headers(seconds, read_after),
                    user_id=self.user_id,
                ),
            )
        except aiormq.exceptions.PublishError:
            raise NoRoute(f"no queue is bound to {key} on exchange {self.exchange!r}: is a node "
                          "serving that op running?") from None
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise NoRoute(f"exchange {self.exchange!r} does not exist: no BEDS node has "
                          "declared it on this RabbitMQ (vhost) yet") from None
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            if "user_id" in str(exc):
                raise Forbidden(f"user_id: RabbitMQ refused {self.user_id!r}: it is not the "
                                "user this connection logged in as") from None
            raise Disconnected(f"RabbitMQ closed the channel ({exc}); the request was not "
                               "taken") from exc
        except _SEND_LOST as exc:
            raise Disconnected(f"the connection to RabbitMQ was lost while sending "
                               f"({type(exc).__name__}: {exc}); the request may not have been "
                               "sent") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise   # the caller's cancellation, or this call's own timeout
            # aiormq fails a pending confirm with CancelledError when its connection dies
            # (seen with a frozen broker): that is a lost connection, not a cancellation.
            raise Disconnected(CLOSED_WHILE_SENDING) from None
