"""Shared fixtures: real services on localhost, a fresh namespace per test session.

A missing service skips the tests that need it, with the reason; under CI=true it FAILS them.
Every session gets its own exchange, queues, database and database account (names carry a random
session id) and removes them at the end, so runs never see each other's state. Fixtures only:
the helpers they use are in tests/support/ (services, stack, waiting).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from beds.client import Client
from tests.support.proxy import TcpProxy
from tests.support.services import (
    AMQP_URL,
    MYSQL_ADMIN_DSN,
    ROOT,
    SESSION,
    MysqlDb,
    delete_namespace,
    host_port,
    require_service,
)
from tests.support.sql import drop_sql_database
from tests.support.stack import NodeFactory, RunningNode, Stack, make_stack, start_node

TESTS = Path(__file__).resolve().parent
TIMEOUTS = {"unit": 30.0, "chaos": 900.0}
"""Per-folder test timeouts in seconds (pytest-timeout), over the pyproject default of 300 s: a
hung unit test fails within seconds; a chaos scenario may first start private RabbitMQ and
database servers. A test's own `@pytest.mark.timeout` wins."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in TIMEOUTS and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUTS[folder]))


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    require_service("RabbitMQ", *host_port(AMQP_URL, 5672))
    return AMQP_URL


@pytest.fixture(scope="session")
def mysql_server() -> str:
    require_service("MariaDB", *host_port(MYSQL_ADMIN_DSN, 3306))
    return MYSQL_ADMIN_DSN


@pytest.fixture(scope="session")
def mysql_db(mysql_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MysqlDb]:
    """A fresh database with the example schema and its own least-privilege account."""
    from beds.adapters import schema_tool
    from beds.adapters.mysql.adapter import MysqlAdapter

    name = f"beds_test_{SESSION}"
    password = secrets.token_hex(12)
    host, port = host_port(mysql_server, 3306)
    db = MysqlDb(name, f"bt_{SESSION}", password,
                 f"mysql://bt_{SESSION}:{password}@{host}:{port}/{name}", mysql_server)
    settings = make_stack(db.datasource(), tmp_path_factory.mktemp("schema"), "schema").settings
    adapter = MysqlAdapter(settings.datasources["main"])
    asyncio.run(schema_tool(adapter).apply_schema(sorted((ROOT / "schema/mysql").glob("*.sql"))))
    yield db
    asyncio.run(drop_sql_database("mysql", db.admin_dsn, db.database, db.user))


@pytest.fixture
async def mysql_proxy(mysql_db: MysqlDb) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the session's MariaDB (`mysql_db.via(proxy.port)`): the test cuts
    or stalls it; the shared server itself is never stopped. A node on it must be stopped before
    this fixture ends (`await running.stopped()`), or it loses its database while draining."""
    host, port = host_port(mysql_db.admin_dsn, 3306)
    proxy = await TcpProxy(host, port).start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def stack(rabbitmq: str, mysql_db: MysqlDb, tmp_path: Path) -> AsyncIterator[Stack]:
    s = make_stack(mysql_db.datasource(), tmp_path, secrets.token_hex(3))
    yield s
    await delete_namespace(s.settings)


@pytest.fixture
async def running(stack: Stack) -> AsyncIterator[RunningNode]:
    """An appServer node in this process, serving the session database."""
    running = await start_node(stack)
    yield running
    await running.stopped()


@pytest.fixture
async def node_factory(rabbitmq: str, mysql_db: MysqlDb,
                       tmp_path: Path) -> AsyncIterator[NodeFactory]:
    """Nodes of this process built from keyword overrides of the test config (see
    tests/support/stack.py: make_stack), each on a namespace of its own; at the end of the test
    every node is stopped and its exchanges and queues removed. Calls with the same `tag` share
    one namespace (a cluster of nodes on one exchange)."""
    started: list[RunningNode] = []

    async def build(*, role: str = "appServer", templates: Path | None = None,
                    datasource: Mapping[str, Any] | None = None, tag: str | None = None,
                    **overrides: Any) -> RunningNode:
        tag = tag or secrets.token_hex(3)
        made = make_stack(mysql_db.datasource() if datasource is None else datasource,
                          tmp_path, tag, templates=templates, **overrides)
        try:
            node = await start_node(made, role)
        except BaseException:
            await delete_namespace(made.settings)
            raise
        started.append(node)
        return node

    yield build
    for node in started:   # all at once: nodes of one namespace drain side by side
        node.stop.set()
    try:
        await asyncio.gather(*(node.stopped() for node in started))
    finally:
        namespaces = {node.stack.exchange: node.stack.settings for node in started}
        for settings in namespaces.values():
            await delete_namespace(settings)


@pytest.fixture
async def client(running: RunningNode) -> AsyncIterator[Client]:
    async with Client(AMQP_URL, running.stack.exchange, default_timeout=10) as c:
        yield c
