"""`beds --role ...` as a real subprocess, driven from outside."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest

from tests.support.node_process import NodeProcess, spawn_node
from tests.support.stack import Stack


@pytest.fixture
async def node_process(stack: Stack) -> AsyncIterator[NodeProcess]:
    node = await spawn_node(stack.env_file)
    await node.wait_event("node.ready")
    yield node
    if node.proc.returncode is None:
        await node.stop(signal.SIGKILL)
