"""Waiting for a condition with a deadline, never for a fixed time.

Layer: tooling (tests).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Predicate = Callable[[], object | Awaitable[object]]
"""A sync or async check; its result is taken as true or false."""


async def wait_for(predicate: Predicate, timeout: float, interval: float = 0.05,
                   what: str = "condition") -> None:
    """Poll `predicate` until true; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(interval)
