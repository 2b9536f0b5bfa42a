"""A module written by `beds client-gen` calls a real node (in this process, real RabbitMQ and
MariaDB), async over Client and blocking over SyncClient."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from beds import Client, SyncClient, ValidationFailed
from beds.cli import main
from tests.support.services import AMQP_URL, ROOT
from tests.support.stack import RunningNode
from tests.unit.test_client_gen import load

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_generated_methods_call_the_node(running: RunningNode, client: Client,
                                               tmp_path: Path) -> None:
    out = tmp_path / "api.py"
    assert main(["--config", str(ROOT / "config/beds.toml"), "client-gen",
                 "--python", str(out)]) == 0
    api = load(out)
    catalogue = api.Catalogue(client)
    reply = await catalogue.film.fetch({"film_id": 1})
    assert reply.data[0]["title"] == "Academy Dinosaur"
    page = await catalogue.film.list({"category": "Action"}, limit=2, offset=1)
    assert [r["FID"] for r in page.data] == [2, 3]
    with pytest.raises(ValidationFailed, match="params.film_id: expected int >= 1"):
        await catalogue.film.fetch({"film_id": 0})

    def blocking() -> int:
        with SyncClient(AMQP_URL, running.stack.exchange) as sync:
            return int(api.SyncCatalogue(sync).film.in_stock(
                {"film_id": 1, "store_id": 1}).out["film_count"])

    assert await asyncio.to_thread(blocking) == 2
