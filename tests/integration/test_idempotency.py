"""Idempotent writes: the same request delivered several times — concurrently and in sequence —
has one effect and gets the same reply. The key is the AMQP message_id unless params carry one;
request_log holds it scoped by op and caller (beds/idempotency.py)."""

from __future__ import annotations

import asyncio
import secrets

import aiomysql
import pytest

from beds.client import Client
from beds.idempotency import scoped_key
from tests.support.services import MysqlDb, host_port
from tests.support.stack import Stack

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def count(db: MysqlDb, sql: str, *args: object) -> int:
    host, port = host_port(db.admin_dsn, 3306)
    conn = await aiomysql.connect(host=host, port=port, user="root", db=db.database)
    async with conn.cursor() as cur:
        await cur.execute(sql, args)
        (n,) = await cur.fetchone()
    conn.close()
    return int(n)


async def test_concurrent_and_repeated_deliveries_have_one_effect(client: Client, mysql_db: MysqlDb) -> None:
    key = f"pay-{secrets.token_hex(6)}"
    paid_at = "2031-05-05T05:05:05"
    params = {"customer_id": 2, "amount": "3.00", "paid_at": paid_at}
    racing = await asyncio.gather(*(client.call("customer", "pay", params, message_id=key)
                                    for _ in range(8)))
    again = await client.call("customer", "pay", params, message_id=key)
    ids = {(r.out or {})["payment_id"] for r in [*racing, again]}
    assert len(ids) == 1, ids
    assert await count(mysql_db, "SELECT COUNT(*) FROM payment WHERE customer_id = 2 "
                                 "AND payment_date = %s", paid_at) == 1
    assert await count(mysql_db, "SELECT COUNT(*) FROM request_log WHERE request_id = %s",
                       scoped_key("customer", "pay", None, key)) == 1


async def test_an_explicit_request_id_wins_over_the_message_id(client: Client, mysql_db: MysqlDb) -> None:
    key = f"explicit-{secrets.token_hex(6)}"
    params = {"request_id": key, "customer_id": 3, "amount": "1.00",
              "paid_at": "2031-06-06T06:06:06"}
    first = await client.call("customer", "pay", params)          # each call: a new message_id
    second = await client.call("customer", "pay", params)
    assert first.out == second.out
    assert await count(mysql_db, "SELECT COUNT(*) FROM request_log WHERE request_id = %s",
                       scoped_key("customer", "pay", None, key)) == 1


async def test_different_requests_are_different_payments(client: Client) -> None:
    params = {"customer_id": 3, "amount": "2.00", "paid_at": "2031-07-07T07:07:07"}
    first = await client.call("customer", "pay", params)
    second = await client.call("customer", "pay", params)
    assert (first.out or {})["payment_id"] != (second.out or {})["payment_id"]


async def test_distinct_concurrent_writes_do_not_deadlock(stack: Stack) -> None:
    """Straight to the adapter, so broker retries cannot hide a deadlock: the key lookups must
    use the primary key (a charset mismatch once turned them into locking scans)."""
    from beds.node import Node
    from beds.protocol import Request

    node = Node.build(stack.settings, "appServer")
    adapter = node.adapters["main"]
    await adapter.open()
    try:
        async def pay(i: int) -> str:
            params = {"request_id": f"d-{secrets.token_hex(6)}", "customer_id": 1 + i % 5,
                      "amount": "1.00", "paid_at": "2031-08-08T08:08:08"}
            try:
                await node.dispatcher.dispatch(Request("customer", "pay", params), "wBroker")
            except Exception as exc:   # collected, so the assertion shows what went wrong
                return f"{type(exc).__name__}: {exc}"
            return "ok"
        outcomes = await asyncio.gather(*(pay(i) for i in range(48)))
    finally:
        await adapter.close()
    assert set(outcomes) == {"ok"}, [o for o in outcomes if o != "ok"][:3]
