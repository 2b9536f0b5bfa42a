"""Who may steer the cluster (scenario 21; finding F6): `drain` sent to every node through
`node.all` by the node account itself (not an operator), by a sender without user_id, and by an
operator who did not say "all". Every node refuses each, and the cluster serves on under load;
the operator's own drain of one named node works (the refusals are not a broken channel).
Operators are a RabbitMQ user made for the scenario and deleted after it."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiormq
import pytest
from pamqp.commands import Basic

from tests.chaos.broker import RabbitCtl
from tests.chaos.lab import ChaosStack, Lab
from tests.support.services import AMQP_URL, SESSION, host_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]
OPERATOR = f"chaos-operator-{SESSION}"
NODES = ("chaos-21-a", "chaos-21-b")


@pytest.fixture
async def operator_url(shared_rabbitmqctl: RabbitCtl) -> AsyncIterator[str]:
    password = secrets.token_hex(8)
    host, port = host_port(AMQP_URL, 5672)
    await shared_rabbitmqctl("add_user", OPERATOR, password)
    try:
        await shared_rabbitmqctl("set_permissions", "-p", "/", OPERATOR, "^$", "^beds-test-.*",
                                 "^$")
        yield f"amqp://{OPERATOR}:{password}@{host}:{port}/"
    finally:
        await shared_rabbitmqctl("delete_user", OPERATOR)


async def command(stack: ChaosStack, url: str, user_id: str | None, key: str,
                  body: dict[str, Any], window: float = 2.0) -> list[dict[str, Any]]:
    """Publish one control command as `user_id` and gather the answers for `window` s."""
    answers: list[dict[str, Any]] = []
    cid = uuid.uuid4().hex

    async def on_answer(message: Any) -> None:
        if message.header.properties.correlation_id == cid:
            answers.append(json.loads(message.body))

    conn = await aiormq.connect(url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        await channel.basic_consume("amq.rabbitmq.reply-to", on_answer, no_ack=True)
        confirm = await channel.basic_publish(
            json.dumps(body).encode(), exchange=stack.settings.ops.control_exchange,
            routing_key=key, properties=Basic.Properties(
                reply_to="amq.rabbitmq.reply-to", correlation_id=cid, user_id=user_id,
                content_type="application/json"))
        assert isinstance(confirm, Basic.Ack), confirm
        await asyncio.sleep(window)
    finally:
        await conn.close()
    return answers


def codes(answers: list[dict[str, Any]]) -> list[str]:
    return sorted("ok" if a.get("ok") else str((a.get("error") or {}).get("code"))
                  for a in answers)


async def test_21_control_commands_from_non_operators_are_refused(lab: Lab,
                                                                  operator_url: str) -> None:
    stack = lab.stack("control", overrides={"ops": {"operators": [OPERATOR]}})
    nodes = [await lab.spawn(lab.env_variant(stack, name)) for name in NODES]
    wl = lab.workload("21 drain to node.all from the node account / anonymous / without all",
                      stack, min_sent=150)
    node_user = urlsplit(stack.url).username   # the account every node connects with
    load = wl.load(workers=4)
    try:
        await load.progress(50)
        attempts = {
            "node account": await command(stack, stack.url, node_user, "node.all",
                                          {"cmd": "drain"}),
            "anonymous": await command(stack, stack.url, None, "node.all", {"cmd": "drain"}),
            "operator without all": await command(stack, operator_url, OPERATOR, "node.all",
                                                  {"cmd": "drain"}),
        }
        assert codes(attempts["node account"]) == ["FORBIDDEN"] * 2, attempts
        assert codes(attempts["anonymous"]) == ["FORBIDDEN"] * 2, attempts
        assert codes(attempts["operator without all"]) == ["NEEDS_ALL"] * 2, attempts
        await lab.wait_serving(stack, nodes=2, within=5)          # nobody drained
        await load.progress(50)
        # The operator, naming one node: obeyed (the refusals above were authorisation).
        drained = await command(stack, operator_url, OPERATOR, f"node.{NODES[0]}",
                                {"cmd": "drain"})
        assert codes(drained) == ["ok"], drained
        resumed = await command(stack, operator_url, OPERATOR, f"node.{NODES[0]}",
                                {"cmd": "resume"})
        assert codes(resumed) == ["ok"], resumed
        await lab.wait_serving(stack, nodes=2, within=15)
        await load.progress(50)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    refused = sum(len(n.events("command.refused")) for n in nodes)
    assert refused == 6, f"{refused} refusals logged, expected 3 per node"
