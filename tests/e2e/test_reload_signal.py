"""SIGHUP reloads templates in a running `beds` process: a new op is callable without a restart."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import tomli_w

from beds.client import Client
from tests.support.node_process import spawn_node
from tests.support.services import AMQP_URL, ROOT
from tests.support.stack import Stack

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_sighup_makes_a_new_op_callable(stack: Stack, tmp_path: Path) -> None:
    import tomllib

    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(ROOT / "templates/film.toml", templates / "film.toml")
    data = tomllib.loads(stack.env_file.read_text())
    data["node"]["templates_dir"] = str(templates)
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps(data))
    node = await spawn_node(env)
    try:
        await node.wait_event("node.ready")
        shutil.copy(ROOT / "templates/customer.toml", templates / "customer.toml")
        node.proc.send_signal(signal.SIGHUP)
        await node.wait_event("templates.reloaded")
        (event,) = node.events("templates.reloaded")
        assert "customer.fetch" in event["bound"] and event["templates"] == ["customer", "film"]
        async with Client(AMQP_URL, stack.exchange) as client:
            reply = await client.call("customer", "fetch", {"customer_id": 1})
        assert reply.data[0]["email"] == "mary.smith@example.com"
    finally:
        assert await node.stop() == 0
