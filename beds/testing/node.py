"""A real BEDS node for a service's tests: the node code itself (beds.node.Node), run on a thread
of its own, on a namespace (exchange, queues) nobody else uses, removed afterwards.

Layer: tooling (test kit). Builds its config as TOML and loads it with beds.config, so a bad datasource
gets the same error a real node would print.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiormq
import tomli_w

from beds.client import Client
from beds.config import Settings, load_settings
from beds.syncclient import SyncClient

REQUEST_BROKERS = {"rBroker": "read", "wBroker": "write", "mBroker": "bulk"}
"""The brokers a test node runs: one per op kind, over every template."""


def node_config(templates: Path, datasources: Mapping[str, Mapping[str, Any]], amqp_url: str,
                tag: str) -> dict[str, Any]:
    """A node config serving `templates` from `datasources`, with exchanges and queues whose
    names carry `tag`, and no HTTP ports."""
    exchange = f"beds-test-{tag}"
    return {
        "node": {"name": f"beds-test-{tag}", "templates_dir": str(templates.resolve()),
                 "grace_seconds": 5, "log_level": "warning"},
        "amqp": {"url": amqp_url, "exchange": exchange, "dlx": f"{exchange}.dlx",
                 "dlq": f"{exchange}.dead", "reconnect_max_seconds": 1.0},
        "datasources": {name: dict(table) for name, table in datasources.items()},
        "brokers": {name: {"queue": f"{exchange}.{name}", "kinds": [kind], "templates": ["*"],
                           "instances": 1} for name, kind in REQUEST_BROKERS.items()},
        "roles": {"appServer": {"brokers": list(REQUEST_BROKERS)}},
        "ops": {"control_exchange": f"{exchange}.control", "events_exchange": f"{exchange}.events",
                "metrics_exchange": f"{exchange}.metrics", "logs_exchange": f"{exchange}.logs",
                "http_listen": ""},
        "admin": {"dashboard_listen": "", "syslog": ""},
    }


def load_config(config: dict[str, Any], folder: Path) -> Settings:
    """Write `config` under `folder` and load it as a node would (checked, errors named)."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    base = folder / "config/beds.toml"
    base.write_text(tomli_w.dumps(config))
    empty = folder / "config/env.toml"   # explicit, so no config/env.toml of the cwd slips in
    empty.write_text("")
    return load_settings(base, empty, environ={})


async def delete_namespace(settings: Settings, url: str | None = None) -> None:
    """Remove the exchanges and queues a node with `settings` declared (on `url`, default the
    node's own RabbitMQ)."""
    conn = await aiormq.connect(url or settings.amqp.url)
    try:
        amqp = settings.amqp
        queues = [b.queue for b in settings.brokers.values()]
        queues += [amqp.dlq, f"{amqp.exchange}.unrouted"]
        for queue in queues:
            channel = await conn.channel()
            await channel.queue_delete(queue)
        ops = settings.ops
        for exchange in (amqp.exchange, amqp.dlx, f"{amqp.exchange}.unrouted",
                         ops.control_exchange, ops.events_exchange, ops.metrics_exchange,
                         ops.logs_exchange):
            channel = await conn.channel()
            await channel.exchange_delete(exchange)
    finally:
        await conn.close()


@dataclass(frozen=True)
class BedsNode:
    """A running test node: where it listens, and clients that reach it."""

    settings: Settings

    @property
    def amqp_url(self) -> str:
        return self.settings.amqp.url

    @property
    def exchange(self) -> str:
        return self.settings.amqp.exchange

    def client(self, **options: Any) -> Client:
        """An async Client for this node (not yet connected: `async with node.client() as c`)."""
        return Client(self.amqp_url, self.exchange, **options)

    def sync_client(self, **options: Any) -> SyncClient:
        """A SyncClient for this node (not yet connected: `with node.sync_client() as c`)."""
        return SyncClient(self.amqp_url, self.exchange, **options)


@contextlib.contextmanager
def running_node(settings: Settings, ready_seconds: float = 60.0) -> Iterator[BedsNode]:
    """Run an appServer node with `settings` on its own thread and event loop until the block
    ends; then stop it (it drains) and delete its namespace. Raises what stopped it early."""
    from beds.node import Node

    node = Node.build(settings, "appServer")   # template and config errors surface here
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        watcher = asyncio.ensure_future(_signal_when_ready(node.ready, started))
        try:
            await node.run(stop, handle_signals=False)
        except BaseException as exc:
            failure.append(exc)
        finally:
            watcher.cancel()
            started.set()
            with contextlib.suppress(Exception):
                await delete_namespace(settings)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),),
                              name=f"beds-test-node:{settings.node.name}", daemon=True)
    thread.start()
    try:
        if not started.wait(ready_seconds):
            raise TimeoutError(f"the test node did not become ready within {ready_seconds}s")
        if failure:
            raise failure[0]
        if not node.ready.is_set():
            raise RuntimeError("the test node stopped before it was ready (is RabbitMQ up?)")
        yield BedsNode(settings)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(settings.node.grace_seconds + 30)
        if not thread.is_alive():
            loop.close()


async def _signal_when_ready(ready: asyncio.Event, started: threading.Event) -> None:
    await ready.wait()
    started.set()


def new_tag() -> str:
    return secrets.token_hex(4)
