"""The contract: the same template calls, through a real node and RabbitMQ, give the expected
replies on every engine, and the same replies on all of them."""

from __future__ import annotations

import copy

import pytest

from beds.errors import Conflict, DbError
from tests.contract.conftest import EngineRun
from tests.contract.nosql import assert_reply
from tests.contract.script import SCRIPT, Step, comparable

pytestmark = [pytest.mark.rabbitmq]


@pytest.mark.parametrize("step", SCRIPT, ids=[s.key for s in SCRIPT])
def test_reply(engine: EngineRun, step: Step) -> None:
    assert_reply(engine.replies[step.key], step)


def test_engines_reply_identically(mysql_run: EngineRun, postgres_run: EngineRun) -> None:
    differ = [step.key for step in SCRIPT
              if comparable(copy.deepcopy(mysql_run.replies[step.key]))
              != comparable(copy.deepcopy(postgres_run.replies[step.key]))]
    assert not differ, "\n".join(
        f"{key}:\n  mysql:    {mysql_run.replies[key]}\n  postgres: {postgres_run.replies[key]}"
        for key in differ)


def test_a_failing_import_row_rolls_back_the_whole_batch(engine: EngineRun) -> None:
    """MariaDB and PostgreSQL run a bulk op's rows in one transaction: all or nothing."""
    failed = engine.replies["customer.import row 1 fails"]["error"]
    assert failed["message"].startswith("rows[1]: duplicate key"), failed
    assert failed["details"]["row"] == 1 and failed["details"]["committed"] == 0
    assert engine.replies["customer.import"]["meta"]["broker"] == "mBroker"


def test_errors_carry_the_engines_code(engine: EngineRun) -> None:
    """What `comparable` sets aside: the engine's own error code travels in `details`."""
    duplicate = engine.replies["customer.create duplicate"]["error"]
    raised = engine.replies["customer.create unknown store"]["error"]
    if engine.engine == "mysql":
        assert duplicate["details"] == {"errno": 1062}
        assert raised["details"] == {"errno": 1644}
    else:
        assert duplicate["details"] == {"sqlstate": "23505"}
        assert raised["details"] == {"sqlstate": "P0001"}
    assert "uq_customer_email" in duplicate["message"]


async def test_typed_errors_reach_the_client(engine: EngineRun) -> None:
    """The same refusals, seen from the client API: typed exceptions, and nothing written."""
    params = {"store_id": 1, "first_name": "Mary", "last_name": "Smith",
              "email": "MARY.SMITH@example.com"}
    with pytest.raises(Conflict, match="duplicate key"):
        await engine.client.call("customer", "create", params)
    with pytest.raises(DbError, match="^database error: unknown store_id$"):
        await engine.client.call("customer", "create", {**params, "store_id": 99})
    page = await engine.client.call("customer", "list", {"store_id": 1})
    assert [row["email"] for row in page.data].count("mary.smith@example.com") == 1
