"""Template and op names a caller sends to a real node: names no template could declare are
refused at decode, naming the field; unknown valid names are answered and counted under one
series; the node keeps serving (reliability audit F3)."""

from __future__ import annotations

import pytest

from beds.client import Client
from beds.errors import BadRequest, OpNotFound, TemplateNotFound
from beds.ops.metrics import UNKNOWN
from tests.support.services import AMQP_URL
from tests.support.stack import RunningNode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_names_outside_the_pattern_are_refused_and_unknown_ones_share_a_series(
        running: RunningNode) -> None:
    async with Client(AMQP_URL, running.stack.exchange) as client:
        reply = await client.call_raw("film", "fetch", {"film_id": 1})
        assert reply["ok"]
        with pytest.raises(BadRequest, match=r"^template: expected a name matching "
                                             r"\[A-Za-z_\]\[A-Za-z0-9_\]\{0,63\}.*\(200 chars\)"):
            await client.call("t" * 200, "fetch")   # lands in beds.unrouted
        with pytest.raises(BadRequest, match=r"^op: expected a name matching .*got 'x-y'"):
            await client.call("film", "x-y")
        for n in range(20):
            with pytest.raises(TemplateNotFound):
                await client.call(f"nosuch{n}", "fetch")
            with pytest.raises(OpNotFound):
                await client.call("film", f"nosuch{n}")
        assert (await client.call("film", "fetch", {"film_id": 1})).data   # still serving
    metrics = running.ops.metrics
    assert set(metrics.ops) == {("film", "fetch"), (UNKNOWN, UNKNOWN)}
    assert metrics.ops[(UNKNOWN, UNKNOWN)].outcomes == {
        "BAD_REQUEST": 2, "TEMPLATE_NOT_FOUND": 20, "OP_NOT_FOUND": 20}
