"""The common shape of the admin services: a queue of their own bound to an ops exchange,
consumed until the node stops.

Layer: operations (admin node). Subclasses say which queue arguments and bindings they need and
handle each delivery; the base class owns the channel's life, so every service reacts the same
way to a lost channel (raise ChannelLost: the supervisor restarts it) and to a stop (return).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiormq.abc import AbstractChannel, DeliveredMessage

from beds.brokers.consumer import ChannelLost
from beds.brokers.link import AMQP_ERRORS, ConsumerCancelled, close_channel, serve_until
from beds.config import BrokerSettings
from beds.ops.context import NodeContext


class QueueService:
    exchange: str = ""
    keys: tuple[str, ...] = ()
    no_ack = False
    prefetch = 16

    def __init__(self, ctx: NodeContext, broker: BrokerSettings, instance: int) -> None:
        self.ctx = ctx
        self.broker = broker
        self.instance = instance
        self.name = f"{broker.name}#{instance}"
        self.consuming = asyncio.Event()
        self.inflight = 0
        self.channel: AbstractChannel | None = None

    def queue_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": "classic"}

    async def run(self, stop: asyncio.Event) -> None:
        channel = self.channel = await self.ctx.link.channel()
        try:
            await channel.basic_qos(prefetch_count=self.prefetch)
            await channel.queue_declare(self.broker.queue, durable=True,
                                        arguments=self.queue_arguments())
            for key in self.keys:
                await channel.queue_bind(self.broker.queue, self.exchange, routing_key=key)
            # Before consuming: a delivery may arrive the moment basic.consume is answered.
            await self.started()
            await channel.basic_consume(self.broker.queue, self._deliver, no_ack=self.no_ack)
        except AMQP_ERRORS as exc:
            await self.stopped()
            raise ChannelLost(f"{self.name}: could not consume {self.broker.queue}: {exc}") from exc
        try:
            stopped = await serve_until(stop, channel, self.consuming)
        except ConsumerCancelled as exc:
            await close_channel(channel)   # unacked deliveries go back to the queue
            raise ChannelLost(f"{self.name}: {exc}") from exc
        finally:
            await self.stopped()
        if not stopped:
            raise ChannelLost(f"{self.name}: channel closed")
        if not channel.is_closed:
            await channel.close()   # unacked deliveries go back to the queue

    async def _deliver(self, message: DeliveredMessage) -> None:
        self.inflight += 1
        try:
            await self.handle(message)
        finally:
            self.inflight -= 1

    async def handle(self, message: DeliveredMessage) -> None:
        raise NotImplementedError

    async def started(self) -> None:
        """Called once the queue is declared, before consuming (e.g. open a side channel)."""

    async def stopped(self) -> None:
        """Called when the service stops or loses its channel."""

    @staticmethod
    async def settle(message: DeliveredMessage) -> None:
        """Ack a handled delivery; on a channel that died meanwhile there is nothing to ack."""
        with contextlib.suppress(*AMQP_ERRORS):
            await message.channel.basic_ack(QueueService.tag(message))

    @staticmethod
    def tag(message: DeliveredMessage) -> int:
        return int(getattr(message.delivery, "delivery_tag", 0) or 0)
