"""adminBrokerOut: relays node events to the events exchange and remembers the recent ones.

Layer: operations (admin node). Nodes publish their events (started, stopping, broker_crashed,
broker_restarted, scaled, drained, resumed, reloaded, warehoused) on the control exchange with
key `event.<node>.<event>`; this service republishes each one on the events exchange with key
`<node>.<event>`, so subscribers bind one exchange whatever the cluster looks like, and keeps
the last ones for `beds status`. An event is acked only once the events exchange confirmed it.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any

import msgspec
from aiormq.abc import DeliveredMessage

from beds.admin.service import QueueService
from beds.brokers.link import AMQP_ERRORS
from beds.log import get_logger
from beds.ops.events import EVENT_PREFIX

log = get_logger("beds.admin.out")
KEEP = 200   # recent events kept for `beds status` and the dashboard
_LOG_KEYS = frozenset(("event", "event_name"))


class EventRelay(QueueService):
    prefetch = 64

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.exchange = self.ctx.settings.ops.control_exchange
        self.keys = (f"{EVENT_PREFIX}#",)
        self.recent: collections.deque[dict[str, Any]] = self.ctx.shared.setdefault(
            "events", collections.deque(maxlen=KEEP))

    def queue_arguments(self) -> dict[str, Any]:
        # Events wait here while no admin runs, but not forever and not without bound.
        return {"x-queue-type": "classic", "x-max-length": 10_000, "x-overflow": "drop-head",
                "x-message-ttl": 24 * 3600 * 1000}

    async def handle(self, message: DeliveredMessage) -> None:
        channel = message.channel
        tag = self.tag(message)
        key = getattr(message.delivery, "routing_key", "") or ""
        try:
            event = msgspec.json.decode(message.body)
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as exc:
            log.warning("event.malformed", routing_key=key, error=str(exc))
            with contextlib.suppress(*AMQP_ERRORS):
                await channel.basic_reject(tag, requeue=False)
            return
        try:
            await self.ctx.publisher.publish_to(self.ctx.settings.ops.events_exchange,
                                                key.removeprefix(EVENT_PREFIX), message.body,
                                                persistent=True)
        except AMQP_ERRORS as exc:
            log.info("event.relay_failed", routing_key=key, error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(*AMQP_ERRORS):
                await channel.basic_reject(tag, requeue=True)
            return
        self.recent.append(event)
        # The event's own keys must not clash with the log call's: an event carrying
        # `event_name` would raise TypeError here and stay unsettled, and enough of them stall
        # the relay (its prefetch fills with messages it never settles).
        log.info("event", **{k: v for k, v in event.items() if k not in _LOG_KEYS},
                 event_name=event.get("event"))
        with contextlib.suppress(*AMQP_ERRORS):   # a lost ack (stopping): relayed again later
            await channel.basic_ack(tag)
