"""Log shipping: a node's warning-and-above lines and its audit events, to the logs exchange.

Layer: operations. `beds.log.ship_tap` hands every line at a shipped level to `_route`, which
copies it (as JSON bytes) into the bounded buffer of one registered LogShipper; the shipper's own
task publishes the buffer in batches, one message per line, with routing key `<level>.<node>`
(`audit.<node>` for audit events). The admin role's LogStore and SyslogForwarder consume them.

Logging never waits for RabbitMQ and never fails because of it: while RabbitMQ is away, or
refuses lines (the log store's queue is full), the buffer keeps the newest lines, drops the
oldest, counts the drops, and ships a `logs.dropped` line once it can publish again. Nothing the
shipper's task logs is shipped (`_quiet`), so its own trouble cannot feed itself in a loop.

Several nodes may run in one process (tests): each line goes to exactly one shipper, the one
of the node named in the line (its `node` field, or the node whose task logged it, see
`bind_node`), else the first registered; the line is tagged with that node.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from beds.brokers.link import ReplyPublisher, sleep_unless
from beds.log import get_logger, set_tap

log = get_logger("beds.logship")
LEVELS = ("debug", "info", "warning", "error", "critical")
CAPACITY = 10_000          # lines kept while RabbitMQ is away; beyond it the oldest are dropped
BATCH = 100                # publishes in flight at once
PUBLISH_TIMEOUT = 5.0      # a batch not confirmed by then is put back and retried
MAX_LINE = 32 * 1024       # bytes of one shipped line; longer values are cut
MAX_VALUE = 4096           # characters kept of a long string value when a line is cut
FINAL_FLUSH = 2.0          # seconds a stopping node spends on what is still buffered

_node: ContextVar[str | None] = ContextVar("beds_log_node", default=None)
_quiet: ContextVar[bool] = ContextVar("beds_logship_quiet", default=False)
_shippers: list[LogShipper] = []
_encoder = msgspec.json.Encoder(enc_hook=str)


def bind_node(name: str) -> None:
    """Lines logged from now on in this task, and in the tasks it starts, belong to node `name`
    (when they do not name a node themselves). Only the shipper's routing reads it."""
    _node.set(name)


def _route(logger: Any, event_dict: dict[str, Any]) -> None:
    if _quiet.get() or not _shippers:
        return
    node = event_dict.get("node")
    if not isinstance(node, str) or not node:
        node = _node.get()
    shipper = next((s for s in _shippers if s.node == node), _shippers[0])
    shipper.take(logger, event_dict, node or shipper.node)


def _retap() -> None:
    if not _shippers:
        set_tap(frozenset(), None)
        return
    lowest = min(LEVELS.index(s.ship_level) for s in _shippers)
    set_tap(frozenset(LEVELS[lowest:]), _route)


def utc_iso(epoch: float) -> str:
    """RFC 3339 UTC with microseconds: what `at` holds in a shipped line."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_line(line: dict[str, Any]) -> bytes:
    """A line as JSON, at most MAX_LINE bytes: long string values are cut first; a line still
    too long keeps only its identifying fields."""
    body = _encoder.encode(line)
    if len(body) <= MAX_LINE:
        return body
    cut = {k: (f"{v[:MAX_VALUE]}... [{len(v) - MAX_VALUE} characters cut]"
               if isinstance(v, str) and len(v) > MAX_VALUE else v) for k, v in line.items()}
    body = _encoder.encode(cut)
    if len(body) <= MAX_LINE:
        return body
    keep = ("at", "node", "role", "host", "pid", "level", "event", "logger", "correlation_id")
    return _encoder.encode({**{k: line[k] for k in keep if k in line},
                            "truncated": True, "bytes": len(body)})


class LogShipper:
    """One node's log shipping: a bounded buffer and the task that publishes it."""

    def __init__(self, publisher: ReplyPublisher, exchange: str, node: str, role: str,
                 ship_level: str, capacity: int = CAPACITY) -> None:
        self.publisher = publisher
        self.exchange = exchange
        self.node = node
        self.role = role
        self.ship_level = ship_level
        self.capacity = capacity
        self.shipped = 0
        self.dropped = 0          # lines lost to a full buffer, since start
        self._reported = 0        # drops already announced by a `logs.dropped` line
        self._min = LEVELS.index(ship_level)
        self._buffer: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()
        self._pid = os.getpid()
        self._host = socket.gethostname()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- intake (any task, never blocks) ---------------------------------------------------

    def register(self) -> None:
        """Start taking lines (before `start`: they wait in the buffer)."""
        if self not in _shippers:
            _shippers.append(self)
            _retap()

    def unregister(self) -> None:
        if self in _shippers:
            _shippers.remove(self)
            _retap()

    def take(self, logger: Any, event_dict: dict[str, Any], node: str) -> None:
        level = event_dict.get("level")
        if level not in LEVELS or LEVELS.index(level) < self._min:
            return
        line = dict(event_dict)
        if line.get("exc_info"):
            line = dict(structlog.processors.format_exc_info(logger, "error", line))
        line.pop("exc_info", None)
        line.pop("timestamp", None)   # `at` below: the same instant, always UTC
        line.update(at=utc_iso(time.time()), node=node, host=self._host, pid=self._pid)
        line.setdefault("role", self.role)
        name = getattr(logger, "name", None)
        if isinstance(name, str) and name and "logger" not in line:
            line["logger"] = name
        self._push(f"{level}.{node}", encode_line(line))

    def audit(self, entry: dict[str, Any]) -> None:
        """The consumer's hook: one audit event per answered write/bulk request."""
        node = entry.get("node") or self.node
        line = {"at": utc_iso(time.time()), "level": "audit", "event": "audit",
                "role": self.role, "host": self._host, "pid": self._pid, **entry, "node": node}
        self._push(f"audit.{node}", encode_line(line))

    def _push(self, key: str, body: bytes) -> None:
        buffer = self._buffer
        while len(buffer) >= self.capacity:
            buffer.popleft()
            self.dropped += 1
        buffer.append((key, body))
        if self._loop is None:
            return
        if threading.get_ident() == self._thread:
            self._wake.set()
        else:   # a line logged from a worker thread
            with contextlib.suppress(RuntimeError):   # the loop closed: the buffer is all there is
                self._loop.call_soon_threadsafe(self._wake.set)

    # -- the publishing task ---------------------------------------------------------------

    def start(self) -> None:
        self.register()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._task = asyncio.create_task(self._run(), name=f"logship:{self.node}")

    async def stop(self) -> None:
        """Ship what is buffered (for at most FINAL_FLUSH seconds), then stop taking lines."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, FINAL_FLUSH)
            except TimeoutError:
                pass   # RabbitMQ is away: what is left is lost with the process
            except Exception as exc:   # the task's failure must not stop the node's shutdown
                log.info("logs.ship_failed", error=f"{type(exc).__name__}: {exc}")
        self.unregister()
        if self._buffer:
            log.info("logs.unshipped", lines=len(self._buffer), dropped=self.dropped)

    async def _run(self) -> None:
        _quiet.set(True)   # this task's own lines are never shipped: no feedback loop
        delay = 0.2
        failing = False
        while True:
            if not self._buffer:
                if self._stop.is_set():
                    return
                self._wake.clear()
                if not self._buffer:
                    await self._wake.wait()
                continue
            if await self._publish_batch():
                if failing:
                    log.info("logs.shipping", buffered=len(self._buffer), dropped=self.dropped)
                failing, delay = False, 0.2
                self._announce_drops()
                continue
            if self._stop.is_set():
                return
            if not failing:
                log.info("logs.unpublished", buffered=len(self._buffer), retry_seconds=delay)
                failing = True
            await sleep_unless(self._stop, delay)
            delay = min(delay * 2, 5.0)

    async def _publish_batch(self) -> bool:
        """Publish up to BATCH lines; those not confirmed go back to the front. True if all
        were confirmed."""
        batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
        sends = [self.publisher.publish_to(self.exchange, key, body, persistent=True)
                 for key, body in batch]
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*sends, return_exceptions=True), PUBLISH_TIMEOUT)
        except TimeoutError:   # e.g. a memory alarm blocks publishing: keep them all
            results = [TimeoutError()] * len(batch)
        failed = [item for item, result in zip(batch, results, strict=True)
                  if isinstance(result, BaseException)]
        self.shipped += len(batch) - len(failed)
        # Put back oldest-first ahead of newer lines, within the bound: what does not fit is the
        # oldest there is, so it is what a full buffer drops.
        for item in reversed(failed):
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                continue
            self._buffer.appendleft(item)
        return not failed

    def _announce_drops(self) -> None:
        lost = self.dropped - self._reported
        if lost <= 0:
            return
        self._reported = self.dropped
        line = {"at": utc_iso(time.time()), "level": "warning", "event": "logs.dropped",
                "node": self.node, "role": self.role, "host": self._host, "pid": self._pid,
                "dropped": lost,
                "dropped_total": self.dropped,
                "reason": "RabbitMQ was unreachable or refused lines while the buffer was full"}
        self._push(f"warning.{self.node}", encode_line(line))
