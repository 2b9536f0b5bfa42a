"""Fuzzed input (scenario 9), with hypothesis: malformed JSON, invalid UTF-8, deep nesting, huge
numbers, wrong types, broken envelopes, random bytes. Each gets an error reply (never INTERNAL), is
dead-lettered once and never requeued in a loop, and the node keeps serving."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from beds.templates import load_templates
from beds.templates.model import FieldType, OpTarget
from tests.chaos.broker import RabbitCtl
from tests.chaos.lab import ChaosStack, Lab
from tests.chaos.mariadb import RootDb
from tests.chaos.workload import Workload
from tests.support.services import ROOT, MysqlDb

pytest.importorskip("hypothesis", reason="hypothesis is not installed (dev extra)")
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos,
              pytest.mark.chaos_fast,
              # a failing example of 3,000 nested brackets is big; hypothesis warns as it prints it
              pytest.mark.filterwarnings("ignore:Generating overly large repr")]

EXAMPLE_TEMPLATES = {t.name: t for t in load_templates(ROOT / "templates")}
NEVER = "INTERNAL"


def _body(template: str, op: str, params: Any) -> bytes:
    return json.dumps({"template": template, "op": op, "params": params}).encode()


class Fuzz:
    """One node and one workload for every example hypothesis draws."""

    def __init__(self, lab: Lab, stack: ChaosStack, wl: Workload) -> None:
        self.lab, self.stack, self.wl = lab, stack, wl

    def __repr__(self) -> str:
        return f"Fuzz({self.stack.exchange})"


@pytest.fixture(scope="module")
async def fuzz(rabbitmq: str, mysql_db: MysqlDb, root_db: RootDb, chaos_templates: Path,
               shared_rabbitmqctl: RabbitCtl, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[Fuzz]:
    lab = Lab(tmp_path_factory.mktemp("fuzz"), mysql_db, root_db, chaos_templates,
              shared_rabbitmqctl)
    try:
        stack = lab.stack("fuzz")
        await lab.start(stack)
        yield Fuzz(lab, stack, lab.workload("9 fuzzed bad input (hypothesis)", stack,
                                            min_sent=200, retry_codes=frozenset()))
    finally:
        await lab.close()


OPS = [(t, op) for t in EXAMPLE_TEMPLATES.values() for op in t.ops.values()]
ROUTES = ["film.fetch", "film.list", "customer.pay", "customer.create", "nosuch.op"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
not_none = json_values.filter(lambda v: v is not None)
WRONG: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.INT: st.one_of(st.text(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                             st.lists(st.integers(), max_size=3)),
    FieldType.STR: st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                             st.lists(st.text(), max_size=3)),
    FieldType.DECIMAL: st.one_of(st.booleans(), st.lists(st.integers(), max_size=3),
                                 st.sampled_from(["abc", "1,00", "NaN", "Infinity", "", " ", "0x1"])),
    FieldType.DATETIME: st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                                  st.sampled_from(["yesterday", "2026-13-01T00:00:00",
                                                   "31/01/2026", ""])),
    FieldType.BOOL: st.one_of(st.integers(), st.text(), st.floats(allow_nan=False, allow_infinity=False)),
}


@st.composite
def wrong_types(draw: st.DrawFn) -> tuple[str, bytes, str, str | None]:
    """An existing op with one declared parameter of the wrong JSON type."""
    template, op = draw(st.sampled_from(OPS))
    names = op.filters if op.target is OpTarget.VIEW else op.params
    if not names:
        return ("VALIDATION_FAILED", _body(template.name, op.name, {"junk": 1}),
                f"{template.name}.{op.name}", None)
    name = draw(st.sampled_from(names))
    ftype = template.fields[name].type
    choices = template.fields[name].choices
    if choices is not None:
        unlisted: st.SearchStrategy[Any] = st.text().filter(lambda v: v not in choices)
        value = draw(st.one_of(WRONG[ftype], unlisted))
    else:
        value = draw(WRONG[ftype])
    params = {name: value}
    if draw(st.booleans()):
        params[draw(st.text(min_size=1).filter(lambda k: k not in names))] = draw(json_values)
    return ("VALIDATION_FAILED", _body(template.name, op.name, params),
            f"{template.name}.{op.name}", None)


@st.composite
def bad_envelopes(draw: st.DrawFn) -> tuple[str, bytes, str, str | None]:
    """Right op, broken envelope: wrong types for template/op/params/limit/offset, extra keys."""
    body: dict[str, Any] = {"template": "film", "op": "list", "params": {}}
    key = draw(st.sampled_from(["template", "op", "params", "limit", "offset", "extra"]))
    if key in ("template", "op"):
        body[key] = draw(st.one_of(st.integers(), st.booleans(), st.lists(st.text(), max_size=2),
                                   st.just("")))
    elif key == "params":
        body[key] = draw(st.one_of(st.integers(), st.text(), st.lists(st.integers(), max_size=2)))
    elif key in ("limit", "offset"):
        body[key] = draw(st.one_of(st.text(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                                   st.integers(max_value=-1)))
    else:
        body[draw(st.text(min_size=1).filter(
            lambda k: k not in ("template", "op", "params", "limit", "offset")))] = 1
    return "BAD_REQUEST", json.dumps(body).encode(), "film.list", None


def deep(depth: int) -> bytes:
    return (b'{"template": "film", "op": "fetch", "params": {"film_id": ' + b"[" * depth
            + b"]" * depth + b"}}")


@st.composite
def invalid_utf8(draw: st.DrawFn) -> tuple[str, bytes, str, str | None]:
    bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                                b"\xc0\xaf", b"\x80"]))
    text = draw(st.text(alphabet="abc", max_size=5)).encode()
    return ("BAD_REQUEST", b'{"template": "film", "op": "list", "params": {"category": "'
            + text + bad + b'"}}', "film.list", None)


raw_bytes = st.tuples(st.just("ERROR"), st.binary(max_size=300), st.sampled_from(ROUTES),
                      st.sampled_from([None, "queue"]))
raw_json = st.tuples(st.just("ERROR"), json_values.map(lambda v: json.dumps(v).encode()),
                     st.sampled_from(ROUTES), st.sampled_from([None, "queue"]))
deep_nesting = st.integers(33, 3000).map(
    lambda d: ("BAD_REQUEST", deep(d), "film.fetch", None))
huge_numbers = st.one_of(
    st.integers(min_value=2**63, max_value=10**400).map(lambda n: {"film_id": n}),
    st.integers(min_value=-(10**400), max_value=-(2**63)).map(lambda n: {"film_id": n}),
    st.integers(min_value=10**70, max_value=10**400).map(lambda n: {"customer_id": 1, "amount": n,
                                                   "paid_at": "2031-01-01T00:00:00"}),
).map(lambda p: ("VALIDATION_FAILED",
                 _body("film", "fetch", p) if "film_id" in p else _body("customer", "add_payment", p),
                 "film.fetch" if "film_id" in p else "customer.add_payment", None))
number_literals = st.sampled_from([b"1e999", b"-1e999", b"9" * 400 + b".5e99999"]).map(
    lambda lit: ("BAD_REQUEST", b'{"template": "film", "op": "fetch", "params": {"film_id": '
                 + lit + b"}}", "film.fetch", None))
CASES = st.one_of(raw_bytes, raw_json, wrong_types(), bad_envelopes(), deep_nesting,
                  huge_numbers, number_literals, invalid_utf8())


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=CASES)
@example(case=("BAD_REQUEST", deep(40), "film.fetch", None))
@example(case=("BAD_REQUEST", deep(2000), "film.fetch", None))      # past msgspec's own limit
@example(case=("VALIDATION_FAILED", _body("film", "fetch", {"film_id": 2**64}), "film.fetch",
               None))
@example(case=("BAD_REQUEST", b'{"template": "film", "op": "list", "params": {"category": "\xff"}}',
               "film.list", None))                                  # invalid UTF-8 in a string
@example(case=("BAD_REQUEST", b"\xef\xbb\xbf{}", "film.fetch", "queue"))
async def test_9_fuzzed_input_gets_an_error_reply_each(fuzz: Fuzz,
                                                       case: tuple[str, bytes, str, str | None]
                                                       ) -> None:
    expected, body, key, target = case
    if target == "queue":   # straight into a broker's queue through the default exchange
        request = fuzz.wl.raw(body, fuzz.stack.queue("rBroker"), exchange="")
    else:
        request = fuzz.wl.raw(body, key)
    await fuzz.wl.run([request], timeout=10)
    reply = request.final()
    assert reply is not None, f"no reply to {body[:200]!r}"
    code = request.code()
    assert code != "ok" and code != NEVER, (body[:300], reply)
    if expected != "ERROR":
        assert code == expected, (body[:300], reply)


async def test_9_after_fuzzing_nothing_loops_and_the_node_serves(fuzz: Fuzz) -> None:
    probe = fuzz.wl.read(3)
    await fuzz.wl.run([probe], timeout=5)
    assert probe.code() == "ok"
    row = await fuzz.wl.finish(settle=False)   # quiesce: every request queue empty
    fuzz.wl.assert_clean(row)
    assert row.error == row.sent - 1 and row.indeterminate == 0
    poison = [r for r in fuzz.wl.requests if r is not probe]
    assert all(r.dead for r in poison), "poison was acked instead of dead-lettered"
    assert all(len(r.replies) == 1 for r in poison), "a request was answered twice (requeued)"
