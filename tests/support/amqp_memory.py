"""An in-memory stand-in for the part of `beds.amqp.Channel` a consumer uses, and a link that
hands it out, for unit tests of the consumer's settle decisions and for bench.consumer_micro.

`MemoryChannel` records every ack, reject, nack and publish in order (`settled`, `published`);
`fail_publish` makes the next publishes fail their confirm with that exception, `close(reason)`
makes every later call raise ChannelClosed as a real closed channel does. Nothing here imports
beds.amqp at module level: bench.consumer_micro loads this file into trees older than it.
"""

from __future__ import annotations

import asyncio
from typing import Any


class MemoryChannel:
    """basic_ack / basic_reject / basic_nack / basic_publish / close, recorded in memory."""

    def __init__(self, number: int = 1, confirms: bool = True) -> None:
        self.number = number
        self.confirms = confirms
        self.settled: list[tuple[str, int, bool]] = []   # (method, delivery tag, flag)
        self.published: list[dict[str, Any]] = []
        self.fail_publish: BaseException | None = None
        self.on_cancel: set[Any] = set()
        self.flow_active = True
        self._closed_by: BaseException | None = None
        self.closing: asyncio.Future[None] | None = None

    @property
    def is_closed(self) -> bool:
        return self._closed_by is not None

    def close_with(self, reason: BaseException) -> None:
        """The channel died (as if RabbitMQ or the connection closed it)."""
        self._closed_by = reason

    async def close(self) -> None:
        from beds.amqp import ChannelClosed
        if self._closed_by is None:
            self._closed_by = ChannelClosed(200, "closed")

    def _check_open(self) -> None:
        if self._closed_by is not None:
            from beds.amqp import ChannelClosed
            raise ChannelClosed(0, f"channel {self.number} is closed: {self._closed_by}")

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._check_open()
        self.settled.append(("ack", delivery_tag, multiple))

    def basic_reject(self, delivery_tag: int, requeue: bool) -> None:
        self._check_open()
        self.settled.append(("reject", delivery_tag, requeue))

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self._check_open()
        self.settled.append(("nack", delivery_tag, requeue))

    def basic_publish(self, body: bytes, *, exchange: str = "", routing_key: str = "",
                      properties: Any = None, mandatory: bool = False
                      ) -> asyncio.Future[None] | None:
        self._check_open()
        self.published.append({"body": body, "exchange": exchange, "routing_key": routing_key,
                               "properties": properties, "mandatory": mandatory})
        if not self.confirms:
            return None
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_publish is not None:
            confirmed.set_exception(self.fail_publish)
        else:
            confirmed.set_result(None)
        return confirmed


class MemoryLink:
    """Stands in for beds.brokers.link.AmqpLink where only `channel()` is used (the reply
    publisher): every channel it opens is `channel`."""

    def __init__(self, channel: MemoryChannel) -> None:
        self.channel_made = channel
        self.name = "memory"
        self.user = "guest"

    async def channel(self, publisher_confirms: bool = False) -> MemoryChannel:
        return self.channel_made


def delivery(channel: MemoryChannel, body: bytes, delivery_tag: int = 1, *,
             redelivered: bool = False, headers: dict[str, Any] | None = None,
             routing_key: str = "film.fetch", oversized_size: int | None = None,
             **properties: Any) -> Any:
    """A beds.amqp.Delivery on `channel`; `oversized_size`: one whose body the connection did
    not keep (over max_body_bytes), announced at that size."""
    from beds.amqp import Delivery, Properties
    props = Properties(headers=headers, **properties)
    if oversized_size is not None:
        return Delivery(channel, "ctag", delivery_tag, redelivered, "beds",  # type: ignore[arg-type]
                        routing_key, props, b"", oversized_size, True)
    return Delivery(channel, "ctag", delivery_tag, redelivered, "beds",  # type: ignore[arg-type]
                    routing_key, props, body, len(body), False)
