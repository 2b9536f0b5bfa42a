"""One AMQP connection, re-opened on demand with capped, jittered backoff; and the reply
publisher that uses its own connection.

Layer: infrastructure. Uses aiormq (the protocol layer under aio-pika) directly: on the per-message
path aio-pika's message objects cost more than the rest of the work (see FIELD-NOTES / bench).
Consuming and publishing use separate connections, so a broker memory alarm that blocks
publishers pauses replies without wedging the connection deliveries arrive on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection
from pamqp.commands import Basic

from beds.log import get_logger

log = get_logger("beds.amqp")


class LinkStopped(Exception):
    """The node was asked to stop while a connection was being (re)established."""


AMQP_ERRORS = (aiormq.AMQPError, ConnectionError, OSError, TimeoutError, LinkStopped,
               aiormq.exceptions.ChannelInvalidStateError)
"""What a dead or refusing broker connection raises through aiormq. Not any RuntimeError: a bug
must surface as one, not as "disconnected" (aiormq's own RuntimeError for a connection that
closed under `channel()` is turned into ConnectionError in `AmqpLink.channel`)."""


def amqp_user(url: str) -> str:
    """The user a connection to `url` authenticates as (aiormq's default: guest)."""
    return unquote(urlsplit(url).username or "guest")


def with_query(url: str, **params: Any) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in (parts.query, urlencode(params)) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class AmqpLink:
    """A named connection that comes back after the broker closes it."""

    def __init__(self, url: str, name: str, heartbeat: int, max_backoff: float,
                 stop: asyncio.Event | None = None) -> None:
        self._url = with_query(url, heartbeat=heartbeat, name=name)
        self.name = name
        self.user = amqp_user(url)   # what RabbitMQ knows this connection as
        self._max_backoff = max_backoff
        self._stop = stop or asyncio.Event()
        self._conn: AbstractConnection | None = None
        self._lock = asyncio.Lock()
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed

    async def connection(self) -> AbstractConnection:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed:
                return self._conn
            delay = 0.1
            failures = 0
            while True:
                try:
                    self._conn = await aiormq.connect(self._url)
                except AMQP_ERRORS as exc:
                    failures += 1
                    if failures in (1, 10) or failures % 100 == 0:
                        log.warning("amqp.connect_failed", link=self.name, attempt=failures,
                                    error=f"{type(exc).__name__}: {exc}")
                    if self._stop.is_set():
                        raise LinkStopped(f"{self.name}: stopped while connecting") from exc
                    await sleep_unless(self._stop, delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                    delay = min(delay * 2, self._max_backoff)
                    continue
                self.connects += 1
                if self.connects > 1 or failures:
                    log.info("amqp.connected", link=self.name, connects=self.connects,
                             failed_attempts=failures)
                return self._conn

    async def channel(self, publisher_confirms: bool = False) -> AbstractChannel:
        conn = await self.connection()
        try:
            return await conn.channel(publisher_confirms=publisher_confirms)
        except RuntimeError as exc:
            if conn.is_closed:   # aiormq words "closed under us" as a bare RuntimeError
                raise ConnectionError(f"{self.name}: connection closed: {exc}") from exc
            raise

    async def queue_counts(self, queue: str) -> tuple[int, int] | None:
        """(consumers, messages) of `queue` as RabbitMQ counts them; None if it does not exist.
        A passive declare on a channel of its own (a missing queue closes the channel)."""
        channel = await self.channel()
        try:
            ok = await channel.queue_declare(queue, passive=True)
            return int(ok.consumer_count or 0), int(ok.message_count or 0)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return None
        finally:
            if not channel.is_closed:
                await channel.close()

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed:
            await self._conn.close()


DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class ReplyPublisher:
    """Publishes on its own connection, with publisher confirms: replies on one channel,
    everything else (events, snapshots, log batches, command answers to the admin) on another,
    so a channel error caused by one of those never fails a reply in flight."""

    def __init__(self, link: AmqpLink) -> None:
        self._link = link
        self._channels: dict[str, AbstractChannel] = {}
        self._lock = asyncio.Lock()

    async def _get_channel(self, purpose: str) -> AbstractChannel:
        channel = self._channels.get(purpose)
        if channel is not None and not channel.is_closed:
            return channel
        async with self._lock:
            channel = self._channels.get(purpose)
            if channel is None or channel.is_closed:
                channel = self._channels[purpose] = await self._link.channel(
                    publisher_confirms=True)
            return channel

    async def publish(self, reply_to: str, body: bytes, correlation_id: str | None) -> None:
        channel = await self._get_channel("replies")
        # mandatory only for a named queue: RabbitMQ returns a mandatory publish to direct
        # reply-to even when it delivered it (FIELD-NOTES), so a caller gone from direct reply-to
        # loses its reply silently (at-most-once); a named queue that is gone raises PublishError.
        mandatory = not reply_to.startswith(DIRECT_REPLY_TO)
        await channel.basic_publish(
            body, exchange="", routing_key=reply_to, mandatory=mandatory,
            # aiormq matches a returned message to its publish by message_id, which must then be
            # unique (None: aiormq draws one); a correlation id need not be. Otherwise it is
            # given, so aiormq does not build a UUID per reply (measured ~1%).
            properties=Basic.Properties(content_type="application/json",
                                        correlation_id=correlation_id, delivery_mode=1,
                                        message_id=None if mandatory else correlation_id),
        )

    async def publish_to(self, exchange: str, routing_key: str, body: bytes,
                         correlation_id: str | None = None, persistent: bool = False) -> None:
        """Events, snapshots, log batches and commands: confirmed like replies."""
        channel = await self._get_channel("ops")
        await channel.basic_publish(
            body, exchange=exchange, routing_key=routing_key,
            properties=Basic.Properties(content_type="application/json",
                                        correlation_id=correlation_id,
                                        delivery_mode=2 if persistent else 1,
                                        message_id=correlation_id),
        )


async def serve_until(stop: asyncio.Event, channel: AbstractChannel,
                      consuming: asyncio.Event) -> bool:
    """Hold `consuming` set until `stop` is set or `channel` closes; True if asked to stop."""
    consuming.set()
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({stopping, channel.closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        consuming.clear()
    return stop.is_set()


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set: backoff must never delay a shutdown."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
