"""Acceptance of `beds scaffold`, per engine (MariaDB, PostgreSQL): the shipped five-field spec
(docs/specs/supplier.toml: generated key, unique email, soft delete, audit) and a natural-key
spec (dates, choices, hard delete) scaffold into a temp copy of the project layout;
`beds schema apply` (twice: the files are idempotent) and `beds templates check` pass on them
next to the example schema; a node serves every new op end to end, and a repeated create with
the same message_id has one effect."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tomli_w

from beds import Conflict, DbError, ValidationFailed
from beds.cli import main
from beds.client import Client
from beds.config import load_settings
from tests.conftest import (
    AMQP_URL,
    MYSQL_ADMIN_DSN,
    ROOT,
    SESSION,
    Stack,
    _env_data,
    delete_namespace,
    host_port,
    require_service,
    start_node,
)

POSTGRES_ADMIN_DSN = os.environ.get("BEDS_TEST_POSTGRES_ADMIN_DSN",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = [pytest.param("mysql", marks=[pytest.mark.mariadb, pytest.mark.rabbitmq], id="mysql"),
           pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.rabbitmq],
                        id="postgres")]
PARCEL = """\
name = "parcel"
description = "Parcels handed to carriers"
primary_key = "tracking_code"
[fields]
tracking_code = { type = "str", max_length = 20, pattern = '^[A-Z0-9]{8,20}$', example = "PX12345678" }
carrier       = { type = "str", choices = ["dhl", "ups", "post"] }
weight_kg     = { type = "decimal", min = 0.01, max = 999.99, precision = 5, scale = 2 }
ship_date     = { type = "date" }
delivered_at  = { type = "datetime", required = false }
fragile       = { type = "bool", required = false }
[ops]
fetch = true
list = { filters = ["carrier", "ship_date"], order_by = ["-ship_date", "tracking_code"], limit = 20 }
create = true
update = { fields = ["carrier", "delivered_at", "fragile"] }
delete = true
"""


@dataclass
class Project:
    engine: str
    root: Path
    env_file: Path
    database: str
    admin_dsn: str
    app_dsn: str
    apply: list[tuple[int, str]]     # exit code and output of each `beds schema apply`
    check: tuple[int, str]           # ... of `beds templates check`


async def beds(*args: str) -> tuple[int, str]:
    """`beds ARGS` in a thread (it runs its own event loop), stdout and stderr together."""
    def run() -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            code = main(list(args))
        return code, out.getvalue()
    return await asyncio.to_thread(run)


@pytest.fixture(scope="module", params=ENGINES)
async def project(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Project]:
    engine: str = request.param
    admin_dsn = MYSQL_ADMIN_DSN if engine == "mysql" else POSTGRES_ADMIN_DSN
    host, port = host_port(admin_dsn, 3306 if engine == "mysql" else 5432)
    require_service("MariaDB" if engine == "mysql" else "PostgreSQL", host, port)
    root = tmp_path_factory.mktemp(f"scaffold-{engine}")
    shutil.copytree(ROOT / "schema" / engine, root / "schema" / engine)
    shutil.copytree(ROOT / "templates", root / "templates")
    (root / "parcel.toml").write_text(PARCEL)
    for spec in (ROOT / "docs/specs/supplier.toml", root / "parcel.toml"):
        code, out = await beds("scaffold", str(spec), "--engine", engine, "--out", str(root))
        assert code == 0, out
    name, user = f"beds_scaffold_{SESSION}", f"bs_{SESSION}"
    password = secrets.token_hex(12)
    scheme = "mysql" if engine == "mysql" else "postgresql"
    datasource = {"engine": engine, "dsn": f"{scheme}://{user}:{password}@{host}:{port}/{name}",
                  "admin_dsn": admin_dsn, "schema_dir": str(root / "schema" / engine)}
    data = _env_data(datasource, f"beds-test-{SESSION}-scaffold-{engine}")
    data["node"]["templates_dir"] = str(root / "templates")
    env_file = root / "env.toml"
    env_file.write_text(tomli_w.dumps(data))
    try:
        applied = [await beds("schema", "apply", "--datasource", "main", "--env", str(env_file))
                   for _ in range(2)]
        checked = await beds("templates", "check", "--env", str(env_file))
        yield Project(engine, root, env_file, name, admin_dsn, datasource["dsn"], applied,
                      checked)
    finally:
        await _drop(engine, admin_dsn, name, user)


async def _drop(engine: str, admin_dsn: str, database: str, user: str) -> None:
    if engine == "mysql":
        import aiomysql

        host, port = host_port(admin_dsn, 3306)
        conn = await aiomysql.connect(host=host, port=port, user="root")
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
                await cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        finally:
            conn.close()
        return
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'DROP ROLE IF EXISTS "{user}"')
    finally:
        await conn.close()


async def count(project: Project, sql: str, as_app: bool = False) -> int:
    """One number, read as the admin (the application account may not read tables), or as the
    application account."""
    if project.engine == "mysql":
        import aiomysql

        parts = urlsplit(project.app_dsn if as_app else project.admin_dsn)
        conn = await aiomysql.connect(host=parts.hostname, port=parts.port or 3306,
                                      user=parts.username or "root",
                                      password=parts.password or "", db=project.database)
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
                (value,) = await cur.fetchone()
        finally:
            conn.close()
        return int(value)
    import asyncpg

    if as_app:
        conn = await asyncpg.connect(project.app_dsn)
    else:
        conn = await asyncpg.connect(project.admin_dsn, database=project.database)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def client(rabbitmq: str, project: Project) -> AsyncIterator[Client]:
    assert all(code == 0 for code, _ in project.apply), project.apply
    settings = load_settings(ROOT / "config/beds.toml", project.env_file,
                             environ={"BEDS_MYSQL_PASSWORD": "x"})
    stack = Stack(settings, project.env_file, settings.amqp.exchange)
    running = await start_node(stack)
    try:
        async with Client(AMQP_URL, stack.exchange, default_timeout=15) as c:
            yield c
    finally:
        running.stop.set()
        await asyncio.wait_for(running.task, 30)
        await delete_namespace(settings)


async def test_generated_files_pass_schema_apply_and_templates_check(project: Project) -> None:
    schema = project.root / "schema" / project.engine
    for code, out in project.apply:      # the second run proves the files are idempotent
        assert code == 0, out
        assert f"applied {schema / '100_supplier.sql'}" in out
        assert f"applied {schema / '110_parcel.sql'}" in out
    code, out = project.check
    assert code == 0, out
    assert "4 templates" in out and "0 errors, 0 warnings" in out, out


async def test_the_application_account_reaches_views_and_procedures_only(
        project: Project) -> None:
    assert all(code == 0 for code, _ in project.apply), project.apply
    assert await count(project, "SELECT COUNT(*) FROM supplier_list", as_app=True) >= 0
    for table in ("supplier", "supplier_audit", "request_log", "parcel"):
        with pytest.raises(Exception, match=r"(?i)denied"):
            await count(project, f"SELECT COUNT(*) FROM {table}", as_app=True)


async def test_supplier_ops_end_to_end(project: Project, client: Client) -> None:
    email = f"orders-{secrets.token_hex(4)}@acme.example"
    params: dict[str, Any] = {"name": "Acme Tools Ltd", "email": email,
                              "credit_limit": "1500.00", "active": True}
    key = f"create-{secrets.token_hex(6)}"
    first = await client.call("supplier", "create", params, message_id=key)
    again = await client.call("supplier", "create", params, message_id=key)
    assert first.out is not None and again.out == first.out      # one effect, same reply
    supplier_id = first.out["supplier_id"]
    listed = (await client.call("supplier", "list", {"active": True}, limit=50)).data
    assert [row["supplier_id"] for row in listed if row["email"] == email] == [supplier_id]

    (row,) = (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data
    assert (row["name"], row["credit_limit"], row["active"]) == ("Acme Tools Ltd", "1500.00", True)
    assert set(row) == {"supplier_id", "name", "email", "credit_limit", "active", "created_at",
                        "updated_at"}
    changed = await client.call("supplier", "update", {"supplier_id": supplier_id,
                                                       "credit_limit": "2000.50", "active": False})
    assert changed.out == {"updated": 1}
    (row,) = (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data
    assert (row["name"], row["credit_limit"], row["active"]) == ("Acme Tools Ltd", "2000.50", False)

    with pytest.raises(DbError, match="request_id was already used by another op"):
        await client.call("supplier", "update", {"supplier_id": supplier_id, "name": "X"},
                          message_id=key)
    with pytest.raises(Conflict):
        await client.call("supplier", "create", params)           # the email is unique
    with pytest.raises(ValidationFailed, match="params.email: expected string matching"):
        await client.call("supplier", "create", {**params, "email": "nobody"})

    assert (await client.call("supplier", "delete", {"supplier_id": supplier_id})).out == \
        {"deleted": 1}
    assert (await client.call("supplier", "delete", {"supplier_id": supplier_id})).out == \
        {"deleted": 0}
    assert (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data == []
    assert (await client.call("supplier", "update", {"supplier_id": supplier_id,
                                                     "name": "Y"})).out == {"updated": 0}
    # Soft delete keeps the row; the audit has one row per effective write.
    where = f"supplier_id = {int(supplier_id)}"
    assert await count(project, f"SELECT COUNT(*) FROM supplier WHERE {where} "
                                "AND deleted_at IS NOT NULL") == 1
    assert await count(project, f"SELECT COUNT(*) FROM supplier_audit WHERE {where}") == 3
    assert await count(project, f"SELECT COUNT(*) FROM request_log WHERE request_id = '{key}'") == 1


async def test_natural_key_ops_end_to_end(project: Project, client: Client) -> None:
    code = f"PX{secrets.token_hex(4).upper()}"
    params = {"tracking_code": code, "carrier": "dhl", "weight_kg": "2.50",
              "ship_date": "2026-03-01", "fragile": True}
    created = await client.call("parcel", "create", params)
    assert created.data == [] and created.out is None
    (row,) = (await client.call("parcel", "fetch", {"tracking_code": code})).data
    assert row["ship_date"] == "2026-03-01" and row["weight_kg"] == "2.50"
    assert row["fragile"] is True and row["delivered_at"] is None
    listed = await client.call("parcel", "list", {"carrier": "dhl", "ship_date": "2026-03-01"})
    assert code in [r["tracking_code"] for r in listed.data]
    changed = await client.call("parcel", "update", {"tracking_code": code,
                                                     "delivered_at": "2026-03-03T10:15:00"})
    assert changed.out == {"updated": 1}
    (row,) = (await client.call("parcel", "fetch", {"tracking_code": code})).data
    assert row["delivered_at"] == "2026-03-03T10:15:00" and row["carrier"] == "dhl"
    with pytest.raises(Conflict):
        await client.call("parcel", "create", params)             # the key exists
    with pytest.raises(ValidationFailed, match="params.carrier: expected one of"):
        await client.call("parcel", "create", {**params, "carrier": "fedex"})
    assert (await client.call("parcel", "delete", {"tracking_code": code})).out == {"deleted": 1}
    assert (await client.call("parcel", "fetch", {"tracking_code": code})).data == []
    assert await count(project, f"SELECT COUNT(*) FROM parcel WHERE tracking_code = '{code}'") == 0
