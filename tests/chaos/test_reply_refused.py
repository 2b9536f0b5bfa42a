"""Replies that cannot be delivered (scenarios 17a, 17b, 18; findings F2, F9): a caller whose
reply queue refuses every publish, one reply above RabbitMQ's max_message_size among others in
flight, and a request above it. A non-idempotent write (chaos.count_pay) in each must run once:
a reply BEDS cannot deliver is lost (replies are at-most-once), never paid for with a second run.

The size limits are set on the session's private RabbitMQ node (broker.py) for the scenario and
put back after it; the full reply queue is the caller's own, on the shared one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiormq
import pytest
from structlog.testing import capture_logs

from tests.chaos.broker import PrivateRabbit
from tests.chaos.lab import Lab

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]
REFUSED = ("the caller's reply queue refuses every reply: BEDS cannot answer, and a reply is "
           "at-most-once; what matters is that each write ran once")
LIMIT = 1_048_576           # bytes: RabbitMQ's max_message_size during 17b and 18
DEFAULT_LIMIT = 134_217_728  # RabbitMQ 3.x's default


@asynccontextmanager
async def max_message_size(rabbit: PrivateRabbit, limit: int) -> AsyncIterator[None]:
    """RabbitMQ's max_message_size for channels opened inside the block."""
    await rabbit.ctl("eval", f"application:set_env(rabbit, max_message_size, {limit}).")
    try:
        yield
    finally:
        await rabbit.ctl("eval", f"application:set_env(rabbit, max_message_size, "
                                 f"{DEFAULT_LIMIT}).")


@pytest.mark.chaos_fast
async def test_17a_a_reply_queue_that_refuses_every_reply(lab: Lab) -> None:
    """10 count_pays name as reply_to a queue with x-max-length 0 and x-overflow reject-publish.
    Every reply is refused; each write runs once (on 3.x before F2 it ran ~20 times)."""
    stack = lab.stack("refused")
    await lab.start(stack)
    wl = lab.workload("17a reply queue refuses every reply (max-length 0, reject-publish)", stack,
                      min_sent=10, allow={"dropped": REFUSED, "indeterminate": REFUSED})
    full = f"{stack.exchange}.full-replies"
    conn = await aiormq.connect(stack.url)
    try:
        channel = await conn.channel()
        await channel.queue_declare(full, arguments={"x-max-length": 0,
                                                     "x-overflow": "reject-publish"})
        writes = [wl.count_pay(customer_id=1 + i % 5, reply_to=full) for i in range(10)]
        with capture_logs() as logs:
            await wl.run(writes, timeout=2)
            await wl.quiesce()
        probe = wl.read(3)                            # the node serves on
        await wl.run([probe], timeout=10)
        row = await wl.finish(settle=False)
        wl.assert_clean(row)
        assert [r.effects for r in writes] == [1] * 10, [r.effects for r in writes]
        assert not any(r.replies for r in writes)
        lost = {e.get("correlation_id") for e in logs if e.get("event") == "reply.lost"}
        assert lost >= {cid for r in writes for cid in r.sent_cids}, (
            "the node did not report every refused reply: the fault missed")
        assert probe.code() == "ok"
    finally:
        await (await conn.channel()).queue_delete(full)
        await conn.close()


async def test_17b_one_oversized_reply_among_replies_in_flight(
        lab: Lab, private_rabbit: PrivateRabbit) -> None:
    """RabbitMQ refuses messages above 1 MiB; under load, a read whose result is ~2 MB. The node
    learnt the limit at start: the big read is answered REPLY_TOO_LARGE, and the replies in
    flight beside it are delivered (before F2 one 406 closed the shared reply channel and every
    reply on it failed: their requests ran again)."""
    async with max_message_size(private_rabbit, LIMIT):
        stack = lab.stack("bigreply", rabbit=private_rabbit)
        await lab.start(stack)
        wl = lab.workload(f"17b one ~2 MB reply under load (max_message_size {LIMIT >> 20} MiB)",
                          stack, min_sent=150)
        load = wl.load(workers=8)
        try:
            await load.progress(60)
            big = [wl.raw(json.dumps({"template": "chaos", "op": "big", "limit": 2000}).encode(),
                          "chaos.big", retry=False) for _ in range(3)]
            await wl.run(big, timeout=15)
            await load.progress(60)
        finally:
            await load.stop()
        row = await wl.finish()
    wl.assert_clean(row)
    assert [r.code() for r in big] == ["REPLY_TOO_LARGE"] * 3, [r.final() for r in big]


async def test_18_a_request_above_the_brokers_limit_never_reaches_the_node(
        lab: Lab, private_rabbit: PrivateRabbit) -> None:
    """A 3 MiB request body: RabbitMQ (max_message_size 1 MiB, the node's max_message_bytes)
    refuses the publish, so no node ever assembles it; the node serves on."""
    async with max_message_size(private_rabbit, LIMIT):
        stack = lab.stack("bigbody", rabbit=private_rabbit)
        await lab.start(stack)
        wl = lab.workload(f"18 3 MiB request refused by RabbitMQ (max_message_size "
                          f"{LIMIT >> 20} MiB)", stack, min_sent=10)
        huge = wl.pay(retry=False)
        huge.body = huge.body.replace(b'"amount": "1.00"',
                                      b'"amount": "' + b"1" * (3 << 20) + b'"')
        with capture_logs() as logs:
            await wl.run([huge], timeout=10)
            after = wl.mix(10)
            await wl.run(after, timeout=10)
        row = await wl.finish(settle=False)
    wl.assert_clean(row)
    assert not huge.confirmed and huge.refused, huge.refused
    assert not [e for e in logs if e.get("message_id") == huge.rid], "the node saw the body"
    assert all(r.code() == "ok" for r in after), [r.final() for r in after]
