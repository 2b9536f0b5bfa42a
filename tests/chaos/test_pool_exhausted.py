"""Every database connection busy (scenario 19; finding F7): a pool of one connection held by a
long read, and writes with a 1 s deadline behind it. Each is answered by its deadline + 0.5 s,
saying nothing ran, and nothing runs after its caller gave up; once the connection is free the
callers' retries of the idempotent writes succeed."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.chaos.lab import Lab
from tests.chaos.workload import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos,
              pytest.mark.chaos_fast]
BUDGET = 1.0
SLACK = 0.5


async def test_19_pool_exhausted_with_deadlines(lab: Lab) -> None:
    stack = lab.stack("pool1", overrides={"datasources": {"main": {"pool_min": 1,
                                                                   "pool_max": 1}}})
    await lab.start(stack)
    wl = lab.workload("19 pool of 1 held by a 4 s read; writes with 1 s deadlines", stack,
                      min_sent=21)
    hog = wl.raw(json.dumps({"template": "chaos", "op": "scan",
                             "params": {"n": 5, "rows": 1_000_000_000}}).encode(),
                 "chaos.scan", budget=4.0, retry=False)
    hogging = asyncio.create_task(wl.run([hog], timeout=15))

    async def scanning() -> bool:
        return any("seq_1_to_1000000000" in info for *_, info in await lab.root.sessions())

    await wait_until(scanning, 10, "the read holding the only connection")
    writes = [wl.count_pay(customer_id=1 + i % 5, budget=BUDGET) for i in range(10)]
    writes += [wl.pay(customer_id=1 + i % 5, budget=BUDGET) for i in range(10)]
    await wl.run(writes, timeout=BUDGET + 3)
    await hogging
    late = [(r.rid, code, round(by, 2)) for r in writes for code, by in r.lateness()
            if by > SLACK]
    assert not late, f"answered past the deadline + {SLACK} s: {late}"
    for request in writes:
        reply = request.final()
        assert reply is not None and reply.get("error", {}).get("code") in {
            "DEADLINE_EXCEEDED", "DB_UNAVAILABLE"}, reply
        assert reply["error"]["details"].get("ran") is False, reply
    assert hog.code() == "DEADLINE_EXCEEDED", hog.final()
    row = await wl.finish(timeout=10)          # the pays retried, the connection free again
    wl.assert_clean(row)
    assert [r.effects for r in writes] == [0] * 10 + [1] * 10, [r.effects for r in writes]
    assert all(r.code() == "ok" for r in writes[10:])
