"""Idempotency under duplicates (scenarios 13 and 15): the same write delivered several times, at
once and later; concurrent distinct writes; a caller that leaves before its reply."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.lab import Lab
from tests.chaos.workload import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos,
              pytest.mark.chaos_fast]


async def test_13_same_write_delivered_twice_concurrently_and_sequentially(lab: Lab) -> None:
    """Each pay is published 4 times at once (two nodes consume the queue, so copies race on
    both) and once more after they were answered: one effect, and every reply carries the same
    payment id."""
    stack = lab.stack("dup")
    await lab.start(stack)
    await lab.start(stack)
    wl = lab.workload("13 same write, 4 concurrent copies + 1 later", stack, min_sent=30)
    pays = [wl.pay(customer_id=1 + i % 5) for i in range(30)]
    await wl.run([p for p in pays for _ in range(4)], concurrency=120, timeout=15)
    await wl.run(pays, timeout=15)
    row = await wl.finish()
    wl.assert_clean(row)
    assert row.ok == row.sent == len(pays)
    assert all(r.effects == 1 for r in pays)
    assert all(r.codes() == ["ok"] * 5 for r in pays), [r.codes() for r in pays]


async def test_13b_concurrent_distinct_idempotent_writes_do_not_deadlock(lab: Lab) -> None:
    """Distinct idempotent pays at once, with no broker retries to hide a transient error: each
    is answered ok. A deadlock here means the idempotency procedure locks more rows than its own
    key — as it does when its key parameter and request_log.request_id differ in character set:
    the comparison cannot use the primary key, and the UPDATE locks every row it scans."""
    stack = lab.stack("nodeadlock", overrides={"brokers": {"wBroker": {"retries": 0}}})
    await lab.start(stack)
    wl = lab.workload("13b distinct concurrent pays, no broker retries", stack, min_sent=200,
                      retry_codes=frozenset())
    for i in range(200):
        wl.pay(customer_id=1 + i % 5)
    await wl.run(concurrency=48, timeout=15)
    row = await wl.finish()
    wl.assert_clean(row)
    failed = [r.final() for r in wl.requests if r.code() != "ok"]
    (param, column), = await lab.root.rows(
        "SELECT p.CHARACTER_SET_NAME, c.CHARACTER_SET_NAME "
        "FROM information_schema.PARAMETERS p JOIN information_schema.COLUMNS c "
        "ON c.TABLE_SCHEMA = p.SPECIFIC_SCHEMA AND c.TABLE_NAME = 'request_log' "
        "AND c.COLUMN_NAME = 'request_id' "
        "WHERE p.SPECIFIC_SCHEMA = DATABASE() AND p.SPECIFIC_NAME = 'payment_record' "
        "AND p.PARAMETER_NAME = 'p_request_id'")
    assert not failed, f"{len(failed)} of {len(wl.requests)} concurrent pays failed: {failed[0]}"
    assert param == column, (
        f"payment_record(p_request_id {param}) vs request_log.request_id {column}: the key "
        "lookup cannot use the primary key (deadlocks and full scans under concurrency)")


async def test_15_caller_disconnects_before_its_reply(lab: Lab) -> None:
    """Pays and non-idempotent count_pays wait mid-call (the payment table is locked) while their
    caller disconnects; then the database frees up. The node answers into the void without
    blocking, acks everything, keeps serving; each count_pay ran once, and a new caller retrying
    the pays with the same request ids gets the stored outcomes."""
    stack = lab.stack("leaver")
    await lab.start(stack)
    wl = lab.workload("15 caller gone before its reply", stack, min_sent=16)
    pays = [wl.pay(customer_id=1 + i % 5) for i in range(10)]
    counted = [wl.count_pay(customer_id=1 + i % 5) for i in range(5)]
    leaver = lab.caller(stack)
    async with lab.root.lock_tables("payment WRITE"):
        sending = asyncio.create_task(wl.run(pays + counted, caller=leaver, timeout=30))

        async def all_waiting() -> bool:
            return sum("metadata lock" in s for _, _, s, _ in await lab.root.sessions()) == 15

        await wait_until(all_waiting, 10, "15 writes waiting on the table lock")
        await leaver.close()
        await sending
    assert not any(r.replies for r in pays + counted), "a reply arrived although the table was locked"

    await wl.quiesce(within=15)   # answered into the void and acked: nothing blocks
    probe = wl.read(7)
    await wl.run([probe], timeout=5)
    assert probe.code() == "ok"

    await wl.count_effects()
    await wl.collect_dead()
    assert [r.effects for r in pays + counted] == [1] * 15, (
        f"the writes did not complete: effects {[r.effects for r in pays + counted]}, "
        f"dead-lettered {[r.dead for r in pays + counted]}")
    row = await wl.finish()       # the new caller's retries: same message ids
    wl.assert_clean(row)
    assert row.ok == 11 and row.sent == 16
    assert all(r.attempts == 2 and r.codes() == ["ok"] for r in pays)
    assert all(r.attempts == 1 and r.closed_cids == r.sent_cids for r in counted)
