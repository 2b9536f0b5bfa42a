"""RabbitMQ's max_message_size below amqp.max_reply_bytes (F2, F9): the node learns the limit at
start and caps its replies under it, so a big result is answered REPLY_TOO_LARGE instead of a
406 that closes the reply channel. A private RabbitMQ node (the shared one must keep its
settings), its limit lowered at run time."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from beds.brokers.limits import HEADROOM, effective_reply_limit
from beds.brokers.link import AmqpLink, ReplyPublisher
from tests.chaos.broker import PrivateRabbit, private_node
from tests.support.services import SESSION

pytestmark = [pytest.mark.rabbitmq]
LIMIT = 1_048_576


@pytest.fixture(scope="module")
def small_rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbit]:
    with private_node(tmp_path_factory.mktemp("rabbit-limits"), f"limits-{SESSION}") as node:
        asyncio.run(node.ctl("eval", f"application:set_env(rabbit, max_message_size, {LIMIT})."))
        yield node


async def test_replies_are_capped_below_the_brokers_limit(small_rabbit: PrivateRabbit) -> None:
    link = AmqpLink(small_rabbit.url, "beds-test-limits", 10, 1.0)
    try:
        with capture_logs() as logs:
            cap = await effective_reply_limit(link, 16 * LIMIT, LIMIT)
        assert cap == LIMIT - HEADROOM
        (warning,) = [e for e in logs if e["event"] == "amqp.max_reply_bytes_capped"]
        assert warning["broker_max_message_size"] == LIMIT
        # A reply of the capped size goes through; the link and its reply channel still work.
        publisher = ReplyPublisher(link)
        channel = await link.channel()
        queue = (await channel.queue_declare(exclusive=True)).queue or ""
        await publisher.publish(queue, b"x" * cap, "c1")
        assert (await channel.queue_declare(queue, passive=True)).message_count == 1
    finally:
        await link.close()


async def test_a_broker_that_takes_the_configured_size_keeps_it(small_rabbit: PrivateRabbit) -> None:
    link = AmqpLink(small_rabbit.url, "beds-test-limits", 10, 1.0)
    try:
        assert await effective_reply_limit(link, LIMIT // 2, LIMIT) == LIMIT // 2
    finally:
        await link.close()


async def test_the_probe_never_holds_its_body(small_rabbit: PrivateRabbit) -> None:
    """The probe (16 MiB here) goes out frame by frame from one reused chunk: sent in one piece
    it held the body, its frames and their join at once and made the node's peak RSS."""
    link = AmqpLink(small_rabbit.url, "beds-test-limits", 10, 1.0)
    try:
        await (await link.channel()).close()   # the connection's own buffers are not the probe's
        tracemalloc.start()
        try:
            assert await effective_reply_limit(link, 16 * LIMIT, LIMIT) == LIMIT - HEADROOM
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < LIMIT, f"the probe held {peak} bytes at once"
    finally:
        await link.close()
