"""The contract suite's fixtures: every engine gets a fresh database with its `schema/<engine>/`
files applied, a node in this process serving the example templates from it, and a client. The
fixed script of calls (`script.SCRIPT`) runs once per engine per session; tests then check each
engine's replies against the expected values and against each other.

A missing server skips that engine's tests with the reason, and FAILS them under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from beds.client import Client
from tests.contract.dynamodb_server import MotoServer
from tests.contract.script import SCRIPT
from tests.support.services import (
    AMQP_URL,
    MYSQL_ADMIN_DSN,
    ROOT,
    SESSION,
    delete_namespace,
    host_port,
    missing,
    require_service,
)
from tests.support.sql import drop_sql_database
from tests.support.stack import RunningNode, Stack, make_stack, start_node, write_env_file

POSTGRES_ADMIN_DSN = os.environ.get("BEDS_TEST_POSTGRES_ADMIN_DSN",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = [pytest.param("mysql", marks=pytest.mark.mariadb, id="mysql"),
           pytest.param("postgres", marks=pytest.mark.postgres, id="postgres")]
# MongoDB and DynamoDB run the same script in test_mongodb.py / test_dynamodb.py, each marking
# the steps its engine cannot do; they are not in ENGINES, whose tests expect SQL error details.
NOSQL = ("mongodb", "dynamodb")
DYNAMODB_URL = os.environ.get("BEDS_TEST_DYNAMODB_URL")     # else a moto server per session
MONGO_URL = os.environ.get("BEDS_TEST_MONGO_URL")           # an admin URL; no default server
NO_MONGO = "no MongoDB server on this machine (set BEDS_TEST_MONGO_URL)"


@dataclass(frozen=True)
class EngineDb:
    """A database of one engine, with the example schema and a least-privilege account."""

    engine: str
    database: str
    user: str
    dsn: str
    admin_dsn: str

    def datasource(self, **extra: Any) -> dict[str, Any]:
        return {"engine": self.engine, "dsn": self.dsn, "admin_dsn": self.admin_dsn, **extra}

    def env_file(self, tmp_path: Path, templates_dir: Path, **extra: Any) -> Path:
        """An env file for `beds ... --env`: this database, templates from `templates_dir`."""
        return write_env_file(self.datasource(**extra), tmp_path / f"env-{self.engine}.toml",
                              templates=templates_dir)


@dataclass
class EngineRun:
    """One engine behind a running node, and its replies to the contract script."""

    db: EngineDb
    node: RunningNode
    client: Client
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        return self.db.engine


def _settings(db: EngineDb, tmp_path: Path) -> Any:
    return make_stack(db.datasource(), tmp_path, f"schema-{db.engine}").settings.datasources["main"]


async def _apply(db: EngineDb, tmp_path: Path) -> None:
    from beds.adapters import create_adapter, schema_tool

    adapter = create_adapter(_settings(db, tmp_path))
    suffix = "*.json" if db.engine in NOSQL else "*.sql"
    await schema_tool(adapter).apply_schema(sorted((ROOT / "schema" / db.engine).glob(suffix)))


# -- databases --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
async def mysql_contract_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineDb]:
    require_service("MariaDB", *host_port(MYSQL_ADMIN_DSN, 3306))
    host, port = host_port(MYSQL_ADMIN_DSN, 3306)
    name, user, password = f"beds_contract_{SESSION}", f"bc_{SESSION}", secrets.token_hex(12)
    db = EngineDb("mysql", name, user, f"mysql://{user}:{password}@{host}:{port}/{name}",
                  MYSQL_ADMIN_DSN)
    try:
        await _apply(db, tmp_path_factory.mktemp("mysql"))
        yield db
    finally:
        await drop_sql_database("mysql", db.admin_dsn, db.database, db.user)


@pytest.fixture(scope="session")
async def postgres_contract_db(
        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineDb]:
    require_service("PostgreSQL", *host_port(POSTGRES_ADMIN_DSN, 5432))
    host, port = host_port(POSTGRES_ADMIN_DSN, 5432)
    name, user, password = f"beds_contract_{SESSION}", f"bc_{SESSION}", secrets.token_hex(12)
    db = EngineDb("postgres", name, user,
                  f"postgresql://{user}:{password}@{host}:{port}/{name}", POSTGRES_ADMIN_DSN)
    try:
        await _apply(db, tmp_path_factory.mktemp("postgres"))
        yield db
    finally:
        await drop_postgres(db.admin_dsn, db.database, db.user)


async def drop_postgres(admin_dsn: str, database: str, user: str | None) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if user:
            await conn.execute(f'DROP ROLE IF EXISTS "{user}"')
    finally:
        await conn.close()


# -- a node per engine, and its replies to the script -------------------------------------------

async def _engine_run(db: EngineDb, tmp_path: Path) -> AsyncIterator[EngineRun]:
    stack: Stack = make_stack(db.datasource(), tmp_path, f"contract-{db.engine}")
    node = await start_node(stack)
    try:
        async with Client(AMQP_URL, stack.exchange, default_timeout=15) as client:
            run = EngineRun(db, node, client)
            for step in SCRIPT:   # in order: the writes build on each other
                run.replies[step.key] = await client.call_raw(
                    step.template, step.op, step.params, limit=step.limit, offset=step.offset)
            yield run
    finally:
        node.stop.set()
        await asyncio.wait_for(node.task, 30)
        await delete_namespace(stack.settings)


@pytest.fixture(scope="session")
async def mysql_run(rabbitmq: str, mysql_contract_db: EngineDb,
                    tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineRun]:
    async for run in _engine_run(mysql_contract_db, tmp_path_factory.mktemp("run-mysql")):
        yield run


@pytest.fixture(scope="session")
async def postgres_run(rabbitmq: str, postgres_contract_db: EngineDb,
                       tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineRun]:
    async for run in _engine_run(postgres_contract_db, tmp_path_factory.mktemp("run-postgres")):
        yield run


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> EngineRun:
    """Each engine in turn: the test runs once per engine."""
    run: EngineRun = request.getfixturevalue(f"{request.param}_run")
    return run


@pytest.fixture(params=ENGINES)
def engine_db(request: pytest.FixtureRequest) -> EngineDb:
    """Each engine's contract database in turn (no node)."""
    db: EngineDb = request.getfixturevalue(f"{request.param}_contract_db")
    return db


# -- MongoDB and DynamoDB -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[str]:
    """host:port of a DynamoDB-compatible server: BEDS_TEST_DYNAMODB_URL, else moto's server
    mode in a process of its own for this session."""
    if DYNAMODB_URL:
        host, port = host_port(DYNAMODB_URL, 8000)
        require_service("DynamoDB", host, port)
        yield f"{host}:{port}"
        return
    if not MotoServer.available():
        reason = "moto[server] is not installed (pip install 'moto[server]')"
        missing(reason)
    server = MotoServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def dynamodb_contract_db(dynamodb_server: str,
                               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineDb]:
    """The example schema in tables named beds_contract_<session>_*, removed afterwards."""
    prefix = f"beds_contract_{SESSION}_"
    dsn = dynamodb_dsn(dynamodb_server, prefix)
    db = EngineDb("dynamodb", prefix, "", dsn, dsn)
    try:
        await _apply(db, tmp_path_factory.mktemp("dynamodb"))
        yield db
    finally:
        await drop_dynamodb(db, tmp_path_factory.mktemp("dynamodb-drop"))


def dynamodb_dsn(server: str, prefix: str) -> str:
    """Test servers take any credentials, but some (DynamoDB Local) want them."""
    return f"dynamodb://beds:beds@{server}/{prefix}"


async def drop_dynamodb(db: EngineDb, tmp_path: Path) -> None:
    from beds.adapters.dynamodb.adapter import DynamoAdapter

    adapter = DynamoAdapter(_settings(db, tmp_path))
    try:
        for table in await dynamodb_tables(adapter, db.database):
            await adapter.call("delete_table", TableName=table)
    finally:
        await adapter.close()


async def dynamodb_tables(adapter: Any, prefix: str) -> list[str]:
    """Every table whose name starts with `prefix` (ListTables pages by 100)."""
    names: list[str] = []
    request: dict[str, Any] = {"ExclusiveStartTableName": prefix}
    while True:
        page = await adapter.call("list_tables", **request)
        names += page["TableNames"]
        if "LastEvaluatedTableName" not in page or not names[-1].startswith(prefix):
            return [n for n in names if n.startswith(prefix)]
        request["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]


@pytest.fixture(scope="session")
async def dynamodb_run(rabbitmq: str, dynamodb_contract_db: EngineDb,
                       tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineRun]:
    async for run in _engine_run(dynamodb_contract_db, tmp_path_factory.mktemp("run-dynamodb")):
        yield run


def mongo_app_dsn(admin_url: str, database: str, user: str, password: str) -> str:
    """The admin URL's hosts and options, with the application user and database."""
    parts = urlsplit(admin_url)
    hosts = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "authSource"]
    query.append(("authSource", database))
    return f"{parts.scheme}://{user}:{password}@{hosts}/{database}?{urlencode(query)}"


@pytest.fixture(scope="session")
async def mongodb_contract_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineDb]:
    """A fresh database with the example schema and its own user. MongoDB is the one engine
    without a server here or in CI: without BEDS_TEST_MONGO_URL its tests skip, even in CI."""
    if not MONGO_URL:
        pytest.skip(NO_MONGO)
    with contextlib.suppress(ValueError):    # several hosts (a replica set): no single port
        require_service("MongoDB", *host_port(MONGO_URL, 27017))
    name, user, password = f"beds_contract_{SESSION}", f"bc_{SESSION}", secrets.token_hex(12)
    db = EngineDb("mongodb", name, user, mongo_app_dsn(MONGO_URL, name, user, password),
                  MONGO_URL)
    try:
        await _apply(db, tmp_path_factory.mktemp("mongodb"))
        yield db
    finally:
        await drop_mongodb(db)


async def drop_mongodb(db: EngineDb) -> None:
    from motor.motor_asyncio import AsyncIOMotorClient

    client: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(db.admin_dsn)
    try:
        database = client[db.database]
        # Users and roles live in the admin database: dropping the database leaves them.
        await database.command({"dropAllUsersFromDatabase": 1})
        await database.command({"dropAllRolesFromDatabase": 1})
        await client.drop_database(db.database)
    finally:
        client.close()


@pytest.fixture(scope="session")
async def mongodb_run(rabbitmq: str, mongodb_contract_db: EngineDb,
                      tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineRun]:
    async for run in _engine_run(mongodb_contract_db, tmp_path_factory.mktemp("run-mongodb")):
        yield run
