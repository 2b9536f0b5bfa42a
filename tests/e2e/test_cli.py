"""The `beds` command against a node running as a subprocess."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


async def beds(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beds", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_beds_call_answers_from_a_running_node(stack, node_process) -> None:
    code, out, err = await beds("call", "film", "in_stock", "--env", str(stack.env_file),
                                "--params", '{"film_id": 1, "store_id": 1}')
    assert code == 0, err
    reply = json.loads(out)
    assert reply["ok"] is True and reply["out"] == {"film_count": 2}
    assert len(node_process.events("request")) == 1
    line = node_process.events("request")[0]
    assert {line["template"], line["op"], line["outcome"], line["broker"]} == {
        "film", "in_stock", "ok", "rBroker"}
    assert line["correlation_id"] and line["elapsed_ms"] > 0 and line["node"]


# One example call per op of the shipped templates: `make run` must answer every one.
EVERY_OP = [
    ("film", "fetch", {"film_id": 1}, []),
    ("film", "in_stock", {"film_id": 1, "store_id": 1}, []),
    ("film", "list", {"category": "Action"}, ["--limit", "3", "--offset", "2"]),
    ("film", "store_report", {"store_id": 1}, []),
    ("customer", "fetch", {"customer_id": 1}, []),
    ("customer", "list", {"store_id": 1}, []),
    ("customer", "balance", {"customer_id": 1, "effective_date": "2030-01-01T00:00:00"}, []),
    ("customer", "create", {"store_id": 1, "first_name": "Cli", "last_name": "Test",
                            "email": "cli-every-op@example.com"}, []),
    ("customer", "update_email", {"customer_id": 2, "email": "cli-update@example.com"}, []),
    ("customer", "add_payment", {"customer_id": 2, "amount": "1.50",
                                 "paid_at": "2030-02-02T00:00:00"}, []),
    ("customer", "pay", {"request_id": "cli-every-op", "customer_id": 2, "amount": "2.50",
                         "paid_at": "2030-03-03T00:00:00"}, []),
    ("customer", "import", {"rows": [{"store_id": 2, "first_name": "Cli", "last_name": "Bulk",
                                      "email": "cli-every-op-bulk@example.com"}]}, []),
]


async def test_every_op_of_the_example_templates_answers(stack, node_process) -> None:
    from beds.templates import load_templates

    shipped = {(t.name, op) for t in load_templates(ROOT / "templates") for op in t.ops}
    assert {(t, o) for t, o, _, _ in EVERY_OP} == shipped, "a shipped op has no example call"
    for template, op, params, extra in EVERY_OP:
        code, out, err = await beds("call", template, op, "--env", str(stack.env_file),
                                    "--params", json.dumps(params), *extra)
        reply = json.loads(out)
        assert code == 0 and reply["ok"] is True, (template, op, reply, err)
        assert reply["meta"]["template"] == template and reply["meta"]["op"] == op
    assert {e["outcome"] for e in node_process.events("request")} == {"ok"}
