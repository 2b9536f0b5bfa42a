"""The guards of the unit tests hold: a unit test cannot reach a shared service, through
a plain socket or through asyncio (which is how aiormq, aiomysql and asyncpg connect), and a
hung one fails within seconds."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.support.services import ServiceReached


def test_a_plain_socket_to_rabbitmq_is_refused() -> None:
    with socket.socket() as s, pytest.raises(ServiceReached, match="move it to tests/integration"):
        s.connect(("127.0.0.1", 5672))


async def test_an_asyncio_connection_to_mariadb_is_refused() -> None:
    with pytest.raises(ServiceReached, match="MariaDB"):
        await asyncio.open_connection("127.0.0.1", 3306)


async def test_other_local_ports_stay_open() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()


def test_a_unit_test_has_a_short_time_limit(request: pytest.FixtureRequest) -> None:
    # tests/conftest.py gives tests/unit 30 s (pytest-timeout) over the 300 s default.
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None and marker.args == (30.0,)
