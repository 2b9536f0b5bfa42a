"""Issue 8's acceptance, end to end: an appServer, an admin, a segundo and a tercero node run as
`beds --role ...` processes on this machine, with the shipped role config, and are driven only
from outside — the `beds` CLI, RabbitMQ, HTTP and a syslog socket.

The appServer reaches MariaDB through a TCP proxy: "MariaDB stopped" is the proxy cutting every
connection and refusing new ones (the machine's MariaDB is shared, so it is never stopped).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from beds.config import load_settings
from tests.support.mysql import Databases, apply_schema, drop, new_databases, query
from tests.support.node_process import NodeProcess, spawn_node
from tests.support.proxy import TcpProxy
from tests.support.services import (
    MYSQL_ADMIN_DSN,
    ROOT,
    consumer_count,
    delete_namespace,
    host_port,
)
from tests.support.stack import write_env_file
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
ROLES = {"appServer": "app1", "admin": "adm1", "segundo": "seg1", "tercero": "ter1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SyslogListener(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.lines.append(data.decode("utf-8", errors="replace"))


@dataclass
class Cluster:
    exchange: str
    env: dict[str, Path]
    nodes: dict[str, NodeProcess]
    http: dict[str, str]
    proxy: TcpProxy
    syslog: SyslogListener
    dbs: Databases

    async def beds(self, *args: str, node: str = "app1") -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "beds", *args, "--env", str(self.env[node]), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def cluster(rabbitmq: str, mysql_server: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    dbs = new_databases("cl")
    host, port = host_port(MYSQL_ADMIN_DSN, 3306)
    proxy = await TcpProxy(host, port).start()
    loop = asyncio.get_running_loop()
    syslog = SyslogListener()
    transport, _ = await loop.create_datagram_endpoint(lambda: syslog,
                                                       local_addr=("127.0.0.1", 0))
    syslog_port = transport.get_extra_info("sockname")[1]
    exchange = f"beds-test-cluster-{secrets.token_hex(3)}"
    env: dict[str, Path] = {}
    http: dict[str, str] = {}
    for role, name in ROLES.items():
        http[name] = f"127.0.0.1:{free_port()}"
        main: dict[str, Any] = {**dbs.datasource(dbs.hot)}
        if role == "appServer":   # its MariaDB is behind the proxy: "stopping" it is a cut
            main["dsn"] = main["dsn"].replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
            main["connect_timeout"] = 1
        env[name] = write_env_file(
            main, tmp_path / f"env-{name}.toml", exchange=exchange,
            datasources={"cool": dbs.datasource(dbs.cool)},
            node={"name": name, "grace_seconds": 3},
            ops={"snapshot_seconds": 0.5, "http_listen": http[name]},
            admin={"syslog": f"udp://127.0.0.1:{syslog_port}", "log_flush_seconds": 0.2})
    settings = load_settings(ROOT / "config/beds.toml", env["adm1"], environ={})
    nodes: dict[str, NodeProcess] = {}
    try:
        await apply_schema(settings, "main", "mysql")
        await apply_schema(settings, "cool", "mysql_cool")
        for role, name in ROLES.items():
            nodes[name] = await spawn_node(env[name], role)
        for node in nodes.values():
            await node.wait_event("node.ready")
        yield Cluster(exchange, env, nodes, http, proxy, syslog, dbs)
    finally:
        for node in nodes.values():
            if node.proc.returncode is None:
                node.proc.terminate()
        for node in nodes.values():
            await node.stop()
        transport.close()
        await proxy.close()
        await delete_namespace(settings)
        await drop(dbs)


async def http_status(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def test_status_shows_all_four_roles(cluster: Cluster) -> None:
    code, out, err = await cluster.beds("status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert {n["node"]: n["role"] for n in status["nodes"]} == {v: k for k, v in ROLES.items()}
    code, table, _ = await cluster.beds("status")
    for role, name in ROLES.items():
        assert name in table and role in table


async def test_scale_is_visible_in_rabbitmqs_consumer_count(cluster: Cluster) -> None:
    queue = f"{cluster.exchange}.rBroker"
    assert await consumer_count(queue) == 2
    loop = asyncio.get_running_loop()
    code, out, err = await cluster.beds("scale", "app1", "rBroker", "4")
    started = loop.time()
    assert code == 0, err
    assert "rBroker 2 -> 4" in out
    await wait_for(lambda: _is(consumer_count(queue), 4), 5)
    assert loop.time() - started < 5


async def _is(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def test_mariadb_outage_ready_and_the_warning_in_the_log_store_and_syslog(
        cluster: Cluster) -> None:
    ready = f"http://{cluster.http['app1']}/ready"
    assert await http_status(ready) == 200
    cluster.proxy.cut()
    await wait_for(lambda: _status(ready, 503), 20, interval=0.3)
    # A call meanwhile: the appServer answers DB_UNAVAILABLE and logs that at warning.
    code, out, _ = await cluster.beds("call", "film", "fetch", "--params", '{"film_id": 1}',
                                      "--timeout", "30")
    assert code == 1 and json.loads(out)["error"]["code"] == "DB_UNAVAILABLE"
    cluster.proxy.restore()
    await wait_for(lambda: _status(ready, 200), 20, interval=0.3)

    async def stored() -> list[dict[str, Any]]:
        code, out, err = await cluster.beds(
            "call", "logs", "recent", "--params",
            '{"node": "app1", "level": "warning", "event": "request"}', node="adm1")
        assert code == 0, err
        return [r for r in json.loads(out)["data"]
                if json.loads(r["line"]).get("outcome") == "DB_UNAVAILABLE"]

    await wait_for(lambda: _nonempty(stored()), 20, interval=0.5)
    (row, *_) = await stored()
    assert (row["node"], row["role"], row["template"], row["op"]) == (
        "app1", "appServer", "film", "fetch")
    # ... and the same line reached syslog as RFC 5424: <PRI>1 TIME HOST APP PID MSGID [SD] MSG
    await wait_for(lambda: any('node="app1"' in line and "DB_UNAVAILABLE" in line
                               for line in cluster.syslog.lines), 10)
    line = next(x for x in cluster.syslog.lines if "DB_UNAVAILABLE" in x and 'node="app1"' in x)
    assert line.startswith("<132>1 ")   # local0 (16) * 8 + warning (4)
    assert " beds " in line and " request [" in line


async def _nonempty(value: Any) -> bool:
    return bool(await value)


async def _status(url: str, expected: int) -> bool:
    return await http_status(url) == expected



async def test_the_warehouse_moves_aged_rows_and_cbroker_serves_them(cluster: Cluster) -> None:
    # The seed's payments 1-7 are from 2024: segundo's first run (at start) moves them.
    async def moved() -> bool:
        hot = await query(cluster.dbs.hot, "SELECT COUNT(*) FROM payment WHERE payment_id <= 7")
        cool = await query(cluster.dbs.cool, "SELECT COUNT(*) FROM payment_archive")
        return bool(hot[0][0] == 0 and cool[0][0] == 7)

    await wait_for(moved, 30, interval=0.3)
    code, out, err = await cluster.beds("call", "payment_archive", "fetch",
                                        "--params", '{"payment_id": 1}')
    assert code == 0, err
    reply = json.loads(out)
    assert reply["meta"]["broker"] == "cBroker" and reply["meta"]["node"] == "seg1"
    assert reply["data"][0]["payment_id"] == 1 and reply["data"][0]["amount"] == "0.99"
