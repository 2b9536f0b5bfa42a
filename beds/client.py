"""Async RPC client: direct reply-to, many calls in flight on one channel, typed errors.

    async with Client("amqp://guest:guest@127.0.0.1:5672/") as c:
        reply = await c.call("film", "fetch", {"film_id": 1}, timeout=5)
        reply.data, reply.out, reply.meta

A failed call raises the RequestError subclass of the reply's code (ValidationFailed, Conflict,
DbUnavailable, ...); no reply in time raises CallTimeout; no queue bound to the routing key raises
NoRoute.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from pamqp.commands import Basic

from beds.errors import CallTimeout, NoRoute, error_from_reply
from beds.protocol import decode_reply, encode_request
from beds.tracecontext import inject_context

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


@dataclass
class Reply:
    data: list[dict[str, Any]]
    out: dict[str, Any] | None = None
    sets: list[list[dict[str, Any]]] | None = None
    next_cursor: str | None = None   # pass as `cursor=` for the next page (cursor engines)
    meta: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class Client:
    def __init__(self, url: str = "amqp://guest:guest@127.0.0.1:5672/", exchange: str = "beds",
                 default_timeout: float = 10.0, user_id: str | None = None) -> None:
        """`user_id`: sent on every request as the AMQP user_id property; RabbitMQ rejects it
        unless it is the user this connection logged in as, so nodes can trust it."""
        self.url = url
        self.user_id = user_id
        self.exchange = exchange
        self.default_timeout = default_timeout
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._conn = await aiormq.connect(self.url)
        self._channel = await self._conn.channel(publisher_confirms=True)
        # Direct reply-to: consume the pseudo-queue, no ack, before the first publish.
        await self._channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True)

    async def _reopen(self) -> None:
        """A channel error closed our channel: open a fresh one for the next call."""
        if self._conn is not None and not self._conn.is_closed:
            self._channel = await self._conn.channel(publisher_confirms=True)
            await self._channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True)

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        if self._conn is not None and not self._conn.is_closed:
            await self._conn.close()

    async def _on_reply(self, message: DeliveredMessage) -> None:
        future = self._pending.pop(message.header.properties.correlation_id or "", None)
        if future is not None and not future.done():
            try:
                future.set_result(decode_reply(message.body))
            except Exception as exc:   # a reply that is not JSON is the caller's problem to see
                future.set_exception(exc)

    async def call(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                   limit: int | None = None, offset: int | None = None,
                   cursor: str | None = None, timeout: float | None = None,
                   message_id: str | None = None) -> Reply:
        """One request; returns its Reply or raises the reply's typed error."""
        reply = await self.call_raw(template, op, params, limit=limit, offset=offset,
                                    cursor=cursor, timeout=timeout, message_id=message_id)
        if not reply.get("ok"):
            error = error_from_reply(reply.get("error") or {})
            error.details.setdefault("reply", reply)
            raise error
        return Reply(data=reply.get("data", []), out=reply.get("out"), sets=reply.get("sets"),
                     next_cursor=reply.get("next_cursor"), meta=reply.get("meta", {}), raw=reply)

    async def call_raw(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                       limit: int | None = None, offset: int | None = None,
                       cursor: str | None = None, timeout: float | None = None,
                       message_id: str | None = None) -> dict[str, Any]:
        """One request; returns the reply body as a dict, whether ok or not."""
        if self._channel is None:
            raise RuntimeError("Client is not connected: use `async with Client(...)`")
        seconds = self.default_timeout if timeout is None else timeout
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        body = encode_request(template, op, params, limit, offset, cursor)
        headers: dict[str, Any] = {"x-deadline": int((time.time() + seconds) * 1000)}
        inject_context(headers)   # the caller's trace continues on the node (beds[otel])
        try:
            try:
                await self._channel.basic_publish(
                    body, exchange=self.exchange, routing_key=f"{template}.{op}",
                    mandatory=True,
                    properties=Basic.Properties(
                        reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id,
                        content_type="application/json", delivery_mode=2,
                        message_id=message_id or correlation_id,
                        # A request nobody took in time is dropped, not run after we gave up;
                        # one taken late is answered DEADLINE_EXCEEDED without touching the
                        # database, and the statement gets only the time that is left.
                        expiration=str(max(1, int(seconds * 1000))),
                        headers=headers,
                        user_id=self.user_id,
                    ),
                )
            except aiormq.exceptions.PublishError:
                raise NoRoute(f"no queue is bound to {template}.{op} on exchange "
                              f"{self.exchange!r}: is a node serving that op running?") from None
            except aiormq.exceptions.ChannelNotFoundEntity:
                await self._reopen()
                raise NoRoute(f"exchange {self.exchange!r} does not exist: no BEDS node has "
                              "declared it on this RabbitMQ (vhost) yet") from None
            try:
                return await asyncio.wait_for(future, seconds)
            except TimeoutError:
                raise CallTimeout(f"no reply to {template}.{op} within {seconds}s; the request "
                                  "may still have run") from None
        finally:
            self._pending.pop(correlation_id, None)
