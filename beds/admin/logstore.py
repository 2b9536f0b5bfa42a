"""adminLogsBroker: every node's shipped log lines and audit events -> the DBA-owned log store.

Layer: operations (admin node). Consumes its own queue, bound `#` on the logs exchange, and appends
the lines in batches through a template op of the admin's own (`[admin] log_template` /
`log_op`, templates/admin/logs.toml), called straight through the node's dispatcher: the log
store is reached like any other data, through a procedure the DBA wrote and granted.

A line is acked only after the database confirmed the batch holding it. While the database is
unavailable (or the template is missing until a reload), the batch is kept and retried with a
capped backoff: nothing is acked, the prefetch window stops intake, and lines wait in the
queue. A line that is not a log line is dead-lettered at once with a warning that says why; a
batch the database refuses is split so that only the refused line is dead-lettered.

The queue is a quorum queue (replicated, survives a broker restart) bounded by x-max-length(-bytes)
with overflow `reject-publish`: when it is full RabbitMQ refuses new lines to the publishing node
(a negative confirm) instead of silently dropping the oldest stored ones (`drop-head`); the node
keeps the refused lines in its own bounded buffer and counts what it has to drop, and says so in
a `logs.dropped` line once it can publish again (beds.ops.logship). Loss, if it comes to that,
is visible and counted at the source. A line may be stored twice (a batch whose ack was lost
with its channel is delivered again): the store is at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiormq.abc import AbstractChannel, DeliveredMessage

from beds.admin.service import QueueService
from beds.brokers.link import AMQP_ERRORS, sleep_unless
from beds.errors import RequestError
from beds.log import get_logger
from beds.protocol import Request

log = get_logger("beds.admin.logs")
MAX_QUEUED = 100_000               # lines waiting in the queue, at most ...
MAX_QUEUED_BYTES = 256 * 1024**2   # ... and bytes
MAX_LINE_BYTES = 256 * 1024        # a bigger message is not a log line of ours
MAX_BACKOFF = 10.0
# The store cannot take lines right now, but will (database back, template reloaded): hold them.
HOLD = frozenset({"DB_UNAVAILABLE", "DEADLINE_EXCEEDED", "TEMPLATE_NOT_FOUND", "OP_NOT_FOUND",
                  "FORBIDDEN", "WRONG_BROKER"})
_WIDTHS = {"node": 200, "role": 64, "level": 16, "event": 200, "logger": 200,
           "correlation_id": 200, "caller": 200, "template": 64, "op": 64}


class MalformedLine(ValueError):
    """A message on the logs exchange that is not a log line."""


def entry_of(body: bytes) -> dict[str, Any]:
    """One shipped line -> the entry the append op takes. Raises MalformedLine saying why."""
    if len(body) > MAX_LINE_BYTES:
        raise MalformedLine(f"{len(body)} bytes, more than {MAX_LINE_BYTES}")
    try:
        line = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedLine(f"not JSON ({exc})") from None
    if not isinstance(line, dict):
        raise MalformedLine(f"expected a JSON object, got {type(line).__name__}")
    for key in ("node", "level", "event", "at"):
        if not isinstance(line.get(key), str) or not line[key]:
            raise MalformedLine(f"{key}: expected a non-empty string, got {line.get(key)!r:.80}")
    entry: dict[str, Any] = {"logged_at": _utc_text(line["at"]), "line": line}
    for column, width in _WIDTHS.items():
        value = line.get("user" if column == "caller" else column)
        entry[column] = None if value is None else str(value)[:width]
    return entry


def _utc_text(at: str) -> str:
    """RFC 3339 -> 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, what both engines' columns take."""
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedLine(f"at: expected an RFC 3339 timestamp, got {at!r:.80}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


class LogStore(QueueService):
    """The admin-logs service: a Worker (see brokers.pool)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        settings = self.ctx.settings
        self.exchange = settings.ops.logs_exchange
        self.keys = ("#",)
        self.batch = settings.admin.log_batch
        self.flush_seconds = settings.admin.log_flush_seconds
        self.prefetch = max(2 * self.batch, 16)   # one batch in the database, the next arriving
        self.template = settings.admin.log_template
        self.op = settings.admin.log_op
        # Internal calls run as this node's RabbitMQ account: what an `allow` list would name.
        self._caller = urlsplit(settings.amqp.url).username or None
        self.stored = 0
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._stop = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.held: str | None = None   # the error code the store is held on (logged once)

    def queue_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": "quorum", "x-max-length": MAX_QUEUED,
                "x-max-length-bytes": MAX_QUEUED_BYTES, "x-overflow": "reject-publish",
                "x-dead-letter-exchange": self.ctx.settings.amqp.dlx,
                "x-dead-letter-strategy": "at-least-once"}

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        await super().run(stop)

    async def started(self) -> None:
        # Runs before consuming starts; the flush loop waits for deliveries.
        assert self.channel is not None
        self._flusher = asyncio.create_task(self._flush_loop(self.channel),
                                            name=f"logstore:{self.name}")

    async def stopped(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is None:
            return
        if self._stop.is_set() and self.channel is not None and not self.channel.is_closed:
            # A clean stop: store what is in hand (the flusher sees the stop and flushes once).
            self._full.set()
            self._arrived.set()
            with contextlib.suppress(Exception):   # a timeout or a failed flush: unacked
                await asyncio.wait_for(asyncio.shield(flusher), self.flush_seconds + 5.0)
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await flusher
        # Whatever is still pending is unacked: RabbitMQ delivers it again to the next consumer.
        self._pending = []
        self._arrived.clear()
        self._full.clear()

    async def handle(self, message: DeliveredMessage) -> None:
        tag = self.tag(message)
        try:
            entry = entry_of(message.body)
        except MalformedLine as exc:
            log.warning("logs.malformed", reason=str(exc), bytes=len(message.body),
                        routing_key=getattr(message.delivery, "routing_key", None),
                        action="dead-lettered")
            with contextlib.suppress(*AMQP_ERRORS):
                await message.channel.basic_reject(tag, requeue=False)
            return
        self._pending.append((tag, entry))
        self._arrived.set()
        if len(self._pending) >= self.batch:
            self._full.set()

    # -- batches -----------------------------------------------------------------------------

    async def _flush_loop(self, channel: AbstractChannel) -> None:
        while True:
            await self._arrived.wait()
            if not self._stop.is_set():
                with contextlib.suppress(TimeoutError):   # a part batch goes after flush_seconds
                    await asyncio.wait_for(self._full.wait(), self.flush_seconds)
            while self._pending:
                batch, self._pending = self._pending[:self.batch], self._pending[self.batch:]
                if not await self._store(channel, batch):
                    return   # stopping while the store is held: the batch stays unacked
            self._full.clear()
            self._arrived.clear()
            if self._stop.is_set():
                return

    async def _store(self, channel: AbstractChannel, batch: list[tuple[int, dict[str, Any]]],
                     ) -> bool:
        """Append `batch` and settle its deliveries; False if it is still held at a stop."""
        delay = 0.2
        while True:
            try:
                await self._append([entry for _, entry in batch])
            except RequestError as exc:
                if exc.code in HOLD:
                    if self.held != exc.code:
                        self.held = exc.code
                        log.warning("logs.store_held", code=exc.code, error=exc.message,
                                    lines=len(batch), retry="with backoff until it succeeds")
                    await sleep_unless(self._stop, delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                    if self._stop.is_set():
                        return False
                    continue
                if len(batch) > 1:   # the database refuses one of them: find it, keep the rest
                    for item in batch:
                        if not await self._store(channel, [item]):
                            return False
                    return True
                tag, entry = batch[0]
                log.warning("logs.refused", code=exc.code, error=exc.message,
                            node=entry["node"], event=entry["event"], action="dead-lettered")
                await self._settle(channel, [tag], ack=False)
                return True
            if self.held is not None:
                log.info("logs.store_resumed", after=self.held)
                self.held = None
            self.stored += len(batch)
            await self._settle(channel, [tag for tag, _ in batch], ack=True)
            return True

    async def _append(self, entries: list[dict[str, Any]]) -> None:
        dispatcher = self.ctx.node.dispatcher   # replaced on reload: read it per use
        request = Request(self.template, self.op, {"lines": entries})
        await dispatcher.dispatch(request, user_id=self._caller)

    @staticmethod
    async def _settle(channel: AbstractChannel, tags: list[int], ack: bool) -> None:
        try:
            for tag in tags:
                if ack:
                    await channel.basic_ack(tag)
                else:
                    await channel.basic_reject(tag, requeue=False)
        except AMQP_ERRORS as exc:
            # The channel died: RabbitMQ delivers these again (stored twice at worst).
            log.info("logs.ack_lost", lines=len(tags), error=f"{type(exc).__name__}: {exc}")
