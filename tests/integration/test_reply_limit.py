"""An oversized reply is an error reply, not a channel crash; the node serves on."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import tomli_w

from beds.client import Client
from beds.config import load_settings
from beds.errors import ReplyTooLarge
from tests.conftest import AMQP_URL, ROOT, MysqlDb, Stack, _env_data, delete_namespace, start_node

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_a_reply_over_the_cap_is_refused_cleanly(rabbitmq: str, mysql_db: MysqlDb,
                                                       tmp_path: Path) -> None:
    exchange = f"beds-test-limit-{secrets.token_hex(3)}"
    data = _env_data(mysql_db.datasource(), exchange)
    data["amqp"]["max_reply_bytes"] = 600
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps(data))
    node = await start_node(Stack(load_settings(ROOT / "config/beds.toml", env, environ={}),
                                  env, exchange))
    try:
        async with Client(AMQP_URL, exchange) as client:
            with pytest.raises(ReplyTooLarge, match="exceeds the limit of 600 bytes; ask for a "
                                                    "smaller page"):
                await client.call("film", "list", {"category": "Action"}, limit=10)
            small = await client.call("film", "list", {"category": "Action"}, limit=1)
            assert [r["FID"] for r in small.data] == [1]
    finally:
        node.stop.set()
        await node.task
        await delete_namespace(node.stack.settings)
