"""Unknown-name flood (reliability audit F3): 3,000 requests, each naming a different unknown
template or op, into a real `beds --role appServer`. Caller-chosen names must not become metric
series or snapshot keys: /metrics stays small and its series count does not move, the snapshot
does not grow, and the node's RSS stays nearly flat (printed; the acceptance bound is 15 MB)."""

from __future__ import annotations

import json
import secrets
import signal
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import aiormq
import tomli_w
from pamqp.commands import Basic

from beds.protocol import encode
from tests.support.node_process import NodeProcess, spawn_node
from tests.support.services import AMQP_URL, private_queue
from tests.support.stack import Stack
from tests.support.waiting import wait_for

FLOOD = 3000
WARM_UP = 300
PADDING = "p" * 1500   # with a 500-2000 character name: ~2 KB per request


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def unknown_answers(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in series(text)
               if line.startswith("beds_requests_total{") and 'template="<unknown>"' in line)


def flood_body(i: int) -> bytes:
    """Every request names something new: long names (refused at decode), unknown templates and
    unknown ops of a real template (both valid identifiers)."""
    tag = secrets.token_hex(4)
    if i % 3 == 0:
        return encode({"template": f"t{tag}" + "x" * (500 + i % 1500), "op": "o",
                       "params": {"pad": PADDING}})
    if i % 3 == 1:
        return encode({"template": f"nosuch_{i}_{tag}", "op": "fetch",
                       "params": {"pad": PADDING}})
    return encode({"template": "film", "op": f"op_{i}_{tag}", "params": {"pad": PADDING}})


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


async def last_snapshot(channel: aiormq.abc.AbstractChannel, queue: str) -> bytes:
    latest = b""
    while (message := await channel.basic_get(queue, no_ack=True)).delivery_tag is not None:
        latest = message.body
    return latest


async def test_unknown_name_flood_leaves_metrics_and_memory_flat(stack: Stack,
                                                                 tmp_path: Path) -> None:
    data = tomllib.loads(stack.env_file.read_text())
    data["ops"]["http_listen"] = "127.0.0.1:0"
    data["ops"]["snapshot_seconds"] = 0.5
    data["node"]["log_requests"] = False   # the flood's warnings are not what is measured
    env = tmp_path / "flood.toml"
    env.write_text(tomli_w.dumps(data))
    node: NodeProcess = await spawn_node(env)
    conn = await aiormq.connect(AMQP_URL)
    try:
        await node.wait_event("node.ready")
        port = node.events("http.listening")[0]["port"]
        metrics = f"http://127.0.0.1:{port}/metrics"
        channel = await conn.channel()
        snapshots = await private_queue(channel)
        await channel.queue_bind(snapshots, stack.settings.ops.metrics_exchange,
                                 routing_key=f"node.{stack.settings.node.name}")
        queue = stack.settings.brokers["rBroker"].queue


        async def publish(i: int) -> None:
            # Half straight into the request queue, half through the exchange with a routing
            # key nothing is bound to (beds.unrouted answers those).
            if i % 2:
                await channel.basic_publish(flood_body(i), routing_key=queue)
            else:
                await channel.basic_publish(flood_body(i), exchange=stack.exchange,
                                            routing_key=f"nosuch.k{i}",
                                            properties=Basic.Properties(delivery_mode=1))

        # Warm-up: every kind of flood request on both paths, so the fixed series exist first,
        # and enough of them at once that the node's delivery buffers and the allocator's arenas
        # have grown to their working size: what is measured after is growth per new name.
        for i in range(WARM_UP):
            await publish(i)
        await wait_for(lambda: _answered(metrics, WARM_UP), 60, interval=0.2)
        before_text = await scrape(metrics)
        await last_snapshot(channel, snapshots)
        rss_before = rss_bytes(node.proc.pid)

        for i in range(WARM_UP, WARM_UP + FLOOD):
            await publish(i)
        await wait_for(lambda: _answered(metrics, WARM_UP + FLOOD), 120, interval=0.5)
        after_text = await scrape(metrics)
        rss_after = rss_bytes(node.proc.pid)
        snapshot: dict[str, Any] = {}

        async def counted_snapshot() -> bool:
            nonlocal snapshot
            body = await last_snapshot(channel, snapshots)
            snapshot = json.loads(body) if body else snapshot
            unknown = snapshot.get("ops", {}).get("<unknown>.<unknown>", {})
            return bool(unknown.get("count", 0) >= WARM_UP + FLOOD)

        await wait_for(counted_snapshot, 10, interval=0.2)
        snapshot_bytes = len(json.dumps(snapshot))
    finally:
        await conn.close()
        await node.stop(signal.SIGTERM)

    growth = rss_after - rss_before
    print(f"\nunknown-name flood: {FLOOD} requests; node RSS {rss_before / 2**20:.1f} -> "
          f"{rss_after / 2**20:.1f} MiB ({growth / 2**20:+.1f} MiB); /metrics "
          f"{len(before_text.encode())} -> {len(after_text.encode())} bytes, "
          f"{len(series(before_text))} -> {len(series(after_text))} series; snapshot "
          f"{snapshot_bytes} bytes, ops {sorted(snapshot['ops'])}")
    def names(text: str) -> set[str]:
        return {line.rsplit(" ", 1)[0] for line in series(text)}

    assert names(after_text) == names(before_text)
    assert len(after_text.encode()) < 1_000_000
    assert set(snapshot["ops"]) == {"<unknown>.<unknown>"}
    assert snapshot_bytes < 10_000
    assert growth < 15 * 2**20


async def _answered(url: str, count: int) -> bool:
    return unknown_answers(await scrape(url)) >= count
