"""The control plane against real RabbitMQ: `status` sees every node, `scale` changes RabbitMQ's
own consumer count, `drain`/`resume` stop and restart intake, a bad command is refused with a
message naming the argument, and node events reach the events exchange through the admin."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiormq
import msgspec
import pytest

from beds.client import Client
from beds.ops.commands import ADMIN_KEY, CommandClient, CommandFailed, open_command_client
from tests.support.services import (
    AMQP_URL,
    SESSION,
    consumer_count,
    private_queue,
)
from tests.support.stack import NodeFactory, RunningNode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


# The admin's log store and dashboard are other tests' business: this one needs the command
# inbox and the event relay only.
ADMIN_ROLE = {"admin": {"templates": "", "brokers": ["adminBrokerIn", "adminBrokerOut"]}}


Cluster = dict[str, RunningNode]


@pytest.fixture
def tag() -> str:
    """The namespace of this test's nodes."""
    return f"control-{secrets.token_hex(3)}"


async def start(node_factory: NodeFactory, tag: str, name: str, role: str = "appServer"
                ) -> RunningNode:
    return await node_factory(role=role, tag=tag, roles=ADMIN_ROLE,
                              node={"name": name, "grace_seconds": 2},
                              ops={"snapshot_seconds": 0.5})


@pytest.fixture
async def cluster(node_factory: NodeFactory, tag: str) -> Cluster:
    """An appServer and an admin on one namespace."""
    return {"app": await start(node_factory, tag, "app1"),
            "admin": await start(node_factory, tag, "adm1", "admin")}


@pytest.fixture
async def commands(cluster: Cluster) -> AsyncIterator[CommandClient]:
    settings = cluster["app"].stack.settings
    client, connection = await open_command_client(AMQP_URL, settings.ops.control_exchange, 10)
    yield client
    await connection.close()


async def test_status_shows_every_node_with_its_brokers(cluster: Cluster, commands: CommandClient) -> None:
    status = await commands.send(ADMIN_KEY, "status")
    nodes = {n["node"]: n for n in status["nodes"]}
    assert set(nodes) == {"app1", "adm1"}
    assert nodes["app1"]["role"] == "appServer" and nodes["adm1"]["role"] == "admin"
    assert nodes["app1"]["state"] == "ready"
    rbroker = nodes["app1"]["brokers"]["rBroker"]
    assert rbroker["instances"] == 2 and rbroker["consuming"] == 2
    assert status["queues"][rbroker["queue"]]["consumers"] == 2   # RabbitMQ's own count
    assert status["dead_letters"] == 0


async def test_scale_changes_rabbitmqs_consumer_count(cluster: Cluster, commands: CommandClient) -> None:
    queue = cluster["app"].stack.settings.brokers["rBroker"].queue
    assert await consumer_count(queue) == 2
    answer = await commands.send(ADMIN_KEY, "set-instances",
                                 {"node": "app1", "broker": "rBroker", "instances": 5})
    assert answer == {"node": "app1", "broker": "rBroker", "before": 2, "instances": 5,
                      "draining": False}
    await wait_for(lambda: _eq(consumer_count(queue), 5), 5)
    await commands.send(ADMIN_KEY, "set-instances",
                        {"node": "app1", "broker": "rBroker", "instances": 1})
    await wait_for(lambda: _eq(consumer_count(queue), 1), 5)
    async with Client(AMQP_URL, cluster["app"].stack.exchange) as client:
        assert (await client.call("film", "fetch", {"film_id": 1})).data   # still serving


async def _eq(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def test_drain_stops_intake_and_resume_restores_it(cluster: Cluster, commands: CommandClient) -> None:
    settings = cluster["app"].stack.settings
    queue = settings.brokers["rBroker"].queue
    drained = await commands.send(ADMIN_KEY, "drain", {"node": "app1"})
    assert drained["state"] == "draining"
    assert all(b["instances"] == 0 for b in drained["brokers"].values())
    assert await consumer_count(queue) == 0
    async with Client(AMQP_URL, cluster["app"].stack.exchange) as client:
        pending = asyncio.ensure_future(client.call("film", "fetch", {"film_id": 2}, timeout=10))
        await asyncio.sleep(0.3)
        assert not pending.done()   # queued in RabbitMQ, not lost and not answered
        resumed = await commands.send(ADMIN_KEY, "resume", {"node": "app1"})
        assert resumed["state"] == "ready"
        assert (await pending).data[0]["FID"] == 2
    assert await consumer_count(queue) == 2


async def test_bad_commands_are_refused_with_the_argument_named(cluster: Cluster, commands: CommandClient) -> None:
    with pytest.raises(CommandFailed, match=r"args\.instances: expected an integer from 0 to 256"):
        await commands.send(ADMIN_KEY, "set-instances",
                            {"node": "app1", "broker": "rBroker", "instances": -1})
    with pytest.raises(CommandFailed, match="runs no broker 'nope'"):
        await commands.send(ADMIN_KEY, "set-instances",
                            {"node": "app1", "broker": "nope", "instances": 1})
    with pytest.raises(CommandFailed, match="no node named 'ghost' is running"):
        await commands.send(ADMIN_KEY, "drain", {"node": "ghost"})
    with pytest.raises(CommandFailed, match="unknown command 'explode'"):
        await commands.send(ADMIN_KEY, "explode")
    assert (await commands.send(ADMIN_KEY, "ping"))["nodes"]   # the admin keeps serving


@contextlib.asynccontextmanager
async def events_of(settings: Any, node: str) -> AsyncIterator[tuple[Any, list[dict[str, Any]]]]:
    """(a channel, the events of `node` as they reach the events exchange)."""
    conn = await aiormq.connect(AMQP_URL)
    seen: list[dict[str, Any]] = []
    try:
        channel = await conn.channel()
        events = await private_queue(channel)
        await channel.queue_bind(events, settings.ops.events_exchange, routing_key=f"{node}.#")

        async def collect(message: aiormq.abc.DeliveredMessage) -> None:
            seen.append(msgspec.json.decode(message.body))

        await channel.basic_consume(events, collect, no_ack=True)
        yield channel, seen
    finally:
        await conn.close()


async def test_events_reach_the_events_exchange_through_the_admin(cluster: Cluster, commands: CommandClient) -> None:
    async with events_of(cluster["app"].stack.settings, "app1") as (_channel, seen):
        await commands.send(ADMIN_KEY, "set-instances",
                            {"node": "app1", "broker": "wBroker", "instances": 2})
        await wait_for(lambda: any(e["event"] == "scaled" for e in seen), 5)
    (scaled,) = [e for e in seen if e["event"] == "scaled"]
    assert scaled == {**scaled, "node": "app1", "role": "appServer", "broker": "wBroker",
                      "before": 1, "instances": 2}


async def test_an_event_carrying_event_name_is_relayed_not_wedged(cluster: Cluster, commands: CommandClient) -> None:
    # L8: the relay logged **event beside event_name=...: TypeError, never settled; 64 of them
    # (its prefetch) wedged it.
    settings = cluster["app"].stack.settings
    async with events_of(settings, "app1") as (channel, seen):
        for i in range(70):
            await channel.basic_publish(
                msgspec.json.encode({"event": "odd", "event_name": "x", "n": i}),
                exchange=settings.ops.control_exchange, routing_key="event.app1.odd")
        await commands.send(ADMIN_KEY, "set-instances",
                            {"node": "app1", "broker": "wBroker", "instances": 2})
        await wait_for(lambda: any(e["event"] == "scaled" for e in seen), 10)
    assert len([e for e in seen if e["event"] == "odd"]) == 70


async def test_a_second_node_of_the_same_name_is_told_at_start(cluster: Cluster,
                                                                node_factory: NodeFactory,
                                                                tag: str) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await start(node_factory, tag, "app1")
    (taken,) = [e for e in logs if e["event"] == "node.name_taken"]
    assert taken["node"] == "app1" and len(taken["others"]) == 1
    assert "BEDS_NODE_NAME" in taken["hint"]


async def test_a_lost_connection_restarts_brokers_and_says_so(cluster: Cluster, commands: CommandClient) -> None:
    """The consume connection dies under the appServer: its brokers come back by themselves,
    `broker_restarted` events reach the events exchange, and the restart counters move."""
    app = cluster["app"]
    settings = app.stack.settings
    conn = await aiormq.connect(AMQP_URL)
    seen: list[dict[str, Any]] = []
    try:
        channel = await conn.channel()
        events = await private_queue(channel)
        await channel.queue_bind(events, settings.ops.events_exchange,
                                 routing_key="app1.broker_restarted")

        async def collect(message: aiormq.abc.DeliveredMessage) -> None:
            seen.append(msgspec.json.decode(message.body))

        await channel.basic_consume(events, collect, no_ack=True)
        assert app.node._link is not None
        consume = await app.node._link.connection()   # the node's consuming connection
        await consume.close()
        queue = settings.brokers["rBroker"].queue
        await wait_for(lambda: _eq(consumer_count(queue), 2), 15)
        await wait_for(lambda: {e["broker"] for e in seen} >= {"rBroker", "wBroker"}, 15)
    finally:
        await conn.close()
    described = await app.node.describe()
    assert described["restarts"]["rBroker"] >= 2   # both instances
    async with Client(AMQP_URL, app.stack.exchange) as client:
        assert (await client.call("film", "fetch", {"film_id": 7})).data


NODE_ACCOUNT = f"node-svc-{SESSION}"


@pytest.fixture(scope="module")
def node_account(rabbitmq: str) -> Iterator[str]:
    """A RabbitMQ user with the node account's rights on the test namespaces (docs/security.md),
    not listed in [ops] operators; yields its URL."""
    from tests.integration.test_authorization import rabbitmqctl, url_for

    password = secrets.token_hex(8)
    rabbitmqctl("add_user", NODE_ACCOUNT, password)
    rabbitmqctl("set_permissions", "-p", "/", NODE_ACCOUNT, "^$", "^beds-test-.*", "^$")
    yield url_for(NODE_ACCOUNT, password)
    rabbitmqctl("delete_user", NODE_ACCOUNT)


async def test_a_non_operator_cannot_drain_even_with_the_node_account(
        cluster: Cluster, commands: CommandClient, node_account: str) -> None:
    # F6: anyone who could publish to the control exchange could drain every node.
    settings = cluster["app"].stack.settings
    client, connection = await open_command_client(node_account, settings.ops.control_exchange, 5)
    try:
        with pytest.raises(CommandFailed, match=f"user '{NODE_ACCOUNT}' is not in \\[ops\\] "
                                                "operators") as direct:
            await client.send("node.app1", "drain", every=True)
        assert direct.value.code == "FORBIDDEN"
        with pytest.raises(CommandFailed) as via_admin:
            await client.send(ADMIN_KEY, "drain", {"node": "app1"})
        assert via_admin.value.code == "FORBIDDEN"
        assert (await client.send("node.app1", "status"))["state"] == "ready"   # read-only: ok
    finally:
        await connection.close()
    status = await commands.send("node.app1", "status")
    assert status["state"] == "ready" and not cluster["app"].node.draining


async def test_a_command_without_user_id_is_refused(cluster: Cluster) -> None:
    # RabbitMQ checks user_id only when it is set: a command without it proves nothing.
    settings = cluster["app"].stack.settings
    client, connection = await open_command_client(AMQP_URL, settings.ops.control_exchange, 5)
    client.user_id = None
    try:
        with pytest.raises(CommandFailed, match="a sender without user_id") as info:
            await client.send("node.app1", "set-instances",
                              {"broker": "rBroker", "instances": 0})
        assert info.value.code == "FORBIDDEN"
    finally:
        await connection.close()
    assert await consumer_count(settings.brokers["rBroker"].queue) == 2


async def test_draining_every_node_takes_an_explicit_all(cluster: Cluster, commands: CommandClient) -> None:
    # F6: one message to node.all used to drain the whole cluster.
    answers = await commands.gather("node.all", "drain", window=1.0)
    assert answers and all(a["error"]["code"] == "NEEDS_ALL" for a in answers)
    assert not cluster["app"].node.draining
    with pytest.raises(CommandFailed, match="name a node, or say all"):
        await commands.send(ADMIN_KEY, "reload-templates")
    answers = await commands.gather("node.all", "drain", window=1.0, every=True)
    assert answers and all(a["ok"] for a in answers)
    assert cluster["app"].node.draining
    for node in ("app1", "adm1"):   # the admin drained too: its inbox is one of its brokers
        await commands.send(f"node.{node}", "resume")
    reloaded = await commands.send(ADMIN_KEY, "reload-templates", every=True)
    assert sorted(a["result"]["node"] for a in reloaded["answers"]) == ["adm1", "app1"]
