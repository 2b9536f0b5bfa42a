"""The contract suite's fixtures: every engine gets a fresh database with its `schema/<engine>/`
files applied, a node in this process serving the example templates from it, and a client. The
fixed script of calls (`script.SCRIPT`) runs once per engine per session; tests then check each
engine's replies against the expected values and against each other.

A missing server skips that engine's tests with the reason, and FAILS them under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import tomli_w

from beds.client import Client
from tests.conftest import (
    AMQP_URL,
    MYSQL_ADMIN_DSN,
    ROOT,
    SESSION,
    RunningNode,
    Stack,
    _env_data,
    delete_namespace,
    host_port,
    make_stack,
    require_service,
    start_node,
)
from tests.contract.script import SCRIPT

POSTGRES_ADMIN_DSN = os.environ.get("BEDS_TEST_POSTGRES_ADMIN_DSN",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = [pytest.param("mysql", marks=pytest.mark.mariadb, id="mysql"),
           pytest.param("postgres", marks=pytest.mark.postgres, id="postgres")]


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
        data = _env_data(self.datasource(**extra), f"beds-test-{SESSION}-unused")
        data["node"]["templates_dir"] = str(templates_dir)
        path = tmp_path / f"env-{self.engine}.toml"
        path.write_text(tomli_w.dumps(data))
        return path


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
    from beds.adapters import create_adapter

    adapter = create_adapter(_settings(db, tmp_path))
    await adapter.apply_schema(sorted((ROOT / "schema" / db.engine).glob("*.sql")))


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
        await _drop_mysql(db)


async def _drop_mysql(db: EngineDb) -> None:
    import aiomysql

    admin = urlsplit(db.admin_dsn)
    conn = await aiomysql.connect(host=admin.hostname or "127.0.0.1", port=admin.port or 3306,
                                  user=unquote(admin.username or "root"),
                                  password=unquote(admin.password or ""))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{db.database}`")
            await cur.execute(f"DROP USER IF EXISTS '{db.user}'@'%'")
    finally:
        conn.close()


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
