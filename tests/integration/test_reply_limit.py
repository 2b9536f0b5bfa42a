"""An oversized reply is an error reply, not a channel crash; the node serves on."""

from __future__ import annotations

import pytest

from beds.client import Client
from beds.errors import ReplyTooLarge
from tests.support.services import AMQP_URL
from tests.support.stack import NodeFactory

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_a_reply_over_the_cap_is_refused_cleanly(node_factory: NodeFactory) -> None:
    node = await node_factory(amqp={"max_reply_bytes": 600})
    async with Client(AMQP_URL, node.stack.exchange) as client:
        with pytest.raises(ReplyTooLarge, match="exceeds the limit of 600 bytes; ask for a "
                                                "smaller page"):
            await client.call("film", "list", {"category": "Action"}, limit=10)
        small = await client.call("film", "list", {"category": "Action"}, limit=1)
        assert [r["FID"] for r in small.data] == [1]
