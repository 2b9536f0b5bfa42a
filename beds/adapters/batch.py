"""Bulk ops: many calls of one write op in one request, and what a failing row means.

Layer: infrastructure. An adapter that can run the calls on one connection inside one transaction
offers `run_batch` (MariaDB, PostgreSQL): every row commits, or none does. The others (MongoDB,
DynamoDB) cannot put a batch of named operations in one transaction (MongoDB needs a replica
set; a DynamoDB operation's reads and counters happen before its own TransactWriteItems), so
their calls run one after another, each committing on its own: a failure at row k leaves rows
0..k-1 committed, and the error says so.

Either way the error of the failing row keeps its code and adds `details.row` (its index) and
`details.committed` (rows that stay committed: always 0 on a transactional engine).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from beds.adapters.base import Adapter, Call
from beds.errors import RequestError
from beds.protocol import Result


@runtime_checkable
class BatchAdapter(Protocol):
    async def run_batch(self, prepared: Any, calls: list[Call]) -> list[Result]:
        """All calls in one transaction; a failure raises `at_row(error, k, len(calls), 0)`."""


async def run_bulk(adapter: Adapter, prepared: Any, calls: list[Call]) -> Result:
    """Run the calls; data holds one object per row, in row order (see `row_reply`)."""
    if isinstance(adapter, BatchAdapter):
        results = await adapter.run_batch(prepared, calls)
    else:
        results = []
        for index, call in enumerate(calls):
            try:
                results.append(await adapter.run(prepared, call))
            except RequestError as error:
                raise at_row(error, index, len(calls), committed=index) from error
    return Result(rows=[row_reply(result) for result in results],
                  position=results[-1].position if results else None)


def row_reply(result: Result) -> dict[str, Any]:
    """A row's OUT values when the write op declares some, else the first row it returned."""
    if result.out is not None:
        return result.out
    return dict(result.rows[0]) if result.rows else {}


def at_row(error: RequestError, index: int, rows: int, committed: int) -> RequestError:
    """The same error, placed at the row that failed. `index == rows`: the commit failed."""
    where = f"rows[{index}]" if index < rows else f"rows: the commit of {rows} rows failed"
    details: dict[str, Any] = {**error.details, "committed": committed}
    if index < rows:
        details["row"] = index
    if committed:
        details["ran"] = True   # rows did commit: running the request again repeats them
    return type(error)(f"{where}: {error.message}", **details)
