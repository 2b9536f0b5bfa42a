"""How one MariaDB call travels: its statements as one multi-statement query (one round trip),
and its results read back in the order the server sends them.

Layer: infrastructure (used by `adapter` only). Speaks beds.mysql's `query` (the outcome of each
statement, in order) and lets the client's errors through: `errors` translates them, once.

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

from beds.mysql import Connection, Done, InterfaceError, Outcome, Rows, ServerError
from beds.mysql.errors import CR_MALFORMED_PACKET
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
        self.prepared, self.begins, self.commits = prepared, begins, commits
        self.position = position
        parts = ["START TRANSACTION"] if begins else []
        parts.append(sql)
        if prepared.out_sql is not None:
            parts.append(prepared.out_sql)
        if commits:
            parts.append("COMMIT")
            if position:
                parts.append(_LAST_GTID)
        # The values are bound into the CALL's %s placeholders by beds.mysql's escaping;
        # the other parts carry none.
        self.sql = "; ".join(parts)

    async def run(self, conn: Connection, args: list[Any], results: list[Result],
                  max_row_bytes: int | None = None) -> None:
        """Appends the call's Result to `results` once its own statements came back, before
        the commit's outcome: a failed commit leaves `results` one longer than a failed call.
        Rows over `max_row_bytes` raise ResultTooLarge (after the whole answer, commit included,
        came back)."""
        failure: ServerError | None = None
        try:
            outcomes = await conn.query(self.sql, args, max_row_bytes)
        except ServerError as exc:   # the server stopped at the statement that failed
            outcomes, failure = exc.outcomes, exc
        taken = _Outcomes(outcomes, failure)
        if self.begins:
            taken.done()                          # START TRANSACTION's OK
        sets: list[list[dict[str, Any]]] = []
        if self.prepared.target is OpTarget.PROCEDURE:
            # A CALL answers one result set per SELECT the procedure ran, then an OK.
            while (found := taken.rows_or_done()) is not None:
                sets.append(found.dicts())
        else:
            sets.append(taken.rows().dicts())
        out = None
        if self.prepared.out_sql is not None:
            row = taken.rows().rows[0]
            out = dict(zip(self.prepared.out_names, row, strict=True))
        rows = sets[0] if sets else []
        result = Result(rows=rows, out=out, sets=sets if len(sets) > 1 else None)
        results.append(result)
        if self.commits:
            taken.done()                          # COMMIT's OK: the write committed
        if self.position:
            # Its GTID comes next; a failure to read it is not the caller's: the write is in.
            position = taken.next_or_none()
            if isinstance(position, Rows) and position.rows and position.rows[0][0]:
                result.position = str(position.rows[0][0])


class _Outcomes:
    """A query's outcomes, taken in the order the script expects them. Where they run out,
    the server's error for the statement that failed is raised in their place."""

    def __init__(self, outcomes: list[Outcome], failure: ServerError | None) -> None:
        self._items, self._at, self._failure = outcomes, 0, failure

    def next_or_none(self) -> Outcome | None:
        if self._at == len(self._items):
            return None
        self._at += 1
        return self._items[self._at - 1]

    def _next(self) -> Outcome:
        item = self.next_or_none()
        if item is None:
            if self._failure is not None:
                raise self._failure
            raise InterfaceError(CR_MALFORMED_PACKET, "the server sent fewer results than "
                                 "the query has statements")
        return item

    def done(self) -> Done:
        item = self._next()
        if not isinstance(item, Done):
            raise InterfaceError(CR_MALFORMED_PACKET, "expected an OK, got a result set")
        return item

    def rows(self) -> Rows:
        item = self._next()
        if not isinstance(item, Rows):
            raise InterfaceError(CR_MALFORMED_PACKET, "expected a result set, got an OK")
        return item

    def rows_or_done(self) -> Rows | None:
        """The next result set, or None past the OK that ends a CALL."""
        item = self._next()
        return item if isinstance(item, Rows) else None


_LAST_GTID = "SELECT @@last_gtid"


def limited(sql: str, timeout: float | None) -> str:
    # The server stops the statement itself: a client-side timeout alone would leave a write
    # running to commit after the caller gave up.
    if timeout:
        return f"SET STATEMENT max_statement_time={timeout:.3f} FOR {sql}"
    return sql
