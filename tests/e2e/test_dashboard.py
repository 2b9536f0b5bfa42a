"""The dashboard in a real browser: an appServer and an admin node run as `beds --role ...`
processes; Debian's headless chromium, driven by Playwright, loads the admin's dashboard while
requests (some bad) go through the cluster, and the test reads the numbers the page shows.

chromium comes from apt (.ci/services installs it); Playwright never downloads a browser. Without
it the test skips locally and FAILS under CI=true. The page's screenshot is saved in the test's
tmp dir; BEDS_DASHBOARD_SCREENSHOT=1 also writes docs/dashboard.png (the README's picture).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from beds.errors import ValidationFailed
from tests.support.node_process import NodeProcess, spawn_node
from tests.support.services import (
    AMQP_URL,
    ROOT,
    MysqlDb,
    consumer_count,
    delete_namespace,
    missing,
    queue_depth,
)
from tests.support.stack import write_env_file
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
CHROMIUM = Path(os.environ.get("BEDS_CHROMIUM", "/usr/bin/chromium"))
ADMIN_BROKERS = ("adminBrokerIn", "adminBrokerOut", "adminGraphBroker")
BAD = 3   # requests that fail validation: answered with an error, then dead-lettered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_browser() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (bash .ci/services installs Debian's chromium as root)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed: pip install -e '.[dev]'"
    if reason is None:
        return
    missing(reason)


@dataclass
class Cluster:
    exchange: str
    dashboard: str
    nodes: dict[str, NodeProcess]
    brokers: dict[str, int]   # the appServer's request brokers and their configured instances


@pytest.fixture
async def cluster(rabbitmq: str, mysql_db: MysqlDb, tmp_path: Path) -> AsyncIterator[Cluster]:
    require_browser()
    exchange = f"beds-test-dash-{secrets.token_hex(3)}"
    dashboard = f"127.0.0.1:{free_port()}"
    env: dict[str, Path] = {}
    for role, name in (("appServer", "app1"), ("admin", "adm1")):
        overrides: dict[str, Any] = {}
        if role == "admin":
            # The admin runs the services the dashboard needs; the log store and syslog have
            # tests of their own (tests/e2e/test_cluster.py runs the whole shipped role).
            overrides = {"admin": {"dashboard_listen": dashboard,
                                   "history_seconds": 120},   # 0.5 s steps
                         "roles": {"admin": {"templates": "", "brokers": list(ADMIN_BROKERS)}}}
        env[name] = write_env_file(
            mysql_db.datasource(), tmp_path / f"env-{name}.toml", exchange=exchange,
            node={"name": name, "grace_seconds": 3},
            ops={"snapshot_seconds": 0.5, "http_listen": f"127.0.0.1:{free_port()}"}, **overrides)
    from beds.config import load_settings
    settings = load_settings(ROOT / "config/beds.toml", env["app1"],
                             environ={"BEDS_MYSQL_PASSWORD": "x"})
    brokers = {name: settings.brokers[name].instances
               for name in settings.roles["appServer"].brokers}
    nodes = {"app1": await spawn_node(env["app1"], "appServer"),
             "adm1": await spawn_node(env["adm1"], "admin")}
    try:
        for node in nodes.values():
            await node.wait_event("node.ready")
        yield Cluster(exchange, f"http://{dashboard}/", nodes, brokers)
    finally:
        for node in nodes.values():
            if node.proc.returncode is None:
                await node.stop(signal.SIGTERM)
        await delete_namespace(settings)


class Page:
    """Reads what the dashboard shows: raw values sit in data-value of stable elements."""

    def __init__(self, page: Any) -> None:
        self.page = page

    async def raw(self, selector: str, attribute: str = "value") -> str | None:
        value = await self.page.evaluate(
            "([s, a]) => { const e = document.querySelector(s); return e ? (e.dataset[a] ?? null) : null }",
            [selector, attribute])
        return None if value in (None, "") else str(value)

    async def number(self, selector: str) -> float | None:
        raw = await self.raw(selector)
        return float(raw) if raw is not None else None

    async def until(self, selector: str, check: Any, expected: str, timeout: float = 20.0,
                    attribute: str = "value") -> Any:
        seen: dict[str, Any] = {}

        async def met() -> bool:
            seen["value"] = value = await self.raw(selector, attribute)
            if value is None:
                return False
            try:
                return bool(check(float(value)))
            except ValueError:
                return bool(check(value))

        try:
            await wait_for(met, timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"the dashboard's {selector} showed {seen.get('value')!r}, "
                                 f"expected {expected} within {timeout}s") from None
        return seen["value"]


def node_field(node: str, field: str) -> str:
    return f'#nodes tr[data-node="{node}"] [data-field="{field}"]'


def op_field(op: str, field: str) -> str:
    return f'#ops tr[data-op="{op}"] [data-field="{field}"]'


async def send(client: Any, count: int, film_id: int = 1) -> None:
    await asyncio.gather(*(client.call("film", "fetch", {"film_id": film_id})
                           for _ in range(count)))


async def test_dashboard_shows_the_cluster_live(cluster: Cluster, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    from beds.client import Client

    async with async_playwright() as pw, Client(AMQP_URL, cluster.exchange,
                                                default_timeout=10) as client:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            tab = await browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            await tab.goto(cluster.dashboard)
            await tab.evaluate("window.sameDocument = true")   # a reload would lose it
            page = Page(tab)

            # Both nodes, with their roles and states.
            await page.until(node_field("app1", "state"), lambda v: v == "ready", "ready")
            await page.until(node_field("adm1", "state"), lambda v: v == "ready", "ready")
            assert await tab.text_content(node_field("app1", "role")) == "appServer"
            assert await tab.text_content(node_field("adm1", "role")) == "admin"

            # The appServer's broker instances: as configured and as RabbitMQ counts consumers.
            for broker, instances in cluster.brokers.items():
                shown = await page.until(
                    f'{node_field("app1", "brokers")} [data-broker="{broker}"] [data-field="instances"]',
                    lambda v, n=instances: v == n, f"{instances} instances of {broker}")
                assert int(float(shown)) == await consumer_count(f"{cluster.exchange}.{broker}")

            # Load: the request rate is non-zero while it runs.
            sent = 0
            stop = asyncio.Event()

            async def load() -> None:
                nonlocal sent
                while not stop.is_set():
                    await send(client, 10)
                    sent += 10

            loader = asyncio.create_task(load())
            try:
                await page.until(node_field("app1", "rps"), lambda v: v > 0, "a request rate > 0")
                await page.until(op_field("film.fetch", "rps"), lambda v: v > 0, "film.fetch > 0/s")
                await page.until("#total-rps", lambda v: v > 0, "a cluster rate > 0")
            finally:
                stop.set()
                await loader
            await page.until(op_field("film.fetch", "requests"), lambda v: v == sent,
                             f"{sent} film.fetch requests")
            assert await page.number(op_field("film.fetch", "errors")) == 0

            # Bad requests: answered with an error, counted, and dead-lettered.
            for _ in range(BAD):
                with pytest.raises(ValidationFailed):
                    await client.call("film", "fetch", {"film_id": 0})
            await page.until(node_field("app1", "errors"), lambda v: v == BAD, f"{BAD} errors")
            await page.until(op_field("film.fetch", "errors"), lambda v: v == BAD, f"{BAD} errors")
            await page.until(node_field("app1", "errors_per_s"), lambda v: v > 0, "errors/s > 0")
            await page.until("#total-errors", lambda v: v == BAD, f"{BAD} errors in all")

            # Dead-letter depth: what RabbitMQ reports.
            dlq = f"{cluster.exchange}.dead"
            await wait_for(lambda: depth_is(dlq, BAD), 20)
            await page.until("#dead-letters", lambda v: v == BAD, f"{BAD} dead letters")
            assert await page.number("#dead-letters") == await queue_depth(dlq)

            # The page follows more load without a reload.
            before = await page.number(op_field("film.fetch", "requests"))
            polls = await page.number("#updates")
            assert before is not None and polls is not None
            await send(client, 25)
            await page.until(op_field("film.fetch", "requests"), lambda v: v == before + 25,
                             f"{before + 25:.0f} requests after 25 more")
            assert await tab.evaluate("window.sameDocument === true"), "the page reloaded"
            assert (await page.number("#updates") or 0) > polls
            assert await page.raw("#status") == "live"

            # Charts drew the history; then the picture for the README.
            for chart in ("rps-node", "rps-op", "latency-op", "latency-node", "errors-op",
                          "errors-node", "instances", "dead-letters"):
                await page.until(f'canvas[data-chart="{chart}"]', lambda v: v > 3,
                                 "more than 3 points", attribute="points")
            await _picture(tab, client, tmp_path)
            assert errors == [], f"the page raised: {errors}"
        finally:
            await browser.close()


async def depth_is(queue: str, expected: int) -> bool:
    return await queue_depth(queue) == expected


async def _picture(tab: Any, client: Any, tmp_path: Path) -> None:
    """A few seconds of mixed load so the charts have a shape, then a screenshot."""
    for round_ in range(8):
        await send(client, 20 + 10 * (round_ % 4))
        await send(client, 5, film_id=2)
        await tab.wait_for_timeout(400)   # pacing the load for the picture, not synchronisation
    shot = tmp_path / "dashboard.png"
    await tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("BEDS_DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
