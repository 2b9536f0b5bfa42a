"""What the contract tests share: a script step's reply checked (`assert_reply`, for every
engine), and `beds templates check` run through the CLI (MongoDB, DynamoDB)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from beds.cli import main
from tests.contract.conftest import EngineDb
from tests.contract.script import Column, Step, comparable
from tests.support.services import ROOT


def assert_reply(raw: dict[str, Any], step: Step) -> None:
    reply = comparable(copy.deepcopy(raw))
    meta = reply.pop("meta")
    assert meta["template"] == step.template and meta["op"] == step.op
    if isinstance(step.expect, Column):
        assert reply["ok"], reply
        assert [row[step.expect.name] for row in reply["data"]] == step.expect.values
    else:
        assert reply == step.expect
    if reply["ok"]:
        assert meta["rows"] == len(reply["data"])


def differing(one: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]],
              keys: list[str]) -> list[str]:
    return [key for key in keys
            if comparable(copy.deepcopy(one[key])) != comparable(copy.deepcopy(other[key]))]


def templates_check(db: EngineDb, tmp_path: Path, templates: Path,
                    capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["templates", "check", "--config", str(ROOT / "config/beds.toml"),
                 "--env", str(db.env_file(tmp_path, templates))])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def problems_by_op(out: str, templates: Path, file: str) -> dict[str, str]:
    where = f"{templates / file}: ops."
    return {line.split(": error: ")[0].removeprefix(where): line.split(": error: ")[1]
            for line in out.splitlines() if ": error: " in line}
