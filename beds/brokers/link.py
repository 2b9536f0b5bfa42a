"""One AMQP connection, re-opened on demand with capped, jittered backoff; and the reply
publisher that uses its own connection.

Layer: infrastructure. Uses beds.amqp, BEDS's own AMQP client built for CPU per message (general
clients' per-message objects cost more than the rest of the work: see FIELD-NOTES / bench).
Consuming and publishing use separate connections, so a broker memory alarm that blocks
publishers pauses replies without wedging the connection deliveries arrive on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from beds.amqp import AMQPError, Channel, Connection, NotFound, Properties, connect
from beds.log import get_logger

log = get_logger("beds.amqp")


class LinkStopped(Exception):
    """The node was asked to stop while a connection was being (re)established."""


class ConsumerCancelled(ConnectionError):
    """RabbitMQ cancelled a consumer (basic.cancel): the caller consumes again."""


AMQP_ERRORS = (AMQPError, ConnectionError, OSError, TimeoutError, LinkStopped)
"""What a dead or refusing broker connection, or a channel RabbitMQ closed, raises. Not any
RuntimeError: a bug must surface as one, not as "disconnected"."""


def amqp_user(url: str) -> str:
    """The user a connection to `url` authenticates as (guest when the URL names none)."""
    return unquote(urlsplit(url).username or "guest")


def where(url: str) -> str:
    """host:port/vhost of an AMQP URL: names an endpoint in a message without its password."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or '?'}:{port or 5672}{parts.path or '/'}"


def shuffled(urls: Sequence[str]) -> list[str]:
    """The endpoints in a random order: each node starts on its own RabbitMQ node."""
    order = list(urls)
    random.shuffle(order)   # spreading load, not crypto
    return order


CONNECT_SECONDS = 10.0
"""One endpoint's connect may take this long before the next is tried: a frozen RabbitMQ node
accepts the TCP connection and never answers the AMQP handshake."""


async def connect_first(urls: Sequence[str]) -> Connection:
    """A connection to the first endpoint that answers (a one-shot command, no retry); else the
    last endpoint's error, naming every endpoint tried."""
    errors = []
    for url in urls:
        try:
            return await connect(url, timeout=CONNECT_SECONDS)
        except AMQP_ERRORS as exc:
            errors.append(f"{where(url)}: {type(exc).__name__}: {exc}")
    raise ConnectionError(f"cannot connect to RabbitMQ ({'; '.join(errors)})")


class AmqpLink:
    """A named connection that comes back after the broker closes it.

    `urls`: one endpoint, or a cluster's. The link uses one at a time, in the order given (the
    node shuffles it, so nodes spread over the cluster); when its connection is lost it tries the
    next endpoint first (the lost one's node may be gone), and after a round in which no endpoint
    answered it backs off (capped, jittered) before the next round. `on_connect` runs on every
    new connection before it is used. `max_body_bytes`: a delivery with a bigger body arrives
    without it (`Delivery.oversized`): it is never assembled."""

    def __init__(self, urls: str | Sequence[str], name: str, heartbeat: int,
                 max_backoff: float, stop: asyncio.Event | None = None,
                 on_connect: Callable[[Connection], Awaitable[None]] | None = None,
                 max_body_bytes: int | None = None) -> None:
        endpoints = [urls] if isinstance(urls, str) else list(urls)
        if not endpoints:
            raise ValueError(f"{name}: no RabbitMQ endpoint")
        self._urls = endpoints
        self._heartbeat = heartbeat
        self._max_body_bytes = max_body_bytes
        self.name = name
        self.user = amqp_user(endpoints[0])   # what RabbitMQ knows this connection as
        self._max_backoff = max_backoff
        self._stop = stop or asyncio.Event()
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._at = 0                          # the endpoint in use, or tried next
        self._on_connect = on_connect
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed

    @property
    def endpoint(self) -> str:
        """host:port/vhost of the endpoint in use (or tried next)."""
        return where(self._urls[self._at])

    async def connection(self) -> Connection:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed:
                return self._conn
            if self._conn is not None:   # lost: its node may be gone, start with the next one
                self._conn = None
                self._at = (self._at + 1) % len(self._urls)
            delay = 0.1
            failures = 0
            while True:
                url = self._urls[self._at]
                try:
                    self._conn = await self._open(url)
                except AMQP_ERRORS as exc:
                    failures += 1
                    if failures in (1, 10) or failures % 100 == 0:
                        log.warning("amqp.connect_failed", link=self.name, attempt=failures,
                                    endpoint=where(url), error=f"{type(exc).__name__}: {exc}")
                    if self._stop.is_set():
                        raise LinkStopped(f"{self.name}: stopped while connecting") from exc
                    self._at = (self._at + 1) % len(self._urls)
                    if failures % len(self._urls):
                        continue   # the round is not over: try the next endpoint at once
                    await sleep_unless(self._stop, delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                    delay = min(delay * 2, self._max_backoff)
                    continue
                self.connects += 1
                if self.connects > 1 or failures:
                    log.info("amqp.connected", link=self.name, connects=self.connects,
                             endpoint=where(url), failed_attempts=failures)
                return self._conn

    async def _open(self, url: str) -> Connection:
        """Connect, then run the on_connect hook (the node declares its topology: the endpoint
        may be a broker that has never seen it); a hook that fails closes the connection."""
        conn = await connect(url, name=self.name, heartbeat=self._heartbeat,
                             max_body_bytes=self._max_body_bytes, timeout=CONNECT_SECONDS)
        if self._on_connect is not None:
            try:
                await self._on_connect(conn)
            except BaseException:
                with contextlib.suppress(*AMQP_ERRORS):
                    await asyncio.wait_for(conn.close(), CONNECT_SECONDS)
                raise
        return conn

    async def channel(self, publisher_confirms: bool = False) -> Channel:
        conn = await self.connection()
        return await conn.channel(publisher_confirms=publisher_confirms)

    async def queue_counts(self, queues: Iterable[str]) -> dict[str, tuple[int, int] | None]:
        """(consumers, messages) of each queue as RabbitMQ counts them; None for one that does
        not exist. Passive declares on one channel of their own, opened again only after a
        missing queue closed it."""
        counts: dict[str, tuple[int, int] | None] = {}
        channel: Channel | None = None
        try:
            for queue in dict.fromkeys(queues):
                if channel is None or channel.is_closed:
                    channel = await self.channel()
                try:
                    ok = await channel.queue_declare(queue, passive=True)
                except NotFound:
                    counts[queue] = None
                    continue
                counts[queue] = int(ok.consumer_count or 0), int(ok.message_count or 0)
        finally:
            if channel is not None and not channel.is_closed:
                await channel.close()
        return counts

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
        self._channels: dict[str, Channel] = {}
        self._lock = asyncio.Lock()

    async def _get_channel(self, purpose: str) -> Channel:
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
        # loses its reply silently (at-most-once); a named queue that is gone raises PublishReturned.
        mandatory = not reply_to.startswith(DIRECT_REPLY_TO)
        await confirmed(channel.basic_publish(
            body, exchange="", routing_key=reply_to, mandatory=mandatory,
            # A return is matched to the oldest pending mandatory publish with the same routing
            # key and correlation id: no unique message_id needed.
            properties=Properties(content_type="application/json",
                                  correlation_id=correlation_id, delivery_mode=1,
                                  message_id=correlation_id),
        ))

    async def publish_to(self, exchange: str, routing_key: str, body: bytes,
                         correlation_id: str | None = None, persistent: bool = False) -> None:
        """Events, snapshots, log batches and commands: confirmed like replies."""
        channel = await self._get_channel("ops")
        await confirmed(channel.basic_publish(
            body, exchange=exchange, routing_key=routing_key,
            properties=Properties(content_type="application/json",
                                  correlation_id=correlation_id,
                                  delivery_mode=2 if persistent else 1,
                                  message_id=correlation_id),
        ))


async def confirmed(confirmation: asyncio.Future[None] | None) -> None:
    """Wait for a publish's confirm (None: a channel without confirms, nothing to wait for)."""
    if confirmation is not None:
        await confirmation


async def serve_until(stop: asyncio.Event, channel: Channel,
                      consuming: asyncio.Event) -> bool:
    """Hold `consuming` set until `stop` is set, `channel` closes or RabbitMQ cancels the
    channel's consumers (their queue was deleted, or its quorum leader moved with a node that
    went away: the channel drops such a consumer and only tells its on_cancel callbacks).
    True if asked to stop."""
    consuming.set()
    cancelled = asyncio.Event()

    def on_cancel(consumer_tag: str) -> None:
        log.warning("amqp.consumer_cancelled", consumer_tag=consumer_tag)
        cancelled.set()

    channel.on_cancel.add(on_cancel)
    waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait()),
                                       asyncio.ensure_future(cancelled.wait())}
    try:
        await asyncio.wait({*waits, channel.closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        channel.on_cancel.discard(on_cancel)
        consuming.clear()
    if cancelled.is_set() and not stop.is_set():
        raise ConsumerCancelled("RabbitMQ cancelled the consumer")
    return stop.is_set()


async def close_channel(channel: Channel) -> None:
    """Close `channel` if it is open; a connection that died meanwhile closed it already."""
    if not channel.is_closed:
        with contextlib.suppress(*AMQP_ERRORS):
            await channel.close()


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set: backoff must never delay a shutdown."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
