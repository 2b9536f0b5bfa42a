"""The servers under test, each its own process on its own exchange and queues, over one database
made for this run (and dropped after it): nothing here touches another run, a test session or the
`beds` database.

Layer: bench harness. Used by bench.run (`make bench`) and bench.soak (`make soak`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiormq
import msgspec
import tomli_w
from pamqp.commands import Basic

from bench.procstat import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_DSN = os.environ.get("BEDS_MYSQL_ADMIN_DSN", "mysql://root@127.0.0.1:3306/")
QUEUE_TYPE = os.environ.get("BENCH_QUEUE_TYPE", "quorum")
BROKERS = ("rBroker", "wBroker", "mBroker")


def require_services() -> None:
    for name, port in (("RabbitMQ", 5672), ("MariaDB", 3306)):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                pass
        except OSError:
            sys.exit(f"bench: {name} is not reachable on 127.0.0.1:{port} (try `make services`)")


@dataclass
class Server:
    """One server under test: a process (tree), its namespace, its log file."""

    name: str
    argv: list[str]
    exchange: str
    queue: str                      # the queue film.fetch is served from
    consumers: int                  # consumers on `queue` once every worker is up
    queues: list[str]
    exchanges: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    proc: asyncio.subprocess.Process | None = None
    exit_code: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@dataclass(frozen=True)
class Variant:
    """A BEDS server built differently, for A/B runs (bench.ab): another source tree and/or
    [node] settings (e.g. log_requests = false)."""

    src: Path | None = None
    node: dict[str, Any] = field(default_factory=dict)
    workers: int = 1


class Stack:
    """`async with Stack(...) as stack`: database, servers started and ready; all removed after."""

    def __init__(self, systems: list[str], tag: str = "bench",
                 variants: dict[str, Variant] | None = None) -> None:
        self.systems = systems
        self.variants = variants or {}
        self.run_id = f"{tag}{secrets.token_hex(3)}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"beds-{self.run_id}-"))
        self.db = f"beds_{self.run_id}"
        self.user = f"bb_{self.run_id}"
        self.password = secrets.token_hex(12)
        self.servers: dict[str, Server] = {}
        self._settings: Any = None

    # -- database ---------------------------------------------------------------------------
    def _datasource(self) -> dict[str, str]:
        return {"engine": "mysql", "admin_dsn": ADMIN_DSN,
                "dsn": f"mysql://{self.user}:{self.password}@127.0.0.1:3306/{self.db}"}

    async def _create_db(self) -> None:
        from beds.adapters import schema_tool
        from beds.adapters.mysql.adapter import MysqlAdapter
        from beds.config import load_settings

        env = self._beds_env_file("schema")
        self._settings = load_settings(ROOT / "config/beds.toml", env,
                                       environ={"BEDS_MYSQL_PASSWORD": "x"})
        adapter = MysqlAdapter(self._settings.datasources["main"])
        await schema_tool(adapter).apply_schema(sorted((ROOT / "schema/mysql").glob("*.sql")))

    async def _drop_db(self) -> None:
        import aiomysql

        from beds.adapters.base import parse_dsn

        if self._settings is None:
            return
        admin = parse_dsn(self._settings.datasources["main"], ADMIN_DSN)
        kwargs: dict[str, Any] = {"host": admin.host, "port": admin.port or 3306,
                                  "user": admin.user or "root", "password": admin.password or ""}
        if "unix_socket" in admin.options:
            kwargs["unix_socket"] = admin.options["unix_socket"]
        conn = await aiomysql.connect(**kwargs)
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{self.db}`")
                await cur.execute(f"DROP USER IF EXISTS '{self.user}'@'%'")
        finally:
            conn.close()

    # -- servers ----------------------------------------------------------------------------
    def _beds_env_file(self, name: str, node: dict[str, Any] | None = None) -> Path:
        exchange = f"{self.run_id}-{name}"
        node_name = f"{self.run_id}-{name}"
        data: dict[str, Any] = {
            # ${BEDS_NODE_NAME} lets `--workers` name its workers <name>-w1, -w2, ...
            "node": {"name": f"${{BEDS_NODE_NAME:-{node_name}}}", "grace_seconds": 10,
                     **(node or {})},
            "amqp": {"url": AMQP_URL, "exchange": exchange, "dlx": f"{exchange}.dlx",
                     "dlq": f"{exchange}.dead"},
            "brokers": {b: {"queue": f"{exchange}.{b}", "queue_type": QUEUE_TYPE}
                        for b in BROKERS},
            "datasources": {"main": self._datasource()},
        }
        path = self.tmp / f"env-{name}.toml"
        path.write_text(tomli_w.dumps(data))
        return path

    def _beds(self, name: str, workers: int, variant: Variant | None = None) -> Server:
        env_file = self._beds_env_file(name, variant.node if variant else None)
        exchange = f"{self.run_id}-{name}"
        argv = [sys.executable, "-m", "beds", "--role", "appServer", "--env", str(env_file)]
        if variant is not None and variant.src is not None:
            # another source tree of BEDS (an A/B experiment): its package, config, templates
            argv[3:3] = ["--config", str(variant.src / "config/beds.toml")]
        if workers > 1:
            argv += ["--workers", str(workers)]
        instances = 2   # config/beds.toml brokers.rBroker.instances
        server = Server(name, argv, exchange, f"{exchange}.rBroker", instances * workers,
                        queues=[f"{exchange}.{b}" for b in BROKERS]
                        + [f"{exchange}.dead", f"{exchange}.unrouted"],
                        exchanges=[exchange, f"{exchange}.dlx", f"{exchange}.unrouted"],
                        log=self.tmp / f"{name}.log")
        if variant is not None and variant.src is not None:
            server.cwd = variant.src
            server.env = {"PYTHONPATH": str(variant.src)}
        return server

    def _peer(self, name: str, module: str, queue_type: str = QUEUE_TYPE,
              extra: tuple[str, ...] = ()) -> Server:
        exchange = f"{self.run_id}-{name}"
        queue = f"{exchange}.fetch"
        argv = [sys.executable, "-m", module, "--url", AMQP_URL, "--exchange", exchange,
                "--queue", queue, "--queue-type", queue_type, "--mysql-user", self.user,
                "--mysql-db", self.db, "--prefetch", "64", "--pool-max", "16", *extra]
        return Server(name, argv, exchange, queue, 1, queues=[queue], exchanges=[exchange],
                      log=self.tmp / f"{name}.log", env={"BENCH_MYSQL_PASSWORD": self.password})

    def _make(self, system: str) -> Server:
        if system in self.variants:
            return self._beds(system, self.variants[system].workers, self.variants[system])
        if system == "beds":
            return self._beds("beds", 1)
        if system.startswith("beds-w"):
            return self._beds(system, int(system.removeprefix("beds-w")))
        if system == "aiopika":
            return self._peer(system, "bench.peers.aiopika_server")
        if system == "aiopika-classic":   # the lighter set-up: classic queue, no confirms
            return self._peer(system, "bench.peers.aiopika_server", "classic", ("--no-confirms",))
        if system == "faststream":
            return self._peer(system, "bench.peers.faststream_server")
        raise ValueError(f"unknown system {system!r}")

    async def _start(self, server: Server) -> None:
        with server.log.open("wb") as log:
            server.proc = await asyncio.create_subprocess_exec(
                *server.argv, cwd=server.cwd, stdout=log, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, env={**os.environ, **server.env},
                preexec_fn=die_with_parent)

    async def wait_ready(self, server: Server, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if server.proc is not None and server.proc.returncode is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}; log:\n"
                                   + tail(server.log))
            if (await consumer_count(server.queue) >= server.consumers
                    and await probe(server.exchange)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready within {timeout}s; log:\n"
                                   + tail(server.log))
            await asyncio.sleep(0.25)

    async def __aenter__(self) -> Stack:
        await self._create_db()
        self.servers = {s: self._make(s) for s in self.systems}
        try:
            for server in self.servers.values():
                await self._start(server)
            await asyncio.gather(*(self.wait_ready(s) for s in self.servers.values()))
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def stop_server(self, server: Server) -> None:
        proc = server.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            server.exit_code = await asyncio.wait_for(proc.wait(), 40)
        except TimeoutError:
            proc.kill()
            server.exit_code = await proc.wait()

    async def close(self) -> None:
        await asyncio.gather(*(self.stop_server(s) for s in self.servers.values()),
                             return_exceptions=True)
        with contextlib.suppress(Exception):
            await delete_namespace([q for s in self.servers.values() for q in s.queues],
                                   [e for s in self.servers.values() for e in s.exchanges])
        with contextlib.suppress(Exception):
            await self._drop_db()

    def cleanup_files(self) -> None:
        for path in self.tmp.glob("*"):
            path.unlink()
        self.tmp.rmdir()


# -- AMQP helpers --------------------------------------------------------------------------------

async def consumer_count(queue: str) -> int:
    try:
        conn = await aiormq.connect(AMQP_URL)
    except (aiormq.AMQPError, OSError):
        return 0
    try:
        ok = await (await conn.channel()).queue_declare(queue, passive=True)
        return int(ok.consumer_count or 0)
    except aiormq.AMQPError:
        return 0
    finally:
        await conn.close()


async def probe(exchange: str, key: str = "film.fetch", timeout: float = 3.0) -> dict[str, Any]:
    """One film.fetch (film_id 1) through the server: its reply when ok, else {}."""
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(message: aiormq.abc.DeliveredMessage) -> None:
            if not reply.done():
                reply.set_result(message.body)

        await channel.basic_consume("amq.rabbitmq.reply-to", on_reply, no_ack=True)
        body = msgspec.json.encode({"template": "film", "op": "fetch", "params": {"film_id": 1}})
        await channel.basic_publish(body, exchange=exchange, routing_key=key,
                                    properties=Basic.Properties(
                                        reply_to="amq.rabbitmq.reply-to", correlation_id="probe"))
        try:
            data = msgspec.json.decode(await asyncio.wait_for(reply, timeout))
        except TimeoutError:
            return {}
        ok = data.get("ok") and data.get("data") and data["data"][0].get("FID") == 1
        return data if ok else {}
    finally:
        await conn.close()


async def delete_namespace(queues: list[str], exchanges: list[str]) -> None:
    conn = await aiormq.connect(AMQP_URL)
    try:
        for queue in queues:
            with contextlib.suppress(aiormq.AMQPError):
                await (await conn.channel()).queue_delete(queue)
        for exchange in exchanges:
            with contextlib.suppress(aiormq.AMQPError):
                await (await conn.channel()).exchange_delete(exchange)
    finally:
        await conn.close()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def log_summary(path: Path) -> dict[str, Any]:
    """Counts from a server's log: request outcomes (BEDS), warning/error lines, a few samples."""
    outcomes: dict[str, int] = {}
    problems: list[str] = []
    lines = 0
    with contextlib.suppress(OSError), path.open("rb") as fh:
        for raw in fh:
            lines += 1
            if b'"event":"request"' in raw:
                start = raw.find(b'"outcome":"')
                if start >= 0:
                    value = raw[start + 11: raw.find(b'"', start + 11)].decode()
                    outcomes[value] = outcomes.get(value, 0) + 1
                continue
            text = raw.decode(errors="replace").strip()
            lowered = text.lower()
            words = ('"level":"warning"', '"level":"error"', "traceback", "error", "exception")
            if len(problems) < 10 and any(w in lowered for w in words):
                problems.append(text[:400])
    return {"lines": lines, "request_outcomes": outcomes, "problem_lines": problems}
