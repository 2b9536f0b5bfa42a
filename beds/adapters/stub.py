"""StubAdapter: an in-memory stand-in for unit tests of dispatch. Never used by a node.

Layer: tooling (test double). It records every call and answers from a table of canned results
keyed by object name.
"""

from __future__ import annotations

from typing import Any

from beds.adapters.base import Call
from beds.config import DatasourceSettings
from beds.errors import RequestError
from beds.protocol import Result
from beds.templates.model import Op, Template


class StubAdapter:
    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings
        self.results: dict[str, Result | RequestError] = {}
        self.calls: list[tuple[str, Call]] = []
        self.opened = False

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    def prepare(self, template: Template, op: Op) -> str:
        return op.object_name

    async def run(self, prepared: Any, call: Call) -> Result:
        self.calls.append((prepared, call))
        answer = self.results.get(prepared, Result(rows=[]))
        if isinstance(answer, RequestError):
            raise answer
        return answer

    async def ping(self) -> bool:
        return self.opened
