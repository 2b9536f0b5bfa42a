"""`beds --role ...` as a real subprocess of the test, its output kept for the test to read.

Layer: tooling (tests).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.services import ROOT
from tests.support.waiting import wait_for


@dataclass
class NodeProcess:
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == name:
                found.append(record)
        return found

    async def wait_event(self, name: str, timeout: float = 30.0, count: int = 1) -> None:
        try:
            await wait_for(lambda: len(self.events(name)) >= count or self.proc.returncode
                           is not None, timeout)
        except AssertionError:
            raise AssertionError(f"no {name!r} event within {timeout}s; output:\n"
                                 + "\n".join(self.lines[-40:])) from None
        assert len(self.events(name)) >= count, "node exited:\n" + "\n".join(self.lines[-40:])

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self.reader is not None:
            await self.reader
        return code


async def spawn_node(env_file: Path, role: str = "appServer", *extra: str,
                     env: dict[str, str] | None = None) -> NodeProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beds", "--role", role, "--env", str(env_file), *extra,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    node = NodeProcess(proc)

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            node.lines.append(raw.decode(errors="replace").rstrip())

    node.reader = asyncio.create_task(read())
    return node
