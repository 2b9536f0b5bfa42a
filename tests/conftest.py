"""Shared fixtures: real services on localhost, a fresh namespace per test session.

A missing service skips the tests that need it, with the reason; under CI=true it FAILS them.
Every session gets its own exchange, queues, database and database account (names carry a random
session id) and removes them at the end, so runs never see each other's state.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiormq
import pytest
import tomli_w

from beds.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SESSION = secrets.token_hex(4)
AMQP_URL = os.environ.get("BEDS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MYSQL_ADMIN_DSN = os.environ.get("BEDS_TEST_MYSQL_ADMIN_DSN", "mysql://root@127.0.0.1:3306/")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def require_service(name: str, host: str, port: int) -> None:
    if _port_open(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    require_service("RabbitMQ", *host_port(AMQP_URL, 5672))
    return AMQP_URL


@dataclass(frozen=True)
class MysqlDb:
    database: str
    user: str
    password: str
    dsn: str
    admin_dsn: str

    def datasource(self) -> dict[str, str]:
        return {"engine": "mysql", "dsn": self.dsn, "admin_dsn": self.admin_dsn}


@pytest.fixture(scope="session")
def mysql_server() -> str:
    require_service("MariaDB", *host_port(MYSQL_ADMIN_DSN, 3306))
    return MYSQL_ADMIN_DSN


def _env_data(datasource: dict[str, str] | None, exchange: str) -> dict:
    base = load_settings(ROOT / "config/beds.toml", environ={"BEDS_MYSQL_PASSWORD": "x"})
    data: dict = {
        "node": {"name": f"test-{SESSION}", "grace_seconds": 10, "log_level": "info"},
        "amqp": {"url": AMQP_URL, "exchange": exchange, "dlx": f"{exchange}.dlx",
                 "dlq": f"{exchange}.dead", "reconnect_max_seconds": 1.0},
        "brokers": {name: {"queue": f"{exchange}.{name}"} for name in base.brokers},
        # The operations plane gets exchanges of its own too: a test's `status` broadcast must
        # reach only the nodes of that test. No HTTP ports unless a test asks for them.
        "ops": {"control_exchange": f"{exchange}.control", "events_exchange": f"{exchange}.events",
                "metrics_exchange": f"{exchange}.metrics", "logs_exchange": f"{exchange}.logs",
                "http_listen": ""},
        "admin": {"dashboard_listen": "", "syslog": ""},
    }
    # The shipped config runs no mBroker consumer (bulk ops are opt-in per node); test nodes
    # answer every op of the example templates, bulk ones included.
    data["brokers"]["mBroker"]["instances"] = 1
    if datasource is not None:
        # The warehouse datasource (segundo) gets a DSN of its own, with no ${BEDS_MYSQL_PASSWORD}
        # in it; tests that warehouse (test_warehouse.py) point it at a database.
        data["datasources"] = {"main": datasource,
                               "cool": {"dsn": "mysql://beds_test_unused@127.0.0.1:3306/unused"}}
    return data


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
    files = sorted((ROOT / "schema/mysql").glob("*.sql"))
    asyncio.run(schema_tool(adapter).apply_schema(files))
    yield db
    asyncio.run(_drop_mysql(adapter, db))


async def _drop_mysql(adapter: object, db: MysqlDb) -> None:
    import aiomysql

    from beds.adapters.base import parse_dsn

    admin = parse_dsn(adapter.settings, db.admin_dsn)  # type: ignore[attr-defined]
    conn = await aiomysql.connect(host=admin.host, port=admin.port or 3306,
                                  user=admin.user or "root", password=admin.password or "")
    async with conn.cursor() as cur:
        await cur.execute(f"DROP DATABASE IF EXISTS `{db.database}`")
        await cur.execute(f"DROP USER IF EXISTS '{db.user}'@'%'")
    conn.close()


@dataclass(frozen=True)
class Stack:
    """Settings for one isolated namespace (exchange + queues) over the session database."""

    settings: Settings
    env_file: Path
    exchange: str


def make_stack(datasource: dict[str, str] | None, tmp_path: Path, tag: str) -> Stack:
    """Settings whose exchange and queues are unique to this session and tag, with
    `datasources.main` replaced by `datasource` (engine, dsn, admin_dsn)."""
    exchange = f"beds-test-{SESSION}-{tag}"
    path = tmp_path / f"env-{tag}.toml"
    path.write_text(tomli_w.dumps(_env_data(datasource, exchange)))
    settings = load_settings(ROOT / "config/beds.toml", path, environ={"BEDS_MYSQL_PASSWORD": "x"})
    return Stack(settings, path, exchange)


async def delete_namespace(settings: Settings) -> None:
    """Remove the exchanges and queues a test stack declared."""
    from beds.testing.node import delete_namespace as delete

    await delete(settings, AMQP_URL)


async def queue_depth(queue: str) -> int:
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        ok = await channel.queue_declare(queue, passive=True)
        return int(ok.message_count or 0)
    finally:
        await conn.close()


async def consumer_count(queue: str) -> int:
    """RabbitMQ's own count of consumers on `queue`."""
    conn = await aiormq.connect(AMQP_URL)
    try:
        ok = await (await conn.channel()).queue_declare(queue, passive=True)
        return int(ok.consumer_count or 0)
    finally:
        await conn.close()


async def wait_for(predicate: object, timeout: float, interval: float = 0.05) -> None:
    """Poll an async or sync predicate until true; fail with a clear message at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
async def stack(rabbitmq: str, mysql_db: MysqlDb, tmp_path: Path) -> AsyncIterator[Stack]:
    s = make_stack(mysql_db.datasource(), tmp_path, secrets.token_hex(3))
    yield s
    await delete_namespace(s.settings)


@dataclass
class RunningNode:
    node: object
    stop: asyncio.Event
    task: asyncio.Task[None]
    stack: Stack


async def start_node(stack: Stack, role: str = "appServer") -> RunningNode:
    from beds.node import Node

    node = Node.build(stack.settings, role)
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop, handle_signals=False))
    ready = asyncio.ensure_future(node.ready.wait())
    await asyncio.wait({ready, task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()   # raise what stopped it
    assert node.ready.is_set(), "node did not become ready within 30s"
    return RunningNode(node, stop, task, stack)


@pytest.fixture
async def running(stack: Stack) -> AsyncIterator[RunningNode]:
    """An appServer node in this process, serving the session database."""
    running = await start_node(stack)
    yield running
    running.stop.set()
    await asyncio.wait_for(running.task, 30)


@pytest.fixture
async def client(running: RunningNode) -> AsyncIterator[object]:
    from beds.client import Client

    async with Client(AMQP_URL, running.stack.exchange, default_timeout=10) as c:
        yield c
