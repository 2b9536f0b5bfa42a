"""A node in this process, real RabbitMQ, real MariaDB: every op of the example templates."""

from __future__ import annotations

import pytest

from beds.errors import Conflict, OpNotFound, TemplateNotFound, ValidationFailed

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def test_procedure_with_out_params(client) -> None:
    reply = await client.call("film", "in_stock", {"film_id": 1, "store_id": 1})
    assert reply.data == [{"inventory_id": 2}, {"inventory_id": 3}]
    assert reply.out == {"film_count": 2}
    assert reply.meta["broker"] == "rBroker" and reply.meta["rows"] == 2


async def test_errors_are_typed(client) -> None:
    with pytest.raises(ValidationFailed, match=r"params.film_id: expected int >= 1, got 'x'"):
        await client.call("film", "fetch", {"film_id": "x"})
    with pytest.raises(OpNotFound):
        await client.call("film", "nope")
    with pytest.raises(TemplateNotFound):
        await client.call("films", "fetch", {"film_id": 1})
    email = "dup-test@example.com"
    params = {"store_id": 1, "first_name": "A", "last_name": "B", "email": email}
    await client.call("customer", "create", params)
    with pytest.raises(Conflict, match="duplicate key"):
        await client.call("customer", "create", params)
