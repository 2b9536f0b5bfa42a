"""A database that accepts connections and never answers (scenarios 16a, 16b; findings F4, F7):
a PRIVATE MariaDB, then a private PostgreSQL, frozen with SIGSTOP for several seconds under load
whose requests carry a 2 s deadline. Every request is answered within its deadline + 0.5 s, none
`ok` after it, and once the server thaws nothing is lost, paid twice or run twice.

A TCP proxy that cuts the link (scenario 6b) fails fast; a frozen server is the harder case: the
kernel completes the TCP handshake, and then nothing. The servers are the scenario's own
(servers.py), started on their own port and data directory and stopped by pid.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.conftest import apply_chaos_schema
from tests.chaos.lab import Lab
from tests.chaos.mariadb import RootDb
from tests.chaos.postgres import PgRootDb
from tests.chaos.servers import PrivateMariaDb, PrivatePostgres, started
from tests.chaos.workload import Workload, wait_until
from tests.support.services import MysqlDb, missing

pytestmark = [pytest.mark.rabbitmq, pytest.mark.chaos]
BUDGET = 2.0          # seconds: the x-deadline of every request
SLACK = 0.5           # the bound: answered within the deadline + 0.5 s
TRIP = 0.1            # an ok reply may arrive this long after the deadline (its trip back)
FREEZE = 6.0          # seconds the server stays stopped: three deadlines


def _unavailable(why: str | None) -> None:
    if why is not None:
        missing(why)


@pytest.fixture
async def private_mariadb(tmp_path: Path) -> AsyncIterator[tuple[PrivateMariaDb, dict[str, Any],
                                                                 RootDb]]:
    _unavailable(PrivateMariaDb.available())
    home = tmp_path / "mariadb"
    home.mkdir()
    server = PrivateMariaDb(home)
    await started(server)
    try:
        password = secrets.token_hex(12)
        dsn = f"mysql://chaos_app:{password}@127.0.0.1:{server.port}/beds_frozen"
        datasource = {"engine": "mysql", "dsn": dsn, "admin_dsn": server.admin_dsn,
                      "connect_timeout": 1}
        await apply_chaos_schema(datasource, tmp_path)
        root = RootDb(MysqlDb("beds_frozen", "chaos_app", password, dsn, server.admin_dsn))
        yield server, datasource, root
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def private_postgres(tmp_path: Path) -> AsyncIterator[tuple[PrivatePostgres,
                                                                  dict[str, Any], PgRootDb]]:
    _unavailable(PrivatePostgres.available())
    server = PrivatePostgres()
    await started(server)
    try:
        password = secrets.token_hex(12)
        dsn = f"postgresql://chaos_app:{password}@127.0.0.1:{server.port}/beds_frozen"
        datasource = {"engine": "postgres", "dsn": dsn, "admin_dsn": server.admin_dsn,
                      "connect_timeout": 1}
        await apply_chaos_schema(datasource, tmp_path)
        yield server, datasource, PgRootDb(server.admin_dsn, "beds_frozen")
    finally:
        await asyncio.to_thread(server.stop)


async def frozen_under_load(lab: Lab, wl: Workload, server: PrivateMariaDb | PrivatePostgres
                            ) -> None:
    """Steady load with 2 s deadlines; the server frozen for FREEZE seconds in the middle."""
    load = wl.load(workers=8, timeout=BUDGET + 4, budget=BUDGET)
    try:
        await wait_until(lambda: oks(wl) >= 60, 30, "60 ok replies before the freeze")
        with server.frozen():
            await asyncio.sleep(FREEZE)             # the fault
        thawed = oks(wl)
        await wait_until(lambda: oks(wl) >= thawed + 60, 60, "60 more ok replies after the thaw")
    finally:
        await load.stop()


def oks(wl: Workload) -> int:
    return sum(1 for r in wl.requests if r.code() == "ok")


def note_lateness(wl: Workload) -> None:
    """The slowest answer against its deadline, into the results table."""
    worst = max((by for r in wl.requests for _, by in r.lateness()), default=None)
    if worst is not None:
        wl.notes.append(f"slowest answer {worst:+.2f} s from its deadline")


def assert_deadlines_kept(wl: Workload) -> None:
    """Every copy answered by its deadline + SLACK, ok or DEADLINE_EXCEEDED / DB_UNAVAILABLE,
    no ok after the deadline, and the freeze showed (some answered DEADLINE_EXCEEDED or
    DB_UNAVAILABLE)."""
    unanswered = [r.rid for r in wl.requests if not r.dead
                  and set(r.sent_cids) - {cid for cid, _ in r.replies}]
    late = [(r.rid, code, round(by, 2)) for r in wl.requests for code, by in r.lateness()
            if by > SLACK or (code == "ok" and by > TRIP)]
    refused = [code for r in wl.requests for code, _ in r.lateness()
               if code in {"DEADLINE_EXCEEDED", "DB_UNAVAILABLE"}]
    odd = [(r.rid, code) for r in wl.requests for code, _ in r.lateness()
           if code not in {"ok", "DEADLINE_EXCEEDED", "DB_UNAVAILABLE"}]
    assert not unanswered, f"{len(unanswered)} copies never answered: {unanswered[:5]}"
    assert not odd, f"answered neither ok nor DEADLINE_EXCEEDED / DB_UNAVAILABLE: {odd[:5]}"
    assert not late, f"answered past the deadline (+{SLACK} s, ok +{TRIP} s): {late[:10]}"
    assert len(refused) >= 8, f"only {len(refused)} requests felt the freeze: it missed"


async def test_16a_frozen_mariadb_under_load_with_deadlines(
        lab: Lab, private_mariadb: tuple[PrivateMariaDb, dict[str, Any], RootDb]) -> None:
    server, datasource, root = private_mariadb
    stack = lab.stack("frozen-mariadb", datasource=datasource)
    await lab.start(stack)
    wl = lab.workload(f"16a private MariaDB frozen (SIGSTOP) {FREEZE:g} s, {BUDGET:g} s "
                      "deadlines", stack, root=root, min_sent=150)
    await frozen_under_load(lab, wl, server)
    note_lateness(wl)
    row = await wl.finish(timeout=BUDGET + 4)
    assert_deadlines_kept(wl)
    wl.assert_clean(row)


async def test_16b_frozen_postgres_under_load_with_deadlines(
        lab: Lab, private_postgres: tuple[PrivatePostgres, dict[str, Any], PgRootDb]) -> None:
    server, datasource, root = private_postgres
    stack = lab.stack("frozen-postgres", datasource=datasource)
    await lab.start(stack)
    wl = lab.workload(f"16b private PostgreSQL frozen (SIGSTOP) {FREEZE:g} s, {BUDGET:g} s "
                      "deadlines", stack, root=root, min_sent=150)
    await frozen_under_load(lab, wl, server)
    note_lateness(wl)
    row = await wl.finish(timeout=BUDGET + 4)
    assert_deadlines_kept(wl)
    wl.assert_clean(row)
