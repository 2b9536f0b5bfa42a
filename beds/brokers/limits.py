"""What the broker's message size limit means for BEDS, checked once at start.

Layer: infrastructure. RabbitMQ refuses a publish above its `max_message_size` by closing the
channel (406). A reply that big would close the reply channel, so the node must never try: one
probe at start, on a throwaway channel, publishes an unroutable message of `max_reply_bytes` plus
the room the properties take. Refused -> the broker's limit (RabbitMQ names it in the error) caps
the replies instead, with a warning. Accepted -> fine for replies; whether the broker also takes
request bodies far above `max_message_bytes` (the node's connection skips those from their content
header, but RabbitMQ still takes them in) would need a bigger probe on every start, so
docs/security.md tells operators what to set instead.
RabbitMQ measures the assembled body, so the probe sends every byte, but one frame at a time from
one reused zero chunk, each written before the next is queued: a plain basic_publish would hold
the body, its frames and their join at once (tens of MB at the default 16 MiB: enough to set the
node's peak RSS).
"""

from __future__ import annotations

import asyncio
import re

from beds.amqp import Channel, Connection, PreconditionFailed, spec
from beds.amqp.codec import FRAME_END_BYTE
from beds.amqp.methods import body_frame_head, publish_frames
from beds.brokers.link import AMQP_ERRORS, AmqpLink
from beds.log import get_logger

log = get_logger("beds.amqp")
HEADROOM = 65536            # bytes kept free for properties and headers next to a reply body
PROBE_SECONDS = 10.0        # a broker in a memory alarm blocks publishers: do not wait for it
_LIMIT = re.compile(r"max size (\d+)")


async def broker_limit(link: AmqpLink, probe_bytes: int) -> int | None:
    """The broker's max_message_size if a body of `probe_bytes` is above it, else None."""
    connection = await link.connection()
    channel = await connection.channel()
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await _publish_in_frames(connection, channel, probe_bytes)
            # A channel's methods are handled in order: qos-ok comes only once the broker took
            # the whole probe; a probe above its limit closes the channel (406) instead.
            await channel.basic_qos(prefetch_count=0)
    except PreconditionFailed as exc:
        found = _LIMIT.search(str(exc))
        return int(found.group(1)) if found else probe_bytes - 1
    finally:
        if not channel.is_closed:
            await channel.close()
    return None


async def _publish_in_frames(connection: Connection, channel: Channel, size: int) -> None:
    """An unroutable publish (default exchange, empty routing key: the body is dropped) of `size`
    zero bytes, each body frame written and drained before the next is made."""
    connection.send(publish_frames(channel.number, b"", b"", False, b"\x00\x00", size))
    chunk = bytes(connection.frame_max - spec.FRAME_OVERHEAD)
    while size > 0 and not channel.is_closed:
        part = chunk if size >= len(chunk) else chunk[:size]
        connection.send(body_frame_head(channel.number, len(part)) + part + FRAME_END_BYTE)
        await connection.drain()
        size -= len(part)


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
