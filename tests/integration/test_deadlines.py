"""Deadlines end to end: an expired request never touches the database; a slow statement is
stopped by the server at the caller's deadline and answered DEADLINE_EXCEEDED."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiomysql
import aiormq
import pytest
from pamqp.commands import Basic

from beds.client import Client
from tests.support.services import AMQP_URL, MysqlDb, host_port
from tests.support.stack import NodeFactory, RunningNode, copy_templates
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]

SLOW_TEMPLATE = """
name = "slow"
datasource = "main"
[fields]
n = { type = "int" }
[ops.scan]
kind = "read"
procedure = "slow_scan"
params = ["n"]
"""
# A real scan (SLEEP() returns normally when interrupted, so it proves nothing): ~30 s here.
SLOW_PROCEDURE = """
CREATE OR REPLACE PROCEDURE slow_scan(IN p_n INT) SQL SECURITY DEFINER
SELECT COUNT(*) AS n FROM seq_1_to_1000000000 WHERE seq % 7 = p_n
"""


async def admin_exec(db: MysqlDb, *statements: str) -> list[tuple[Any, ...]]:
    host, port = host_port(db.admin_dsn, 3306)
    conn = await aiomysql.connect(host=host, port=port, user="root", db=db.database)
    rows: list[tuple[Any, ...]] = []
    async with conn.cursor() as cur:
        for statement in statements:
            await cur.execute(statement)
            rows = list(await cur.fetchall())
    conn.close()
    return rows


async def start_slow_node(node_factory: NodeFactory, mysql_db: MysqlDb, tmp_path: Path,
                          **overrides: Any) -> RunningNode:
    """A node serving film, customer and `slow.scan`; `overrides`: settings to change, by
    section (e.g. `node={"grace_seconds": 1}`, `datasources={"main": {"pool_max": 1}}`)."""
    await admin_exec(mysql_db, SLOW_PROCEDURE,
                     f"GRANT EXECUTE ON PROCEDURE slow_scan TO '{mysql_db.user}'@'%'")
    templates = copy_templates(tmp_path / "templates", "film.toml", "customer.toml")
    (templates / "slow.toml").write_text(SLOW_TEMPLATE)
    return await node_factory(templates=templates, **overrides)


@pytest.fixture
async def slow_node(node_factory: NodeFactory, mysql_db: MysqlDb, tmp_path: Path) -> RunningNode:
    return await start_slow_node(node_factory, mysql_db, tmp_path)


async def raw_call(exchange: str, key: str, body: dict[str, Any],
                   deadline_ms: int) -> dict[str, Any]:
    conn = await aiormq.connect(AMQP_URL)
    channel = await conn.channel()
    reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def on_reply(message: aiormq.abc.DeliveredMessage) -> None:
        reply.set_result(json.loads(message.body))

    await channel.basic_consume("amq.rabbitmq.reply-to", on_reply, no_ack=True)
    await channel.basic_publish(json.dumps(body).encode(), exchange=exchange, routing_key=key,
                                properties=Basic.Properties(
                                    reply_to="amq.rabbitmq.reply-to", correlation_id="d",
                                    headers={"x-deadline": deadline_ms}))
    try:
        return await asyncio.wait_for(reply, 30)
    finally:
        await conn.close()


async def test_an_expired_request_never_reaches_the_database(slow_node: RunningNode,
                                                             mysql_db: MysqlDb) -> None:
    email = f"late-{secrets.token_hex(3)}@example.com"
    body = {"template": "customer", "op": "create",
            "params": {"store_id": 1, "first_name": "L", "last_name": "L", "email": email}}
    reply = await raw_call(slow_node.stack.exchange, "customer.create", body,
                           int(time.time() * 1000) - 5000)
    assert reply["ok"] is False and reply["error"]["code"] == "DEADLINE_EXCEEDED"
    assert "nothing was run" in reply["error"]["message"]
    rows = await admin_exec(mysql_db, f"SELECT COUNT(*) FROM customer WHERE email = '{email}'")
    assert rows == [(0,)]


async def test_a_slow_statement_is_stopped_at_the_callers_deadline(slow_node: RunningNode,
                                                                  mysql_db: MysqlDb) -> None:
    body = {"template": "slow", "op": "scan", "params": {"n": 3}}
    reply = await raw_call(slow_node.stack.exchange, "slow.scan", body,
                           int(time.time() * 1000) + 1000)
    assert reply["ok"] is False and reply["error"]["code"] == "DEADLINE_EXCEEDED", reply
    assert "a write may or may not have committed" in reply["error"]["message"]

    async def scan_gone() -> bool:   # the server stopped the statement; nothing runs on
        rows = await admin_exec(mysql_db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                          "WHERE INFO LIKE '%seq_1_to_1000000000%' "
                                          "AND INFO NOT LIKE '%PROCESSLIST%'")
        return rows == [(0,)]
    await wait_for(scan_gone, 5)
    # and the node serves on
    async with Client(AMQP_URL, slow_node.stack.exchange) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data


async def scans_running(db: MysqlDb) -> int:
    rows = await admin_exec(db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                "WHERE INFO LIKE '%seq_1_to_1000000000%' "
                                "AND INFO NOT LIKE '%PROCESSLIST%'")
    return int(rows[0][0])


async def test_a_request_that_waited_out_its_deadline_for_a_connection_never_runs(
        node_factory: NodeFactory, mysql_db: MysqlDb, tmp_path: Path) -> None:
    # F7: the time left used to be taken before the pool wait, so a write could start after its
    # caller gave up. One connection, held by a 6 s scan; a write with 1 s waits for it.
    node = await start_slow_node(node_factory, mysql_db, tmp_path,
                                 datasources={"main": {"pool_min": 1, "pool_max": 1}})
    exchange = node.stack.exchange
    scan = asyncio.ensure_future(raw_call(exchange, "slow.scan", {
        "template": "slow", "op": "scan", "params": {"n": 2}}, int(time.time() * 1000) + 6000))
    await wait_for(lambda: _positive(scans_running(mysql_db)), 10)
    email = f"waited-{secrets.token_hex(3)}@example.com"
    reply = await raw_call(exchange, "customer.create", {
        "template": "customer", "op": "create",
        "params": {"store_id": 1, "first_name": "W", "last_name": "W", "email": email}},
        int(time.time() * 1000) + 1000)
    assert reply["ok"] is False and reply["error"]["code"] == "DEADLINE_EXCEEDED", reply
    assert reply["error"]["details"]["ran"] is False
    assert (await scan)["error"]["code"] == "DEADLINE_EXCEEDED"
    # the connection is free again, and the write never ran after its caller gave up
    async with Client(AMQP_URL, exchange) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data
    rows = await admin_exec(mysql_db, f"SELECT COUNT(*) FROM customer WHERE email = '{email}'")
    assert rows == [(0,)]


async def _positive(count: Awaitable[int]) -> bool:
    return bool(await count)
