"""What every adapter offers to serve requests (the `Adapter` protocol) and what implementers
share.

Layer: infrastructure. Only modules under `beds/adapters/` import database drivers and their
exception types; every driver error is translated into a `beds.errors` RequestError at this
boundary, exactly once. Adapters never accept SQL text: they build statements from names that
came from a validated template (checked against IDENT_RE) and bind every value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from beds.config import DatasourceSettings
from beds.errors import (
    ConfigError,
    DbUnavailable,
    DeadlineExceeded,
    RequestError,
    ValidationFailed,
)
from beds.protocol import Result
from beds.templates.model import Op, Template


@dataclass(slots=True)
class Call:
    """One validated op invocation, ready for an adapter."""

    args: list[Any] = field(default_factory=list)         # IN values in declared order
    filters: list[tuple[str, Any]] = field(default_factory=list)  # view equality filters
    limit: int = 0
    offset: int = 0
    timeout: float | None = None                           # statement time limit, seconds
    cursor: str | None = None                              # continuation token (DynamoDB views)
    deadline: float | None = None                          # the caller's, epoch seconds
    read_after: str | None = None                          # x-read-after: a write's position
    # The reply's size limit: an adapter that can count a result's bytes as they arrive stops
    # keeping rows past it (REPLY_TOO_LARGE either way; the node's memory stays bounded).
    max_result_bytes: int | None = None


def time_left(call: Call) -> float | None:
    """The statement's time limit, taken again once a connection is in hand: the pool wait
    came out of the caller's time. Raises DEADLINE_EXCEEDED (nothing ran) when none is left."""
    if call.deadline is None:
        return call.timeout
    left = call.deadline - time.time()
    if left <= 0:
        raise DeadlineExceeded("x-deadline: the deadline passed while the request waited for a "
                               "database connection; nothing was run", ran=False)
    return left if call.timeout is None else min(call.timeout, left)


def acquire_budget(call: Call, connect_timeout: float) -> float:
    """How long a request may wait for a pooled connection (a busy pool, or a handshake with
    a server that accepts and never answers): never past the caller's deadline."""
    if call.deadline is not None:
        return max(call.deadline - time.time(), 0.0)
    return connect_timeout + (call.timeout or 0.0)


def wait_failed(call: Call, datasource: str, reason: str) -> RequestError:
    """What a request hears when no connection came within `acquire_budget`: nothing ran."""
    if call.deadline is not None and time.time() >= call.deadline:
        return DeadlineExceeded(f"x-deadline: no connection to datasource {datasource!r} before "
                                f"the deadline ({reason}); nothing was run", ran=False)
    return DbUnavailable(f"datasource {datasource!r} is unreachable: {reason}", ran=False)


class Adapter(Protocol):
    """What a node needs to serve requests. The DBA tooling of an engine (`beds schema apply`,
    `beds templates check`) is a `beds.adapters.schema.SchemaTool` built on top of one."""

    settings: DatasourceSettings

    async def open(self) -> None:
        """Create the pool. Must not fail when the database is down: calls then fail with
        DB_UNAVAILABLE until it is back."""

    async def close(self) -> None: ...

    def prepare(self, template: Template, op: Op) -> Any:
        """Build the statement for one op, once, at start-up."""

    async def run(self, prepared: Any, call: Call) -> Result: ...

    async def ping(self) -> bool: ...


@dataclass(frozen=True)
class Dsn:
    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    database: str
    options: dict[str, str]


def parse_dsn(settings: DatasourceSettings, dsn: str | None = None) -> Dsn:
    """`scheme://user:password@host:port/database?opt=value` with errors naming the key."""
    text = settings.dsn if dsn is None else dsn
    key = f"datasources.{settings.name}.{'dsn' if dsn is None else 'admin_dsn'}"
    parts = urlsplit(text)
    if not parts.scheme or (parts.hostname is None and "unix_socket" not in parts.query):
        raise ConfigError(f"{key}: expected scheme://user:password@host:port/database")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{key}: the port is not a number") from None
    return Dsn(
        scheme=parts.scheme,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname or "localhost",
        port=port,
        database=parts.path.lstrip("/"),
        options={k: v[-1] for k, v in parse_qs(parts.query).items()},
    )


def refuse_cursor(call: Call, engine: str) -> None:
    """Engines that page by offset have no continuation token to continue from."""
    if call.cursor is not None:
        raise ValidationFailed(f"cursor: {engine} pages with limit and offset; "
                               "this datasource never returns a next_cursor")


def quote_ident(name: str, quote: str) -> str:
    """Identifiers reach SQL only after IDENT_RE; quoting is a second fence, not the first."""
    return f"{quote}{name}{quote}"
