"""Hostile input (scenarios 10 and 11): oversized requests and replies, SQL injection in every
parameter of every op. Each gets an error reply or an ordinary result, and nothing beyond the
legitimate effects reaches the database. (Scenario 9, fuzzing, is test_fuzz.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from beds.templates import load_templates
from beds.templates.model import OpTarget
from tests.chaos.lab import Lab
from tests.chaos.mariadb import RootDb
from tests.chaos.workload import next_paid_at
from tests.support.services import ROOT

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos,
              pytest.mark.chaos_fast]

EXAMPLE_TEMPLATES = {t.name: t for t in load_templates(ROOT / "templates")}


def _body(template: str, op: str, params: Any) -> bytes:
    return json.dumps({"template": template, "op": op, "params": params}).encode()


# -- 10: oversized request and reply -------------------------------------------------------------

async def test_10_oversized_request_and_reply(lab: Lab) -> None:
    """Default caps: 1 MiB requests, 16 MiB replies. A 20 MiB result set is refused cleanly, a
    5 MiB one is delivered."""
    stack = lab.stack("oversize")
    await lab.start(stack)
    wl = lab.workload("10 oversized request and reply", stack, min_sent=5,
                      retry_codes=frozenset())
    big_pay = wl.pay()
    big_pay.body = big_pay.body.replace(b'"amount": "1.00"', b'"amount": "' + b"1" * 2_000_000
                                        + b'"')
    big_read = wl.raw(_body("film", "list", {"category": "x" * 1_500_000}), "film.list")
    too_big = wl.raw(json.dumps({"template": "chaos", "op": "big", "limit": 20000}).encode(),
                     "chaos.big")
    fits = wl.raw(json.dumps({"template": "chaos", "op": "big", "limit": 5000}).encode(),
                  "chaos.big")
    await wl.run(timeout=30)
    after = wl.read(4)
    await wl.run([after], timeout=5)
    row = await wl.finish(settle=False)
    wl.assert_clean(row)
    assert big_pay.code() == big_read.code() == "TOO_LARGE"
    assert big_pay.dead and big_read.dead and big_pay.effects == 0
    assert too_big.code() == "REPLY_TOO_LARGE", too_big.final()
    assert "ask for a smaller page" in too_big.answer()["error"]["message"]
    assert fits.code() == "ok" and len(fits.answer()["data"]) == 5000
    assert after.code() == "ok"


# -- 11: SQL injection in every parameter of every op --------------------------------------------

INJECTIONS = [
    "' OR '1'='1", "1' OR '1'='1' -- ", "1; DROP TABLE payment; --", "'; DROP TABLE customer; --",
    '" OR ""="', "1 UNION SELECT pin_hash FROM customer", "' UNION SELECT NULL,NULL,NULL -- ",
    "%' OR 1=1 #", "\\'; SHUTDOWN; --", "1' AND SLEEP(5)#", "admin'/*", "*/ OR 1=1",
    "') OR ('x'='x", "'||(SELECT pin_hash FROM customer LIMIT 1)||'", "\x00' OR 1=1",
    "NULL", "1 OR 1=1", "0x31", "CHAR(39)", "`; DROP DATABASE mysql; --",
    "'; UPDATE customer SET email='pwned@x.io'; --", "\u02bc OR 1=1 --", "1e9999", "-1",
]
EMAIL_INJECTIONS = ["x'OR'1'='1'--{n}@x.io", "a';DROP/**/TABLE/**/customer;--{n}@x.io",
                    "b'/**/UNION/**/SELECT/**/1--{n}@x.io", "\"or\"\"=\"{n}@x.io"]


class Values:
    """Valid values for every field of the example templates; writes touch only a customer
    this scenario created, so the session's seeded rows stay as other tests expect them."""

    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        self.n = 0

    def unique(self) -> int:
        self.n += 1
        return self.n

    def of(self, name: str) -> Any:
        fixed: dict[str, Any] = {
            "customer_id": self.customer_id, "store_id": 1, "film_id": 1,
            "category": "Action", "rating": "PG", "pin": "1234", "amount": "1.00",
            "effective_date": "2031-01-01T00:00:00", "active": True,
            "first_name": "Inj", "last_name": "Ection"}
        if name in fixed:
            return fixed[name]
        if name == "email":
            return f"inj-{self.unique()}-{id(self)}@example.com"
        if name == "request_id":
            return f"inj-{self.unique()}-{id(self)}"
        if name == "paid_at":
            return next_paid_at()
        raise KeyError(name)


async def _snapshot(root: RootDb, fresh: int) -> dict[str, Any]:
    """Tables, their checksums and row counts, the account's grants, and every customer row
    but the scenario's own (those that existed when the scenario created its customer)."""
    tables = sorted(r[0] for r in await root.rows("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'"))
    sums = {name.rsplit(".", 1)[-1]: checksum for name, checksum in await root.rows(
        "CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))}
    customers = await root.rows("SELECT * FROM customer WHERE customer_id < %s "
                                "ORDER BY customer_id", (fresh,))
    grants = sorted(await root.rows(f"SHOW GRANTS FOR '{root.db.user}'@'%'"))
    counts = {t: await root.scalar(f"SELECT COUNT(*) FROM `{t}`") for t in tables}
    return {"tables": tables, "sums": sums, "customers": customers, "grants": grants,
            "counts": counts}


async def test_11_sql_injection_in_every_parameter_of_every_op(lab: Lab) -> None:
    stack = lab.stack("inject")
    await lab.start(stack)
    wl = lab.workload("11 SQL injection, every param of every op", stack, min_sent=500,
                      retry_codes=frozenset())
    seed = wl.raw(_body("customer", "create", {"store_id": 1, "first_name": "Fresh",
                                               "last_name": "Target",
                                               "email": f"fresh-{wl.new_id()}@example.com"}),
                  "customer.create")
    await wl.run([seed])
    assert seed.code() == "ok", seed.final()
    fresh = seed.answer()["out"]["customer_id"]
    values = Values(fresh)
    before = await _snapshot(lab.root, fresh)

    cases: list[tuple[Any, str, str, Any]] = []   # request, template.op, param, injected value
    for template in EXAMPLE_TEMPLATES.values():
        for op in template.ops.values():
            names = op.filters if op.target is OpTarget.VIEW else op.params
            for name in names:
                field = template.fields[name]
                attacks: list[Any] = list(INJECTIONS)
                if field.pattern is not None and name == "email":
                    attacks += [a.format(n=values.unique()) for a in EMAIL_INJECTIONS]
                for attack in attacks:
                    if name == "email":   # unique, so a create that succeeds is not a CONFLICT
                        attack = attack if "@" in attack else f"{attack}{values.unique()}"
                    params = ({} if op.target is OpTarget.VIEW
                              else {n: values.of(n) for n in names})
                    params[name] = attack
                    paid_at = params.get("paid_at") if name != "paid_at" else None
                    request = wl.raw(_body(template.name, op.name, params),
                                     f"{template.name}.{op.name}", paid_at=paid_at)
                    cases.append((request, f"{template.name}.{op.name}", name, attack))
    await wl.run([c[0] for c in cases], concurrency=8, timeout=15)
    row = await wl.finish(settle=False)
    wl.assert_clean(row)

    allowed = {"ok", "VALIDATION_FAILED"}
    odd = [(key, name, attack, r.final()) for r, key, name, attack in cases
           if r.code() not in allowed]
    assert not odd, odd[:5]
    created = [(r, attack, name) for r, key, name, attack in cases
               if key == "customer.create" and r.code() == "ok"]
    for r, key, _name, attack in cases:
        if key == "film.list" and r.code() == "ok":
            assert r.answer()["data"] == [], (attack, r.final())   # a value, never SQL
        if r.paid_at and r.code() == "ok":
            assert r.effects == 1

    after = await _snapshot(lab.root, fresh)
    assert after["tables"] == before["tables"], "a table appeared or vanished"
    assert after["grants"] == before["grants"]
    assert after["customers"] == before["customers"], "an existing customer was changed"
    written = {"customer", "payment", "request_log"}
    changed = {t for t in before["tables"] if after["sums"][t] != before["sums"][t]}
    assert changed <= written, f"tables no op of this scenario writes changed: {changed - written}"
    assert after["counts"]["customer"] - before["counts"]["customer"] == len(created)
    paid = sum(1 for r, *_ in cases if r.paid_at and r.code() == "ok")
    assert after["counts"]["payment"] - before["counts"]["payment"] == paid
    # What a create stored is exactly what was sent: a value, never SQL.
    for r, attack, name in created:
        new_id = r.answer()["out"]["customer_id"]
        column = {"first_name": "first_name", "last_name": "last_name", "email": "email",
                  "store_id": "store_id", "pin": None}[name]
        if column is not None:
            stored = await lab.root.scalar(f"SELECT {column} FROM customer WHERE customer_id = %s",
                                           (new_id,))
            assert stored == attack, (name, attack, stored)
