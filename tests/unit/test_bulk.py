"""Bulk ops: the template format (kind = "bulk", of = <write op>), row validation that names the
row and the field, routing to mBroker, and what a failing row means on each kind of adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beds.adapters.base import Call
from beds.adapters.batch import at_row
from beds.adapters.stub import StubAdapter
from beds.asyncapi import params_schema
from beds.config import OpKind
from beds.errors import Conflict, DbError, TemplateError, ValidationFailed
from beds.idempotency import scoped_key
from beds.protocol import Request, Result
from beds.templates import load_template
from tests.unit.test_dispatch import SETTINGS, build

ANN = {"store_id": 1, "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
BOB = {"store_id": 2, "first_name": "Bob", "last_name": "Ray", "email": "bob@example.com"}


def bulk(rows: Any, **params: Any) -> Request:
    return Request("customer", "import", {"rows": rows, **params} if rows is not None else params)


def test_a_bulk_op_takes_the_target_and_params_of_its_write_op() -> None:
    dispatcher, _ = build()
    route = dispatcher.routes[("customer", "import")]
    create = route.template.ops["create"]
    assert route.op.kind is OpKind.BULK and route.op.of == "create" and route.op.max_rows == 500
    assert (route.op.target, route.op.object_name, route.op.params, route.op.out) == (
        create.target, create.object_name, create.params, create.out)
    assert route.broker == "mBroker"
    assert dispatcher.keys_for("mBroker") == ["customer.import"]


TEMPLATE = """
name = "t"
datasource = "main"
[fields]
id = { type = "int", min = 1 }
[ops.get]
kind = "read"
procedure = "t_get"
params = ["id"]
[ops.put]
kind = "write"
procedure = "t_put"
params = ["id"]
allow = ["importer"]
[ops.many]
kind = "bulk"
of = "put"
"""


@pytest.mark.parametrize(("change", "message"), [
    (('of = "put"', 'of = "get"'), "ops.many.of: 'get' is a read op; expected one of its write "
                                   "ops: put"),
    (('of = "put"', 'of = "nope"'), "ops.many.of: 'nope' is not an op of this template"),
    (('of = "put"', ''), "ops.many.of: required key is missing"),
    (('of = "put"', 'of = "put"\nprocedure = "t_put"'),
     "ops.many.procedure: a bulk op takes the target and params of the write op"),
    (('of = "put"', 'of = "put"\nmax_rows = 20000'),
     "ops.many.max_rows: expected int between 1 and 10000, got 20000"),
    (('of = "put"', 'of = "put"\nlimit = 5'), "ops.many.limit: unknown key"),
])
def test_bad_bulk_ops_name_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(TEMPLATE.replace(*change))
    with pytest.raises(TemplateError, match="^" + str(path).replace(".", r"\.")) as info:
        load_template(path)
    assert message in str(info.value)


def test_a_bulk_op_is_never_looser_than_its_write_op(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(TEMPLATE)
    template = load_template(path)
    assert template.ops["many"].allow == ("importer",)
    assert list(template.ops) == ["get", "put", "many"]


@pytest.mark.parametrize(("request_", "message"), [
    (bulk(None), "params.rows: required parameter is missing"),
    (bulk([]), "params.rows: expected a list of 1 to 500 objects, got 0 rows"),
    (bulk([ANN] * 501), "params.rows: expected a list of 1 to 500 objects, got 501 rows"),
    (bulk({"0": ANN}), "params.rows: expected a list of 1 to 500 objects, got {"),
    (bulk([ANN], store_id=1), "params.store_id: not accepted by a bulk op; expected: rows"),
    (bulk([ANN, "x"]), "params.rows[1]: expected an object of this op's params, got 'x'"),
    (bulk([ANN, {**BOB, "email": "nope"}]), "params.rows[1].email: expected string matching"),
    (bulk([ANN, {**BOB, "store_id": None}]),
     "params.rows[1].store_id: required parameter must not be null"),
    (bulk([{k: v for k, v in ANN.items() if k != "last_name"}]),
     "params.rows[0].last_name: required parameter is missing"),
    (bulk([ANN, {**BOB, "x": 1}]), "params.rows[1].x: not accepted by this op; expected: "
                                   "store_id, first_name, last_name, email, pin"),
    (bulk([ANN, {**BOB, "pin": 1234}]), "params.rows[1].pin: expected string of at most 64 "
                                        "characters, got a value that does not fit (protected"),
    (Request("customer", "import", {"rows": [ANN]}, limit=5),
     "limit: only view ops take limit/offset/cursor; customer.import is a bulk op"),
])
async def test_every_row_is_checked_before_any_runs(request_: Request, message: str) -> None:
    dispatcher, stub = build()
    with pytest.raises(ValidationFailed) as info:
        await dispatcher.dispatch(request_, "mBroker")
    assert str(info.value).startswith(message), str(info.value)
    assert "1234" not in str(info.value)
    assert stub.calls == []


async def test_rows_row_index_is_in_the_details() -> None:
    dispatcher, _ = build()
    with pytest.raises(ValidationFailed) as info:
        await dispatcher.dispatch(bulk([ANN, ANN, {**BOB, "store_id": 0}]), "mBroker")
    assert info.value.details == {"field": "store_id", "row": 2}


async def test_a_bulk_call_replies_with_each_rows_out_values() -> None:
    dispatcher, stub = build()
    stub.results["customer_create"] = Result(rows=[{"customer_id": 7}], out={"customer_id": 7})
    route, result = await dispatcher.dispatch(bulk([ANN, {**BOB, "pin": "1"}]), "mBroker")
    assert route.broker == "mBroker"
    assert result.rows == [{"customer_id": 7}, {"customer_id": 7}]
    assert [call.args for _, call in stub.calls] == [
        [1, "Ann", "Lee", "ann@example.com", None], [2, "Bob", "Ray", "bob@example.com", "1"]]


class FailingStub(StubAdapter):
    """Commits rows one by one (no run_batch) and fails at the `fail_at`-th call."""

    fail_at = 1

    async def run(self, prepared: Any, call: Call) -> Result:
        if len(self.calls) == self.fail_at:
            self.calls.append((prepared, call))
            raise Conflict("duplicate key: uq_customer_email", errno=1062)
        return await super().run(prepared, call)


async def test_without_a_transaction_the_error_says_which_rows_stay_committed() -> None:
    from beds.dispatch import Dispatcher
    from beds.templates import TemplateRegistry, load_templates
    from tests.support.services import ROOT

    stub = FailingStub(SETTINGS.datasources["main"])
    dispatcher = Dispatcher.build(SETTINGS, TemplateRegistry(load_templates(ROOT / "templates")),
                                  {"main": stub})
    with pytest.raises(Conflict) as info:
        await dispatcher.dispatch(bulk([ANN, BOB, ANN]), "mBroker")
    assert str(info.value) == "rows[1]: duplicate key: uq_customer_email"
    # Row 0 committed on its own: running the request again would repeat it.
    assert info.value.details == {"errno": 1062, "row": 1, "committed": 1, "ran": True}
    assert len(stub.calls) == 2


def test_at_row_keeps_the_code_and_places_the_error() -> None:
    error = at_row(DbError("database error: unknown store_id", errno=1644), 3, 5, 0)
    assert isinstance(error, DbError)
    assert (error.message, error.details) == ("rows[3]: database error: unknown store_id",
                                              {"errno": 1644, "row": 3, "committed": 0})
    commit = at_row(DbError("database error: gone"), 5, 5, 0)
    assert commit.message == "rows: the commit of 5 rows failed: database error: gone"
    assert "row" not in commit.details


async def test_each_row_gets_its_own_idempotency_key(tmp_path: Path) -> None:
    text = (ROOT_TEMPLATES / "customer.toml").read_text() + (
        '\n[ops.pay_many]\nkind = "bulk"\nof = "pay"\nmax_rows = 3\n')
    (tmp_path / "customer.toml").write_text(text)
    dispatcher, stub = build(tmp_path)
    row = {"customer_id": 1, "amount": "1.00", "paid_at": "2030-01-01T00:00:00"}
    await dispatcher.dispatch(Request("customer", "pay_many",
                                      {"rows": [row, {**row, "request_id": "mine"}, row]}),
                              "mBroker", message_id="m-1")
    assert [call.args[0] for _, call in stub.calls] == [
        scoped_key("customer", "pay_many", None, key) for key in ("m-1.0", "mine", "m-1.2")]


def test_the_asyncapi_schema_of_a_bulk_op_is_a_list_of_rows() -> None:
    dispatcher, _ = build()
    route = dispatcher.routes[("customer", "import")]
    schema = params_schema(route.template, route.op)
    rows = schema["properties"]["rows"]
    assert schema["required"] == ["rows"] and rows["maxItems"] == 500
    assert rows["items"]["required"] == ["store_id", "first_name", "last_name", "email"]


ROOT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
