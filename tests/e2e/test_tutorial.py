"""docs/tutorial.md, run for real: its files, its commands, and the output it says you will see.

The tutorial promises the exact output of every step. This test reads the config, the spec and
the existing table from the page, runs each `beds` command it shows in a fresh project folder
against real MariaDB and RabbitMQ (its own database, account and exchange names), and compares
what the commands print with the page: exactly, except for what differs per run (timestamps,
elapsed times, correlation ids). A change that alters what the tutorial shows fails here.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
import aiormq
import pytest

from tests.support.node_process import NodeProcess
from tests.support.services import ROOT, host_port

PAGE = ROOT / "docs/tutorial.md"
_FENCE = re.compile(r'^```(\w+)(?: title="([^"]+)")?\n(.*?)^```', re.M | re.S)
_VOLATILE = ("timestamp", "elapsed_ms", "created_at", "updated_at", "correlation_id",
             "message_id")


@dataclass
class Page:
    files: dict[str, str]                      # fenced blocks with a title, by title
    commands: list[tuple[str, list[str]]]      # ("$ line", output lines) in page order

    def output(self, command: str, nth: int = 0) -> list[str]:
        found = [out for cmd, out in self.commands if cmd == command]
        assert len(found) > nth, f"the tutorial shows no {command!r} (#{nth + 1})"
        return found[nth]


def read_page() -> Page:
    files: dict[str, str] = {}
    commands: list[tuple[str, list[str]]] = []
    for lang, title, body in _FENCE.findall(PAGE.read_text(encoding="utf-8")):
        if title:
            files[title] = body
        if lang == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    commands.append((line[2:], []))
                elif commands:
                    commands[-1][1].append(line)
    return Page(files, commands)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    exchange: str
    account: str   # the page's shop_app, with this run's suffix


@pytest.fixture
async def project(rabbitmq: str, mysql_server: str, tmp_path: Path) -> AsyncIterator[Project]:
    page = read_page()
    sid = secrets.token_hex(3)
    database, account, exchange = f"shop_tut_{sid}", f"shop_app_{sid}", f"shop_t{sid}"
    host, port = host_port(mysql_server, 3306)

    def ours(text: str) -> str:   # the page's names -> this run's names
        text = text.replace("shop_tut", database).replace("shop_app", account)
        return re.sub(r'"shop(?=[".])', f'"{exchange}', text)

    (tmp_path / "config").mkdir()
    (tmp_path / "specs").mkdir()
    (tmp_path / "config/beds.toml").write_text(
        ours(page.files["config/beds.toml"]).replace("127.0.0.1:3306", f"{host}:{port}"))
    (tmp_path / "specs/product.toml").write_text(page.files["specs/product.toml"])
    admin = await aiomysql.connect(host=host, port=port, user="root", autocommit=True)
    async with admin.cursor() as cur:
        for statement in ours(page.files["existing.sql"]).split(";\n"):
            if statement.strip():
                await cur.execute(statement)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEDS_")}
    env |= {"SHOP_DB_PASSWORD": secrets.token_hex(16), "BEDS_AMQP_URL": rabbitmq}
    try:
        yield Project(tmp_path, env, exchange, account)
    finally:
        async with admin.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            await cur.execute(f"DROP USER IF EXISTS '{account}'@'%'")
        admin.close()
        await _delete_topology(rabbitmq, exchange)


async def _delete_topology(url: str, exchange: str) -> None:
    connection = await aiormq.connect(url)
    channel = await connection.channel()
    for queue in ("read", "write", "dead", "unrouted"):
        await channel.queue_delete(f"{exchange}.{queue}")
    for suffix in ("", ".dlx", ".unrouted", ".control", ".events", ".metrics", ".logs"):
        await channel.exchange_delete(exchange + suffix)
    await connection.close()


async def beds(project: Project, command: str) -> tuple[int, list[str]]:
    """Run a `beds ...` line of the page in the project; stdout then stderr, as lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beds", *shlex.split(command)[1:], cwd=project.path,
        env=project.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, (out.decode() + err.decode()).splitlines()


async def test_the_tutorial_prints_what_it_says(project: Project) -> None:
    page = read_page()

    for command in ("beds scaffold specs/product.toml --engine mysql",
                    "beds schema apply --datasource shop", "beds templates check",
                    "beds templates list"):
        code, lines = await beds(project, command)
        lines = [line.replace(project.account, "shop_app") for line in lines]
        assert (code, lines) == (0, page.output(command)), command

    template = project.path / "templates/product.toml"
    good = template.read_text()
    template.write_text(good.replace('procedure = "product_fetch"',
                                     'procedure = "product_by_sku"'))
    code, lines = await beds(project, "beds templates check")
    assert (code, lines) == (1, page.output("beds templates check", nth=1))
    template.write_text(good)

    node = await _start(project)
    try:
        ready = _scrub(node.events("node.ready")[0])
        assert ready == _scrub(json.loads(page.output("beds --role appServer")[0]))
        calls = [cmd for cmd, _out in page.commands if cmd.startswith("beds call ")]
        assert len(calls) == 5
        for command in calls:
            _code, lines = await beds(project, command)
            expected = _scrub(json.loads("\n".join(page.output(command))))
            assert _scrub(json.loads("\n".join(lines))) == expected, command
    finally:
        assert await node.stop() == 0


async def _start(project: Project) -> NodeProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beds", "--role", "appServer", cwd=project.path, env=project.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    node = NodeProcess(proc)

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            node.lines.append(raw.decode().rstrip())

    node.reader = asyncio.create_task(read())
    await node.wait_event("node.ready")
    return node
