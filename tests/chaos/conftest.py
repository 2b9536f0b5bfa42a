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
from tests.support.services import ROOT, SESSION, MysqlDb, missing
from tests.support.stack import make_stack

HERE = Path(__file__).resolve().parent
FULL = os.environ.get("BEDS_CHAOS", "") == "1"
_STARTED = time.monotonic()

# Test-only DB objects and the `chaos` template: tests/chaos/schema/<engine>/ and
# tests/chaos/templates/chaos.toml (what each op is for is said there).
CHAOS_SCHEMA = HERE / "schema"
CHAOS_TEMPLATE = HERE / "templates" / "chaos.toml"


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
        failed = [report.nodeid.rsplit("::", 1)[-1]
                  for report in terminalreporter.stats.get("failed", [])]
        verdict = "passed" if exitstatus == 0 else (
            f"FAILED (pytest exit status {exitstatus}: {', '.join(failed) or 'see the log'})")
        out.write_text(
            "# Fault-injection results (`make chaos`)\n\n"
            f"Run {stamp}; {len(RESULTS)} scenarios; session {elapsed:.0f} s; {verdict}.\n"
            "Columns: see the docstring of tests/chaos/checker.py. `lost` and `duplicated` "
            "must be 0; `re-executed`, `dropped` and `indeterminate` too, unless the row says "
            "why.\n\n" + text + "\n")
        terminalreporter.write_line(f"written to {out.relative_to(ROOT)}")


def _scenario_order(row: Any) -> tuple[int, str]:
    match = re.match(r"(\d*)([a-z]?)", row.scenario)
    assert match is not None   # the pattern matches any string (both groups may be empty)
    number, letter = match.groups()
    return int(number or 999), letter


# -- services ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shared_rabbitmqctl(rabbitmq: str) -> RabbitCtl:
    ctl = shared_ctl()
    if ctl is None:
        missing("rabbitmqctl is not on PATH")
    return ctl


@pytest.fixture(scope="session")
def private_rabbit(rabbitmq: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of this session's own, for faults that hit a whole broker."""
    why = PrivateRabbit.available()
    if why is not None:
        missing(f"cannot start a private RabbitMQ node: {why}")
    node = PrivateRabbit(tmp_path_factory.mktemp("rabbit"), SESSION)
    node.start()
    try:
        yield node
    finally:
        node.halt()


@pytest.fixture(scope="session")
async def root_db(mysql_db: MysqlDb, tmp_path_factory: pytest.TempPathFactory) -> RootDb:
    await apply_chaos_schema(mysql_db.datasource(), tmp_path_factory.mktemp("chaos-schema"),
                             shipped=False)
    return RootDb(mysql_db)


async def apply_chaos_schema(datasource: dict[str, Any], tmp_path: Path, *,
                             shipped: bool = True) -> None:
    """The example schema (unless it is there already) and the chaos objects, as a node's
    `beds schema apply` would: the application account gets EXECUTE/SELECT grants only."""
    from beds.adapters import create_adapter, schema_tool

    engine = datasource.get("engine", "mysql")
    settings = make_stack(datasource, tmp_path, "chaos-schema").settings
    adapter = create_adapter(settings.datasources["main"])
    files = sorted((ROOT / "schema" / engine).glob("*.sql")) if shipped else []
    await schema_tool(adapter).apply_schema([*files, *sorted((CHAOS_SCHEMA / engine).glob("*.sql"))])


@pytest.fixture(scope="session")
def chaos_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example templates plus the test-only `chaos` template."""
    path = tmp_path_factory.mktemp("chaos-templates")
    for name in ("film.toml", "customer.toml"):
        shutil.copy(ROOT / "templates" / name, path / name)
    shutil.copy(CHAOS_TEMPLATE, path / "chaos.toml")
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
