"""A node subprocess under real faults: SIGTERM under load, RabbitMQ dropping every connection."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiormq
import pytest
from pamqp.commands import Basic

from beds.client import Client
from beds.errors import CallTimeout
from tests.support.node_process import NodeProcess, spawn_node
from tests.support.services import AMQP_URL, CI, consumer_count, queue_depth
from tests.support.stack import Stack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_sigterm_under_load_answers_in_flight_and_loses_nothing(stack: Stack,
                                                                      node_process: NodeProcess
                                                                      ) -> None:
    total = 3000
    replies: dict[str, dict[str, Any]] = {}
    conn = await aiormq.connect(AMQP_URL)
    channel = await conn.channel(publisher_confirms=False)   # load faster than the node drains

    async def on_reply(message: aiormq.abc.DeliveredMessage) -> None:
        cid = message.header.properties.correlation_id or ""
        assert cid not in replies, f"request {cid} answered twice"
        replies[cid] = json.loads(message.body)

    await channel.basic_consume("amq.rabbitmq.reply-to", on_reply, no_ack=True)
    # The node is frozen while the load is queued: otherwise a fast node answers it all while
    # it is being published and SIGTERM finds nothing in flight.
    node_process.proc.send_signal(signal.SIGSTOP)
    for i in range(total):
        body = json.dumps({"template": "film", "op": "fetch", "params": {"film_id": 1 + i % 30}})
        await channel.basic_publish(
            body.encode(), exchange=stack.exchange, routing_key="film.fetch",
            properties=Basic.Properties(reply_to="amq.rabbitmq.reply-to", correlation_id=str(i)))
    queue = stack.settings.brokers["rBroker"].queue

    async def queued() -> bool:   # all but what RabbitMQ pushed to the frozen node (prefetch)
        return await queue_depth(queue) >= total // 2

    await wait_for(queued, 30, what="the load queued")
    node_process.proc.send_signal(signal.SIGCONT)
    await wait_for(lambda: len(replies) >= 50, 30)

    assert await node_process.stop(signal.SIGTERM) == 0          # drained, clean exit
    answered_by_first = len(replies)
    left = await queue_depth(queue)
    assert answered_by_first + left == total, "a request was lost"
    assert answered_by_first < total, "the load finished before SIGTERM: nothing was tested"
    outcomes = {e["outcome"] for e in node_process.events("request")}
    assert outcomes == {"ok"}, f"in-flight requests were not all answered: {outcomes}"
    assert node_process.events("node.stopping") and node_process.events("node.stopped")

    second = await spawn_node(stack.env_file)                   # the next node takes the rest
    try:
        await wait_for(lambda: len(replies) == total, 60)
    finally:
        await second.stop()
        await conn.close()
    assert all(r["ok"] for r in replies.values())
    assert all(r["data"][0]["FID"] == 1 + int(cid) % 30 for cid, r in replies.items())


def _rabbitmqctl() -> str:
    path = shutil.which("rabbitmqctl")
    if path is None:
        if CI:
            pytest.fail("rabbitmqctl is not on PATH (CI=true)")
        pytest.skip("rabbitmqctl is not on PATH")
    return path


async def test_survives_rabbitmq_closing_every_connection(stack: Stack,
                                                          node_process: NodeProcess) -> None:
    ctl = _rabbitmqctl()
    async with Client(AMQP_URL, stack.exchange) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data

    subprocess.run([ctl, "close_all_connections", "beds e2e test"], check=True,
                   capture_output=True, timeout=60)

    brokers = [stack.settings.brokers[name] for name in ("rBroker", "wBroker")]

    async def serving() -> bool:
        try:
            async with Client(AMQP_URL, stack.exchange, default_timeout=2) as c:
                if not (await c.call("film", "fetch", {"film_id": 2})).data:
                    return False
            # every consumer re-registered, not just the first one back
            counts = [await consumer_count(b.queue) for b in brokers]
            return counts == [b.instances for b in brokers]
        except (CallTimeout, aiormq.AMQPError, ConnectionError, OSError):
            return False

    await wait_for(serving, 10, interval=0.5)   # the acceptance bound: back within 10 s
    assert node_process.proc.returncode is None
    assert node_process.events("amqp.connected")


async def test_waits_for_rabbitmq_and_stops_cleanly_meanwhile(stack: Stack, tmp_path: Path) -> None:
    """RabbitMQ unreachable at start: the node keeps trying (one warning, no traceback) and a
    SIGTERM still ends it with status 0."""
    env = tmp_path / "unreachable.toml"
    env.write_text(stack.env_file.read_text().replace("127.0.0.1:5672", "127.0.0.1:1"))
    node = await spawn_node(env)
    await node.wait_event("amqp.connect_failed")
    assert await node.stop(signal.SIGTERM) == 0
    assert not any("Traceback" in line for line in node.lines), "\n".join(node.lines)
    assert node.events("node.stopped")
