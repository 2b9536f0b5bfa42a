"""The unit tests run with no service: a connection to a service port fails the test at once,
saying so, instead of reaching whatever RabbitMQ or database the machine happens to run. And
they leave no log context behind: `beds.cli.main` binds node and role for the whole process.

A test that needs a real server belongs in tests/integration (or contract/e2e).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tests.support.services import refuse_services


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        refuse_services(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        refuse_services(address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def own_log_context() -> Iterator[None]:
    """The log context as it was before the test: a `main([...])` call binds `node` and `role`
    process-wide, and the nodes of later tests in this process would log under those names."""
    before = structlog.contextvars.get_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**before)
