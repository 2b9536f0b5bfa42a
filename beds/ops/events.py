"""Node events (started, stopping, broker crashed/restarted, scaled, drained, reloaded).

Layer: operations. A node publishes each event on the control exchange with routing key
`event.<node>.<event>`; the admin's adminBrokerOut relays them to the events exchange for
subscribers and keeps the recent ones for `beds status` and the dashboard. Emitting never
blocks or fails the caller: an event that cannot be published is logged and dropped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from beds.brokers.link import AMQP_ERRORS, ReplyPublisher
from beds.log import get_logger

log = get_logger("beds.events")
EVENT_PREFIX = "event."


class Events:
    def __init__(self, publisher: ReplyPublisher, exchange: str, node: str, role: str) -> None:
        self._publisher = publisher
        self._exchange = exchange
        self._node = node
        self._role = role
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event: str, **fields: Any) -> None:
        body = msgspec.json.encode({"event": event, "node": self._node, "role": self._role,
                                    "at": round(time.time(), 3), **fields})
        task = asyncio.ensure_future(self._send(f"{EVENT_PREFIX}{self._node}.{event}", body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, key: str, body: bytes) -> None:
        try:
            await self._publisher.publish_to(self._exchange, key, body, persistent=True)
        except AMQP_ERRORS as exc:
            log.info("event.dropped", key=key, error=f"{type(exc).__name__}: {exc}")

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (a little) for events still being published, e.g. `stopping` at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
