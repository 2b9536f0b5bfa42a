"""`beds schema apply` and the application account, on the real MariaDB and PostgreSQL: an
account that exists keeps its password unless --reset-password is given, and the command says
what it did. (Two checkouts on one machine: the second `make schema` must not lock the first
one's node out.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from asyncio import run
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import pymysql
import pytest
import tomli_w

from beds.cli import main
from tests.support.services import MYSQL_ADMIN_DSN, ROOT, SESSION, host_port, require_service
from tests.support.sql import drop_sql_database

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
MYSQL_SCHEMA = "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY);\nGRANT SELECT ON t TO ${app_user};\n"
POSTGRES_SCHEMA = "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY);\nGRANT SELECT ON t TO ${app_user};\n"


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a PostgreSQL `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey` is of `password`."""
    method, _, rest = verifier.partition("$")
    if method != "SCRAM-SHA-256":
        return False
    params, keys = rest.split("$")
    iterations, salt = params.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == keys.split(":")[0]


def apply(tmp_path: Path, engine: str, dsn: str, admin_dsn: str, *extra: str) -> tuple[int, str]:
    schema = tmp_path / "schema"
    schema.mkdir(exist_ok=True)
    (schema / "001_t.sql").write_text(MYSQL_SCHEMA if engine == "mysql" else POSTGRES_SCHEMA)
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps({"datasources": {"main": {
        "engine": engine, "dsn": dsn, "admin_dsn": admin_dsn, "schema_dir": str(schema)}}}))
    return main(["schema", "apply", "--datasource", "main", "--config",
                 str(ROOT / "config/beds.toml"), "--env", str(env), *extra]), str(schema)


def account_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str,
                       dsn: Callable[[str], str], admin_dsn: str, name: str,
                       can_login: Callable[[str], Coroutine[Any, Any, bool]]) -> None:
    """main() runs its own event loop: the test is synchronous, logins go through run()."""
    first, second = secrets.token_hex(8), secrets.token_hex(8)
    code, schema = apply(tmp_path, engine, dsn(first), admin_dsn)
    out = capsys.readouterr().out
    assert code == 0 and f"applied {schema}/001_t.sql" in out
    assert out.splitlines()[-1] == f"created account {name} with the dsn's password"
    assert run(can_login(first))

    # a second checkout with another password in its .env: the account is left alone
    assert apply(tmp_path, engine, dsn(second), admin_dsn)[0] == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"account {name} exists: left its password unchanged (--reset-password sets it to the "
        "dsn's)")
    assert run(can_login(first)) and not run(can_login(second))

    assert apply(tmp_path, engine, dsn(second), admin_dsn, "--reset-password")[0] == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"account {name} exists: reset its password to the dsn's (--reset-password)")
    assert run(can_login(second)) and not run(can_login(first))


@pytest.mark.mariadb
def test_mariadb_account_password_changes_only_when_asked(
        mysql_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    host, port = host_port(MYSQL_ADMIN_DSN, 3306)
    database, user = f"beds_sa_{SESSION}", f"bsa_{SESSION}"

    async def can_login(password: str) -> bool:
        try:
            conn = await aiomysql.connect(host=host, port=port, user=user, password=password,
                                          db=database)
        except pymysql.err.OperationalError:
            return False
        conn.close()
        return True

    try:
        account_flow(tmp_path, capsys, "mysql",
                           lambda pw: f"mysql://{user}:{pw}@{host}:{port}/{database}",
                           MYSQL_ADMIN_DSN, f"'{user}'@'%'", can_login)
    finally:
        run(drop_sql_database("mysql", MYSQL_ADMIN_DSN, database, user))


@pytest.mark.postgres
def test_postgres_role_password_changes_only_when_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    require_service("PostgreSQL", *host_port(POSTGRES_ADMIN_DSN, 5432))
    monkeypatch.chdir(tmp_path)
    host, port = host_port(POSTGRES_ADMIN_DSN, 5432)
    database, user = f"beds_sa_{SESSION}", f"bsa_{SESSION}"

    async def can_login(password: str) -> bool:
        # The test server trusts local TCP logins, so a login proves nothing: check the role's
        # stored SCRAM verifier against the password instead (RFC 5802 StoredKey).
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                                         user)
        finally:
            await conn.close()
        return scram_matches(stored or "", password)

    try:
        account_flow(tmp_path, capsys, "postgres",
                           lambda pw: f"postgresql://{user}:{pw}@{host}:{port}/{database}",
                           POSTGRES_ADMIN_DSN, f'role "{user}"', can_login)
    finally:
        run(drop_sql_database("postgres", POSTGRES_ADMIN_DSN, database, user))
