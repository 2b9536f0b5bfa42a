"""A database that accepts and never answers (F4, F7): every request with a deadline is answered
DEADLINE_EXCEEDED or DB_UNAVAILABLE, none `ok` after its deadline, and the node serves again
once the database does. The stall is real at the TCP level: a proxy between the node and
MariaDB stops passing bytes, connections stay open (a frozen server, not a dead one)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import pytest
from pamqp.commands import Basic

from beds.client import Client
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URL, MysqlDb
from tests.support.stack import NodeFactory, RunningNode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]

DEADLINE = 2.0
HANG = 3.0   # a correctness bound (an answer at all), not a performance claim: see the printout


@pytest.fixture
async def stalled_stack(node_factory: NodeFactory, mysql_db: MysqlDb,
                        mysql_proxy: TcpProxy) -> AsyncIterator[tuple[TcpProxy, RunningNode]]:
    node = await node_factory(datasource={**mysql_db.via(mysql_proxy.port, None), "pool_max": 4})
    yield mysql_proxy, node
    mysql_proxy.restore()
    await node.stopped()   # before its database goes away


class Caller:
    """Raw AMQP requests with an `x-deadline`, and when each answer arrived."""

    def __init__(self, channel: aiormq.abc.AbstractChannel, queue: str, exchange: str) -> None:
        self.channel, self.queue, self.exchange = channel, queue, exchange
        self.sent: dict[str, float] = {}
        self.answers: dict[str, tuple[float, dict[str, Any]]] = {}
        self.all_in = asyncio.Event()

    async def on_reply(self, message: aiormq.abc.DeliveredMessage) -> None:
        cid = message.header.properties.correlation_id or ""
        self.answers[cid] = (time.monotonic(), json.loads(message.body))
        if set(self.answers) >= set(self.sent):
            self.all_in.set()

    async def send(self, key: str, body: dict[str, Any]) -> None:
        cid = secrets.token_hex(6)
        self.sent[cid] = time.monotonic()
        self.all_in.clear()
        await self.channel.basic_publish(
            json.dumps(body).encode(), exchange=self.exchange, routing_key=key,
            properties=Basic.Properties(
                reply_to=self.queue, correlation_id=cid, message_id=cid,
                headers={"x-deadline": int((time.time() + DEADLINE) * 1000)}))


async def test_a_stalled_database_answers_every_request_by_its_deadline(
        stalled_stack: tuple[TcpProxy, RunningNode]) -> None:
    proxy, node = stalled_stack
    async with Client(AMQP_URL, node.stack.exchange, default_timeout=10) as client:
        # Pooled connections are open and idle when the server freezes.
        await asyncio.gather(*(client.call("film", "fetch", {"film_id": 1}) for _ in range(8)))
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        queue = (await channel.queue_declare(exclusive=True)).queue or ""
        caller = Caller(channel, queue, node.stack.exchange)
        await channel.basic_consume(queue, caller.on_reply, no_ack=True)
        proxy.stall()
        # More requests than connections: some wait on a busy pool, some on a handshake with
        # a server that never answers, some on a statement that never returns.
        for i in range(10):
            await caller.send("film.fetch", {"template": "film", "op": "fetch",
                                             "params": {"film_id": 1 + i % 5}})
        email = f"stall-{secrets.token_hex(3)}@example.com"
        await caller.send("customer.create", {"template": "customer", "op": "create", "params": {
            "store_id": 1, "first_name": "a", "last_name": "b", "email": email}})
        await asyncio.wait_for(caller.all_in.wait(), DEADLINE + HANG)

        late = []
        codes = set()
        for cid, sent in caller.sent.items():
            arrived, reply = caller.answers[cid]
            elapsed = arrived - sent
            code = "ok" if reply["ok"] else reply["error"]["code"]
            print(f"stalled database: {code} after {elapsed:.2f} s (deadline {DEADLINE} s)")
            codes.add(code)
            if elapsed > DEADLINE + HANG:
                late.append(elapsed)
        assert codes <= {"DEADLINE_EXCEEDED", "DB_UNAVAILABLE"}, codes
        assert not late

        proxy.restore()
        async with Client(AMQP_URL, node.stack.exchange, default_timeout=20) as client:
            fetched = await client.call("film", "fetch", {"film_id": 3})
            assert fetched.data[0]["FID"] == 3
    finally:
        await conn.close()
