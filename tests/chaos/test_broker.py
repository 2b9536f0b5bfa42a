"""RabbitMQ faults under load (scenarios 3, 4, 5): every connection closed, the broker stopped and
started, frozen past the heartbeat (a stalled link, and SIGSTOP), a memory alarm.

Faults that hit the whole broker run against the session's private RabbitMQ node (broker.py),
never against the shared one other sessions use; each is undone in a `finally`. The stalled link
goes through the TCP proxy and touches only the node's own connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Awaitable

import pytest

from tests.chaos.broker import PrivateRabbit
from tests.chaos.lab import Lab
from tests.chaos.workload import AT_LEAST_ONCE, wait_until
from tests.support.services import host_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]
HEARTBEAT = 2   # seconds; the frozen-broker scenarios last well past it


async def test_3a_close_all_connections_under_load(lab: Lab, private_rabbit: PrivateRabbit
                                                   ) -> None:
    stack = lab.stack("closeall", rabbit=private_rabbit)
    node = await lab.spawn(stack.env_file)
    wl = lab.workload("3a close_all_connections under load", stack, min_sent=200,
                      allow={"re-executed": AT_LEAST_ONCE})
    load = wl.load()
    try:
        await load.progress(100)
        links = len(node.events("amqp.connected"))
        await private_rabbit.ctl("close_all_connections", "beds chaos: close_all_connections")
        # The fault hit: the node connected again (consume + publish links).
        await node.wait_event("amqp.connected", count=links + 2)
        await lab.wait_serving(stack, within=10)              # every consumer re-registered
        await load.progress(100)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert node.proc.returncode is None


async def test_3b_rabbitmq_stop_app_and_start_app_under_load(lab: Lab,
                                                              private_rabbit: PrivateRabbit
                                                              ) -> None:
    stack = lab.stack("restart", rabbit=private_rabbit)
    node = await lab.spawn(stack.env_file)
    wl = lab.workload("3b RabbitMQ stop_app / start_app under load", stack, min_sent=200,
                      allow={"re-executed": AT_LEAST_ONCE})
    load = wl.load()
    try:
        await load.progress(100)
        links = len(node.events("amqp.connected"))
        try:
            await private_rabbit.ctl("stop_app")
            await asyncio.sleep(3)                           # the fault: 3 s without a broker
        finally:
            await private_rabbit.ctl("start_app")
            await private_rabbit.await_startup()
        await lab.wait_serving(stack, within=30)
        await load.progress(100)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert node.proc.returncode is None
    assert len(node.events("amqp.connected")) >= links + 2, "the node never lost its links"


async def test_4a_link_stalled_past_the_heartbeat(lab: Lab) -> None:
    """The node's AMQP connections go through a proxy that stops moving bytes for 3.5 heartbeats:
    both ends declare the connection dead; the node reconnects when bytes flow again."""
    stack = lab.stack("stall", overrides={"amqp": {"heartbeat": HEARTBEAT}})
    proxy = await lab.proxy(*host_port(stack.url, 5672))
    node = await lab.spawn(lab.env_variant(stack, "chaos-stall", amqp_port=proxy.port))
    wl = lab.workload(f"4a node's AMQP link stalled {3.5 * HEARTBEAT:g} s "
                      f"(heartbeat {HEARTBEAT} s)", stack, min_sent=200,
                      allow={"re-executed": AT_LEAST_ONCE})
    load = wl.load()
    try:
        await load.progress(100)
        links = len(node.events("amqp.connected"))
        proxy.stall()
        try:
            await asyncio.sleep(3.5 * HEARTBEAT)             # the fault
        finally:
            proxy.restore()
        # The fault hit: both links were declared dead and made again.
        await node.wait_event("amqp.connected", count=links + 2, timeout=30)
        await lab.wait_serving(stack)
        await load.progress(100)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)


async def test_4b_rabbitmq_frozen_with_sigstop(lab: Lab, private_rabbit: PrivateRabbit) -> None:
    """RabbitMQ frozen (SIGSTOP) past the node's heartbeat grace (aiormq: 3 x (heartbeat + 1)
    = 9 s): the node gives its connections up and reconnects after SIGCONT; requests that expired
    in the queue meanwhile are dead-lettered and retried by their callers."""
    freeze = 6 * HEARTBEAT
    stack = lab.stack("frozen", rabbit=private_rabbit,
                      overrides={"amqp": {"heartbeat": HEARTBEAT}})
    node = await lab.spawn(stack.env_file)
    wl = lab.workload(f"4b RabbitMQ SIGSTOP {freeze} s (heartbeat {HEARTBEAT} s)", stack,
                      min_sent=150, allow={"re-executed": AT_LEAST_ONCE})
    load = wl.load()
    try:
        await load.progress(100)
        links = len(node.events("amqp.connected"))
        pid = private_rabbit.beam_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(freeze)                      # the fault
        finally:
            os.kill(pid, signal.SIGCONT)
        await node.wait_event("amqp.connected", count=links + 2, timeout=30)
        await lab.wait_serving(stack, within=30)
        await load.progress(100, within=60)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert node.proc.returncode is None


async def test_5_memory_alarm_under_load(lab: Lab, private_rabbit: PrivateRabbit) -> None:
    """A memory alarm blocks every publisher for 4 s: callers cannot publish, the node cannot
    reply. After it clears, everything it took is answered; nothing wedges."""
    ctl = private_rabbit.ctl
    stack = lab.stack("alarm", rabbit=private_rabbit)
    node = await lab.spawn(stack.env_file)
    wl = lab.workload("5 memory alarm 4 s under load", stack, min_sent=300)
    original = (await ctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")).strip()
    restore = (["absolute", re.sub(r"\D", "", original)] if "absolute" in original
               else [original])

    async def alarmed() -> bool:
        return "memory" in await ctl("eval", "rabbit_alarm:get_alarms().")

    load = wl.load()
    try:
        await load.progress(100)
        try:
            await ctl("set_vm_memory_high_watermark", "0.0000001")
            await wait_until(alarmed, 10, "the memory alarm is raised")
            await asyncio.sleep(1)                           # the fault: 4 s in all
            during = wl.answered()
            await asyncio.sleep(3)
            paused = wl.answered() - during
        finally:
            await ctl("set_vm_memory_high_watermark", *restore)
        await wait_until(lambda: _not(alarmed()), 15, "the memory alarm is cleared")
        await load.progress(100)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert paused == 0, f"{paused} replies during the alarm: it blocked nothing, tested nothing"
    assert node.proc.returncode is None
    assert not node.events("broker.crashed")


async def _not(value: Awaitable[object]) -> bool:
    return not await value


async def test_14b_dead_lettering_is_at_least_once(lab: Lab, private_rabbit: PrivateRabbit
                                                   ) -> None:
    """The dead-letter queue refuses messages for a while (a full queue: max-length 0 with
    reject-publish) when poison arrives. With at-least-once dead-lettering the request queue keeps
    each poison message until the DLQ takes it; with at-most-once it is silently gone."""
    stack = lab.stack("dlqfull", rabbit=private_rabbit)
    await lab.start(stack)
    wl = lab.workload("14b poison while the DLQ refuses (at-least-once dead-lettering)", stack,
                      min_sent=5, retry_codes=frozenset())
    dlq = stack.settings.amqp.dlq
    policy = f"chaos-full-{stack.exchange}"
    await private_rabbit.ctl("set_policy", policy, f"^{re.escape(dlq)}$",
                             '{"max-length": 0, "overflow": "reject-publish"}',
                             "--apply-to", "queues")
    try:
        poison = [wl.raw(b"{not json", stack.queue("rBroker"), exchange="") for _ in range(5)]
        await wl.run(timeout=10)
        assert [r.code() for r in poison] == ["BAD_REQUEST"] * 5
    finally:
        await private_rabbit.ctl("clear_policy", policy)

    async def in_dlq() -> bool:
        return (await private_rabbit.ctl.queue_messages({dlq})).get(dlq, 0) >= len(poison)

    with contextlib.suppress(AssertionError):   # reported below, with the row
        await wait_until(in_dlq, 15, "the poison reached the DLQ once it had room")
    row = await wl.finish(settle=False)
    wl.assert_clean(row)
    arguments = await private_rabbit.ctl("list_queues", "--quiet", "--no-table-headers", "name",
                                         "arguments")
    declared = [line for line in arguments.splitlines() if stack.queue("rBroker") in line]
    assert row.dead == len(poison), (
        f"{len(poison) - row.dead} poison messages were dead-lettered while the DLQ refused "
        f"them and are gone: dead-lettering is at-most-once. Queue arguments: {declared}")
