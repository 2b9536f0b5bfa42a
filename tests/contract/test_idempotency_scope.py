"""Idempotency keys are scoped by op and caller, and bound to their params (finding F8), on every
SQL engine: the routines of schema/<engine>/060_idempotency.sql and 070_users_sessions.sql with
the key BEDS derives (beds/idempotency.py). Dispatched straight to the adapters, so no broker
retry can blur an outcome."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from beds.errors import Conflict
from beds.node import Node
from beds.protocol import Request
from tests.contract.conftest import EngineDb, EngineRun
from tests.support.stack import make_stack


@pytest.fixture
async def nodes(engine: EngineRun, tmp_path: Path) -> AsyncIterator[dict[str, Node]]:
    """An appServer (customer.pay) and a tercero (users.create) dispatcher on the engine's
    database, once the contract script ran there (its replies name the ids it expects)."""
    db: EngineDb = engine.db
    settings = make_stack(db.datasource(), tmp_path, f"keys-{db.engine}").settings
    built = {role: Node.build(settings, role) for role in ("appServer", "tercero")}
    for node in built.values():
        await node.adapters["main"].open()
    try:
        yield built
    finally:
        for node in built.values():
            await node.adapters["main"].close()


def pay_params(paid_at: str, amount: str = "1.00") -> dict[str, Any]:
    return {"customer_id": 2, "amount": amount, "paid_at": paid_at}


async def pay(node: Node, params: dict[str, Any], message_id: str,
              user_id: str | None) -> int:
    _, result = await node.dispatcher.dispatch(Request("customer", "pay", params), "wBroker",
                                               user_id=user_id, message_id=message_id)
    assert result.out is not None
    return int(result.out["payment_id"])


async def test_two_callers_sharing_a_message_id_each_get_their_own_write(
        nodes: dict[str, Node]) -> None:
    shared = f"shared-{secrets.token_hex(6)}"
    app = nodes["appServer"]
    first = await pay(app, pay_params("2032-01-01T01:01:01"), shared, "billing-a")
    second = await pay(app, pay_params("2032-01-01T01:01:02"), shared, "billing-b")
    assert first != second, "the second caller got the first caller's payment"
    # Each caller's own retry is still a repeat: the stored outcome, no new payment.
    assert await pay(app, pay_params("2032-01-01T01:01:02"), shared, "billing-b") == second


async def test_users_create_reusing_a_pays_id_creates_a_user(nodes: dict[str, Node]) -> None:
    reused = f"reused-{secrets.token_hex(6)}"
    payment_id = await pay(nodes["appServer"], pay_params("2032-02-02T02:02:02"), reused, None)
    email = f"{reused}@example.com"
    _, created = await nodes["tercero"].dispatcher.dispatch(
        Request("users", "create", {"email": email, "display_name": "Reuse"}), "uBroker",
        message_id=reused)
    assert created.out is not None
    user_id = int(created.out["user_id"])
    _, found = await nodes["tercero"].dispatcher.dispatch(
        Request("users", "by_email", {"email": email}), "uBroker")
    assert [row["user_id"] for row in found.rows] == [user_id], (
        f"users.create answered {user_id} (the payment was {payment_id}) but made no such user")


async def test_the_same_key_with_other_params_is_a_conflict(nodes: dict[str, Node]) -> None:
    key = f"mismatch-{secrets.token_hex(6)}"
    app = nodes["appServer"]
    first = await pay(app, pay_params("2032-03-03T03:03:03"), key, "billing-a")
    with pytest.raises(Conflict, match="idempotency key reused with different params"):
        await pay(app, pay_params("2032-03-03T03:03:03", amount="2.00"), key, "billing-a")
    assert await pay(app, pay_params("2032-03-03T03:03:03"), key, "billing-a") == first
