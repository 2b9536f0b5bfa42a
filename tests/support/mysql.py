"""Throwaway MariaDB databases for tests that need their own (the warehouse's HOT and COOL, a
cluster's): created with the project's own `beds schema apply` path, dropped afterwards."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import aiomysql

from tests.support.services import MYSQL_ADMIN_DSN, ROOT, SESSION, host_port


@dataclass(frozen=True)
class Databases:
    hot: str
    cool: str
    user: str
    password: str

    def datasource(self, database: str) -> dict[str, str]:
        host, port = host_port(MYSQL_ADMIN_DSN, 3306)
        return {"engine": "mysql", "admin_dsn": MYSQL_ADMIN_DSN,
                "dsn": f"mysql://{self.user}:{self.password}@{host}:{port}/{database}"}


def new_databases(prefix: str) -> Databases:
    tag = secrets.token_hex(3)
    return Databases(f"beds_{prefix}_{SESSION}_{tag}", f"beds_{prefix}c_{SESSION}_{tag}",
                     f"b{prefix}_{tag}{SESSION}"[:32], secrets.token_hex(12))


async def query(database: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """As root: for seeding and checking what the node did, never for the node itself."""
    host, port = host_port(MYSQL_ADMIN_DSN, 3306)
    conn = await aiomysql.connect(host=host, port=port, user="root", password="", db=database,
                                  autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, args or None)
            rows = list(await cur.fetchall())
            while await cur.nextset():
                pass
            return rows
    finally:
        conn.close()


async def apply_schema(settings: Any, datasource: str, folder: str) -> None:
    from beds.adapters import create_adapter, schema_tool

    adapter = create_adapter(settings.datasources[datasource])
    try:
        await schema_tool(adapter).apply_schema(sorted((ROOT / "schema" / folder).glob("*.sql")))
    finally:
        await adapter.close()


async def drop(dbs: Databases) -> None:
    for name in (dbs.hot, dbs.cool):
        await query("mysql", f"DROP DATABASE IF EXISTS `{name}`")
    await query("mysql", f"DROP USER IF EXISTS '{dbs.user}'@'%'")
