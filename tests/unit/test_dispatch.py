"""Dispatch with the stub adapter: routing, broker assignment, validation before the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beds.adapters.stub import StubAdapter
from beds.config import load_settings
from beds.dispatch import Dispatcher
from beds.errors import (
    DbUnavailable,
    Forbidden,
    OpNotFound,
    TemplateError,
    TemplateNotFound,
    ValidationFailed,
    WrongBroker,
)
from beds.idempotency import scoped_key
from beds.protocol import Request, Result
from beds.templates import TemplateRegistry, load_template, load_templates
from tests.support.services import ROOT

SETTINGS = load_settings(ROOT / "config/beds.toml", environ={"BEDS_MYSQL_PASSWORD": "x"})


def build(templates_dir: Path = ROOT / "templates") -> tuple[Dispatcher, StubAdapter]:
    stub = StubAdapter(SETTINGS.datasources["main"])
    registry = TemplateRegistry(load_templates(templates_dir))
    return Dispatcher.build(SETTINGS, registry, {"main": stub}), stub


def req(template: str, op: str, params: dict[str, Any] | None = None, **page: int) -> Request:
    return Request(template, op, params or {}, page.get("limit"), page.get("offset"))


async def test_ops_are_routed_to_brokers_by_kind() -> None:
    dispatcher, _ = build()
    assert dispatcher.routes[("film", "fetch")].broker == "rBroker"
    assert dispatcher.routes[("customer", "create")].broker == "wBroker"
    assert "customer.create" in dispatcher.keys_for("wBroker")
    assert "customer.create" not in dispatcher.keys_for("rBroker")


async def test_a_valid_call_reaches_the_adapter_with_bound_values() -> None:
    dispatcher, stub = build()
    await dispatcher.dispatch(req("film", "in_stock", {"store_id": 2, "film_id": 1}), "rBroker")
    (name, call), = stub.calls
    assert name == "film_in_stock" and call.args == [1, 2]


async def test_view_paging_defaults_and_maximum() -> None:
    dispatcher, stub = build()
    await dispatcher.dispatch(req("film", "list", {"category": "Action"}), "rBroker")
    assert stub.calls[-1][1].limit == 10 and stub.calls[-1][1].offset == 0
    assert stub.calls[-1][1].filters == [("category", "Action")]
    with pytest.raises(ValidationFailed, match="limit: expected int between 1 and 10, got 11"):
        await dispatcher.dispatch(req("film", "list", limit=11), "rBroker")


@pytest.mark.parametrize(("request_", "error", "message"), [
    (req("films", "fetch"), TemplateNotFound, "template: no template named 'films'"),
    (req("film", "nope"), OpNotFound, "op: template 'film' has no op 'nope'; its ops are: fetch"),
    (req("film", "fetch", {"film_id": "1 OR 1=1"}), ValidationFailed, "params.film_id: expected int"),
    (req("film", "fetch"), ValidationFailed, "params.film_id: required parameter is missing"),
    (req("film", "list", {"title": "x"}), ValidationFailed, "params.title: not accepted by this op"),
    (req("film", "fetch", {"film_id": 1}, limit=5), ValidationFailed, "limit: only view ops"),
    (req("customer", "create", {"store_id": 1}), WrongBroker, "op: customer.create (write) is "
                                                              "served by wBroker, not by rBroker"),
])
async def test_bad_requests_never_reach_the_adapter(request_: Request, error: type[Exception],
                                                    message: str) -> None:
    dispatcher, stub = build()
    with pytest.raises(error) as info:
        await dispatcher.dispatch(request_, "rBroker")
    assert str(info.value).startswith(message)
    assert stub.calls == []


async def test_protected_fields_never_leave_and_bools_are_bools() -> None:
    dispatcher, stub = build()
    stub.results["customer_fetch"] = Result(rows=[{"customer_id": 1, "pin": "x", "active": 1}])
    _, result = await dispatcher.dispatch(req("customer", "fetch", {"customer_id": 1}), "rBroker")
    assert result.rows == [{"customer_id": 1, "active": True}]


async def test_adapter_errors_pass_through_typed() -> None:
    dispatcher, stub = build()
    stub.results["film_fetch"] = DbUnavailable("down")
    with pytest.raises(DbUnavailable):
        await dispatcher.dispatch(req("film", "fetch", {"film_id": 1}), "rBroker")


def test_an_op_no_broker_serves_stops_the_node(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text(
        'name = "t"\ndatasource = "main"\n[ops.o]\nkind = "read"\nprocedure = "p"\n'
        'broker = "ghost"\n')
    with pytest.raises(TemplateError, match="ops.o: broker 'ghost' is not declared"):
        build(tmp_path)


def test_registry_refuses_duplicates_and_freezes(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('name = "t"\ndatasource = "main"\n[ops.o]\nkind = "read"\nprocedure = "p"\n')
    registry = TemplateRegistry([load_template(path)])
    with pytest.raises(TemplateError, match="already defined"):
        registry.add(load_template(path))
    registry.freeze()
    with pytest.raises(TemplateError, match="frozen"):
        registry.add(load_template(path))


async def test_the_message_id_is_the_default_idempotency_key() -> None:
    dispatcher, stub = build()
    params = {"customer_id": 1, "amount": "1.00", "paid_at": "2030-01-01T00:00:00"}
    await dispatcher.dispatch(req("customer", "pay", params), "wBroker", message_id="m-1")
    await dispatcher.dispatch(req("customer", "pay", {**params, "request_id": "mine"}), "wBroker",
                              message_id="m-2")
    # The routine records the key scoped by op and caller (beds/idempotency.py).
    assert [call.args[0] for _, call in stub.calls] == [
        scoped_key("customer", "pay", None, "m-1"), scoped_key("customer", "pay", None, "mine")]
    with pytest.raises(ValidationFailed, match="params.request_id: required parameter is missing"):
        await dispatcher.dispatch(req("customer", "pay", params), "wBroker")


def _guarded(tmp_path: Path, require_user_id: bool = False) -> Dispatcher:
    (tmp_path / "vault.toml").write_text(
        'name = "vault"\ndatasource = "main"\nallow = ["teller"]\n'
        '[ops.open]\nkind = "read"\nprocedure = "vault_open"\n')
    settings = SETTINGS
    if require_user_id:
        from dataclasses import replace
        settings = replace(SETTINGS, security=replace(SETTINGS.security, require_user_id=True))
    stub = StubAdapter(settings.datasources["main"])
    return Dispatcher.build(settings, TemplateRegistry(load_templates(tmp_path)), {"main": stub})


async def test_an_anonymous_caller_learns_nothing_where_a_user_is_required(tmp_path: Path) -> None:
    # F13: under require_user_id an anonymous caller hears FORBIDDEN for a name that exists and
    # for one that does not alike, so it cannot enumerate templates or ops.
    dispatcher = _guarded(tmp_path, require_user_id=True)
    for template, op in (("vault", "open"), ("vault", "nope"), ("nosuch", "x")):
        with pytest.raises(Forbidden, match="requires an authenticated caller"):
            await dispatcher.dispatch(req(template, op), "rBroker")


async def test_op_not_found_and_wrong_broker_tell_only_an_allowed_caller(tmp_path: Path) -> None:
    # F13: an op list or a broker name is told only to a caller the template's allow list names.
    dispatcher = _guarded(tmp_path)
    with pytest.raises(OpNotFound) as info:
        await dispatcher.dispatch(req("vault", "nope"), "rBroker", user_id="mallory")
    assert "open" not in str(info.value)
    with pytest.raises(OpNotFound, match="its ops are: open"):
        await dispatcher.dispatch(req("vault", "nope"), "rBroker", user_id="teller")
    with pytest.raises(Forbidden):
        await dispatcher.dispatch(req("vault", "open"), "wBroker", user_id="mallory")
    with pytest.raises(WrongBroker):
        await dispatcher.dispatch(req("vault", "open"), "wBroker", user_id="teller")


@pytest.mark.parametrize(("raw", "expected"), [
    (b"\x00", False), (b"\x01", True), ("0", False), ("1", True), (0, False), (1, True),
])
async def test_bool_columns_are_true_or_false_whatever_the_driver_sent(raw: object,
                                                                      expected: bool) -> None:
    # L7: PyMySQL returns BIT(1) as bytes; bool(b"\x00") and bool("0") are both True in Python.
    dispatcher, stub = build()
    stub.results["customer_fetch"] = Result(rows=[{"customer_id": 1, "active": raw}])
    _, result = await dispatcher.dispatch(req("customer", "fetch", {"customer_id": 1}), "rBroker")
    assert result.rows[0]["active"] is expected
