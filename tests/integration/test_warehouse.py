"""The segundo role: whBroker moves aged payments from a fresh live (HOT) database to a fresh
warehouse (COOL) database per templates/segundo/payments.toml, and cBroker serves them — against
real RabbitMQ and MariaDB, with two movers running at once. A load that fails purges nothing; a
crash between load and purge duplicates nothing and loses nothing."""

from __future__ import annotations

import asyncio
import secrets
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiormq
import msgspec
import pytest
import tomli_w

from beds.cli import main
from beds.client import Client
from beds.config import Settings
from beds.errors import WrongBroker
from tests.support.mysql import apply_schema, drop, new_databases, query
from tests.support.services import AMQP_URL, ROOT, delete_namespace, private_queue
from tests.support.stack import Stack, make_stack, start_node
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]

BATCH = 3            # 17 aged rows -> five full batches and a short one per run
AGED, FRESH = 17, 4  # the 7 aged seed payments + 10 below; seed payment 8 (2031) + 3 below
AGE = 30 * 86400
COLUMNS = "payment_id, customer_id, rental_id, amount, payment_date, last_update"


@dataclass
class Warehouse:
    stack: Stack
    hot: str
    cool: str
    user: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    async def query(self, database: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await query(database, sql, *args)

    async def aged_hot(self) -> list[tuple[Any, ...]]:
        return await self.query(self.hot, f"SELECT {COLUMNS} FROM payment WHERE payment_date < "
                                          "NOW() - INTERVAL 30 DAY ORDER BY payment_id")

    async def fresh_hot(self) -> list[tuple[Any, ...]]:
        return await self.query(self.hot, "SELECT payment_id FROM payment WHERE payment_date >= "
                                          "NOW() - INTERVAL 30 DAY ORDER BY payment_id")

    async def cool_rows(self) -> list[tuple[Any, ...]]:
        return await self.query(self.cool,
                                f"SELECT {COLUMNS} FROM payment_archive ORDER BY payment_id")


@pytest.fixture
async def warehouse(rabbitmq: str, mysql_server: str, tmp_path: Path) -> AsyncIterator[Warehouse]:
    """Fresh HOT and COOL databases (one least-privilege account), HOT seeded with aged and fresh
    payments; templates/segundo with a 0.2 s schedule and batches of 3; two movers."""
    dbs = new_databases("wh")
    templates = tmp_path / "templates" / "segundo"
    templates.mkdir(parents=True)
    for source in (ROOT / "templates/segundo").glob("*.toml"):
        data = tomllib.loads(source.read_text())
        if "warehouse" in data:
            data["warehouse"].update(every=0.2, batch=BATCH)
        (templates / source.name).write_text(tomli_w.dumps(data))
    stack = make_stack(dbs.datasource(dbs.hot), tmp_path, f"wh{secrets.token_hex(3)}",
                       templates=tmp_path / "templates",
                       datasources={"cool": dbs.datasource(dbs.cool)},
                       brokers={"whBroker": {"instances": 2}})   # two movers at once: correct
    wh = Warehouse(stack, dbs.hot, dbs.cool, dbs.user)
    try:
        await apply_schema(stack.settings, "main", "mysql")
        await apply_schema(stack.settings, "cool", "mysql_cool")
        values = ", ".join(f"({1 + i % 5}, {1 + i}.50, NOW() - INTERVAL {31 + i} DAY)"
                           for i in range(10))
        values += ", " + ", ".join(f"({1 + i}, 2.00, NOW() - INTERVAL 1 DAY)" for i in range(3))
        await wh.query(dbs.hot, "INSERT INTO payment (customer_id, amount, payment_date) "
                                f"VALUES {values}")
        assert (len(await wh.aged_hot()), len(await wh.fresh_hot())) == (AGED, FRESH)
        yield wh
    finally:
        await delete_namespace(stack.settings)
        await drop(dbs)


async def listen_events(wh: Warehouse) -> aiormq.abc.AbstractConnection:
    """Collect the node's warehouse events (published on the control exchange)."""
    conn = await aiormq.connect(AMQP_URL)
    channel = await conn.channel()
    queue = await private_queue(channel)
    for event in ("warehoused", "warehouse_failed"):
        await channel.queue_bind(queue, wh.settings.ops.control_exchange,
                                 routing_key=f"event.*.{event}")

    async def collect(message: aiormq.abc.DeliveredMessage) -> None:
        wh.events.append(msgspec.json.decode(message.body))

    await channel.basic_consume(queue, collect, no_ack=True)
    return conn


def moved_everything(wh: Warehouse, count: int = AGED) -> Any:
    async def check() -> bool:
        return not await wh.aged_hot() and len(await wh.cool_rows()) == count
    return check


async def test_warehouse_moves_aged_rows_and_cbroker_serves_them(
        warehouse: Warehouse) -> None:
    wh = warehouse
    aged = await wh.aged_hot()
    fresh = await wh.fresh_hot()
    running = await start_node(wh.stack, "segundo")
    try:
        events = await listen_events(wh)
        await wait_for(moved_everything(wh), 30)
        # Every aged row, exactly as it was; the fresh ones stay live and never reach COOL.
        assert await wh.cool_rows() == aged
        assert await wh.fresh_hot() == fresh
        async with Client(AMQP_URL, wh.stack.exchange, default_timeout=10) as client:
            one = await client.call("payment_archive", "fetch", {"payment_id": 1})
            assert one.meta["broker"] == "cBroker"
            assert [(r["payment_id"], r["customer_id"], r["amount"]) for r in one.data] == [
                (1, 1, "0.99")]
            listed = await client.call("payment_archive", "list", {"customer_id": 1}, limit=100)
            assert listed.meta["broker"] == "cBroker"
            ids = [r["payment_id"] for r in listed.data]
            assert sorted(ids) == [row[0] for row in aged if row[1] == 1]
            absent = await client.call("payment_archive", "fetch", {"payment_id": fresh[0][0]})
            assert absent.data == []
            # The mover's ops are bound to no queue: a service cannot purge or load.
            with pytest.raises(WrongBroker):
                await client.call("payments", "wh_purge", {"keys": [fresh[0][0]],
                                                           "age_seconds": 1})
            with pytest.raises(WrongBroker):
                await client.call("payment_archive", "wh_load", {"rows": []})
        assert await wh.fresh_hot() == fresh
        # New rows that age later are moved by a later run (a run per tick).
        await wh.query(wh.hot, "INSERT INTO payment (customer_id, amount, payment_date) "
                               "VALUES (2, 3.00, NOW() - INTERVAL 40 DAY)")
        await wait_for(moved_everything(wh, AGED + 1), 30)
        # Both movers may load that row; one of them deleted it, and says so.
        await wait_for(lambda: any(e["event"] == "warehoused" and e["moved"] == 1
                                   for e in wh.events), 10)
        warehoused = [e for e in wh.events if e["event"] == "warehoused"]
        assert {e["template"] for e in warehoused} == {"payments"}
        assert all(e["loaded"] >= e["moved"] for e in warehoused)
        await events.close()
    finally:
        running.stop.set()
        await asyncio.wait_for(running.task, 30)


async def test_a_failed_load_purges_nothing_and_the_next_run_resumes(
        warehouse: Warehouse) -> None:
    wh = warehouse
    aged = await wh.aged_hot()
    grantee = f"'{wh.user}'@'%'"
    await wh.query(wh.cool, f"REVOKE EXECUTE ON PROCEDURE payment_archive_load FROM {grantee}")
    running = await start_node(wh.stack, "segundo")
    try:
        events = await listen_events(wh)
        await wait_for(lambda: any(e["event"] == "warehouse_failed" for e in wh.events), 10)
        failed = next(e for e in wh.events if e["event"] == "warehouse_failed")
        assert failed["template"] == "payments" and failed["retryable"] is False
        assert "payment_archive_load" in failed["error"]
        assert await wh.aged_hot() == aged and await wh.cool_rows() == []
        await wh.query(wh.cool, f"GRANT EXECUTE ON PROCEDURE payment_archive_load TO {grantee}")
        await wait_for(moved_everything(wh), 30)
        assert await wh.cool_rows() == aged
        await events.close()
    finally:
        running.stop.set()
        await asyncio.wait_for(running.task, 30)


async def test_a_crash_between_load_and_purge_duplicates_nothing(warehouse: Warehouse) -> None:
    wh = warehouse
    aged = await wh.aged_hot()
    # A mover that died after loading two batches and before purging them: the routines, called
    # as the mover calls them, without the purge.
    after = None
    for _ in range(2):
        rows = await _extract(wh, after)
        await wh.query(wh.cool, "CALL payment_archive_load(%s, @loaded)",
                       msgspec.json.encode(rows).decode())
        after = rows[-1]["payment_id"]
    assert len(await wh.cool_rows()) == 2 * BATCH and await wh.aged_hot() == aged
    running = await start_node(wh.stack, "segundo")
    try:
        await wait_for(moved_everything(wh), 30)
    finally:
        running.stop.set()
        await asyncio.wait_for(running.task, 30)
    assert await wh.cool_rows() == aged
    # Loading a batch again (a second mover, a late retry) changes nothing.
    again = [dict(zip(COLUMNS.split(", "), row, strict=True)) for row in aged[:BATCH]]
    await wh.query(wh.cool, "CALL payment_archive_load(%s, @loaded)",
                   msgspec.json.encode(again).decode())
    assert await wh.cool_rows() == aged


async def _extract(wh: Warehouse, after: int | None) -> list[dict[str, Any]]:
    rows = await wh.query(wh.hot, "CALL payment_wh_extract(%s, %s, %s)", AGE, after, BATCH)
    return [dict(zip(COLUMNS.split(", "), row, strict=True)) for row in rows]


async def test_templates_check_passes_for_segundo(warehouse: Warehouse,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("BEDS_MYSQL_PASSWORD", "x")   # the shipped config's; the env file overrides
    code = await asyncio.to_thread(main, ["templates", "check", "--role", "segundo",
                                          "--env", str(warehouse.stack.env_file)])
    assert code == 0
    assert "2 templates, 5 ops checked: 0 errors, 0 warnings" in capsys.readouterr().err
