"""FakeBeds answers like a node, without RabbitMQ: the same Reply, the same exceptions with the
same codes, and (given the templates) the node's own routing and validation errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from beds import (
    CallTimeout,
    Conflict,
    Forbidden,
    OpNotFound,
    Reply,
    TemplateNotFound,
    ValidationFailed,
)
from beds.testing import FakeBeds, FakeCall
from tests.support.services import ROOT


async def test_canned_rows_come_back_as_a_reply() -> None:
    fake = FakeBeds().on("film", "in_stock", data=[{"inventory_id": 2}], out={"film_count": 1})
    async with fake as client:
        reply = await client.call("film", "in_stock", {"film_id": 1, "store_id": 1})
    assert isinstance(reply, Reply)
    assert reply.data == [{"inventory_id": 2}] and reply.out == {"film_count": 1}
    assert reply.sets is None and reply.next_cursor is None
    assert reply.meta == {"template": "film", "op": "in_stock", "node": "fake", "broker": "fake",
                          "rows": 1, "elapsed_ms": 0.0}
    assert fake.calls == [FakeCall("film", "in_stock", {"film_id": 1, "store_id": 1})]


async def test_values_pass_the_wire_encoder_as_a_node_reply_does() -> None:
    fake = FakeBeds().on("customer", "balance", data=[{"value": Decimal("10.97")}])
    reply = await fake.call("customer", "balance", {"customer_id": 1})
    assert reply.data == [{"value": "10.97"}]   # a DECIMAL column arrives as a string


async def test_an_error_answer_raises_the_same_class_code_and_details() -> None:
    fake = FakeBeds().on("customer", "create", error=Conflict("duplicate key 'email'", key="email"))
    with pytest.raises(Conflict, match="duplicate key 'email'") as info:
        await fake.call("customer", "create", {"email": "a@example.com"})
    assert info.value.code == "CONFLICT" and info.value.retryable is False
    assert info.value.details["key"] == "email"
    assert info.value.details["reply"]["error"]["code"] == "CONFLICT"
    raw = await fake.call_raw("customer", "create", {"email": "a@example.com"})
    assert raw["ok"] is False
    assert raw["error"] == {"code": "CONFLICT", "message": "duplicate key 'email'",
                            "retryable": False, "details": {"key": "email"}}


async def test_client_side_errors_are_raised_as_the_client_would() -> None:
    fake = FakeBeds().on("film", "fetch", error=CallTimeout("no reply to film.fetch within 5s"))
    with pytest.raises(TimeoutError):
        await fake.call("film", "fetch", {"film_id": 1}, timeout=5)


async def test_a_handler_sees_each_call_and_answers_it() -> None:
    def films(call: FakeCall) -> list[dict[str, object]]:
        if call.params.get("category") == "Nope":
            raise ValidationFailed("params.category: no such category", field="category")
        return [{"FID": n} for n in range(call.offset or 0, (call.offset or 0) + (call.limit or 2))]

    fake = FakeBeds().on("film", "list", handler=films)
    assert [r["FID"] for r in (await fake.call("film", "list", limit=3, offset=4)).data] == [4, 5, 6]
    with pytest.raises(ValidationFailed, match="no such category") as info:
        await fake.call("film", "list", {"category": "Nope"})
    assert info.value.details["field"] == "category"
    whole = FakeBeds().on("film", "list", handler=lambda call: Reply(data=[], next_cursor="c2"))
    assert (await whole.call("film", "list")).next_cursor == "c2"


async def test_an_unanswered_call_fails_the_test_and_says_how_to_answer_it() -> None:
    fake = FakeBeds().on("film", "fetch", data=[])
    with pytest.raises(AssertionError, match=r"no answer for film.list \(it was told: film.fetch\); "
                                             r"add fake.on\('film', 'list', data=\[...\]\)"):
        await fake.call("film", "list")


async def test_given_the_templates_requests_are_checked_as_the_node_checks_them() -> None:
    fake = FakeBeds(ROOT / "templates").on("film", "fetch", data=[{"FID": 1}])
    assert (await fake.call("film", "fetch", {"film_id": 1})).data == [{"FID": 1}]
    with pytest.raises(ValidationFailed, match=r"params.film_id: expected int >= 1, got 'x'"):
        await fake.call("film", "fetch", {"film_id": "x"})
    with pytest.raises(ValidationFailed, match="limit: only view ops take limit"):
        await fake.call("film", "fetch", {"film_id": 1}, limit=5)
    with pytest.raises(OpNotFound, match="its ops are: fetch, in_stock, list, store_report"):
        await fake.call("film", "nope")
    with pytest.raises(TemplateNotFound):
        await fake.call("films", "fetch", {"film_id": 1})
    assert len(fake.calls_to("film", "fetch")) == 3
    with pytest.raises(ValidationFailed, match="rows"):
        await fake.call("customer", "import", {"rows": []})
    assert (await fake.call_raw("film", "fetch", {"film_id": 1}))["meta"]["broker"] == "rBroker"


def test_the_sync_view_shares_answers_and_calls() -> None:
    fake = FakeBeds().on("film", "fetch", data=[{"FID": 7}])
    with fake.sync as client:
        assert client.call("film", "fetch", {"film_id": 7}).data == [{"FID": 7}]
        assert client.call_raw("film", "fetch", {"film_id": 7})["ok"] is True
    assert len(fake.calls) == 2


def test_answers_are_given_one_way_each() -> None:
    with pytest.raises(ValueError, match="not two"):
        FakeBeds().on("film", "fetch", data=[], error=Conflict("x"))


async def test_allow_lists_are_enforced_against_the_fakes_user_id(tmp_path: Path) -> None:
    (tmp_path / "billing.toml").write_text(
        'name = "billing"\ndatasource = "main"\nallow = ["billing-svc"]\n'
        '[fields]\nid = { type = "int" }\n'
        '[ops.fetch]\nkind = "read"\nprocedure = "billing_fetch"\nparams = ["id"]\n')
    answered = FakeBeds(tmp_path, user_id="billing-svc").on("billing", "fetch", data=[{"id": 1}])
    assert (await answered.call("billing", "fetch", {"id": 1})).data == [{"id": 1}]
    refused = FakeBeds(tmp_path, user_id="other-svc").on("billing", "fetch", data=[{"id": 1}])
    with pytest.raises(Forbidden, match="user_id: 'other-svc' may not call billing.fetch"):
        await refused.call("billing", "fetch", {"id": 1})
    with pytest.raises(Forbidden, match="requires an authenticated caller"):
        await FakeBeds(tmp_path).on("billing", "fetch").call("billing", "fetch", {"id": 1})
