"""MariaDB faults (scenarios 6 and 14): the node's session KILLed mid-call; the database going
away and coming back under load; a database failure that never clears, ending in the
dead-letter queue.

MariaDB is a shared server here: it is never stopped. "Shutdown and restart" is a TCP proxy
between the node and MariaDB that resets every connection and refuses new ones (cut), then lets
them through again (restore) — what a node sees of a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sized

import aiormq
import pytest
from pamqp.commands import Basic
from structlog.testing import capture_logs

from tests.chaos.lab import Lab
from tests.chaos.workload import wait_until
from tests.support.services import x_death

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]


async def test_6a_kill_the_nodes_database_session_mid_call(lab: Lab) -> None:
    """10 pays wait mid-call on a table lock; their sessions are KILLed. The node discards the
    dead connections, the broker redelivers (an idempotent write may run again), each pay ends
    with one effect; reads flow meanwhile."""
    stack = lab.stack("kill-session")
    await lab.start(stack)
    wl = lab.workload("6a KILL the node's DB sessions mid-call", stack, min_sent=30)
    pays = [wl.pay(customer_id=1 + i % 5) for i in range(10)]
    reads = [wl.read(1 + i) for i in range(20)]
    async with lab.root.lock_tables("payment WRITE"):
        sending = asyncio.create_task(wl.run(pays, timeout=30))

        async def waiting() -> list[int]:
            return [i for i, _, state, _ in await lab.root.sessions() if "metadata lock" in state]

        await wait_until(lambda: _count(waiting(), 10), 20, "10 pays waiting mid-call")
        for session in await waiting():
            await lab.root.execute(f"KILL {session}")
        await wl.run(reads, timeout=10)    # the node serves on while its sessions die
    await sending
    row = await wl.finish()
    wl.assert_clean(row)
    assert [r.effects for r in pays] == [1] * 10
    assert all(r.code() == "ok" for r in reads)


async def _count(values: Awaitable[Sized], n: int) -> bool:
    return len(await values) >= n


async def test_6b_database_away_and_back_under_load(lab: Lab) -> None:
    """MariaDB "restarts" (every connection reset, new ones refused) for 3 s under load: longer
    than the broker's retries (0.2 + 0.4 + 0.8 s), so some requests end DB_UNAVAILABLE and
    dead-lettered; callers retry those with the same request id once it is back. Non-idempotent
    count_pays in the load are never resent: each must have run once at most."""
    proxy = await lab.db_proxy()
    stack = lab.stack("dbdown", db_port=proxy.port)
    await lab.start(stack)
    wl = lab.workload("6b MariaDB away 3 s under load (TCP proxy)", stack, min_sent=150)
    load = wl.load()
    with capture_logs() as logs:
        try:
            await load.progress(100)
            proxy.cut()
            try:
                await asyncio.sleep(3)                   # the fault
            finally:
                proxy.restore()
            await load.progress(100)
        finally:
            await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    hit = [e for e in logs if e.get("event") == "request"
           and e.get("outcome") in {"retry", "DB_UNAVAILABLE"}]
    assert hit, "no request saw the database away: the fault missed"


async def test_14_a_failure_that_never_clears_is_dead_lettered(lab: Lab) -> None:
    """The database is gone for good: each request is retried by the broker (x-delivery-count),
    then answered DB_UNAVAILABLE and dead-lettered with x-death. Once the database is back, the
    callers' retries have one effect each, and replaying the dead-lettered copies (as an
    operator would) changes nothing."""
    proxy = await lab.db_proxy()
    stack = lab.stack("dlq", db_port=proxy.port)
    await lab.start(stack)
    wl = lab.workload("14 DB failure that never clears -> DLQ, then retry + replay", stack,
                      min_sent=12)
    # Idempotent pays and reads only: the operator's replay below runs every dead-lettered copy
    # again, which only a keyed write survives.
    requests = wl.mix(12, reads_every=3, counted=False)
    proxy.cut()
    try:
        with capture_logs() as logs:
            await wl.run(timeout=15)
        assert all(r.codes() == ["DB_UNAVAILABLE"] for r in requests), [r.codes() for r in requests]
        retries = stack.settings.brokers["wBroker"].retries
        for request in requests:   # retried by the queue's own x-delivery-count, then answered
            seen = [(e["attempt"], e["outcome"]) for e in logs
                    if e.get("event") == "request" and e.get("message_id") == request.rid]
            assert seen == [(n + 1, "retry") for n in range(retries)] + [
                (retries + 1, "DB_UNAVAILABLE")], seen
        await wl.collect_dead()
        queues = {stack.queue("wBroker"), stack.queue("rBroker")}
        for message in wl.dead_messages:
            death = x_death(message)
            assert death["reason"] == "rejected" and death["queue"] in queues, death
        assert sorted(m.header.properties.message_id or "" for m in wl.dead_messages) == sorted(
            r.rid for r in requests)
    finally:
        proxy.restore()

    await wl.settle(timeout=10)                     # the callers retry: same message ids
    await wl.quiesce()
    await wl.count_effects()
    assert all(r.effects == 1 for r in requests if r.paid_at)
    # An operator replays the dead-lettered copies, with their message ids, to the exchange.
    conn = await aiormq.connect(stack.url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        for message in wl.dead_messages:
            props = message.header.properties
            key = x_death(message)["routing-keys"][0]
            await channel.basic_publish(message.body, exchange=stack.exchange, routing_key=key,
                                        properties=Basic.Properties(
                                            message_id=props.message_id, delivery_mode=2,
                                            content_type="application/json"))
    finally:
        await conn.close()
    row = await wl.finish(settle=False)
    wl.assert_clean(row)
    assert row.dead == len(requests) and row.ok == len(requests)
