"""One scenario's world: its stacks (exchange + queues on a RabbitMQ), nodes (subprocesses or in
this process), TCP proxies, callers and workloads — and their teardown, in order, even when a step
fails."""

from __future__ import annotations

import asyncio
import copy
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiormq
import tomli_w

from beds.config import Settings, load_settings
from tests.chaos.broker import PrivateRabbit, RabbitCtl
from tests.chaos.mariadb import RootDb
from tests.chaos.workload import Caller, Workload, wait_until
from tests.support.node_process import NodeProcess, spawn_node
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URL, ROOT, SESSION, MysqlDb, host_port
from tests.support.stack import RunningNode, Stack, env_data, merge, start_node


@dataclass
class ChaosStack:
    """One scenario's namespace (exchange, queues) on one RabbitMQ, and its env file."""

    settings: Settings
    env_file: Path
    data: dict[str, Any]
    url: str
    ctl: RabbitCtl

    @property
    def exchange(self) -> str:
        return self.settings.amqp.exchange

    @property
    def stack(self) -> Stack:
        return Stack(self.settings, self.env_file, self.exchange)

    def queue(self, broker: str) -> str:
        return self.settings.brokers[broker].queue


@dataclass
class Lab:
    """Builds a scenario's stacks, nodes, proxies and workloads, and tears them all down."""

    tmp_path: Path
    db: MysqlDb
    root: RootDb
    templates: Path
    shared_ctl: RabbitCtl
    stacks: list[ChaosStack] = field(default_factory=list)
    processes: list[NodeProcess] = field(default_factory=list)
    inproc: list[RunningNode] = field(default_factory=list)
    proxies: list[TcpProxy] = field(default_factory=list)
    callers: list[Caller] = field(default_factory=list)

    def stack(self, tag: str, *, rabbit: PrivateRabbit | None = None,
              overrides: dict[str, Any] | None = None, db_port: int | None = None,
              templates: Path | None = None,
              datasource: dict[str, Any] | None = None) -> ChaosStack:
        """`datasource`: a private database instead of the session's (servers.py)."""
        exchange = f"beds-test-{SESSION}-chaos-{tag}-{secrets.token_hex(2)}"
        datasource = dict(datasource or self.db.datasource())
        if db_port is not None:   # the node reaches MariaDB through a proxy on this port
            host, port = host_port(self.db.admin_dsn, 3306)
            datasource["dsn"] = self.db.dsn.replace(f"{host}:{port}", f"127.0.0.1:{db_port}")
            datasource["connect_timeout"] = 2
        data = env_data(datasource, exchange)
        url = rabbit.url if rabbit is not None else AMQP_URL
        data["amqp"]["url"] = url
        data["node"]["name"] = f"chaos-{tag}"
        data["node"]["templates_dir"] = str(templates or self.templates)
        data["node"]["grace_seconds"] = 5
        merge(data, overrides or {})
        env = self.tmp_path / f"env-{tag}.toml"
        env.write_text(tomli_w.dumps(data))
        settings = load_settings(ROOT / "config/beds.toml", env, environ={})
        made = ChaosStack(settings, env, data, url, rabbit.ctl if rabbit else self.shared_ctl)
        self.stacks.append(made)
        return made

    def env_variant(self, stack: ChaosStack, name: str, *, amqp_port: int | None = None,
                    overrides: dict[str, Any] | None = None) -> Path:
        """The stack's env file for another node: its own name, maybe AMQP through a proxy."""
        data = merge(copy.deepcopy(stack.data), {"node": {"name": name}, **(overrides or {})})
        if amqp_port is not None:
            host, port = host_port(stack.url, 5672)
            data["amqp"]["url"] = stack.url.replace(f"{host}:{port}", f"127.0.0.1:{amqp_port}")
        path = self.tmp_path / f"env-{name}.toml"
        path.write_text(tomli_w.dumps(data))
        return path

    async def spawn(self, env_file: Path) -> NodeProcess:
        """`beds --role appServer` as a subprocess, ready to serve."""
        node = await spawn_node(env_file)
        self.processes.append(node)
        await node.wait_event("node.ready")
        return node

    async def start(self, stack: ChaosStack) -> RunningNode:
        """A node in this process."""
        node = await start_node(stack.stack)
        self.inproc.append(node)
        return node

    async def stop(self, node: RunningNode) -> None:
        node.stop.set()
        await asyncio.wait_for(node.task, 30)
        self.inproc.remove(node)

    async def proxy(self, host: str, port: int) -> TcpProxy:
        proxy = await TcpProxy(host, port).start()
        self.proxies.append(proxy)
        return proxy

    async def db_proxy(self) -> TcpProxy:
        return await self.proxy(*host_port(self.db.admin_dsn, 3306))

    def caller(self, stack: ChaosStack, *, url: str | None = None,
               user_id: str | None = None) -> Caller:
        caller = Caller(url or stack.url, stack.exchange, user_id)
        self.callers.append(caller)
        return caller

    def workload(self, scenario: str, stack: ChaosStack, *, root: Any = None,
                 **kwargs: Any) -> Workload:
        """`root`: the database the effects are counted in, when not the session's."""
        return Workload(scenario, self.caller(stack), stack.settings, stack.url, stack.ctl,
                        root or self.root, **kwargs)

    async def consumers(self, stack: ChaosStack, broker: str) -> int:
        """How many consumers RabbitMQ has on a broker's queue now."""
        conn = await aiormq.connect(stack.url)
        try:
            ok = await (await conn.channel()).queue_declare(stack.queue(broker), passive=True)
            return int(ok.consumer_count or 0)
        finally:
            await conn.close()

    async def wait_serving(self, stack: ChaosStack, nodes: int = 1, within: float = 30.0) -> None:
        """Until every consumer of `nodes` nodes is registered again on rBroker and wBroker."""
        expected = {b: stack.settings.brokers[b].instances * nodes for b in ("rBroker", "wBroker")}
        seen: dict[str, int] = {}

        async def registered() -> bool:
            try:
                for broker in expected:
                    seen[broker] = await self.consumers(stack, broker)
            except (aiormq.AMQPError, ConnectionError, OSError):
                return False
            return seen == expected

        await wait_until(registered, within, f"consumers back ({seen} of {expected})",
                         interval=0.3)

    async def close(self) -> None:
        """Undo everything, in order, even when a step fails; then raise the first failure."""
        steps: list[Any] = [caller.close for caller in self.callers]
        steps += [lambda n=n: self.stop(n) for n in list(self.inproc)]
        steps += [lambda n=n: _end(n) for n in self.processes]
        steps += [lambda p=p: _close_proxy(p) for p in self.proxies]
        steps += [lambda s=s: delete_stack(s) for s in self.stacks]
        failures = []
        for step in steps:
            try:
                await step()
            except Exception as exc:   # keep tearing down; report below
                failures.append(exc)
        if failures:
            raise failures[0]


async def _end(node: NodeProcess) -> None:
    if node.proc.returncode is None:
        await node.stop(signal.SIGKILL)
    elif node.reader is not None:
        await node.reader


async def _close_proxy(proxy: TcpProxy) -> None:
    proxy.restore()   # stalled pipes run to their end instead of sleeping forever
    await proxy.close()


async def delete_stack(stack: ChaosStack) -> None:
    """Remove the exchanges and queues a stack declared, on the broker it lives on."""
    amqp = stack.settings.amqp
    queues = [b.queue for b in stack.settings.brokers.values()]
    queues += [amqp.dlq, f"{amqp.exchange}.unrouted"]
    try:
        conn = await aiormq.connect(stack.url)
    except (aiormq.AMQPError, ConnectionError, OSError):
        return   # a private broker that is gone took its queues with it
    try:
        for queue in queues:
            channel = await conn.channel()
            await channel.queue_delete(queue)
        ops = stack.settings.ops
        for exchange in (amqp.exchange, amqp.dlx, f"{amqp.exchange}.unrouted",
                         ops.control_exchange, ops.events_exchange, ops.metrics_exchange,
                         ops.logs_exchange):
            channel = await conn.channel()
            await channel.exchange_delete(exchange)
    finally:
        await conn.close()
