"""The tercero templates on every SQL engine: `beds templates check --role tercero` passes
against each engine's schema, and a tercero node serves the users and sessions scenario of
tests/integration/test_tercero.py (run there on MariaDB) on each engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from beds.cli import main
from beds.client import Client
from tests.contract.conftest import EngineDb
from tests.integration.test_tercero import bad_input, users_and_sessions
from tests.support.services import AMQP_URL, ROOT, delete_namespace
from tests.support.stack import make_stack, start_node


def test_tercero_templates_match_the_schema(engine_db: EngineDb, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["templates", "check", "--role", "tercero",
                 "--config", str(ROOT / "config/beds.toml"),
                 "--env", str(engine_db.env_file(tmp_path, ROOT / "templates"))])
    out, err = capsys.readouterr()
    assert (code, out) == (0, "")
    assert "2 templates, 10 ops checked: 0 errors, 0 warnings" in err


@pytest.mark.rabbitmq
async def test_a_tercero_node_serves_users_and_sessions(engine_db: EngineDb,
                                                        tmp_path: Path) -> None:
    stack = make_stack(engine_db.datasource(), tmp_path, f"tercero-{engine_db.engine}")
    node = await start_node(stack, "tercero")
    try:
        async with Client(AMQP_URL, stack.exchange, default_timeout=15) as client:
            await users_and_sessions(client)
            await bad_input(client)
    finally:
        node.stop.set()
        await asyncio.wait_for(node.task, 30)
        await delete_namespace(stack.settings)
