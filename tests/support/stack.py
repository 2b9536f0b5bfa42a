"""Isolated node settings for tests: one exchange and set of queues per stack, over a datasource
the test names, and a node of this process started on them.

Layer: tooling (tests). `env_data` is the one place that turns the shipped config into a test
config; every variant a test needs is `make_stack(..., **overrides)` (a deep merge), so no test
copies and tweaks the dict by hand.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import tomli_w

from beds.config import Settings, load_settings
from tests.support.services import AMQP_URL, ROOT, SESSION

if TYPE_CHECKING:
    from beds.node import Node
    from beds.ops.runtime import OpsRuntime

ENVIRON = {"BEDS_MYSQL_PASSWORD": "x"}
"""The shipped config names ${BEDS_MYSQL_PASSWORD}; a test datasource carries its own DSN."""
START_SECONDS = 30.0


def env_data(datasource: Mapping[str, Any] | None, exchange: str) -> dict[str, Any]:
    """An env file's content: the shipped brokers on queues named after `exchange`, ops
    exchanges of their own, no HTTP ports, `datasources.main` = `datasource` when given."""
    base = load_settings(ROOT / "config/beds.toml", environ=ENVIRON)
    data: dict[str, Any] = {
        "node": {"name": f"test-{SESSION}", "grace_seconds": 10, "log_level": "info"},
        "amqp": {"url": AMQP_URL, "exchange": exchange, "dlx": f"{exchange}.dlx",
                 "dlq": f"{exchange}.dead", "reconnect_max_seconds": 1.0},
        "brokers": {name: {"queue": f"{exchange}.{name}"} for name in base.brokers},
        # The operations plane gets exchanges of its own too: a test's `status` broadcast must
        # reach only the nodes of that test. No HTTP ports unless a test asks for them.
        "ops": {"control_exchange": f"{exchange}.control", "events_exchange": f"{exchange}.events",
                "metrics_exchange": f"{exchange}.metrics", "logs_exchange": f"{exchange}.logs",
                "http_listen": ""},
        "admin": {"dashboard_listen": "", "syslog": ""},
    }
    # The shipped config runs no mBroker consumer (bulk ops are opt-in per node); test nodes
    # answer every op of the example templates, bulk ones included.
    data["brokers"]["mBroker"]["instances"] = 1
    if datasource is not None:
        # The warehouse datasource (segundo) gets a DSN of its own, with no ${BEDS_MYSQL_PASSWORD}
        # in it; tests that warehouse (test_warehouse.py) point it at a database.
        data["datasources"] = {"main": dict(datasource),
                               "cool": {"dsn": "mysql://beds_test_unused@127.0.0.1:3306/unused"}}
    return data


def merge(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into `data` (tables merge key by key, anything else replaces)."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            merge(data[key], value)
        else:
            data[key] = value
    return data


def write_env_file(datasource: Mapping[str, Any] | None, path: Path, *,
                   exchange: str = f"beds-test-{SESSION}-unused", templates: Path | None = None,
                   **overrides: Any) -> Path:
    """Write an env file for `beds ... --env` (or a node): `env_data` serving `templates`
    (default: the shipped ones) from `datasource`, with `overrides` (sections) deep-merged."""
    data = env_data(datasource, exchange)
    if templates is not None:
        data["node"]["templates_dir"] = str(templates)
    path.write_text(tomli_w.dumps(merge(data, overrides)))
    return path


def copy_templates(folder: Path, *names: str) -> Path:
    """`folder`, created, holding copies of the shipped templates `names` (e.g. "film.toml"),
    for a test that adds or edits templates of its own beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(ROOT / "templates" / name, folder / name)
    return folder


@dataclass(frozen=True)
class Stack:
    """Settings for one isolated namespace (exchange + queues) over the session database."""

    settings: Settings
    env_file: Path
    exchange: str


def make_stack(datasource: Mapping[str, Any] | None, tmp_path: Path, tag: str, *,
               templates: Path | None = None, **overrides: Any) -> Stack:
    """Settings whose exchange and queues are unique to this session and `tag`, serving
    `templates` (default: the shipped ones) from `datasource`; `overrides` are env-file
    sections deep-merged over the test defaults, e.g. `ops={"http_listen": "127.0.0.1:0"}`."""
    exchange = f"beds-test-{SESSION}-{tag}"
    path = tmp_path / f"env-{tag}.toml"
    for n in itertools.count(2):   # a second node on the same namespace: a file of its own
        if not path.exists():
            break
        path = tmp_path / f"env-{tag}-{n}.toml"
    write_env_file(datasource, path, exchange=exchange, templates=templates, **overrides)
    settings = load_settings(ROOT / "config/beds.toml", path, environ=ENVIRON)
    return Stack(settings, path, exchange)


@dataclass
class RunningNode:
    node: Node
    stop: asyncio.Event
    task: asyncio.Task[None]
    stack: Stack

    @property
    def ops(self) -> OpsRuntime:
        """The node's operations plane (every started node has one)."""
        assert self.node.ops is not None, "the node has not started its operations plane"
        return self.node.ops

    @property
    def http_url(self) -> str:
        """Where the node's HTTP endpoints answer (the node was given `ops.http_listen`)."""
        assert self.ops.http_port, "the node did not bind its HTTP port"
        return f"http://127.0.0.1:{self.ops.http_port}"

    async def stopped(self, timeout: float = 30.0) -> None:
        """Ask the node to drain and wait until it has (idempotent)."""
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)


async def start_node(stack: Stack, role: str = "appServer") -> RunningNode:
    """A node of this process on `stack`, once it is ready (its start-up error if it failed)."""
    from beds.node import Node

    node = Node.build(stack.settings, role)
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop, handle_signals=False))
    ready = asyncio.ensure_future(node.ready.wait())
    await asyncio.wait({ready, task}, timeout=START_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if task.done():
        task.result()   # raise what stopped it
    assert node.ready.is_set(), f"node did not become ready within {START_SECONDS:.0f}s"
    return RunningNode(node, stop, task, stack)


class NodeFactory(Protocol):
    """The `node_factory` fixture: a node per call, stopped and its namespace removed at the
    end of the test. `datasource` defaults to the session database."""

    async def __call__(self, *, role: str = "appServer", templates: Path | None = None,
                       datasource: Mapping[str, Any] | None = None, tag: str | None = None,
                       **overrides: Any) -> RunningNode: ...
