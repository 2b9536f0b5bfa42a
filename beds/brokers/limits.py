"""What the broker's message size limit means for BEDS, checked once at start.

Layer: infrastructure. RabbitMQ refuses a publish above its `max_message_size` by closing the
channel (406). A reply that big would close the reply channel, so the node must never try: one
probe at start, on a throwaway channel, publishes an unroutable message of `max_reply_bytes` plus
the room the properties take. Refused -> the broker's limit (RabbitMQ names it in the error) caps
the replies instead, with a warning. Accepted -> fine for replies; whether the broker also takes
request bodies far above `max_message_bytes` (the node's connection skips those from their content
header, but RabbitMQ still takes them in) would need a bigger probe on every start, so
docs/security.md tells operators what to set instead.
"""

from __future__ import annotations

import asyncio
import re

from beds.amqp import PreconditionFailed
from beds.brokers.link import AMQP_ERRORS, AmqpLink, confirmed
from beds.log import get_logger

log = get_logger("beds.amqp")
HEADROOM = 65536            # bytes kept free for properties and headers next to a reply body
PROBE_SECONDS = 10.0        # a broker in a memory alarm blocks publishers: do not wait for it
_LIMIT = re.compile(r"max size (\d+)")


async def broker_limit(link: AmqpLink, probe_bytes: int) -> int | None:
    """The broker's max_message_size if a body of `probe_bytes` is above it, else None."""
    channel = await link.channel(publisher_confirms=True)
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            # The default exchange with an empty routing key routes nowhere: the body is dropped.
            await confirmed(channel.basic_publish(b"\0" * probe_bytes, exchange="",
                                                  routing_key=""))
    except PreconditionFailed as exc:
        found = _LIMIT.search(str(exc))
        return int(found.group(1)) if found else probe_bytes - 1
    finally:
        if not channel.is_closed:
            await channel.close()
    return None


async def effective_reply_limit(link: AmqpLink, max_reply_bytes: int,
                                max_message_bytes: int) -> int:
    """`max_reply_bytes`, or less when the broker would refuse replies that big."""
    try:
        limit = await broker_limit(link, max_reply_bytes + HEADROOM)
    except (*AMQP_ERRORS, TimeoutError) as exc:
        log.warning("amqp.limit_unknown", error=f"{type(exc).__name__}: {exc}",
                    hint="could not check RabbitMQ's max_message_size; replies keep the "
                         "configured amqp.max_reply_bytes")
        return max_reply_bytes
    if limit is None:
        log.info("amqp.limits_checked", accepted_bytes=max_reply_bytes + HEADROOM,
                 max_message_bytes=max_message_bytes, max_reply_bytes=max_reply_bytes)
        return max_reply_bytes
    capped = max(limit - HEADROOM, 256)
    log.warning("amqp.max_reply_bytes_capped", configured=max_reply_bytes,
                broker_max_message_size=limit, now=capped,
                hint="amqp.max_reply_bytes is at or above RabbitMQ's max_message_size: a reply "
                     "that big would close the reply channel; bigger results are answered "
                     "REPLY_TOO_LARGE. Lower amqp.max_reply_bytes to silence this")
    return capped
