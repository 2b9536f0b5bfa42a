"""Live template reload: a new op becomes callable without a restart; a broken set is rejected
and the old set keeps serving; a removed op stops being routed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from beds.client import Client
from beds.errors import TemplateNotFound
from tests.support.services import AMQP_URL, MysqlDb
from tests.support.stack import NodeFactory, RunningNode, copy_templates
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]

EXTRA = """
name = "extra"
datasource = "main"
[fields]
film_id = { type = "int", min = 1 }
[ops.get]
kind = "read"
procedure = "PROCEDURE"
params = ["film_id"]
"""


@pytest.fixture
async def reloadable(node_factory: NodeFactory, tmp_path: Path) -> tuple[RunningNode, Path]:
    templates = copy_templates(tmp_path / "templates", "film.toml", "customer.toml")
    return await node_factory(templates=templates), templates


async def test_reload_adds_rejects_and_removes(reloadable: tuple[RunningNode, Path]
                                               ) -> None:
    running, templates = reloadable
    node = running.node
    async with Client(AMQP_URL, running.stack.exchange) as client:
        with pytest.raises(TemplateNotFound):
            await client.call("extra", "get", {"film_id": 1})

        (templates / "extra.toml").write_text(EXTRA.replace("PROCEDURE", "film_fetch"))
        assert await node.reload()
        assert (await client.call("extra", "get", {"film_id": 2})).data[0]["FID"] == 2

        # A set naming a procedure the database does not have is refused as a whole.
        (templates / "extra.toml").write_text(EXTRA.replace("PROCEDURE", "no_such_procedure"))
        (templates / "more.toml").write_text(EXTRA.replace('"extra"', '"more"').replace(
            "PROCEDURE", "film_fetch"))
        with capture_logs() as logs:
            assert not await node.reload()
        (event,) = [e for e in logs if e["event"] == "templates.reload_rejected"]
        assert "no_such_procedure" in event["error"] and "extra.toml" in event["error"]
        assert (await client.call("extra", "get", {"film_id": 3})).data[0]["FID"] == 3
        with pytest.raises(TemplateNotFound):
            await client.call("more", "get", {"film_id": 1})

        (templates / "more.toml").unlink()
        (templates / "extra.toml").write_text("name = [broken toml")
        assert not await node.reload()
        assert (await client.call("extra", "get", {"film_id": 4})).data[0]["FID"] == 4

        (templates / "extra.toml").unlink()
        assert await node.reload()
        with pytest.raises(TemplateNotFound):
            await client.call("extra", "get", {"film_id": 1})
        assert (await client.call("film", "fetch", {"film_id": 1})).data


async def _count_is(count: Any, expected: int) -> bool:
    return bool(await count == expected)


async def _connections_of(db: MysqlDb) -> int:
    from tests.integration.test_deadlines import admin_exec
    rows = await admin_exec(db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                f"WHERE USER = '{db.user}'")
    return int(rows[0][0])


async def test_a_rejected_reload_closes_the_datasource_it_opened(
        node_factory: NodeFactory, mysql_db: MysqlDb, tmp_path: Path) -> None:
    # F12: the new set's datasource was opened for the check and left open when the set was
    # rejected; every rejected reload leaked a pool.
    templates = copy_templates(tmp_path / "templates", "film.toml")
    running = await node_factory(
        templates=templates,
        datasources={"spare": {**mysql_db.datasource(), "pool_min": 3, "pool_max": 3}})
    before = await _connections_of(mysql_db)
    (templates / "extra.toml").write_text(
        EXTRA.replace('"main"', '"spare"').replace("PROCEDURE", "no_such_procedure"))
    with capture_logs() as logs:
        assert not await running.node.reload()
    (event,) = [e for e in logs if e["event"] == "templates.reload_rejected"]
    assert "no_such_procedure" in event["error"]   # rejected by the check, once open
    # The check's own connections close asynchronously on the server: wait for them; the
    # spare pool's three would stay for good.
    await wait_for(lambda: _count_is(_connections_of(mysql_db), before), 10)
