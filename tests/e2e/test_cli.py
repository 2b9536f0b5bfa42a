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
