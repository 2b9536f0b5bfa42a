"""A node dies (scenarios 1 and 2): SIGKILL before the commit, after the commit but before the
ack, at random moments under load; SIGTERM under load. Nodes are real `beds --role appServer`
subprocesses sharing one set of queues, as in production."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
from collections import Counter

import pytest

from tests.chaos.lab import Lab
from tests.chaos.workload import AT_LEAST_ONCE, wait_until
from tests.support.node_process import NodeProcess
from tests.support.services import host_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]


def outcomes(node: NodeProcess) -> str:
    """The request outcomes a node logged, counted (with the DB errors it answered)."""
    seen = Counter(e.get("outcome") for e in node.events("request"))
    return ", ".join(f"{k} {n}" for k, n in seen.most_common())


async def waiting_on_lock(lab: Lab, n: int) -> None:
    async def waiting() -> bool:
        return sum("metadata lock" in s for _, _, s, _ in await lab.root.sessions()) >= n

    await wait_until(waiting, 20, f"{n} writes waiting on the table lock")


async def test_1a_sigkill_mid_write_before_the_commit(lab: Lab) -> None:
    """Node A holds 12 pays mid-call (their INSERT waits on a table lock) and is SIGKILLed.
    RabbitMQ gives the unacked deliveries to node B; A's open transactions roll back; B's
    copies wait on A's row locks, then do the work: one effect each."""
    stack = lab.stack("kill1a")
    a = await lab.spawn(lab.env_variant(stack, "chaos-1a-a"))
    wl = lab.workload("1a SIGKILL mid-write, before commit", stack, min_sent=12)
    pays = [wl.pay(customer_id=1 + i % 5) for i in range(12)]
    async with lab.root.lock_tables("payment WRITE"):
        sending = asyncio.create_task(wl.run(pays, timeout=30))
        await waiting_on_lock(lab, 12)
        await a.stop(signal.SIGKILL)
        b = await lab.spawn(lab.env_variant(stack, "chaos-1a-b"))
    await sending
    row = await wl.finish()
    wl.assert_clean(row)
    assert [r.effects for r in pays] == [1] * 12
    errors = [reply["error"]["message"] for r in pays for _, reply in r.replies
              if not reply.get("ok")]
    assert row.dead == 0 and not errors, f"B's outcomes: {outcomes(b)}; errors: {errors[:3]}"
    assert {r.answer()["meta"]["node"] for r in pays} == {"chaos-1a-b"}


async def test_1b_sigkill_after_the_commit_before_the_ack(lab: Lab) -> None:
    """Node A's AMQP connections go through a proxy. A's 12 pays and 4 non-idempotent count_pays
    wait on a table lock; the proxy stalls, the lock goes: A commits all 16, but neither its
    replies nor its acks can reach RabbitMQ. A is SIGKILLed, its connections reset; node B gets
    the 16 redeliveries of committed writes and must answer each pay with the stored outcome -
    not pay again. The count_pays, with no key, run again: the at-least-once case the checker
    must see (4 re-executed), or it could not see any."""
    stack = lab.stack("kill1b")
    proxy = await lab.proxy(*host_port(stack.url, 5672))
    a = await lab.spawn(lab.env_variant(stack, "chaos-1b-a", amqp_port=proxy.port))
    wl = lab.workload("1b SIGKILL after commit, before ack", stack, min_sent=16,
                      allow={"re-executed": AT_LEAST_ONCE})
    pays = [wl.pay(customer_id=1 + i % 5) for i in range(12)]
    counted = [wl.count_pay(customer_id=1 + i % 5) for i in range(4)]
    async with lab.root.lock_tables("payment WRITE"):
        sending = asyncio.create_task(wl.run(pays + counted, timeout=30))
        await waiting_on_lock(lab, 16)
        proxy.stall()

    async def committed() -> bool:
        await wl.count_effects()
        return all(r.effects == 1 for r in pays + counted)

    try:
        await wait_until(committed, 10, "A committed all 16 writes")
    except AssertionError:
        raise AssertionError(f"A committed {[r.effects for r in pays + counted]}; "
                             f"A's outcomes: {outcomes(a)}") from None
    assert not any(r.replies for r in pays + counted), "a reply got through the stalled proxy"
    await a.stop(signal.SIGKILL)
    proxy.cut()                       # RabbitMQ sees A's connections reset: requeue
    b = await lab.spawn(lab.env_variant(stack, "chaos-1b-b"))
    await sending
    row = await wl.finish()
    wl.assert_clean(row)
    assert [r.effects for r in pays] == [1] * 12
    assert [r.effects for r in counted] == [2] * 4 and row.reexecuted == 4, (
        f"count_pay runs {[r.effects for r in counted]}: the checker did not see B run again "
        "what A had committed")
    assert {r.answer()["meta"]["node"] for r in pays + counted} == {"chaos-1b-b"}
    redelivered = [e for e in b.events("request") if e.get("redelivered")]
    assert len(redelivered) >= 16 and all(e["outcome"] == "ok" for e in redelivered)


async def test_1c_sigkill_at_random_moments_under_load(lab: Lab) -> None:
    """Two nodes under steady load; four times, one of them is SIGKILLed at a random moment and
    a replacement started. Some kills land between a commit and its ack: idempotency must keep
    every pay at one effect."""
    seed = int(os.environ.get("BEDS_CHAOS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)   # fault timing, not crypto; BEDS_CHAOS_SEED replays a run
    stack = lab.stack("kill1c")
    env = [lab.env_variant(stack, f"chaos-1c-{i}") for i in range(6)]
    alive = [await lab.spawn(env[0]), await lab.spawn(env[1])]
    wl = lab.workload(f"1c SIGKILL x4 at random moments (seed {seed})", stack, min_sent=300,
                      allow={"re-executed": AT_LEAST_ONCE})
    load = wl.load(workers=8)
    try:
        await load.progress(50)
        for kill in range(4):
            await asyncio.sleep(rng.uniform(0.3, 2.0))       # the fault: a random moment
            victim = alive.pop(rng.randrange(len(alive)))
            await victim.stop(signal.SIGKILL)
            alive.append(await lab.spawn(env[2 + kill]))
        await load.progress(50)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert row.ok + row.error == row.sent
    redelivered = sum(1 for n in alive for e in n.events("request") if e.get("redelivered"))
    assert redelivered, "no kill caught a delivery in flight: nothing was tested"


async def test_2_sigterm_under_load(lab: Lab) -> None:
    """SIGTERM to one of two nodes under load while it holds writes mid-call (they wait on a table
    lock, released once it is stopping): it stops taking work, finishes what it holds, exits 0;
    the other node serves on. Nothing is lost, paid twice or run twice."""
    stack = lab.stack("term")
    a = await lab.spawn(lab.env_variant(stack, "chaos-2-a"))
    wl = lab.workload("2 SIGTERM under load", stack, min_sent=150)
    load = wl.load(workers=8)
    try:
        await load.progress(100)
        async with lab.root.lock_tables("payment WRITE"):
            await waiting_on_lock(lab, 3)            # A holds writes mid-call: the fault's target
            await lab.spawn(lab.env_variant(stack, "chaos-2-b"))
            stopping = asyncio.create_task(a.stop(signal.SIGTERM))
            await a.wait_event("node.stopping")
        assert await stopping == 0
        await load.progress(100)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert a.events("node.stopping") and a.events("node.stopped")
    assert not a.events("consumer.drain_timeout")
    assert {e["outcome"] for e in a.events("request")} <= {"ok", "retry"}, \
        "the stopping node left a request unanswered"
    names = [e.get("event") for e in records(a)]
    finished = names[names.index("node.stopping"):].count("request")
    assert finished >= 3, f"A finished {finished} requests after SIGTERM; it held 3 or more"


def records(node: NodeProcess) -> list[dict[str, object]]:
    """Every JSON log record of a node, in order."""
    found = []
    for line in node.lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                found.append(record)
    return found
