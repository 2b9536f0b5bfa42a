"""A root connection to the session's MariaDB database: effects are counted and database faults
made with it (table locks, KILL of the node's sessions)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiomysql

from tests.support.services import MysqlDb


class RootDb:
    """A root connection to the session database, for counting effects and making faults."""

    def __init__(self, db: MysqlDb) -> None:
        parts = urlsplit(db.admin_dsn)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.db = db
        self.kwargs: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": parts.username or "root", "password": parts.password or "",
            "db": db.database, "autocommit": True}
        if "unix_socket" in options:
            self.kwargs["unix_socket"] = options["unix_socket"]

    async def connect(self) -> Any:
        return await aiomysql.connect(**self.kwargs)

    async def rows(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        conn = await self.connect()
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql, args)
                return list(await cur.fetchall())
        finally:
            conn.close()

    async def execute(self, *statements: str) -> None:
        conn = await self.connect()
        try:
            async with conn.cursor() as cur:
                for statement in statements:
                    await cur.execute(statement)
        finally:
            conn.close()

    async def scalar(self, sql: str, args: Sequence[Any] | None = None) -> Any:
        rows = await self.rows(sql, args)
        return rows[0][0] if rows else None

    async def sessions(self, active_only: bool = True) -> list[tuple[int, str, str, str]]:
        """(id, command, state, info) of the other sessions on the session database: the
        node's. (Inside a SQL SECURITY DEFINER routine PROCESSLIST shows the definer as USER,
        so the database, not the account, is what names them.)"""
        sql = ("SELECT ID, COMMAND, COALESCE(STATE, ''), COALESCE(INFO, '') "
               "FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()")
        if active_only:
            sql += " AND COMMAND NOT IN ('Sleep', 'Daemon')"
        return [(int(i), c, s, q) for i, c, s, q in await self.rows(sql, (self.db.database,))]

    @asynccontextmanager
    async def lock_tables(self, spec: str = "payment WRITE") -> AsyncIterator[Any]:
        """Hold `LOCK TABLES spec` until the block ends: writes to those tables wait mid-call."""
        conn = await self.connect()
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"LOCK TABLES {spec}")
            yield conn
        finally:
            try:
                async with conn.cursor() as cur:
                    await cur.execute("UNLOCK TABLES")
            finally:
                conn.close()
