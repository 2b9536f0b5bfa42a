"""Interop: a Node.js client written only from the README's protocol section gets correct replies
from a `beds` node running as a subprocess (OUT params, two result sets, view filtering with
limit/offset, a write returning its new id, DECIMAL/datetime encoding, an error reply)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.node_process import NodeProcess
from tests.support.services import AMQP_URL, require_tool
from tests.support.stack import Stack

INTEROP = Path(__file__).resolve().parent / "interop"


@pytest.fixture(scope="module")
def node_client() -> Path:
    """client.mjs with its npm dependencies installed (once: only when node_modules is missing)."""
    for tool in ("node", "npm"):
        require_tool(tool, "the Node.js interop client")
    if not (INTEROP / "node_modules/amqplib/package.json").exists():
        # npm ci installs exactly package-lock.json, so every run tests the same amqplib.
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return INTEROP / "client.mjs"


async def run_client(client: Path, exchange: str, calls: list[dict[str, Any]], tmp_path: Path,
                     url: str = AMQP_URL) -> tuple[int, list[dict[str, Any]] | None, str]:
    """Run the Node.js client on `calls`; (exit code, replies in call order or None, stderr)."""
    script = tmp_path / f"calls-{secrets.token_hex(3)}.json"
    script.write_text(json.dumps(calls))
    proc = await asyncio.create_subprocess_exec(
        "node", str(client), str(script), "--url", url, "--exchange", exchange,
        "--timeout-ms", "10000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    replies = json.loads(out) if proc.returncode == 0 else None
    return proc.returncode or 0, replies, err.decode()


@pytest.mark.rabbitmq
@pytest.mark.mariadb
async def test_node_client_gets_correct_replies(stack: Stack, node_process: NodeProcess, node_client: Path,
                                                tmp_path: Path) -> None:
    email = f"interop-{secrets.token_hex(4)}@example.com"   # unique: the email column is UNIQUE
    calls: list[dict[str, Any]] = [
        {"template": "film", "op": "in_stock", "params": {"film_id": 1, "store_id": 1}},
        {"template": "film", "op": "list", "params": {"category": "Action"},
         "limit": 3, "offset": 2},
        {"template": "film", "op": "store_report", "params": {"store_id": 1}},
        {"template": "customer", "op": "create",
         "params": {"store_id": 1, "first_name": "Ada", "last_name": "Node", "email": email,
                    "pin": "1234"}},
        {"template": "customer", "op": "balance",
         "params": {"customer_id": 1, "effective_date": "2030-01-01T00:00:00"}},
        {"template": "film", "op": "fetch", "params": {"film_id": "x"}},
    ]
    code, replies, err = await run_client(node_client, stack.exchange, calls, tmp_path)
    assert code == 0, err
    assert replies is not None and len(replies) == len(calls)
    # All calls were in flight at once: the right reply in the right place proves that
    # correlation_id matching works.
    for call, reply in zip(calls, replies, strict=True):
        assert (reply["meta"]["template"], reply["meta"]["op"]) == (call["template"], call["op"])
    in_stock, film_list, report, create, balance, bad = replies

    assert in_stock["ok"] is True
    assert in_stock["data"] == [{"inventory_id": 2}, {"inventory_id": 3}]
    assert in_stock["out"] == {"film_count": 2}

    assert film_list["ok"] is True
    assert [row["FID"] for row in film_list["data"]] == [3, 5, 7]
    for row in film_list["data"]:
        assert row["category"] == "Action" and isinstance(row["title"], str)
        assert isinstance(row["price"], str) and "." in row["price"]   # DECIMAL arrives as text
    assert "out" not in film_list and "sets" not in film_list   # only when declared / 2+ sets

    assert report["ok"] is True
    assert len(report["sets"]) == 2
    (store,) = report["sets"][1]
    assert (store["store_id"], store["city"]) == (1, "Lethbridge")
    assert store["customers"] >= 3   # 3 seeded; other tests of the session add customers

    assert create["ok"] is True
    new_id = create["data"][0]["customer_id"]
    assert isinstance(new_id, int) and new_id == create["out"]["customer_id"]

    assert balance["ok"] is True and balance["data"] == [{"value": "10.97"}]

    assert bad["ok"] is False
    assert bad["error"]["code"] == "VALIDATION_FAILED"
    assert "params.film_id" in bad["error"]["message"]

    # A second run, since it needs the id the write returned.
    code, replies, err = await run_client(node_client, stack.exchange, [
        {"template": "customer", "op": "fetch", "params": {"customer_id": new_id}}], tmp_path)
    assert code == 0, err
    assert replies is not None
    (fetched,) = replies
    assert fetched["ok"] is True and len(fetched["data"]) == 1
    row = fetched["data"][0]
    assert row["customer_id"] == new_id and row["email"] == email
    assert "pin" not in row and "pin_hash" not in row


async def test_node_client_fails_clearly_without_a_broker(node_client: Path,
                                                          tmp_path: Path) -> None:
    # Port 1: nothing listens there, so the connection is refused at once.
    code, replies, err = await run_client(
        node_client, "beds", [{"template": "film", "op": "fetch", "params": {"film_id": 1}}],
        tmp_path, url="amqp://guest:secret@127.0.0.1:1/")
    assert code != 0 and replies is None
    assert "cannot connect" in err and "secret" not in err
