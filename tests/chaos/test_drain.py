"""A node told to stop while statements run (scenario 20; finding F10): `beds --role appServer`
under load gets SIGTERM while three long reads run in MariaDB. Its `/ready` answers 503 from the
signal on, while it drains; the reads still running when the 2 s grace ends are killed in the
database (not merely abandoned by the client, which would leave them holding their locks); a
second node takes the rest. Nothing is lost, paid twice or run twice."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable

import aiohttp
import pytest

from tests.chaos.lab import Lab
from tests.chaos.servers import free_port
from tests.chaos.workload import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]
GRACE = 2
SCAN_BUDGET = 15.0   # the reads' own deadline: far past the grace, so only a KILL ends them early
SCAN = "seq_1_to_1000000000"


async def test_20_sigterm_with_statements_running_past_the_grace(lab: Lab) -> None:
    port = free_port()
    stack = lab.stack("drain", overrides={"node": {"grace_seconds": GRACE},
                                          "ops": {"http_listen": f"127.0.0.1:{port}"}})
    a = await lab.spawn(lab.env_variant(stack, "chaos-20-a"))
    wl = lab.workload(f"20 SIGTERM with reads running past the {GRACE} s grace", stack,
                      min_sent=100)
    ready = f"http://127.0.0.1:{port}/ready"

    async def scans() -> int:
        return sum(1 for *_, info in await lab.root.sessions() if SCAN in info)

    load = wl.load(workers=4)
    async with aiohttp.ClientSession() as http:
        try:
            await load.progress(60)
            long_reads = [wl.raw(json.dumps({"template": "chaos", "op": "scan", "params": {
                "n": 2, "rows": 1_000_000_000}}).encode(), "chaos.scan", budget=SCAN_BUDGET,
                retry=False) for _ in range(3)]
            reading = asyncio.create_task(wl.run(long_reads, timeout=SCAN_BUDGET + 5))
            await wait_until(lambda: _at_least(scans(), 3), 10, "3 long reads running")
            async with http.get(ready) as before:
                assert before.status == 200, await before.text()
            a.proc.send_signal(signal.SIGTERM)
            await a.wait_event("node.stopping")        # the signal reached the node
            statuses = []
            while a.proc.returncode is None:
                try:
                    async with http.get(ready) as during:
                        statuses.append(during.status)
                except aiohttp.ClientError:
                    break                      # the listener closed: the node is nearly gone
                await asyncio.sleep(0.1)
            await a.stop()
            exited = time.time()
            assert statuses and set(statuses) == {503}, (
                f"/ready while draining answered {statuses}: traffic would still be sent")
            assert exited < min(r.published[r.sent_cids[0]] for r in long_reads) + SCAN_BUDGET, (
                "the node outlived the reads' own deadline: the check below proves nothing")
            await wait_until(lambda: _none(scans()), 2, "reads killed in the database at the "
                                                        "end of the grace")
            await lab.spawn(lab.env_variant(stack, "chaos-20-b", overrides={
                "ops": {"http_listen": ""}}))
            await load.progress(60)
        finally:
            await load.stop()
    await reading
    row = await wl.finish()
    wl.assert_clean(row)
    assert a.events("node.stopping") and a.events("node.stopped")


async def _at_least(count: Awaitable[int], n: int) -> bool:
    return await count >= n


async def _none(count: Awaitable[int]) -> bool:
    return await count == 0
