"""A node in this process, real RabbitMQ, real MariaDB: every op of the example templates,
through the BEDS client."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from beds.client import Client
from beds.errors import (
    Conflict,
    DbError,
    OpNotFound,
    TemplateNotFound,
    ValidationFailed,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


def unique_email() -> str:
    return f"u{secrets.token_hex(4)}@example.com"


async def test_procedure_with_out_params(client: Client) -> None:
    reply = await client.call("film", "in_stock", {"film_id": 1, "store_id": 1})
    assert reply.data == [{"inventory_id": 2}, {"inventory_id": 3}]
    assert reply.out == {"film_count": 2}
    assert reply.meta["broker"] == "rBroker" and reply.meta["rows"] == 2


async def test_one_row_fetch_with_exact_types(client: Client) -> None:
    reply = await client.call("film", "fetch", {"film_id": 1})
    assert reply.data == [{"FID": 1, "title": "Academy Dinosaur", "category": "Action",
                           "price": "0.99", "length": 86, "rating": "PG", "release_year": 2006}]
    assert reply.out is None and reply.sets is None
    assert (await client.call("film", "fetch", {"film_id": 999})).data == []


async def test_view_filters_and_paging(client: Client) -> None:
    page1 = await client.call("film", "list", {"category": "Action"})
    page2 = await client.call("film", "list", {"category": "Action"}, offset=10)
    assert [r["FID"] for r in page1.data] == [1, 2, 3, 5, 7, 9, 11, 13, 15, 17]
    assert [r["FID"] for r in page2.data] == [19, 21, 23]
    both = await client.call("film", "list", {"category": "Action", "rating": "PG-13"}, limit=3)
    assert [r["FID"] for r in both.data] == [3, 7, 9]


async def test_procedure_with_two_result_sets(client: Client) -> None:
    reply = await client.call("film", "store_report", {"store_id": 1})
    assert reply.sets is not None and len(reply.sets) == 2
    assert reply.data == reply.sets[0]
    assert reply.sets[0][0] == {"category": "Action", "copies": 12}
    (store,) = reply.sets[1]
    assert (store["store_id"], store["city"]) == (1, "Lethbridge")
    assert store["customers"] >= 3   # 3 seeded; other tests of the session add customers


async def test_function_returns_value(client: Client) -> None:
    reply = await client.call("customer", "balance",
                              {"customer_id": 1, "effective_date": "2030-01-01T00:00:00"})
    assert reply.data == [{"value": "10.97"}]


async def test_write_returns_the_new_id_and_commits(client: Client) -> None:
    email = unique_email()
    created = await client.call("customer", "create", {
        "store_id": 1, "first_name": "Ann", "last_name": "Lee", "email": email, "pin": "1234"})
    new_id = (created.out or {})["customer_id"]
    assert created.data == [{"customer_id": new_id}] and created.meta["broker"] == "wBroker"
    fetched = await client.call("customer", "fetch", {"customer_id": new_id})
    assert fetched.data[0]["email"] == email and fetched.data[0]["active"] is True
    assert "pin" not in fetched.data[0] and "pin_hash" not in fetched.data[0]
    updated = await client.call("customer", "update_email",
                                {"customer_id": new_id, "email": unique_email()})
    assert updated.out == {"updated": 1}


async def test_a_failed_write_leaves_nothing_behind(client: Client) -> None:
    email = unique_email()
    with pytest.raises(DbError, match="unknown store_id"):
        await client.call("customer", "create", {
            "store_id": 99, "first_name": "A", "last_name": "B", "email": email})
    listed = await client.call("customer", "list", {"store_id": 99})
    assert listed.data == []
    params = {"store_id": 1, "first_name": "A", "last_name": "B", "email": email}
    await client.call("customer", "create", params)
    with pytest.raises(Conflict, match="duplicate key"):
        await client.call("customer", "create", params)


async def test_bool_filter(client: Client) -> None:
    inactive = await client.call("customer", "list", {"active": False})
    assert [r["customer_id"] for r in inactive.data] == [5]
    assert inactive.data[0]["active"] is False


async def test_errors_are_typed(client: Client) -> None:
    with pytest.raises(ValidationFailed, match=r"params.film_id: expected int >= 1, got 'x'"):
        await client.call("film", "fetch", {"film_id": "x"})
    with pytest.raises(OpNotFound, match="its ops are: fetch, in_stock, list, store_report"):
        await client.call("film", "nope")
    with pytest.raises(TemplateNotFound):
        await client.call("films", "fetch", {"film_id": 1})


async def test_sql_injection_strings_are_only_ever_values(client: Client) -> None:
    attacks = ["' OR '1'='1", "Action'; DROP TABLE film; --", "1; SELECT SLEEP(5)",
               "\\'; DELETE FROM customer; #", "Action\x00", "' UNION SELECT pin_hash FROM customer --"]
    for attack in attacks:
        reply = await client.call("film", "list", {"category": attack[:25]})
        assert reply.data == []
    email = f"o'hara');DROP--{secrets.token_hex(3)}@e.com"   # passes the pattern, not the SQL
    created = await client.call("customer", "create", {
        "store_id": 1, "first_name": "Robert'); DROP TABLE film;--", "last_name": "T",
        "email": email})
    fetched = await client.call("customer", "fetch", {"customer_id": (created.out or {})["customer_id"]})
    assert fetched.data[0]["first_name"] == "Robert'); DROP TABLE film;--"
    assert fetched.data[0]["email"] == email
    assert (await client.call("film", "fetch", {"film_id": 1})).data[0]["FID"] == 1


async def test_many_calls_in_flight_on_one_client(client: Client) -> None:
    calls = [client.call("film", "fetch", {"film_id": 1 + i % 30}) for i in range(300)]
    replies = await asyncio.gather(*calls)
    assert [r.data[0]["FID"] for r in replies] == [1 + i % 30 for i in range(300)]


async def test_offset_engines_refuse_a_cursor(client: Client) -> None:
    with pytest.raises(ValidationFailed, match="cursor: MariaDB pages with limit and offset"):
        await client.call("film", "list", {"category": "Action"}, cursor="abc")
    with pytest.raises(ValidationFailed, match="cursor: only view ops take"):
        await client.call("film", "fetch", {"film_id": 1}, cursor="abc")
