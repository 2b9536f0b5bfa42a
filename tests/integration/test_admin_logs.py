"""Log shipping end to end: a warning logged on an appServer lands in the admin's log store
(readable through `logs.recent`, also with `beds call`) and in syslog (RFC 5424 over UDP, to a
listener this test runs); a write call leaves an audit event with its caller in the store; lines
that arrive while the store's database is away are kept and stored once it is back."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from beds.admin.logstore import LogStore
from beds.client import Client
from beds.ops.commands import CommandFailed, node_key, open_command_client
from tests.support.proxy import TcpProxy
from tests.support.services import AMQP_URL, MysqlDb
from tests.support.stack import NodeFactory, RunningNode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]

RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>-|\[.*?(?<!\\)\]) \xef\xbb\xbf(?P<msg>.*)", re.S)


class SyslogListener(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)

    def messages(self) -> list[dict[str, Any]]:
        out = []
        for datagram in self.datagrams:
            match = RFC5424.fullmatch(datagram)
            assert match, f"not RFC 5424: {datagram[:200]!r}"
            out.append({**{k: v.decode() for k, v in match.groupdict().items() if k != "msg"},
                        "line": json.loads(match["msg"])})
        return out


Cluster = tuple[RunningNode, RunningNode, SyslogListener]
Store = tuple[RunningNode, RunningNode, TcpProxy]


async def start_pair(node_factory: NodeFactory, syslog: str,
                     admin_datasource: dict[str, Any] | None = None
                     ) -> tuple[RunningNode, RunningNode]:
    """An appServer and an admin (the log store, on `admin_datasource`) on one namespace."""
    tag = f"logs-{secrets.token_hex(3)}"
    admin_conf = {"syslog": syslog, "log_flush_seconds": 0.2, "dashboard_listen": ""}
    admin = await node_factory(role="admin", tag=tag, datasource=admin_datasource,
                               node={"name": f"adm-{tag}", "grace_seconds": 2}, admin=admin_conf)
    app = await node_factory(tag=tag, node={"name": f"app-{tag}", "grace_seconds": 2},
                             admin=admin_conf)
    return app, admin


@pytest.fixture
async def cluster(node_factory: NodeFactory) -> AsyncIterator[Cluster]:
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(SyslogListener,
                                                              local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        app, admin = await start_pair(node_factory, f"udp://127.0.0.1:{port}")
        yield app, admin, listener
        for running in (app, admin):
            running.stop.set()
        await asyncio.gather(app.stopped(), admin.stopped())   # while syslog still listens
    finally:
        transport.close()


async def _refuse(app: RunningNode, broker: str) -> None:
    """Ask the appServer for something it refuses: it logs command.refused at warning level
    (beds.ops.control), naming `broker`."""
    ops = app.stack.settings.ops
    commands, connection = await open_command_client(AMQP_URL, ops.control_exchange, 5)
    try:
        with pytest.raises(CommandFailed):
            await commands.send(node_key(app.stack.settings.node.name), "set-instances",
                                {"broker": broker, "instances": 1})
    finally:
        await connection.close()


async def _recent(client: Client, **filters: Any) -> list[dict[str, Any]]:
    return (await client.call("logs", "recent", filters)).data


async def test_a_warning_on_the_app_lands_in_the_store_and_in_syslog(cluster: Cluster
                                                                     ) -> None:
    app, admin, listener = cluster
    app_name = app.stack.settings.node.name
    await _refuse(app, "noSuchBroker")

    async with Client(AMQP_URL, app.stack.exchange, default_timeout=10) as client:
        found: list[dict[str, Any]] = []

        async def stored() -> bool:
            found[:] = await _recent(client, node=app_name, event="command.refused")
            return bool(found)

        await wait_for(stored, 30, interval=0.2)
        row = found[0]
        assert row["level"] == "warning" and row["role"] == "appServer"
        line = row["line"] if isinstance(row["line"], dict) else json.loads(row["line"])
        assert line["code"] == "BAD_COMMAND" and "noSuchBroker" in line["error"]

        def forwarded() -> list[dict[str, Any]]:
            return [m for m in listener.messages()
                    if m["msgid"] == "command.refused" and m["line"]["node"] == app_name]

        await wait_for(forwarded, 30, interval=0.1)
        message = forwarded()[0]
        assert int(message["pri"]) == 16 * 8 + 4        # local0.warning
        assert message["app"] == "beds" and message["procid"].isdigit()
        assert f'node="{app_name}"' in message["sd"] and 'role="appServer"' in message["sd"]
        assert message["line"]["code"] == "BAD_COMMAND"

        # The same rows through the command line, against the admin node's query broker.
        # (A subprocess, awaited: the nodes serving it run on this event loop.)
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "beds", "call", "logs", "recent", "--env",
            str(admin.stack.env_file), "--params",
            json.dumps({"node": app_name, "event": "command.refused"}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 0, stderr.decode()
        assert json.loads(stdout)["data"][0]["log_id"] == row["log_id"]


async def test_a_write_call_leaves_an_audit_event_with_its_caller(cluster: Cluster) -> None:
    app, _admin, _listener = cluster
    app_name = app.stack.settings.node.name
    async with Client(AMQP_URL, app.stack.exchange, default_timeout=10,
                      user_id="guest") as client:
        reply = await client.call("customer", "create", {
            "store_id": 1, "first_name": "Audit", "last_name": "Trail",
            "email": f"audit-{secrets.token_hex(4)}@example.com"})
        customer_id = (reply.out or {})["customer_id"]
        await client.call("customer", "fetch", {"customer_id": customer_id})   # a read: no audit
        found: list[dict[str, Any]] = []

        async def audited() -> bool:
            found[:] = await _recent(client, node=app_name, level="audit")
            return bool(found)

        await wait_for(audited, 30, interval=0.2)
        assert [(r["template"], r["op"], r["caller"]) for r in found] == [
            ("customer", "create", "guest")]
        line = found[0]["line"] if isinstance(found[0]["line"], dict) \
            else json.loads(found[0]["line"])
        assert line["outcome"] == "ok" and line["broker"] == "wBroker"

    # The admin's templates match the live database (a reload checks them against it).
    assert await _admin.node.reload()


@pytest.fixture
async def store_behind_proxy(node_factory: NodeFactory, mysql_db: MysqlDb,
                             mysql_proxy: TcpProxy) -> AsyncIterator[Store]:
    app, admin = await start_pair(node_factory, "", mysql_db.via(mysql_proxy.port))
    yield app, admin, mysql_proxy
    mysql_proxy.restore()
    for running in (app, admin):
        running.stop.set()
    await asyncio.gather(app.stopped(), admin.stopped())   # before the proxy goes


async def test_lines_wait_while_the_store_is_down_and_are_stored_after(store_behind_proxy: Store,
                                                                      ) -> None:
    app, admin, proxy = store_behind_proxy
    app_name, admin_name = app.stack.settings.node.name, admin.stack.settings.node.name
    proxy.cut()                               # the log store's database goes away
    await _refuse(app, "whileDown")
    async with Client(AMQP_URL, app.stack.exchange, default_timeout=10) as client:
        # The store tries, fails with DB_UNAVAILABLE and holds the batch (retrying)...
        assert admin.node._pool is not None
        stores = [w for w in admin.node._pool.workers()
                  if isinstance(w, LogStore) and w.broker.name == "adminLogsBroker"]
        await wait_for(lambda: stores[0].held == "DB_UNAVAILABLE", 30, interval=0.1)
        proxy.restore()
        # ... and once the database is back the line is there, and so is the admin's own warning
        # that it held the batch (which went through the same path).

        async def stored() -> bool:
            try:
                rows = await _recent(client, event="command.refused", node=app_name)
                held = await _recent(client, event="logs.store_held", node=admin_name)
            except Exception:   # the pool may still be reconnecting: DB_UNAVAILABLE
                return False
            return any("whileDown" in str(r["line"]) for r in rows) and bool(held)

        await wait_for(stored, 45, interval=0.3)
