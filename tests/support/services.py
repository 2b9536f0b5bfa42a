"""The shared services on localhost, as the tests reach them: addresses, the session id, the
skip-or-fail rule for a missing service, and small probes of the broker.

Layer: tooling (tests). Imports beds only lazily; no fixtures here (tests/conftest.py has them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import aiormq
import pytest

if TYPE_CHECKING:
    from beds.config import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "tests/support/samples"
"""Spec and template files more than one test module reads."""
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SESSION = secrets.token_hex(4)
"""Carried by every exchange, queue, database and account a test session creates."""
AMQP_URL = os.environ.get("BEDS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MYSQL_ADMIN_DSN = os.environ.get("BEDS_TEST_MYSQL_ADMIN_DSN", "mysql://root@127.0.0.1:3306/")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def missing(reason: str) -> NoReturn:
    """Skip the test for a service, tool or binary this machine lacks, saying which; under
    CI=true FAIL it instead: CI has everything, so there a missing piece is a broken set-up."""
    if CI:
        pytest.fail(f"{reason} (CI=true: a missing service or tool is a failure, not a skip)")
    pytest.skip(reason)


def require_service(name: str, host: str, port: int) -> None:
    """Skip the test when the service is down, with the reason; FAIL it under CI=true."""
    if not port_open(host, port):
        missing(f"{name} is not reachable on {host}:{port}")


def require_tool(name: str, purpose: str) -> str:
    """The path of the program `name` (which `purpose` needs); skip, or FAIL under CI=true,
    when it is not installed."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed; {purpose} needs it")
    return path


SERVICE_PORTS = {5672: "RabbitMQ", 5671: "RabbitMQ (TLS)", 15672: "RabbitMQ management",
                 3306: "MariaDB", 5432: "PostgreSQL", 27017: "MongoDB"}


class ServiceReached(AssertionError):
    """A unit test tried to connect to a shared service."""


def refuse_services(address: Any) -> None:
    """Raise ServiceReached when `address` (a socket address) is a service's port; the guard
    tests/unit/conftest.py puts in front of every connect of a unit test."""
    port = address[1] if isinstance(address, tuple) and len(address) >= 2 else None
    if port in SERVICE_PORTS:
        raise ServiceReached(f"a unit test connected to {SERVICE_PORTS[port]} ({address[0]}:"
                             f"{port}): unit tests need no services; move it to "
                             "tests/integration")


@dataclass(frozen=True)
class MysqlDb:
    """The session's MariaDB database and its least-privilege account."""

    database: str
    user: str
    password: str
    dsn: str
    admin_dsn: str

    def datasource(self) -> dict[str, str]:
        return {"engine": "mysql", "dsn": self.dsn, "admin_dsn": self.admin_dsn}

    def via(self, port: int, connect_timeout: float | None = 1) -> dict[str, Any]:
        """The datasource with the node reaching MariaDB through 127.0.0.1:`port` (a proxy the
        test can cut or stall), giving up on a connection after `connect_timeout` seconds
        (None: the driver's default)."""
        host, server_port = host_port(self.admin_dsn, 3306)
        datasource: dict[str, Any] = {
            **self.datasource(), "dsn": self.dsn.replace(f"{host}:{server_port}", f"127.0.0.1:{port}")}
        if connect_timeout is not None:
            datasource["connect_timeout"] = connect_timeout
        return datasource


async def delete_namespace(settings: Settings) -> None:
    """Remove the exchanges and queues a test stack declared."""
    from beds.testing.node import delete_namespace as delete

    await delete(settings, AMQP_URL)


async def private_queue(channel: aiormq.abc.AbstractChannel) -> str:
    """A server-named queue only this connection uses (gone with it); its name."""
    ok = await channel.queue_declare(exclusive=True)
    assert ok.queue, "RabbitMQ named no queue"
    return ok.queue


def x_death(message: aiormq.abc.DeliveredMessage) -> dict[str, Any]:
    """The latest `x-death` entry RabbitMQ put on a dead-lettered message (reason, queue,
    routing-keys, ...)."""
    deaths = (message.header.properties.headers or {}).get("x-death")
    assert isinstance(deaths, list) and deaths and isinstance(deaths[0], dict), deaths
    return deaths[0]


async def queue_counts(queue: str) -> tuple[int, int]:
    """RabbitMQ's own (ready messages, consumers) of `queue`."""
    conn = await aiormq.connect(AMQP_URL)
    try:
        ok = await (await conn.channel()).queue_declare(queue, passive=True)
        return int(ok.message_count or 0), int(ok.consumer_count or 0)
    finally:
        await conn.close()


async def queue_depth(queue: str) -> int:
    """RabbitMQ's own count of ready messages in `queue`."""
    return (await queue_counts(queue))[0]


async def consumer_count(queue: str) -> int:
    """RabbitMQ's own count of consumers on `queue`."""
    return (await queue_counts(queue))[1]
