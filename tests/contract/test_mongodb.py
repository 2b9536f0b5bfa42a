"""The contract on MongoDB: the same script through a real node against a real mongod, when
BEDS_TEST_MONGO_URL names one (an admin URL, e.g. mongodb://127.0.0.1:27017/). No MongoDB server
can be installed on our CI machines: there every test that needs one skips with that reason, and
the query building and placeholder filling are covered by tests/unit/test_mongodb_ops.py."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from beds.adapters.base import Call
from beds.adapters.mongodb.adapter import MongoAdapter
from beds.config import DatasourceSettings, Engine
from beds.errors import Conflict, DbError, DbUnavailable
from beds.templates import load_template, load_templates
from tests.contract.conftest import EngineDb, EngineRun
from tests.contract.dynamodb_server import free_port
from tests.contract.nosql import assert_reply, differing, problems_by_op, templates_check
from tests.contract.script import NOT_ATOMIC, SCRIPT, Step
from tests.contract.test_templates_check import BROKEN
from tests.support.services import ROOT

DESCENDING = """
name = "films"
datasource = "main"
[fields]
category = { type = "str" }
[ops.desc]
kind = "read"
view = "film_list"
filters = ["category"]
order_by = ["-FID"]
"""


def settings(dsn: str, **extra: Any) -> DatasourceSettings:
    return DatasourceSettings("main", Engine.MONGODB, dsn, None, 0, 4,
                              extra.get("connect_timeout", 5.0), 10.0, ROOT / "schema/mongodb")


@pytest.mark.rabbitmq
@pytest.mark.parametrize("step", SCRIPT, ids=[s.key for s in SCRIPT])
def test_reply(mongodb_run: EngineRun, step: Step) -> None:
    if step.key in NOT_ATOMIC:
        pytest.skip(PER_ROW)
    assert_reply(mongodb_run.replies[step.key], step)


PER_ROW = ("a bulk op's rows cannot share one transaction without a replica set: each row "
           "commits on its own, so the rows before a failing one stay")


@pytest.mark.rabbitmq
def test_a_failing_import_row_leaves_the_rows_before_it(mongodb_run: EngineRun) -> None:
    failed = mongodb_run.replies["customer.import row 1 fails"]["error"]
    assert failed["details"]["row"] == 1 and failed["details"]["committed"] == 1
    kept = mongodb_run.replies["customer.fetch after failed import: row 0 rolled back"]
    assert [row["email"] for row in kept["data"]] == ["ruth@example.com"]


@pytest.mark.rabbitmq
@pytest.mark.mariadb
def test_replies_match_mariadb(mysql_run: EngineRun, mongodb_run: EngineRun) -> None:
    keys = [s.key for s in SCRIPT if s.key not in NOT_ATOMIC]
    differ = differing(mysql_run.replies, mongodb_run.replies, keys)
    assert not differ, "\n".join(
        f"{key}:\n  mysql:   {mysql_run.replies[key]}\n  mongodb: {mongodb_run.replies[key]}"
        for key in differ)


@pytest.mark.rabbitmq
def test_errors_carry_the_engines_code(mongodb_run: EngineRun) -> None:
    duplicate = mongodb_run.replies["customer.create duplicate"]["error"]
    assert duplicate["details"] == {"code": 11000}
    assert "uq_customer_email" in duplicate["message"]
    raised = mongodb_run.replies["customer.create unknown store"]["error"]
    assert raised["message"] == "database error: unknown store_id"


@pytest.mark.rabbitmq
async def test_typed_errors_reach_the_client(mongodb_run: EngineRun) -> None:
    params = {"store_id": 1, "first_name": "Mary", "last_name": "Smith",
              "email": "MARY.SMITH@example.com"}
    with pytest.raises(Conflict, match="duplicate key"):
        await mongodb_run.client.call("customer", "create", params)
    with pytest.raises(DbError, match="^database error: unknown store_id$"):
        await mongodb_run.client.call("customer", "create", {**params, "store_id": 99})
    page = await mongodb_run.client.call("customer", "list", {"store_id": 1})
    assert [row["email"] for row in page.data].count("mary.smith@example.com") == 1


def test_shipped_templates_match_the_schema(mongodb_contract_db: EngineDb, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = templates_check(mongodb_contract_db, tmp_path, ROOT / "templates", capsys)
    assert (code, out) == (0, "")
    assert "2 templates, 12 ops checked: 0 errors, 0 warnings" in err


def test_broken_template_is_reported(mongodb_contract_db: EngineDb, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(ROOT / "templates/film.toml", templates / "film.toml")
    (templates / "broken.toml").write_text(BROKEN)
    code, out, err = templates_check(mongodb_contract_db, tmp_path, templates, capsys)
    assert code == 1
    lines = problems_by_op(out, templates, "broken.toml")
    assert set(lines) == {"no_function", "function_args", "no_procedure", "procedure_args",
                          "no_out", "bad_filter", "no_view"}, out
    assert lines["procedure_args"].startswith("procedure 'film_fetch' takes 1 params")
    assert "declares 2 params and 0 out" in lines["no_out"]
    assert lines["bad_filter"] == "filter column 'store_id' is not a column of view 'film_list'"
    assert "7 errors" in err


async def test_views_page_with_offset_in_either_order(mongodb_contract_db: EngineDb,
                                                      tmp_path: Path) -> None:
    template = load_template(_write(tmp_path, DESCENDING))
    adapter = MongoAdapter(settings(mongodb_contract_db.dsn))
    try:
        prepared = adapter.prepare(template, template.ops["desc"])
        result = await adapter.run(prepared, Call(filters=[("category", "Action")], limit=3,
                                                  offset=1))
        assert [row["FID"] for row in result.rows] == [21, 19, 17]
    finally:
        await adapter.close()


async def test_an_unreachable_server_is_retryable(tmp_path: Path) -> None:
    """No server needed: nothing listens on the port."""
    template = load_template(_write(tmp_path, DESCENDING))
    adapter = MongoAdapter(settings(f"mongodb://127.0.0.1:{free_port()}/beds",
                                    connect_timeout=0.3))
    try:
        with pytest.raises(DbUnavailable) as raised:
            await adapter.run(adapter.prepare(template, template.ops["desc"]), Call(limit=1))
        assert raised.value.retryable
        assert not await adapter.ping()
    finally:
        await adapter.close()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "films.toml"
    path.write_text(text)
    return path


async def test_racing_repeats_of_an_idempotent_write_have_one_effect(
        mongodb_contract_db: EngineDb) -> None:
    customer = {t.name: t for t in load_templates(ROOT / "templates")}["customer"]
    adapter = MongoAdapter(settings(mongodb_contract_db.dsn))
    try:
        pay = adapter.prepare(customer, customer.ops["pay"])
        balance = adapter.prepare(customer, customer.ops["balance"])
        when = Call(args=[2, datetime(2099, 1, 1)])
        before = (await adapter.run(balance, when)).rows[0]["value"]
        call = Call(args=["race-1", 2, Decimal("3.10"), datetime(2030, 5, 5)])
        results = await asyncio.gather(*(adapter.run(pay, call) for _ in range(8)))
        later = await adapter.run(pay, call)
        ids = {r.out["payment_id"] for r in [*results, later] if r.out is not None}
        assert len(ids) == 1
        assert (await adapter.run(balance, when)).rows[0]["value"] == before + Decimal("3.10")
    finally:
        await adapter.close()
