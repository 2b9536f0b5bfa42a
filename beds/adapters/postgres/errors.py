"""PostgreSQL / asyncpg errors -> BEDS errors: the one place a driver error is translated.

Layer: infrastructure. Decisions go by SQLSTATE (`asyncpg.PostgresError.sqlstate`); an error
without one (a socket error, a timeout, a closed connection) is a lost connection.
"""

from __future__ import annotations

import asyncpg

from beds.errors import Conflict, DbError, DbUnavailable, DeadlineExceeded, RequestError

# Worth retrying later, the request itself is fine: lost connections (08), server starting or
# stopping (57P01-57P03), too many connections (53300), serialization failure (40001), deadlock
# (40P01), lock not available (55P03), a cached plan invalidated by a schema change (0A000 from
# asyncpg's InvalidCachedStatementError: the next attempt prepares again).
_UNAVAILABLE_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_CONNECTION_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})
_TIMED_OUT = "57014"
_UNIQUE_VIOLATION = "23505"
_RETRYABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCachedStatementError,
              asyncpg.OutdatedSchemaCacheError)


def _state(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _message(exc: BaseException) -> str:
    """The server's message and detail; str() of an asyncpg error adds a multi-line HINT."""
    message = getattr(exc, "message", None)
    if not isinstance(message, str):
        return str(exc)
    detail = getattr(exc, "detail", None)
    return f"{message} ({detail})" if detail else message


def _reason(exc: BaseException) -> str:
    state = _state(exc)
    if isinstance(exc, asyncpg.PostgresError) and state:
        return f"{_message(exc)} (SQLSTATE {state})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _details(exc: BaseException) -> dict[str, str]:
    state = _state(exc)
    return {"sqlstate": state} if state else {}


def _is_connection_error(exc: BaseException) -> bool:
    # After a client-side timeout the server may still answer on that socket: never reuse it.
    # An InterfaceError that is also a ValueError is a bad argument, not a bad connection.
    if isinstance(exc, asyncpg.InterfaceError):
        return not isinstance(exc, ValueError)
    return (isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError)
            or _state(exc) in _CONNECTION_LOST_STATES)


def _translate(exc: BaseException, limit: float | None) -> RequestError:
    """The one place a PostgreSQL or asyncpg error becomes a BEDS error. `limit`: the time
    limit in seconds the statement ran under, if any."""
    state = _state(exc)
    # 57014 is also an operator's pg_cancel_backend(): only a limit makes it a deadline.
    if (state == _TIMED_OUT and limit) or isinstance(exc, TimeoutError):
        return DeadlineExceeded(f"the statement was stopped at its time limit of {limit}s; "
                                "a write may or may not have committed", **_details(exc))
    if state == _UNIQUE_VIOLATION:
        return Conflict(f"duplicate key: {_message(exc)}", sqlstate=state)
    if (state in _UNAVAILABLE_STATES or isinstance(exc, _RETRYABLE)
            or (isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, ValueError))):
        return DbUnavailable(f"database unavailable: {_reason(exc)}", **_details(exc))
    # RAISE EXCEPTION in a DBA's routine: its message is the whole story, as on MariaDB.
    return DbError(f"database error: {_message(exc)}", **_details(exc))
