"""The pytest plugin of the BEDS test kit (entry point `beds` under `pytest11`).

Layer: tooling (test kit). Fixtures, all prefixed `beds_` (or `fake_beds`) so they never shadow a
project's own:

  beds_templates     the template folder the node serves (ini `beds_templates`, default
                     `templates` under the rootdir); override the fixture to choose per test
  beds_datasources   {name: {engine, dsn, ...}}: the database(s) the test owns. Required:
                     define it in your conftest.py
  beds_amqp_url      ini `beds_amqp_url`, else $BEDS_TEST_AMQP_URL, else guest@127.0.0.1:5672;
                     unreachable: the test is skipped (fails under CI=true)
  beds_node          a real node (beds.node.Node) on its own thread and namespace: BedsNode
  beds_client        a connected async beds.Client to it (needs pytest-asyncio)
  beds_sync_client   a connected beds.SyncClient to it
  fake_beds          a FakeBeds over the beds_templates folder, for tests without RabbitMQ
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from beds.client import Client
from beds.syncclient import SyncClient
from beds.testing.fake import FakeBeds
from beds.testing.node import BedsNode, load_config, new_tag, node_config, running_node

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("beds_templates", "folder of the templates beds_node serves, relative to the "
                  "rootdir (default: templates)", default="templates")
    parser.addini("beds_amqp_url", "RabbitMQ for beds_node (default: $BEDS_TEST_AMQP_URL, else "
                  f"{DEFAULT_AMQP_URL})", default="")


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip the test when `url` does not answer; under CI=true, fail it instead."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError:
        pass
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture
def beds_templates(pytestconfig: pytest.Config) -> Path:
    """The template folder beds_node serves (ini `beds_templates`, default `templates`)."""
    return Path(pytestconfig.rootpath) / str(pytestconfig.getini("beds_templates"))


@pytest.fixture
def beds_datasources() -> Mapping[str, Mapping[str, Any]]:
    """Define this fixture: {name: {engine, dsn, ...}} for the databases your test owns."""
    pytest.fail("beds_node needs the database(s) your test owns: define a fixture "
                "`beds_datasources` returning e.g. {'main': {'engine': 'mysql', 'dsn': "
                "'mysql://user:password@127.0.0.1:3306/testdb'}}", pytrace=False)


@pytest.fixture(scope="session")
def beds_amqp_url(pytestconfig: pytest.Config) -> str:
    """The RabbitMQ the test node uses; skips (fails under CI=true) when unreachable."""
    url = str(pytestconfig.getini("beds_amqp_url")) or \
        os.environ.get("BEDS_TEST_AMQP_URL", DEFAULT_AMQP_URL)
    require_service("RabbitMQ", url, 5672)
    return url


@pytest.fixture
def beds_node(beds_templates: Path, beds_datasources: Mapping[str, Mapping[str, Any]],
              beds_amqp_url: str, tmp_path: Path) -> Iterator[BedsNode]:
    """A real BEDS node in this process (own thread, own exchange and queues), stopped and
    its namespace deleted after the test."""
    settings = load_config(node_config(beds_templates, beds_datasources, beds_amqp_url,
                                       new_tag()), tmp_path / "beds-node")
    with running_node(settings) as node:
        yield node


@pytest.fixture
def beds_sync_client(beds_node: BedsNode) -> Iterator[SyncClient]:
    """A connected beds.SyncClient to beds_node."""
    with beds_node.sync_client() as client:
        yield client


@pytest.fixture
def fake_beds(beds_templates: Path) -> FakeBeds:
    """A FakeBeds that checks requests against the beds_templates folder (when it exists)."""
    return FakeBeds(beds_templates if beds_templates.is_dir() else None)


if importlib.util.find_spec("pytest_asyncio") is None:
    @pytest.fixture(name="beds_client")
    def _beds_client_needs_pytest_asyncio() -> None:
        # Say what is missing, rather than pytest's "fixture 'beds_client' not found".
        pytest.fail("beds_client is an async fixture: install pytest-asyncio "
                    "(or use beds_sync_client)", pytrace=False)
else:
    import pytest_asyncio

    @pytest_asyncio.fixture(name="beds_client")
    async def _beds_client(beds_node: BedsNode) -> AsyncIterator[Client]:
        """A connected async beds.Client to beds_node."""
        async with beds_node.client() as client:
            yield client
