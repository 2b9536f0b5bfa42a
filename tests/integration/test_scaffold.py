"""Acceptance of `beds scaffold`, per engine (MariaDB, PostgreSQL, DynamoDB, MongoDB): the shipped
five-field spec (docs/specs/supplier.toml: generated key, unique email, soft delete, audit) and a
natural-key spec (dates, choices, hard delete) scaffold into a temp copy of the project layout;
`beds schema apply` (twice: the files are idempotent) and `beds templates check` pass on them
next to the example schema; a node serves every new op end to end, and a repeated write with
the same message_id has one effect and the same reply.

DynamoDB runs against moto's HTTP server (or BEDS_TEST_DYNAMODB_URL), as the contract suite does.
MongoDB runs only where BEDS_TEST_MONGO_URL names a server: without one its tests skip with the
contract suite's reason, in CI too (no MongoDB server can be installed on our machines)."""

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

from beds import Conflict, ValidationFailed
from beds.cli import main
from beds.client import Client
from beds.config import load_settings
from beds.idempotency import scoped_key
from tests.contract.conftest import (
    MONGO_URL,
    NO_MONGO,
    EngineDb,
    drop_dynamodb,
    drop_mongodb,
    dynamodb_dsn,
    dynamodb_server,  # noqa: F401 (a fixture: moto's server for this module's dynamodb run)
    mongo_app_dsn,
)
from tests.support.services import (
    AMQP_URL,
    MYSQL_ADMIN_DSN,
    ROOT,
    SAMPLES,
    SESSION,
    delete_namespace,
    host_port,
    require_service,
)
from tests.support.sql import drop_sql_database
from tests.support.stack import Stack, start_node, write_env_file

POSTGRES_ADMIN_DSN = os.environ.get("BEDS_TEST_POSTGRES_ADMIN_DSN",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = [pytest.param("mysql", marks=[pytest.mark.mariadb, pytest.mark.rabbitmq], id="mysql"),
           pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.rabbitmq],
                        id="postgres"),
           pytest.param("dynamodb", marks=pytest.mark.rabbitmq, id="dynamodb"),
           pytest.param("mongodb", marks=pytest.mark.rabbitmq, id="mongodb")]
SQL = ("mysql", "postgres")
PARCEL = (SAMPLES / "parcel.toml").read_text()


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
    admin: Any = None                # NoSQL: a client on the admin dsn, to look at storage


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
    root = tmp_path_factory.mktemp(f"scaffold-{engine}")
    name, user = f"beds_scaffold_{SESSION}", f"bs_{SESSION}"
    password = secrets.token_hex(12)
    if engine in SQL:
        admin_dsn = MYSQL_ADMIN_DSN if engine == "mysql" else POSTGRES_ADMIN_DSN
        host, port = host_port(admin_dsn, 3306 if engine == "mysql" else 5432)
        require_service("MariaDB" if engine == "mysql" else "PostgreSQL", host, port)
        scheme = "mysql" if engine == "mysql" else "postgresql"
        dsn = f"{scheme}://{user}:{password}@{host}:{port}/{name}"
    elif engine == "dynamodb":
        name = f"beds_scaffold_{SESSION}_"          # the table prefix
        admin_dsn = dsn = dynamodb_dsn(request.getfixturevalue("dynamodb_server"), name)
    else:
        if not MONGO_URL:
            pytest.skip(NO_MONGO)               # as the MongoDB contract tests: even in CI
        admin_dsn, dsn = MONGO_URL, mongo_app_dsn(MONGO_URL, name, user, password)
    db = EngineDb(engine, name, user, dsn, admin_dsn)
    shutil.copytree(ROOT / "schema" / engine, root / "schema" / engine)
    shutil.copytree(ROOT / "templates", root / "templates")
    (root / "parcel.toml").write_text(PARCEL)
    for spec in (ROOT / "docs/specs/supplier.toml", root / "parcel.toml"):
        code, out = await beds("scaffold", str(spec), "--engine", engine, "--out", str(root))
        assert code == 0, out
    datasource = {**db.datasource(), "schema_dir": str(root / "schema" / engine)}
    env_file = write_env_file(datasource, root / "env.toml", templates=root / "templates",
                              exchange=f"beds-test-{SESSION}-scaffold-{engine}")
    admin: Any = None   # a DynamoAdapter or a motor client, by engine
    try:
        applied = [await beds("schema", "apply", "--datasource", "main", "--env", str(env_file))
                   for _ in range(2)]
        checked = await beds("templates", "check", "--env", str(env_file))
        if engine == "dynamodb":
            from beds.adapters.dynamodb.adapter import DynamoAdapter

            settings = load_settings(ROOT / "config/beds.toml", env_file,
                                     environ={"BEDS_MYSQL_PASSWORD": "x"})
            admin = DynamoAdapter(settings.datasources["main"])
        elif engine == "mongodb":
            from motor.motor_asyncio import AsyncIOMotorClient

            admin = AsyncIOMotorClient(admin_dsn)
        yield Project(engine, root, env_file, name, admin_dsn, dsn, applied, checked, admin)
    finally:
        if engine == "dynamodb" and admin is not None:
            await admin.close()
        elif admin is not None:
            admin.close()
        if engine == "dynamodb":
            await drop_dynamodb(db, tmp_path_factory.mktemp("dynamodb-drop"))
        elif engine == "mongodb":
            await drop_mongodb(db)
        else:
            await drop_sql_database(engine, admin_dsn, name, user)


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
    files = [next(schema.glob(f"*_{name}.*")) for name in ("supplier", "parcel")]
    assert [f.suffix for f in files] == [".sql" if project.engine in SQL else ".json"] * 2
    for code, out in project.apply:      # the second run proves the files are idempotent
        assert code == 0, out
        for file in files:
            assert f"applied {file}" in out
    code, out = project.check
    assert code == 0, out
    assert "4 templates" in out and "0 errors, 0 warnings" in out, out


async def test_the_application_account_reaches_views_and_procedures_only(
        project: Project) -> None:
    if project.engine not in SQL:
        pytest.skip(f"{project.engine}: the app role's grants are checked by templates check "
                    "(MongoDB) or are an IAM policy outside BEDS (DynamoDB)")
    assert all(code == 0 for code, _ in project.apply), project.apply
    assert await count(project, "SELECT COUNT(*) FROM supplier_list", as_app=True) >= 0
    for table in ("supplier", "supplier_audit", "request_log", "parcel"):
        with pytest.raises(Exception, match=r"(?i)denied"):
            await count(project, f"SELECT COUNT(*) FROM {table}", as_app=True)


@dataclass(frozen=True)
class Stored:
    """What a write left in the database, beyond what the ops return."""

    exists: bool            # the row/item/document is still stored
    deleted: bool           # ... with deleted_at set
    audit: int              # audit rows/items/entries for it
    requests: int           # request-log rows for a request id


async def stored(project: Project, table: str, key: str, value: Any, request_id: str) -> Stored:
    """Read as the admin, engine by engine (the application account may not read tables)."""
    if project.engine in SQL:
        where = f"{key} = {value!r}" if isinstance(value, str) else f"{key} = {int(value)}"
        exists = await count(project, f"SELECT COUNT(*) FROM {table} WHERE {where}")
        deleted = 0
        audit = 0
        if table == "supplier":
            deleted = await count(project, f"SELECT COUNT(*) FROM {table} WHERE {where} "
                                            "AND deleted_at IS NOT NULL")
            audit = await count(project, f"SELECT COUNT(*) FROM {table}_audit WHERE {where}")
        requests = await count(project, "SELECT COUNT(*) FROM request_log WHERE request_id = "
                                        f"'{request_id}'")
        return Stored(exists == 1, deleted == 1, audit, requests)
    if project.engine == "dynamodb":
        from beds.adapters.dynamodb.requests import to_attr

        admin = project.admin
        item = (await admin.call("get_item", TableName=admin.physical(table),
                                 Key={key: to_attr(value)}, ConsistentRead=True)).get("Item")
        audit = 0
        if table == "supplier":
            audit = (await admin.call(
                "query", TableName=admin.physical("supplier_audit"),
                KeyConditionExpression="#k = :v", ExpressionAttributeNames={"#k": key},
                ExpressionAttributeValues={":v": to_attr(value)}, Select="COUNT"))["Count"]
        logged = (await admin.call("get_item", TableName=admin.physical("request_log"),
                                   Key={"request_id": {"S": request_id}})).get("Item")
        return Stored(item is not None, bool(item and "deleted_at" in item), audit,
                      int(logged is not None))
    doc = await project.admin[project.database][table].find_one({"_id": value})
    return Stored(doc is not None, bool(doc and doc.get("deleted_at")),
                  len((doc or {}).get("_audit", [])),
                  int(bool(doc) and request_id in doc.get("_requests", [])))


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
    change = {"supplier_id": supplier_id, "credit_limit": "2000.50", "active": False}
    update_key = f"update-{secrets.token_hex(6)}"
    changed = await client.call("supplier", "update", change, message_id=update_key)
    assert changed.out == {"updated": 1}
    (row,) = (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data
    assert (row["name"], row["credit_limit"], row["active"]) == ("Acme Tools Ltd", "2000.50", False)
    # A repeat (a retry, a redelivery) after another write changes nothing and gets the same reply.
    await client.call("supplier", "update", {"supplier_id": supplier_id, "credit_limit": "7.00"})
    assert (await client.call("supplier", "update", change, message_id=update_key)).out == \
        {"updated": 1}
    (row,) = (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data
    assert (row["credit_limit"], row["active"]) == ("7.00", False)
    if project.engine in SQL:   # the same key with other params is a caller's bug, not a repeat
        with pytest.raises(Conflict, match="idempotency key reused with different params"):
            await client.call("supplier", "update", {**change, "credit_limit": "9.99"},
                              message_id=update_key)

    # Keys are scoped by op (beds/idempotency.py): the create's message id reused for an update
    # is a request of its own, on every engine.
    reused = {"supplier_id": supplier_id, "name": "X"}
    assert (await client.call("supplier", "update", reused, message_id=key)).out == {"updated": 1}
    with pytest.raises(Conflict):
        await client.call("supplier", "create", params)           # the email is unique
    with pytest.raises(ValidationFailed, match="params.email: expected string matching"):
        await client.call("supplier", "create", {**params, "email": "nobody"})
    (row,) = (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data
    assert row["name"] == "X"

    delete_key = f"delete-{secrets.token_hex(6)}"
    for _ in range(2):      # the repeat gets the first reply
        assert (await client.call("supplier", "delete", {"supplier_id": supplier_id},
                                  message_id=delete_key)).out == {"deleted": 1}
    assert (await client.call("supplier", "delete", {"supplier_id": supplier_id})).out == \
        {"deleted": 0}
    assert (await client.call("supplier", "fetch", {"supplier_id": supplier_id})).data == []
    listed = (await client.call("supplier", "list", {}, limit=50)).data
    assert supplier_id not in [row["supplier_id"] for row in listed]
    assert (await client.call("supplier", "update", {"supplier_id": supplier_id,
                                                     "name": "Y"})).out == {"updated": 0}
    # Soft delete keeps the row; the audit has one row per effective write.
    facts = await stored(project, "supplier", "supplier_id", supplier_id,
                         scoped_key("supplier", "create", None, key))
    assert (facts.exists, facts.deleted) == (True, True)
    assert facts.audit == 5 and facts.requests == 1


async def test_natural_key_ops_end_to_end(project: Project, client: Client) -> None:
    code = f"PX{secrets.token_hex(4).upper()}"
    params = {"tracking_code": code, "carrier": "dhl", "weight_kg": "2.50",
              "ship_date": "2026-03-01", "fragile": True}
    created = await client.call("parcel", "create", params)
    assert created.data == [] and created.out is None
    (row,) = (await client.call("parcel", "fetch", {"tracking_code": code})).data
    day = "2026-03-01T00:00:00" if project.engine == "mongodb" else "2026-03-01"   # no date type
    assert row["ship_date"] == day and row["weight_kg"] == "2.50"
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
    assert not (await stored(project, "parcel", "tracking_code", code, "-")).exists


async def test_list_pages_in_order(project: Project, client: Client) -> None:
    """Newest ship_date first; DynamoDB pages with the engine's cursor, the others by offset."""
    carrier = "post"
    codes = [f"PG{secrets.token_hex(4).upper()}" for _ in range(3)]
    for day, code in enumerate(codes, 1):
        await client.call("parcel", "create", {"tracking_code": code, "carrier": carrier,
                                                "weight_kg": "1.00", "ship_date": f"2027-0{day}-01"})
    first = await client.call("parcel", "list", {"carrier": carrier}, limit=2)
    if project.engine == "dynamodb":
        assert first.next_cursor
        rest = await client.call("parcel", "list", {"carrier": carrier}, limit=2,
                                 cursor=first.next_cursor)
    else:
        rest = await client.call("parcel", "list", {"carrier": carrier}, limit=2, offset=2)
    mine = [r["tracking_code"] for r in [*first.data, *rest.data] if r["tracking_code"] in codes]
    assert mine == codes[::-1]
    for code in codes:
        assert (await client.call("parcel", "delete", {"tracking_code": code})).out == \
            {"deleted": 1}
