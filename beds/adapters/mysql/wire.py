"""How one MariaDB call travels: its statements as one multi-statement query (one round trip),
and its results read back in the order the server sends them.

Layer: infrastructure (used by `adapter` only). Speaks the driver's DB-API cursor (`execute`,
`description`, `fetchall`, `nextset`) and lets the driver's errors through: `errors` translates
them, once.

A write with OUT parameters and replicas configured is, in one COM_QUERY:
    START TRANSACTION; SET STATEMENT max_statement_time=1.500 FOR CALL `p`(1, 'x', @beds_o0);
    SELECT @beds_o0 AS `id`; COMMIT; SELECT @@last_gtid
and comes back as: OK; one result set per SELECT the procedure ran; the CALL's OK; the OUT row;
COMMIT's OK; the GTID row. The server stops at the first statement that fails and sends its
error in place of the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beds.adapters.mysql.pool import DriverError
from beds.protocol import Result
from beds.templates.model import OpTarget


@dataclass(frozen=True)
class MysqlStatement:
    target: OpTarget
    sql: str                      # CALL / SELECT with %s placeholders
    out_sql: str | None           # SELECT @beds_o0 AS `name`, ... after a CALL with OUT params
    out_names: tuple[str, ...]
    write: bool
    order_sql: str = ""           # views: " ORDER BY ..."


class CallScript:
    """One round trip: a statement and what a call needs around it, sent as one multi-statement
    query, and its results read back in the order the server sends them."""

    def __init__(self, prepared: MysqlStatement, sql: str, *, begins: bool, commits: bool,
                 position: bool) -> None:
        self.prepared, self.begins, self.position = prepared, begins, position
        parts = ["START TRANSACTION"] if begins else []
        parts.append(sql)
        if prepared.out_sql is not None:
            parts.append(prepared.out_sql)
        if commits:
            parts.append("COMMIT")
            if position:
                parts.append(_LAST_GTID)
        # The values are bound into the CALL's %s placeholders by the driver's own escaping;
        # the other parts carry none.
        self.sql = "; ".join(parts)

    async def run(self, conn: Any, args: list[Any], results: list[Result]) -> None:
        """Appends the call's Result to `results` once its own statements came back, before
        the commit's outcome: a failed commit leaves `results` one longer than a failed call."""
        async with conn.cursor() as cur:
            await cur.execute(self.sql, args)   # reads the first result; raises if it failed
            if self.begins:
                await cur.nextset()              # past START TRANSACTION's OK
            sets: list[list[dict[str, Any]]] = []
            if self.prepared.target is OpTarget.PROCEDURE:
                # A CALL answers one result set per SELECT the procedure ran, then an OK.
                while cur.description:
                    sets.append(await _take(cur))
                await cur.nextset()
            else:
                sets.append(await _take(cur))
            out = None
            if self.prepared.out_sql is not None:
                row = (await _take(cur))[0]
                out = dict(zip(self.prepared.out_names, row.values(), strict=True))
            rows = sets[0] if sets else []
            result = Result(rows=rows, out=out, sets=sets if len(sets) > 1 else None)
            results.append(result)
            if self.position:
                # The cursor stands on COMMIT's OK: the write committed. Its GTID comes next.
                result.position = await _read_position(cur)


_LAST_GTID = "SELECT @@last_gtid"


async def _take(cur: Any) -> list[dict[str, Any]]:
    """The rows of the result set the cursor stands on; then on to the next result."""
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
    await cur.nextset()
    return rows


async def _read_position(cur: Any) -> str | None:
    """The GTID this session's commit got (read-your-writes); None when it cannot be read: the
    write did commit, so its caller must not hear of a failure."""
    try:
        await cur.nextset()
        row = await cur.fetchone()
    except DriverError:
        return None
    return str(row[0]) if row and row[0] else None


def limited(sql: str, timeout: float | None) -> str:
    # The server stops the statement itself: a client-side timeout alone would leave a write
    # running to commit after the caller gave up.
    if timeout:
        return f"SET STATEMENT max_statement_time={timeout:.3f} FOR {sql}"
    return sql
