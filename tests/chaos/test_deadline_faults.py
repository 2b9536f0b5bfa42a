"""Deadlines under faults (scenarios 7 and 8): a database slower than the caller's deadline, and
requests that are already expired when a node takes them."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable

import pytest

from beds.idempotency import scoped_key
from tests.chaos.lab import Lab
from tests.chaos.workload import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos,
              pytest.mark.chaos_fast]


async def scans_running(lab: Lab) -> int:
    return sum(1 for *_, info in await lab.root.sessions() if "seq_1_to_1000000000" in info)


async def test_7_slow_database_beyond_the_deadline(lab: Lab) -> None:
    """A real scan (not SLEEP) runs past the caller's deadline: the server stops the statement,
    the caller gets DEADLINE_EXCEEDED, the write rolls back; once the database is fast again the
    caller's retry with the same request id has exactly one effect, and a repeat the same id."""
    stack = lab.stack("slowdb")
    await lab.start(stack)
    wl = lab.workload("7 slow database past the deadline", stack, min_sent=12)
    pays = [wl.pay(customer_id=1 + i % 5, op="chaos.slow_pay", budget=1.5) for i in range(10)]
    scans = [wl.raw(json.dumps({"template": "chaos", "op": "scan", "params": {"n": 3}}).encode(),
                    "chaos.scan", budget=1.5) for _ in range(2)]

    await lab.root.execute("UPDATE chaos_knob SET scan_rows = 1000000000 WHERE id = 1")
    try:
        started = time.monotonic()
        await wl.run(timeout=15)
        took = time.monotonic() - started
        odd = [r.replies for r in wl.requests if r.codes() != ["DEADLINE_EXCEEDED"]]
        assert not odd, json.dumps(odd)
        assert took < 8, f"the deadline was 1.5 s, the replies took {took:.1f} s"
        await wait_until(lambda: _none(scans_running(lab)), 5, "every scan stopped by the server")
        await wl.count_effects()
        assert [r.effects for r in pays] == [0] * len(pays), "a timed-out write committed"
    finally:
        await lab.root.execute("UPDATE chaos_knob SET scan_rows = 0 WHERE id = 1")

    for scan in scans:
        scan.retry = False   # a read that timed out has nothing to check afterwards
    await wl.settle(timeout=10)              # the caller's retry path: same message ids
    await wl.run(pays, timeout=10)           # and each once more: the stored outcome
    row = await wl.finish(settle=False)
    wl.assert_clean(row)
    assert [r.effects for r in pays] == [1] * len(pays)
    assert all(r.codes()[-2:] == ["ok", "ok"] for r in pays), [r.codes() for r in pays]


async def _none(count: Awaitable[int]) -> bool:
    return await count == 0


async def test_8_already_expired_requests_never_reach_the_database(lab: Lab) -> None:
    stack = lab.stack("expired")
    await lab.start(stack)
    wl = lab.workload("8 already expired", stack, min_sent=25, retry_codes=frozenset())
    past = int(time.time() * 1000) - 5000
    for request in wl.mix(25):
        request.deadline_ms = past
    await wl.run(timeout=10)
    row = await wl.finish(settle=False)
    wl.assert_clean(row)
    assert row.sent == row.error == 25 and row.ok == 0
    for request in wl.requests:
        reply = request.final()
        assert reply is not None and reply["error"]["code"] == "DEADLINE_EXCEEDED", reply
        assert "nothing was run" in reply["error"]["message"]
    assert all(r.effects == 0 for r in wl.requests)
    keys = [scoped_key("customer", "pay", None, r.rid) for r in wl.requests if r.paid_at]
    holders = ", ".join(["%s"] * len(keys))
    assert await lab.root.scalar(f"SELECT COUNT(*) FROM request_log WHERE request_id IN ({holders})",
                                 keys) == 0, "an expired write reached its procedure"
