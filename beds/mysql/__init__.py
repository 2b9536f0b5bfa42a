"""BEDS's own asyncio MySQL / MariaDB client: the connection the MariaDB adapter runs every call
on.

Layer: infrastructure. Built for CPU per call (see connection.py): COM_QUERY and the text
protocol, multi-statement queries read in one pass, mysql_native_password and
caching_sha2_password (fast path) logins, utf8mb4 only, no TLS. What a DBA's tooling needs
beyond that (a `mysql` client session) is the `mysql` command line's job.
"""

from beds.mysql.connection import Connection, Login, Outcome, Rows, connect
from beds.mysql.errors import (
    InterfaceError,
    MysqlError,
    OperationalError,
    ResultTooLarge,
    ServerError,
)
from beds.mysql.packets import Done
from beds.mysql.values import bind, literal

__all__ = ["Connection", "Done", "InterfaceError", "Login", "MysqlError", "OperationalError",
           "Outcome", "ResultTooLarge", "Rows", "ServerError", "bind", "connect", "literal"]
