"""What `connect()` reads from an AMQP URL (endpoint, credentials, vhost, tuning, TLS) and what
it tells the server about itself (client properties).

Layer: infrastructure. amqp://user:pass@host:port/vhost?heartbeat=N&name=S&frame_max=N&
channel_max=N; user, password and vhost are percent-decoded ("%2F" is "/"); keyword arguments
of `connect()` win over the query.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Params:
    host: str
    port: int
    user: str
    password: str
    vhost: str
    tls: bool
    heartbeat: int | None
    name: str | None
    frame_max: int | None
    channel_max: int | None
    timeout: float

    @property
    def endpoint(self) -> str:
        """host:port/vhost, never the password."""
        return f"{self.host}:{self.port}/{'' if self.vhost == '/' else self.vhost}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context() if self.tls else None

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None, heartbeat: int | None = None,
                 timeout: float = 10.0) -> Params:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError(f"not an AMQP URL (amqp:// or amqps://): {parts.scheme}://...")
        tls = parts.scheme == "amqps"
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        path = parts.path
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (5671 if tls else 5672),
            user=unquote(parts.username) if parts.username is not None else "guest",
            password=unquote(parts.password) if parts.password is not None else "guest",
            vhost="/" if path in ("", "/") else unquote(path[1:]),
            tls=tls,
            heartbeat=heartbeat if heartbeat is not None else _int(query, "heartbeat"),
            name=name if name is not None else query.get("name"),
            frame_max=_int(query, "frame_max"),
            channel_max=_int(query, "channel_max"),
            timeout=timeout,
        )


def _int(query: dict[str, str], key: str) -> int | None:
    if key not in query:
        return None
    try:
        return int(query[key])
    except ValueError:
        raise ValueError(f"AMQP URL: {key}={query[key]!r} is not a whole number") from None


@functools.cache
def _version() -> str:
    """BEDS's installed version, from its metadata: importing `beds` here would be a cycle
    (beds -> client -> amqp)."""
    try:
        return importlib.metadata.version("beds")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def client_properties(name: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "product": "BEDS", "version": _version(),
        "platform": f"Python {platform.python_version()}",
        "capabilities": {"publisher_confirms": True, "consumer_cancel_notify": True,
                         "basic.nack": True, "connection.blocked": True,
                         "authentication_failure_close": True, "per_consumer_qos": True}}
    if name:
        props["connection_name"] = name
    return props
