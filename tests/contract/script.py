"""The contract script: template calls every engine must answer identically, in this order, on a
freshly seeded database (the writes build on each other), with what each must answer.

An expectation is the whole reply without `meta` (`ok`, `data`, `out`, `sets`, or `error`), after
`comparable()`; or a `Column` when only one column of a page matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

NOW = "<now>"                    # created_at of a customer made by the script
ENGINE_MESSAGE = "<engine message>"


@dataclass(frozen=True)
class Column:
    """Expect an ok reply whose rows carry exactly these values of one column, in order."""

    name: str
    values: list[Any]


@dataclass(frozen=True)
class Step:
    key: str
    template: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] | Column = field(default_factory=dict)
    limit: int | None = None
    offset: int | None = None


def ok(data: list[dict[str, Any]] | None = None, out: dict[str, Any] | None = None,
       sets: list[list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": True, "data": data or []}
    if out is not None:
        reply["out"] = out
    if sets is not None:
        reply["sets"] = sets
    return reply


def error(code: str, message: str = ENGINE_MESSAGE, retryable: bool = False) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "retryable": retryable}}


def comparable(reply: dict[str, Any]) -> dict[str, Any]:
    """The reply as engines must agree on it: `meta` without node and timing; error details
    (errno vs SQLSTATE) and the wording of duplicate-key messages are the engine's own; the
    creation time of a customer the script made is "now" on each engine's clock; a cursor
    engine's `next_cursor` is its own (tested in test_dynamodb.py)."""
    out = {k: v for k, v in reply.items() if k not in ("meta", "next_cursor")}
    if "meta" in reply:
        out["meta"] = {k: v for k, v in reply["meta"].items() if k not in ("node", "elapsed_ms")}
    if not reply.get("ok"):
        err = {k: v for k, v in reply["error"].items() if k != "details"}
        if err["code"] == "CONFLICT":
            err["message"] = ENGINE_MESSAGE
        out["error"] = err
    for rows in [reply.get("data") or [], *(reply.get("sets") or [])]:
        for row in rows:
            if row.get("customer_id", 0) > 5 and "created_at" in row:
                made = datetime.fromisoformat(row["created_at"])
                assert abs(made - datetime.now()) < timedelta(days=1), row
                row["created_at"] = NOW
    return out


ACADEMY_DINOSAUR = {"FID": 1, "title": "Academy Dinosaur", "category": "Action", "price": "0.99",
                    "length": 86, "rating": "PG", "release_year": 2006}
MARY = {"customer_id": 1, "first_name": "Mary", "last_name": "Smith",
        "email": "mary.smith@example.com", "store_id": 1, "active": True,
        "created_at": "2024-02-14T22:04:36"}
NORA = {"store_id": 1, "first_name": "Nora", "last_name": "Quinn",
        "email": "nora.quinn@example.com", "pin": "9876"}
ACTION = [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]
OLGA = {"store_id": 2, "first_name": "Olga", "last_name": "Berg", "email": "olga@example.com"}
PIET = {"store_id": 2, "first_name": "Piet", "last_name": "Smit", "email": "piet@example.com",
        "pin": "1111"}
RUTH = {"store_id": 1, "first_name": "Ruth", "last_name": "Oak", "email": "ruth@example.com"}
# customer.import runs its rows in one transaction on MariaDB and PostgreSQL; on MongoDB and
# DynamoDB each row commits on its own, so after a failing row these steps answer otherwise
# (asserted in test_dynamodb.py / test_mongodb.py).
NOT_ATOMIC = ("customer.fetch after failed import: row 0 rolled back",
              "customer.import after the rollback")
REPORT_1 = [[{"category": "Action", "copies": 12}, {"category": "Comedy", "copies": 3},
             {"category": "Drama", "copies": 2}, {"category": "Family", "copies": 2},
             {"category": "Horror", "copies": 3}],
            [{"store_id": 1, "city": "Lethbridge", "customers": 3}]]

SCRIPT: list[Step] = [
    # -- film: procedures with one result set, OUT parameters, two result sets; a view -----------
    Step("film.fetch 1", "film", "fetch", {"film_id": 1}, ok([ACADEMY_DINOSAUR])),
    Step("film.fetch null length", "film", "fetch", {"film_id": 13}, ok([
        {"FID": 13, "title": "Desert Lightning", "category": "Action", "price": "4.99",
         "length": None, "rating": "PG-13", "release_year": 2012}])),
    Step("film.fetch non-ascii", "film", "fetch", {"film_id": 30}, ok([
        {"FID": 30, "title": "Café Lumière", "category": "Drama", "price": "4.99",
         "length": 103, "rating": "PG", "release_year": 2022}])),
    Step("film.fetch absent", "film", "fetch", {"film_id": 999}, ok([])),
    Step("film.in_stock 1@1", "film", "in_stock", {"film_id": 1, "store_id": 1},
         ok([{"inventory_id": 2}, {"inventory_id": 3}], out={"film_count": 2})),
    Step("film.in_stock 1@2", "film", "in_stock", {"film_id": 1, "store_id": 2},
         ok([{"inventory_id": 4}], out={"film_count": 1})),
    Step("film.in_stock none", "film", "in_stock", {"film_id": 12, "store_id": 1},
         ok([], out={"film_count": 0})),
    Step("film.store_report 1", "film", "store_report", {"store_id": 1},
         ok(REPORT_1[0], sets=REPORT_1)),
    Step("film.store_report 2", "film", "store_report", {"store_id": 2},
         ok([{"category": "Action", "copies": 5}, {"category": "Comedy", "copies": 2},
             {"category": "Documentary", "copies": 1}, {"category": "Drama", "copies": 1},
             {"category": "Family", "copies": 1}, {"category": "Horror", "copies": 1}],
            sets=[[{"category": "Action", "copies": 5}, {"category": "Comedy", "copies": 2},
                   {"category": "Documentary", "copies": 1}, {"category": "Drama", "copies": 1},
                   {"category": "Family", "copies": 1}, {"category": "Horror", "copies": 1}],
                  [{"store_id": 2, "city": "Woodridge", "customers": 2}]])),
    Step("film.store_report absent", "film", "store_report", {"store_id": 99},
         ok([], sets=[[], []])),
    Step("film.list Action p1", "film", "list", {"category": "Action"}, Column("FID", ACTION[:10])),
    Step("film.list Action p2", "film", "list", {"category": "Action"}, Column("FID", ACTION[10:]),
         offset=10),
    Step("film.list Action 5+5", "film", "list", {"category": "Action"},
         Column("FID", ACTION[5:10]), limit=5, offset=5),
    Step("film.list two filters", "film", "list", {"category": "Action", "rating": "NC-17"},
         Column("FID", [15, 19, 21])),
    Step("film.list no filter", "film", "list", {}, ok([ACADEMY_DINOSAUR]), limit=1),
    Step("film.list no match", "film", "list", {"category": "Western"}, ok([])),
    Step("film.list past the end", "film", "list", {}, ok([]), offset=100),
    # -- customer: reads ------------------------------------------------------------------------
    Step("customer.fetch 1", "customer", "fetch", {"customer_id": 1}, ok([MARY])),
    Step("customer.fetch inactive", "customer", "fetch", {"customer_id": 5}, ok([
        {"customer_id": 5, "first_name": "Elizabeth", "last_name": "Brown",
         "email": "elizabeth.brown@example.com", "store_id": 2, "active": False,
         "created_at": "2024-02-17T17:45:00"}])),
    Step("customer.fetch absent", "customer", "fetch", {"customer_id": 42}, ok([])),
    Step("customer.balance 2030", "customer", "balance",
         {"customer_id": 1, "effective_date": "2030-01-01"}, ok([{"value": "10.97"}])),
    Step("customer.balance inclusive", "customer", "balance",
         {"customer_id": 1, "effective_date": "2031-01-01T00:00:00"}, ok([{"value": "20.97"}])),
    Step("customer.balance none", "customer", "balance",
         {"customer_id": 42, "effective_date": "2030-01-01"}, ok([{"value": "0.00"}])),
    Step("customer.list store 1", "customer", "list", {"store_id": 1},
         Column("customer_id", [1, 2, 3])),
    Step("customer.list inactive", "customer", "list", {"active": False},
         Column("customer_id", [5])),
    Step("customer.list active at 2", "customer", "list", {"store_id": 2, "active": True},
         Column("customer_id", [4])),
    Step("customer.list page", "customer", "list", {}, Column("customer_id", [2, 3]),
         limit=2, offset=1),
    # -- customer: writes, in order -------------------------------------------------------------
    Step("customer.create", "customer", "create", NORA,
         ok([{"customer_id": 6}], out={"customer_id": 6})),
    Step("customer.create duplicate", "customer", "create", NORA, error("CONFLICT")),
    Step("customer.create duplicate other case", "customer", "create",
         {**NORA, "email": "NORA.Quinn@example.com"}, error("CONFLICT")),
    Step("customer.create unknown store", "customer", "create",
         {**NORA, "store_id": 99, "email": "nobody@example.com"},
         error("DB_ERROR", "database error: unknown store_id")),
    Step("customer.fetch created", "customer", "fetch", {"customer_id": 6}, ok([
        {"customer_id": 6, "first_name": "Nora", "last_name": "Quinn",
         "email": "nora.quinn@example.com", "store_id": 1, "active": True, "created_at": NOW}])),
    Step("customer.update_email", "customer", "update_email",
         {"customer_id": 6, "email": "nora.q@example.com"}, ok([], out={"updated": 1})),
    Step("customer.update_email unchanged", "customer", "update_email",
         {"customer_id": 6, "email": "nora.q@example.com"}, ok([], out={"updated": 0})),
    Step("customer.update_email absent", "customer", "update_email",
         {"customer_id": 999, "email": "x@example.com"}, ok([], out={"updated": 0})),
    Step("customer.update_email taken", "customer", "update_email",
         {"customer_id": 6, "email": "mary.smith@example.com"}, error("CONFLICT")),
    Step("customer.add_payment", "customer", "add_payment",
         {"customer_id": 6, "amount": "12.50", "paid_at": "2029-12-31T23:59:59"},
         ok([], out={"payment_id": 9})),
    Step("customer.add_payment unknown", "customer", "add_payment",
         {"customer_id": 999, "amount": 1, "paid_at": "2029-01-01T00:00:00"},
         error("DB_ERROR", "database error: unknown customer_id")),
    Step("customer.balance after payment", "customer", "balance",
         {"customer_id": 6, "effective_date": "2030-01-01"}, ok([{"value": "12.50"}])),
    Step("customer.pay", "customer", "pay",
         {"request_id": "contract-pay-1", "customer_id": 6, "amount": "7.25",
          "paid_at": "2029-06-01T00:00:00"}, ok([], out={"payment_id": 10})),
    Step("customer.pay repeated: the first outcome, no second payment", "customer", "pay",
         {"request_id": "contract-pay-1", "customer_id": 6, "amount": "7.25",
          "paid_at": "2029-06-01T00:00:00"}, ok([], out={"payment_id": 10})),
    Step("customer.balance after repeat", "customer", "balance",
         {"customer_id": 6, "effective_date": "2030-01-01"}, ok([{"value": "19.75"}])),
    Step("customer.pay unknown: rolled back with its key", "customer", "pay",
         {"request_id": "contract-pay-2", "customer_id": 999, "amount": 1,
          "paid_at": "2029-01-01T00:00:00"},
         error("DB_ERROR", "database error: unknown customer_id")),
    Step("customer.list after create", "customer", "list", {"store_id": 1},
         Column("customer_id", [1, 2, 3, 6])),
    Step("customer.create after conflicts", "customer", "create",
         {**NORA, "email": "nora.2@example.com", "pin": None},
         ok([{"customer_id": 9}], out={"customer_id": 9})),
    # -- customer.import: a bulk op of customer.create (mBroker) --------------------------------
    Step("customer.import", "customer", "import", {"rows": [OLGA, PIET]},
         ok([{"customer_id": 10}, {"customer_id": 11}])),
    Step("customer.fetch imported", "customer", "fetch", {"customer_id": 11}, ok([
        {"customer_id": 11, "first_name": "Piet", "last_name": "Smit",
         "email": "piet@example.com", "store_id": 2, "active": True, "created_at": NOW}])),
    # Row 1 takes Mary's email: row 0 (id 12) rolls back with it; the conflict burns id 13.
    Step("customer.import row 1 fails", "customer", "import",
         {"rows": [RUTH, {**OLGA, "email": "mary.smith@example.com"}]}, error("CONFLICT")),
    Step("customer.fetch after failed import: row 0 rolled back", "customer", "fetch",
         {"customer_id": 12}, ok([])),
    Step("customer.import after the rollback", "customer", "import", {"rows": [RUTH]},
         ok([{"customer_id": 14}])),
    Step("customer.import row validation", "customer", "import",
         {"rows": [RUTH, {**OLGA, "email": "olga"}]},
         error("VALIDATION_FAILED", "params.rows[1].email: expected string matching "
                                    "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$, got 'olga'")),
    Step("customer.import no rows", "customer", "import", {"rows": []},
         error("VALIDATION_FAILED", "params.rows: expected a list of 1 to 500 objects, "
                                    "got 0 rows")),
    # -- requests the node refuses before any engine sees them ----------------------------------
    Step("validation: type", "film", "fetch", {"film_id": "x"},
         error("VALIDATION_FAILED", "params.film_id: expected int >= 1, got 'x'")),
    Step("validation: choice", "film", "list", {"rating": "XX"},
         error("VALIDATION_FAILED", "params.rating: expected one of 'G', 'PG', 'PG-13', 'R', "
                                    "'NC-17', got 'XX'")),
    Step("validation: limit", "film", "list", {}, error(
        "VALIDATION_FAILED", "limit: expected int between 1 and 10, got 11"), limit=11),
    Step("validation: missing", "customer", "create", {"store_id": 1},
         error("VALIDATION_FAILED", "params.first_name: required parameter is missing")),
    Step("validation: unknown param", "customer", "balance", {"customer_id": 1, "x": 1},
         error("VALIDATION_FAILED", "params.x: not accepted by this op; expected: customer_id, "
                                    "effective_date")),
    Step("unknown op", "film", "nope", {}, error(
        "OP_NOT_FOUND", "op: template 'film' has no op 'nope'; its ops are: fetch, in_stock, "
                        "list, store_report")),
    Step("unknown template", "films", "fetch", {"film_id": 1},
         error("TEMPLATE_NOT_FOUND", "template: no template named 'films'")),
]
