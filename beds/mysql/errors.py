"""The exceptions of beds.mysql, one tree under MysqlError. `args` is (errno, message), the
server's error number where it sent one, or a client code (2xxx, as libmysqlclient numbers them).

Layer: infrastructure.

    MysqlError
      ServerError        the server answered ERR: errno, sqlstate, and the outcomes of the
                         statements of the same query that completed before it
      OperationalError   the connection could not be opened, or was lost (2003, 2013, ...)
      InterfaceError     this client's state refuses the call (closed, busy) or the server
                         sent bytes this client cannot read
      ResultTooLarge     the rows of a query came to more than its `max_row_bytes`: they were
                         read to the end and dropped; the connection serves on
"""

from __future__ import annotations

from typing import Any

# Client error numbers, as libmysqlclient (and every driver after it) reports them.
CR_CONN_HOST_ERROR = 2003       # can't connect
CR_SERVER_GONE_ERROR = 2006     # the connection was closed before the query
CR_SERVER_LOST = 2013           # lost during the query
CR_MALFORMED_PACKET = 2027
CR_AUTH_PLUGIN_CANNOT_LOAD = 2059


class MysqlError(Exception):
    def __init__(self, errno: int, message: str) -> None:
        super().__init__(errno, message)
        self.errno = errno
        self.message = message

    def __str__(self) -> str:
        return f"({self.errno}, {self.message!r})"


class ServerError(MysqlError):
    def __init__(self, errno: int, message: str, sqlstate: str = "HY000",
                 outcomes: list[Any] | None = None) -> None:
        super().__init__(errno, message)
        self.sqlstate = sqlstate
        # A multi-statement query stops at the statement that failed; these came before it.
        self.outcomes: list[Any] = outcomes if outcomes is not None else []


class OperationalError(MysqlError):
    pass


class InterfaceError(MysqlError):
    pass


class ResultTooLarge(MysqlError):
    def __init__(self, limit: int) -> None:
        super().__init__(0, f"the rows came to more than {limit} bytes")
        self.limit = limit
