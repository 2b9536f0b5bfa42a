"""Throwaway SQL databases and accounts: dropped the same way by every test that makes one."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from tests.support.services import host_port


async def drop_sql_database(engine: str, admin_dsn: str, database: str, user: str) -> None:
    """Drop a throwaway MariaDB/PostgreSQL database and its application account, as the admin."""
    if engine == "mysql":
        import aiomysql

        host, port = host_port(admin_dsn, 3306)
        admin = urlsplit(admin_dsn)
        conn = await aiomysql.connect(host=host, port=port,
                                      user=unquote(admin.username or "root"),
                                      password=unquote(admin.password or ""))
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
