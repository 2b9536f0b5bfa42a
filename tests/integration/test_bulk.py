"""Bulk ops through a real node, RabbitMQ and MariaDB: customer.import is consumed from the
mBroker queue (test nodes run one mBroker instance; the shipped config runs none), its rows run
in one transaction, and with no mBroker consumer a bulk request waits in its queue.
PostgreSQL and DynamoDB run the same op in the contract suite (tests/contract/)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import pytest

from beds.client import Client
from beds.errors import DbError, ValidationFailed, WrongBroker
from beds.protocol import encode_request
from tests.support.mysql import query
from tests.support.services import AMQP_URL, MysqlDb, queue_depth
from tests.support.stack import RunningNode, Stack, start_node
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


@pytest.fixture(autouse=True)
async def forget_imports(mysql_db: MysqlDb) -> AsyncIterator[None]:
    """The session database is shared: hundreds of imported customers would push other tests'
    rows off the pages they read."""
    yield
    await query(mysql_db.database, "DELETE FROM customer WHERE last_name = 'Import'")


def rows(n: int, tag: str) -> list[dict[str, object]]:
    return [{"store_id": 1 + i % 2, "first_name": f"Bulk{i}", "last_name": "Import",
             "email": f"bulk-{tag}-{i}@example.com", "pin": "4321"} for i in range(n)]


async def test_an_import_is_consumed_from_the_mbroker_queue(client: Client) -> None:
    tag = secrets.token_hex(4)
    reply = await client.call("customer", "import", {"rows": rows(300, tag)})
    assert reply.meta["broker"] == "mBroker" and reply.meta["rows"] == 300
    ids = [row["customer_id"] for row in reply.data]
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert all(set(row) == {"customer_id"} for row in reply.data)   # the pin never comes back
    fetched = await client.call("customer", "fetch", {"customer_id": ids[-1]})
    assert fetched.data[0]["email"] == f"bulk-{tag}-299@example.com"


async def test_a_failing_row_rolls_back_every_row(client: Client) -> None:
    tag = secrets.token_hex(4)
    batch = rows(50, tag)
    batch[37] = {**batch[37], "store_id": 99}
    with pytest.raises(DbError) as info:
        await client.call("customer", "import", {"rows": batch})
    assert str(info.value) == "rows[37]: database error: unknown store_id"
    assert {k: info.value.details[k] for k in ("errno", "row", "committed")} == {
        "errno": 1644, "row": 37, "committed": 0}
    # Nothing stayed: the same emails import cleanly afterwards.
    batch[37] = {**batch[37], "store_id": 1}
    assert len((await client.call("customer", "import", {"rows": batch})).data) == 50


async def test_rows_are_checked_before_any_runs(client: Client) -> None:
    batch = rows(3, secrets.token_hex(4))
    batch[2] = {**batch[2], "pin": "x" * 65}
    with pytest.raises(ValidationFailed) as info:
        await client.call("customer", "import", {"rows": batch})
    assert str(info.value).startswith("params.rows[2].pin: expected string of at most 64 ")
    assert "xxx" not in str(info.value)
    with pytest.raises(ValidationFailed, match=r"^params.rows: expected a list of 1 to 500 "):
        await client.call("customer", "import", {"rows": rows(501, "too-many")})


async def test_a_bulk_request_on_the_write_queue_is_refused(running: RunningNode,
                                                             client: Client) -> None:
    w_queue = running.stack.settings.brokers["wBroker"].queue
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        await channel.basic_consume("amq.rabbitmq.reply-to", _collect, no_ack=True)
        body = encode_request("customer", "import", {"rows": rows(1, "wrong")})
        await channel.basic_publish(body, exchange="", routing_key=w_queue,
                                    properties=aiormq.spec.Basic.Properties(
                                        reply_to="amq.rabbitmq.reply-to", correlation_id="w1"))
        await wait_for(lambda: REPLIES, 10)
    finally:
        await conn.close()
    error = WrongBroker(REPLIES[0]["error"]["message"])
    assert str(error).startswith("op: customer.import (bulk) is served by mBroker, not by wBroker")


REPLIES: list[dict[str, Any]] = []


async def _collect(message: aiormq.abc.DeliveredMessage) -> None:
    REPLIES.append(json.loads(message.body))


async def test_without_an_mbroker_consumer_a_bulk_request_waits(stack: Stack) -> None:
    """The shipped default: mBroker has 0 instances, its queue is declared and bound, and a
    bulk request waits there for a node that runs one."""
    brokers = dict(stack.settings.brokers)
    brokers["mBroker"] = dataclasses.replace(brokers["mBroker"], instances=0)
    settings = dataclasses.replace(stack.settings, brokers=brokers)
    node = await start_node(dataclasses.replace(stack, settings=settings))
    queue = settings.brokers["mBroker"].queue
    conn = await aiormq.connect(AMQP_URL)
    try:
        body = encode_request("customer", "import", {"rows": rows(1, secrets.token_hex(4))})
        await (await conn.channel()).basic_publish(body, exchange=stack.exchange,
                                                   routing_key="customer.import")
        await wait_for(lambda: _depth_is(queue, 1), 10)
        await asyncio.sleep(0.5)   # no consumer takes it: the depth stays
        assert await queue_depth(queue) == 1
    finally:
        await (await conn.channel()).queue_purge(queue)
        await conn.close()
        node.stop.set()
        await asyncio.wait_for(node.task, 30)


async def _depth_is(queue: str, expected: int) -> bool:
    return await queue_depth(queue) == expected
