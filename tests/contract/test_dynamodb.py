"""The contract on DynamoDB: the same script through a real node, against a DynamoDB-compatible
server over HTTP (moto's server mode, or BEDS_TEST_DYNAMODB_URL). Steps DynamoDB cannot do are
skipped here with the reason, and what it answers instead is asserted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from beds.errors import Conflict, DbError, ValidationFailed
from tests.contract.conftest import EngineDb, EngineRun
from tests.contract.nosql import assert_reply, differing, problems_by_op, templates_check
from tests.contract.script import NOT_ATOMIC, SCRIPT, Step
from tests.contract.test_templates_check import BROKEN
from tests.support.services import ROOT

OFFSET = ("DynamoDB cannot skip rows server-side: a view op pages with the engine's cursor "
          "(LastEvaluatedKey), not an offset; the reply is VALIDATION_FAILED saying so")
OFFSET_STEPS = ("film.list Action p2", "film.list Action 5+5", "film.list past the end",
                "customer.list page")
PER_ROW = ("a bulk op's rows cannot share one DynamoDB transaction (each named operation does "
           "its reads and counters before its own TransactWriteItems): each row commits on its "
           "own, so the rows before a failing one stay")
CANNOT = {**{key: OFFSET for key in OFFSET_STEPS}, **{key: PER_ROW for key in NOT_ATOMIC}}


@pytest.mark.rabbitmq
@pytest.mark.parametrize("step", SCRIPT, ids=[s.key for s in SCRIPT])
def test_reply(dynamodb_run: EngineRun, step: Step) -> None:
    if step.key in CANNOT:
        pytest.skip(CANNOT[step.key])
    assert_reply(dynamodb_run.replies[step.key], step)


@pytest.mark.rabbitmq
def test_an_offset_is_refused_with_the_reason(dynamodb_run: EngineRun) -> None:
    for key in OFFSET_STEPS:
        error = dynamodb_run.replies[key]["error"]
        assert error["code"] == "VALIDATION_FAILED", key
        assert error["message"].startswith("offset: DynamoDB cannot skip rows;"), error


@pytest.mark.rabbitmq
def test_a_failing_import_row_leaves_the_rows_before_it(dynamodb_run: EngineRun) -> None:
    failed = dynamodb_run.replies["customer.import row 1 fails"]["error"]
    assert failed["details"]["row"] == 1 and failed["details"]["committed"] == 1
    assert failed["message"].startswith("rows[1]: duplicate key")
    kept = dynamodb_run.replies["customer.fetch after failed import: row 0 rolled back"]
    assert [row["email"] for row in kept["data"]] == ["ruth@example.com"]
    again = dynamodb_run.replies["customer.import after the rollback"]["error"]
    assert again["code"] == "CONFLICT" and again["details"]["row"] == 0


@pytest.mark.rabbitmq
@pytest.mark.mariadb
def test_replies_match_mariadb(mysql_run: EngineRun, dynamodb_run: EngineRun) -> None:
    keys = [s.key for s in SCRIPT if s.key not in CANNOT]
    differ = differing(mysql_run.replies, dynamodb_run.replies, keys)
    assert not differ, "\n".join(
        f"{key}:\n  mysql:    {mysql_run.replies[key]}\n  dynamodb: {dynamodb_run.replies[key]}"
        for key in differ)


@pytest.mark.rabbitmq
def test_errors_carry_the_engines_code(dynamodb_run: EngineRun) -> None:
    duplicate = dynamodb_run.replies["customer.create duplicate"]["error"]
    assert duplicate["details"] == {"code": "ConditionalCheckFailed", "table": "customer_email"}
    assert "uq_customer_email" in duplicate["message"]
    taken = dynamodb_run.replies["customer.update_email taken"]["error"]
    assert taken["details"] == duplicate["details"]


@pytest.mark.rabbitmq
async def test_typed_errors_reach_the_client(dynamodb_run: EngineRun) -> None:
    params = {"store_id": 1, "first_name": "Mary", "last_name": "Smith",
              "email": "MARY.SMITH@example.com"}
    with pytest.raises(Conflict, match="duplicate key"):
        await dynamodb_run.client.call("customer", "create", params)
    with pytest.raises(DbError, match="^database error: unknown store_id$"):
        await dynamodb_run.client.call("customer", "create", {**params, "store_id": 99})
    page = await dynamodb_run.client.call("customer", "list", {"store_id": 1})
    assert [row["email"] for row in page.data].count("mary.smith@example.com") == 1


def test_shipped_templates_match_the_schema(dynamodb_contract_db: EngineDb, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = templates_check(dynamodb_contract_db, tmp_path, ROOT / "templates", capsys)
    assert (code, out) == (0, "")
    assert "2 templates, 12 ops checked: 0 errors, 0 warnings" in err


def test_broken_template_is_reported(dynamodb_contract_db: EngineDb, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(ROOT / "templates/film.toml", templates / "film.toml")
    (templates / "broken.toml").write_text(BROKEN)
    code, out, err = templates_check(dynamodb_contract_db, tmp_path, templates, capsys)
    assert code == 1
    lines = problems_by_op(out, templates, "broken.toml")
    assert set(lines) == {"no_function", "function_args", "no_procedure", "procedure_args",
                          "no_out", "bad_filter", "no_view"}, out
    assert lines["no_function"].startswith("function 'no_such_function' does not exist")
    assert lines["no_procedure"].startswith("procedure 'no_such_procedure' does not exist")
    assert lines["no_view"].startswith("view 'no_such_view' does not exist")
    assert lines["function_args"].startswith("function 'get_customer_balance' takes 2 params")
    assert "declares 1 params" in lines["function_args"]
    assert lines["procedure_args"].startswith("procedure 'film_fetch' takes 1 params")
    assert "declares 2 params and 0 out" in lines["procedure_args"]
    assert "gives out film_count; the template declares 2 params and 0 out" in lines["no_out"]
    assert lines["bad_filter"] == "filter column 'store_id' is not a column of view 'film_list'"
    assert "7 errors" in err


@pytest.mark.rabbitmq
async def test_a_view_pages_with_the_engines_cursor(dynamodb_run: EngineRun) -> None:
    client = dynamodb_run.client
    first = await client.call("film", "list", {"category": "Action"})
    assert [r["FID"] for r in first.data] == [1, 2, 3, 5, 7, 9, 11, 13, 15, 17]
    assert first.next_cursor
    second = await client.call("film", "list", {"category": "Action"}, cursor=first.next_cursor)
    assert [r["FID"] for r in second.data] == [19, 21, 23]
    assert second.next_cursor is None
    with pytest.raises(ValidationFailed, match="cursor: not a cursor this op returned"):
        await client.call("film", "list", {"category": "Action"}, cursor="bm90LWEtY3Vyc29y")
