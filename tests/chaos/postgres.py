"""A root connection to a PostgreSQL database (a private cluster, servers.py): the same questions
RootDb (mariadb.py) answers for MariaDB - effect counts and the node's busy sessions - so a
Workload counts effects on either engine."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

_HOLDER = re.compile(r"%s")


class PgRootDb:
    """Root on one database of a PostgreSQL cluster; SQL written with %s placeholders."""

    def __init__(self, admin_dsn: str, database: str) -> None:
        self.dsn = admin_dsn.rsplit("/", 1)[0] + f"/{database}"
        self.database = database

    async def rows(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        numbered = iter(range(1, 1 + sql.count("%s")))
        text = _HOLDER.sub(lambda _: f"${next(numbered)}", sql)
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            return [tuple(r) for r in await conn.fetch(text, *map(_typed, args or ()))]
        finally:
            await conn.close()

    async def scalar(self, sql: str, args: Sequence[Any] | None = None) -> Any:
        found = await self.rows(sql, args)
        return found[0][0] if found else None

    async def sessions(self, active_only: bool = True) -> list[tuple[int, str, str, str]]:
        """(pid, state, wait event, query) of the node's sessions on this database."""
        sql = ("SELECT pid, COALESCE(state, ''), COALESCE(wait_event, ''), COALESCE(query, '') "
               "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()")
        if active_only:
            sql += " AND state NOT IN ('idle')"
        return [(int(p), s, w, q) for p, s, w, q in await self.rows(sql, (self.database,))]


def _typed(value: Any) -> Any:
    """asyncpg binds by type: the ISO datetimes the workload uses as keys become datetimes."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value
