"""The dead-letter replay script of docs/howto/replay-dead-letters.md, against a real RabbitMQ.

A topology shaped like a node's (topic exchange -> request queue with a DLX -> fanout -> DLQ),
requests dead-lettered by a real reject, then the script run as an operator would run it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiormq
import pytest
from pamqp.commands import Basic

SCRIPT = Path(__file__).resolve().parents[2] / "docs/howto/replay_dead_letters.py"


@dataclass
class Topology:
    url: str
    exchange: str
    queue: str
    dlq: str
    channel: aiormq.abc.AbstractChannel


@pytest.fixture
async def topology(rabbitmq: str) -> AsyncIterator[Topology]:
    ns = f"replay.{secrets.token_hex(3)}"
    connection = await aiormq.connect(rabbitmq)
    channel = await connection.channel(publisher_confirms=True)
    t = Topology(rabbitmq, ns, f"{ns}.requests", f"{ns}.dead", channel)
    await channel.exchange_declare(ns, exchange_type="topic", auto_delete=True)
    await channel.exchange_declare(f"{ns}.dlx", exchange_type="fanout", auto_delete=True)
    await channel.queue_declare(t.dlq)
    await channel.queue_bind(t.dlq, f"{ns}.dlx", routing_key="")
    await channel.queue_declare(t.queue, arguments={"x-dead-letter-exchange": f"{ns}.dlx"})
    await channel.queue_bind(t.queue, ns, routing_key="product.*")
    try:
        yield t
    finally:
        for queue in (t.queue, t.dlq):
            await channel.queue_delete(queue)
        for exchange in (ns, f"{ns}.dlx"):
            await channel.exchange_delete(exchange)
        await connection.close()


async def _dead_letter(t: Topology, bodies: dict[str, bytes]) -> None:
    """Publish each request as a caller would, then reject it as a node does with poison."""
    for message_id, body in bodies.items():
        await t.channel.basic_publish(body, exchange=t.exchange, routing_key="product.create",
                                      properties=Basic.Properties(
                                          message_id=message_id, reply_to="caller.replies",
                                          content_type="application/json",
                                          headers={"x-deadline": 1, "trace": "kept"}))
    for _ in bodies:
        message = await t.channel.basic_get(t.queue, no_ack=False)
        assert isinstance(message.delivery, Basic.GetOk)
        assert message.delivery.delivery_tag is not None
        await t.channel.basic_reject(message.delivery.delivery_tag, requeue=False)
    await _wait_count(t, t.dlq, len(bodies))


async def _wait_count(t: Topology, queue: str, expected: int) -> None:
    for _ in range(100):   # dead-lettering is asynchronous; a condition with a deadline
        if (await t.channel.queue_declare(queue, passive=True)).message_count == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{queue} never held {expected} messages")


def _run(t: Topology, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--url", t.url, "--dlq", t.dlq, *args],
                          capture_output=True, text=True, timeout=60)


async def _drain(t: Topology, queue: str) -> list[aiormq.abc.DeliveredMessage]:
    taken: list[aiormq.abc.DeliveredMessage] = []
    while True:
        message = await t.channel.basic_get(queue, no_ack=True)
        if not isinstance(message.delivery, Basic.GetOk):
            return taken
        taken.append(message)


async def test_dry_run_lists_and_changes_nothing(topology: Topology) -> None:
    await _dead_letter(topology, {"m1": b'{"template": "product", "op": "create"}'})
    result = _run(topology, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "kept      product.create message_id=m1 reason=rejected" in result.stdout
    assert "0 replayed, 1 left in" in result.stdout
    assert (await topology.channel.queue_declare(topology.dlq, passive=True)).message_count == 1
    assert await _drain(topology, topology.queue) == []


async def test_replay_sends_requests_back_to_their_route_without_stale_properties(
        topology: Topology) -> None:
    create = json.dumps({"template": "product", "op": "create", "params": {"sku": "A"}}).encode()
    other = json.dumps({"template": "other", "op": "create"}).encode()
    await _dead_letter(topology, {"m1": create, "m2": other, "m3": b"not json"})

    result = _run(topology, "--only", "product.*")
    assert result.returncode == 0, result.stderr
    assert "1 replayed, 2 left in" in result.stdout
    back = await _drain(topology, topology.queue)
    assert [m.body for m in back] == [create]
    props = back[0].header.properties
    assert props.message_id == "m1"                 # an idempotent write finds its stored outcome
    assert props.reply_to is None                   # the caller that waited is gone
    assert props.headers == {"trace": "kept"}       # no x-death, no stale x-deadline

    result = _run(topology)                          # the rest, whatever they are
    assert result.returncode == 0, result.stderr
    assert "2 replayed, 0 left in" in result.stdout and "(not JSON)" in result.stdout
    assert sorted(m.body for m in await _drain(topology, topology.queue)) == [b"not json", other]
    assert (await topology.channel.queue_declare(topology.dlq, passive=True)).message_count == 0


async def test_an_unreachable_broker_is_one_line_and_exit_1(topology: Topology) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--url", "amqp://guest:guest@127.0.0.1:1/"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("replay: ") and "Traceback" not in result.stderr
