"""The fault-injection suite (`make chaos`): fixtures, markers, the results table.

Scenarios marked `chaos_fast` (bad input, authorisation, idempotency, deadlines) also run in
`make test`; every other scenario here is skipped unless BEDS_CHAOS=1 (the `make chaos` target sets
it). Each scenario gets its own exchange and queues (on the shared RabbitMQ, or on a private
RabbitMQ node for faults that hit a whole broker, see broker.py), uses the session's MariaDB
database, and removes what it declared. Every process, proxy and RabbitMQ user a scenario starts
is ended or deleted by the scenario itself.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.broker import PrivateRabbit, RabbitCtl, shared_ctl
from tests.chaos.checker import RESULTS, table
from tests.chaos.lab import Lab
from tests.chaos.mariadb import RootDb
from tests.conftest import CI, ROOT, SESSION, MysqlDb

HERE = Path(__file__).resolve().parent
FULL = os.environ.get("BEDS_CHAOS", "") == "1"
_STARTED = time.monotonic()

# Test-only DB objects for the scenarios (created once per session, as root):
#  * chaos_knob: how many rows the slow ops scan — big while the "slow database" fault lasts
#  * chaos_slow_pay: an idempotent payment (payment_record), THEN a real scan (a slow commit)
#  * chaos_scan: a read that scans as long as the knob says
#  * chaos_big: a view whose rows are ~1 KiB each (an oversized reply at any sane cap)
CHAOS_SQL = [
    "CREATE TABLE IF NOT EXISTS chaos_knob (id INT PRIMARY KEY, scan_rows BIGINT NOT NULL)",
    "INSERT IGNORE INTO chaos_knob VALUES (1, 0)",
    """CREATE OR REPLACE PROCEDURE chaos_slow_pay(
        IN p_request_id VARCHAR(64), IN p_customer_id INT, IN p_amount DECIMAL(6,2),
        IN p_paid_at DATETIME, OUT p_payment_id INT)
        MODIFIES SQL DATA SQL SECURITY DEFINER
    BEGIN
        DECLARE v_rows BIGINT;
        DECLARE v_n BIGINT;
        CALL payment_record(p_request_id, p_customer_id, p_amount, p_paid_at, p_payment_id);
        SELECT scan_rows INTO v_rows FROM chaos_knob WHERE id = 1;
        SELECT COUNT(*) INTO v_n FROM seq_1_to_1000000000 WHERE seq <= v_rows AND seq % 7 = 3;
    END""",
    """CREATE OR REPLACE PROCEDURE chaos_scan(IN p_n INT)
        READS SQL DATA SQL SECURITY DEFINER
    BEGIN
        DECLARE v_rows BIGINT;
        SELECT scan_rows INTO v_rows FROM chaos_knob WHERE id = 1;
        SELECT COUNT(*) AS n FROM seq_1_to_1000000000 WHERE seq <= v_rows AND seq % 7 = p_n;
    END""",
    """CREATE OR REPLACE SQL SECURITY DEFINER VIEW chaos_big AS
        SELECT seq AS id, REPEAT('x', 1000) AS pad FROM seq_1_to_100000""",
]
CHAOS_TEMPLATE = """
name = "chaos"
datasource = "main"
description = "Test-only ops of the fault-injection suite"

[fields]
request_id  = { type = "str", max_length = 64, pattern = '^[A-Za-z0-9._:-]+$' }
customer_id = { type = "int", min = 1 }
amount      = { type = "decimal", min = 0.01, max = 9999.99 }
paid_at     = { type = "datetime" }
n           = { type = "int", min = 0, max = 6 }
id          = { type = "int", min = 1 }

[ops.slow_pay]
kind = "write"
procedure = "chaos_slow_pay"
params = ["request_id", "customer_id", "amount", "paid_at"]
out = ["payment_id"]
idempotency_key = "request_id"

[ops.scan]
kind = "read"
procedure = "chaos_scan"
params = ["n"]

[ops.big]
kind = "read"
view = "chaos_big"
filters = ["id"]
order_by = ["id"]
limit = 20000
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_fast: a fault-injection scenario cheap enough for "
                                       "`make test` (bad input, authorisation, idempotency, "
                                       "deadlines)")
    config.addinivalue_line("markers", "chaos: a fault-injection scenario; without chaos_fast "
                                       "it runs only with BEDS_CHAOS=1 (`make chaos`)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if HERE not in Path(str(item.fspath)).parents:
        return
    if not FULL and item.get_closest_marker("chaos_fast") is None:
        pytest.skip("slow fault-injection scenario: runs with BEDS_CHAOS=1 (`make chaos`)")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not RESULTS:
        return
    text = table(sorted(RESULTS, key=_scenario_order))
    terminalreporter.write_sep("=", "fault-injection scenarios (tests/chaos)")
    terminalreporter.write_line(text)
    elapsed = time.monotonic() - _STARTED
    terminalreporter.write_line(f"{len(RESULTS)} scenarios, {elapsed:.0f} s in this session")
    if FULL:
        out = HERE / "results" / "latest.md"
        out.parent.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        verdict = "passed" if exitstatus == 0 else f"FAILED (pytest exit status {exitstatus})"
        out.write_text(
            "# Fault-injection results (`make chaos`)\n\n"
            f"Run {stamp}; {len(RESULTS)} scenarios; session {elapsed:.0f} s; {verdict}.\n"
            "Columns: see the docstring of tests/chaos/checker.py. `lost` and `duplicated` "
            "must be 0.\n\n" + text + "\n")
        terminalreporter.write_line(f"written to {out.relative_to(ROOT)}")


def _scenario_order(row: Any) -> tuple[int, str]:
    number, letter = re.match(r"(\d*)([a-z]?)", row.scenario).groups()  # type: ignore[union-attr]
    return int(number or 999), letter


# -- services ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shared_rabbitmqctl(rabbitmq: str) -> RabbitCtl:
    ctl = shared_ctl()
    if ctl is None:
        if CI:
            pytest.fail("rabbitmqctl is not on PATH (CI=true)")
        pytest.skip("rabbitmqctl is not on PATH")
    return ctl


@pytest.fixture(scope="session")
def private_rabbit(rabbitmq: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of this session's own, for faults that hit a whole broker."""
    why = PrivateRabbit.available()
    if why is not None:
        if CI:
            pytest.fail(f"cannot start a private RabbitMQ node: {why} (CI=true)")
        pytest.skip(f"cannot start a private RabbitMQ node: {why}")
    node = PrivateRabbit(tmp_path_factory.mktemp("rabbit"), SESSION)
    node.start()
    try:
        yield node
    finally:
        node.halt()


@pytest.fixture(scope="session")
async def root_db(mysql_db: MysqlDb) -> RootDb:
    root = RootDb(mysql_db)
    await root.execute(*CHAOS_SQL,
                       *(f"GRANT EXECUTE ON PROCEDURE {p} TO '{mysql_db.user}'@'%'"
                         for p in ("chaos_slow_pay", "chaos_scan")),
                       f"GRANT SELECT ON chaos_big TO '{mysql_db.user}'@'%'")
    return root


@pytest.fixture(scope="session")
def chaos_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example templates plus the test-only `chaos` template."""
    path = tmp_path_factory.mktemp("chaos-templates")
    for name in ("film.toml", "customer.toml"):
        shutil.copy(ROOT / "templates" / name, path / name)
    (path / "chaos.toml").write_text(CHAOS_TEMPLATE)
    return path


# -- one scenario's world (tests/chaos/lab.py) ------------------------------------------------

@pytest.fixture
async def lab(rabbitmq: str, mysql_db: MysqlDb, root_db: RootDb, chaos_templates: Path,
              shared_rabbitmqctl: RabbitCtl, tmp_path: Path) -> AsyncIterator[Lab]:
    made = Lab(tmp_path, mysql_db, root_db, chaos_templates, shared_rabbitmqctl)
    try:
        yield made
    finally:
        await made.close()
