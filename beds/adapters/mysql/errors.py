"""MariaDB / MySQL errors -> BEDS errors: the one place a driver error is translated.

Layer: infrastructure. Error numbers are the server's (the driver error's `args[0]`); anything without
one (a socket error, a timeout) is a lost connection.
"""

from __future__ import annotations

from beds.adapters.mysql.pool import DriverError, DriverInterfaceError, ResultTooLarge
from beds.errors import (
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    ReplyTooLarge,
    RequestError,
)

# Connection lost / refused / server going away / too many connections / lock wait / deadlock:
# worth retrying later, the request itself is fine.
_UNAVAILABLE = frozenset({1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055})
_CONNECTION_LOST = frozenset({1053, 1927, 2006, 2013, 2055})
_TIMED_OUT = frozenset({1969, 3024})   # MariaDB max_statement_time, MySQL max_execution_time
_DUPLICATE_KEY = 1062


def _errno(exc: BaseException) -> int | None:
    if isinstance(exc, DriverError) and exc.args and isinstance(exc.args[0], int):
        return int(exc.args[0])
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DriverError) and len(exc.args) > 1:
        return f"{exc.args[1]} (errno {exc.args[0]})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_connection_error(exc: BaseException) -> bool:
    # After a timeout the server may still send a result on that socket: never reuse it.
    return (isinstance(exc, OSError | TimeoutError | DriverInterfaceError)
            or _errno(exc) in _CONNECTION_LOST)


def _translate(exc: BaseException, timeout: float | None) -> RequestError:
    """The one place a MariaDB/MySQL error becomes a BEDS error."""
    if isinstance(exc, ResultTooLarge):
        # The same words as the consumer's check of an encoded reply: one outcome, whichever
        # saw it first.
        return ReplyTooLarge(f"reply: the result exceeds the limit of {exc.limit} bytes; ask "
                             "for a smaller page (limit)")
    errno = _errno(exc)
    if errno in _TIMED_OUT or isinstance(exc, TimeoutError):
        limit = f"{timeout * 1000:.0f} ms" if timeout else "its limit"
        return DeadlineExceeded(f"the statement was stopped at its time limit ({limit}); "
                                "a write may or may not have committed", ran=True)
    if errno == _DUPLICATE_KEY:
        return Conflict(f"duplicate key: {exc.args[1]}", errno=errno)
    if errno in _UNAVAILABLE or errno is None or isinstance(exc, DriverInterfaceError):
        return DbUnavailable(f"database unavailable: {_reason(exc)}", errno=errno)
    return DbError(f"database error: {exc.args[1]}", errno=errno)
