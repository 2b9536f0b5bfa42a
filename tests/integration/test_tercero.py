"""The tercero role: a node started with `--role tercero` loads templates/tercero/ and serves
users (uBroker) and sessions (sBroker) end to end, against real RabbitMQ and MariaDB. The same
scenario runs on PostgreSQL in tests/contract/test_tercero.py."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiormq
import pytest

from beds.client import Client
from beds.errors import Conflict, DbError, ValidationFailed
from tests.support.services import AMQP_URL, queue_depth
from tests.support.stack import RunningNode, Stack, start_node
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]

USERS_OPS = ["by_email", "create", "fetch", "list", "set_status"]
SESSIONS_OPS = ["close", "close_all", "fetch", "open", "touch"]


@pytest.fixture
async def tercero(stack: Stack) -> Any:
    running = await start_node(stack, "tercero")
    yield running
    running.stop.set()
    await asyncio.wait_for(running.task, 30)


@pytest.fixture
async def client(tercero: RunningNode) -> Any:
    async with Client(AMQP_URL, tercero.stack.exchange, default_timeout=10) as c:
        yield c


async def users_and_sessions(client: Client) -> None:
    """Every op of users and sessions, as an application would use them."""
    email = f"T.{secrets.token_hex(4)}@Example.com"
    message_id = f"t-{secrets.token_hex(6)}"
    created = await client.call("users", "create", {"email": email, "display_name": "Tess"},
                                message_id=message_id)
    user_id = (created.out or {})["user_id"]
    assert created.meta["broker"] == "uBroker"
    # The message id is the idempotency key: the same message again is the same user.
    again = await client.call("users", "create", {"email": email, "display_name": "Tess"},
                              message_id=message_id)
    assert again.out == {"user_id": user_id}
    # Another request with the email in another case: taken (emails compare without case).
    with pytest.raises(Conflict, match="duplicate key"):
        await client.call("users", "create", {"email": email.lower(), "display_name": "T2"})

    fetched = await client.call("users", "fetch", {"user_id": user_id})
    (row,) = fetched.data
    assert (row["email"], row["display_name"], row["status"]) == (email, "Tess", "active")
    by_email = await client.call("users", "by_email", {"email": email.upper()})
    assert [r["user_id"] for r in by_email.data] == [user_id]
    listed = await client.call("users", "list", {"status": "active"}, limit=100)
    assert listed.meta["broker"] == "uBroker" and listed.data

    opened = await client.call("sessions", "open", {"user_id": user_id, "ttl_seconds": 3600})
    token = (opened.out or {})["session_token"]
    assert opened.meta["broker"] == "sBroker" and len(token) == 64 and opened.data == []
    session = await client.call("sessions", "fetch", {"token": token})
    (srow,) = session.data
    assert srow["user_id"] == user_id and "token" not in srow and srow["expires_at"]
    touched = await client.call("sessions", "touch", {"token": token, "ttl_seconds": 7200})
    assert touched.out == {"updated": 1}
    later = (await client.call("sessions", "fetch", {"token": token})).data[0]
    assert later["expires_at"] > srow["expires_at"]
    closed = await client.call("sessions", "close", {"token": token})
    assert closed.out == {"closed": 1}
    assert (await client.call("sessions", "fetch", {"token": token})).data == []
    assert (await client.call("sessions", "touch", {"token": token, "ttl_seconds": 60})
            ).out == {"updated": 0}

    # Two sessions, then every session of the user ends at once.
    for _ in range(2):
        await client.call("sessions", "open", {"user_id": user_id, "ttl_seconds": 600})
    assert (await client.call("sessions", "close_all", {"user_id": user_id})).out == {"closed": 2}

    # Leaving active closes the sessions and refuses new ones.
    kept = ((await client.call("sessions", "open", {"user_id": user_id, "ttl_seconds": 600})
             ).out or {})["session_token"]
    assert (await client.call("users", "set_status", {"user_id": user_id, "status": "suspended"})
            ).out == {"updated": 1}
    assert (await client.call("users", "set_status", {"user_id": user_id, "status": "suspended"})
            ).out == {"updated": 0}
    assert (await client.call("sessions", "fetch", {"token": kept})).data == []
    with pytest.raises(DbError, match="unknown or inactive user_id"):
        await client.call("sessions", "open", {"user_id": user_id, "ttl_seconds": 600})
    suspended = await client.call("users", "list", {"status": "suspended"}, limit=100)
    assert user_id in [r["user_id"] for r in suspended.data]


async def test_tercero_serves_users_and_sessions(client: Client) -> None:
    await users_and_sessions(client)


async def bad_input(client: Client) -> None:
    """Bad input is refused before the database, naming the field and what was expected; a
    token is never echoed."""
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("users", "create", {"email": "nope", "display_name": "x", "request_id": "a"},
         "params.email: expected string matching"),
        ("users", "list", {"status": "gone"},
         "params.status: expected one of 'active', 'suspended', 'closed', got 'gone'"),
        ("users", "fetch", {"user_id": 0}, "params.user_id: expected int >= 1, got 0"),
        ("sessions", "open", {"user_id": 1, "ttl_seconds": 5},
         "params.ttl_seconds: expected int between 60 and 2592000, got 5"),
        ("sessions", "open", {"user_id": 1}, "params.ttl_seconds: required parameter is missing"),
        ("sessions", "fetch", {"token": "secret-not-hex"},
         "params.token: expected string matching ^[0-9a-f]{64}$, got a value that does not "
         "fit (protected, not shown)"),
    ]
    for template, op, params, message in cases:
        with pytest.raises(ValidationFailed) as info:
            await client.call(template, op, params)
        assert str(info.value).startswith(message), (template, op, str(info.value))
        assert "secret-not-hex" not in str(info.value)


async def test_bad_input_names_the_field(client: Client) -> None:
    await bad_input(client)


async def test_users_ops_are_bound_to_the_ubroker_queue_and_sessions_to_sbroker(
        tercero: RunningNode) -> None:
    """With the node stopped (its queues stay), a request published to the exchange with each
    op's routing key lands in exactly the queue of the broker that serves it."""
    settings = tercero.stack.settings
    u_queue, s_queue = settings.brokers["uBroker"].queue, settings.brokers["sBroker"].queue
    keys = [f"users.{op}" for op in USERS_OPS] + [f"sessions.{op}" for op in SESSIONS_OPS]
    assert sorted(tercero.node.dispatcher.keys_for("uBroker")) == keys[:5]
    tercero.stop.set()
    await asyncio.wait_for(tercero.task, 30)
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        for key in keys:
            await channel.basic_publish(b"{}", exchange=tercero.stack.exchange, routing_key=key)
        await wait_for(lambda: _depths(u_queue, s_queue, (5, 5)), 10)
        assert await queue_depth(f"{tercero.stack.exchange}.unrouted") == 0
        for queue in (u_queue, s_queue):
            await channel.queue_purge(queue)
    finally:
        await conn.close()


async def _depths(u_queue: str, s_queue: str, expected: tuple[int, int]) -> bool:
    return (await queue_depth(u_queue), await queue_depth(s_queue)) == expected


async def test_the_appserver_role_does_not_see_tercero_templates(stack: Stack) -> None:
    from beds.node import Node

    app = Node.build(stack.settings, "appServer")
    assert app.registry.names() == ["customer", "film"]
    assert app.dispatcher.keys_for("uBroker") == app.dispatcher.keys_for("sBroker") == []
