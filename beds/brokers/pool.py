"""Supervision: every broker instance runs in its own `supervise` loop; the pool adds and removes
instances at run time (`set-instances`, `drain`, `resume`).

Layer: application. A crashed worker is logged once (with its traceback the first time a given
error appears) and restarted after a capped, jittered backoff that the stop event interrupts.
It never takes the node down. Each instance has its own stop event, so scaling down drains
exactly the instances removed while the others keep serving.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from beds.brokers.consumer import ChannelLost
from beds.brokers.link import AMQP_ERRORS, sleep_unless
from beds.config import BrokerSettings
from beds.log import get_logger

log = get_logger("beds.supervisor")
HEALTHY_AFTER = 10.0   # seconds of running that reset the backoff


class Worker(Protocol):
    """One broker instance: a request consumer or a built-in service task."""

    broker: BrokerSettings
    instance: int
    name: str
    consuming: asyncio.Event   # set while it takes work (consumer registered)
    inflight: int

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop`, then finish what is in hand and return. Raises on failure."""


WorkerFactory = Callable[[BrokerSettings, int], Worker]
RestartHook = Callable[[str, str], None]   # (broker name, event) on crash/restart


async def supervise(worker: Worker, stop: asyncio.Event, max_backoff: float,
                    on_event: RestartHook | None = None) -> None:
    delay = 0.1
    seen: set[str] = set()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        try:
            await worker.run(stop)
            return   # stopped and drained
        except asyncio.CancelledError:
            raise
        except (ChannelLost, *AMQP_ERRORS) as exc:
            if stop.is_set():
                return
            log.warning("broker.disconnected", broker=worker.broker.name,
                        instance=worker.instance, error=str(exc) or type(exc).__name__)
        except Exception as exc:
            signature = f"{type(exc).__name__}: {exc}"
            if signature not in seen:
                seen.add(signature)
                log.exception("broker.crashed", broker=worker.broker.name,
                              instance=worker.instance)
            else:
                log.error("broker.crashed_again", broker=worker.broker.name,
                          instance=worker.instance, error=signature)
            if on_event is not None:
                on_event(worker.broker.name, "crashed")
        if loop.time() - started > HEALTHY_AFTER:
            delay = 0.1
        await sleep_unless(stop, delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, max_backoff)
        if stop.is_set():
            return
        log.info("broker.restarting", broker=worker.broker.name, instance=worker.instance)
        if on_event is not None:
            on_event(worker.broker.name, "restarted")


@dataclass
class _Slot:
    worker: Worker
    stop: asyncio.Event
    task: asyncio.Task[None]


@dataclass
class Pool:
    """The running instances of every broker of a node."""

    make: WorkerFactory
    max_backoff: float
    on_event: RestartHook | None = None
    _slots: dict[str, list[_Slot]] = field(default_factory=dict)
    _closed: bool = False

    def workers(self) -> list[Worker]:
        return [slot.worker for slots in self._slots.values() for slot in slots]

    def instances(self, broker: str) -> int:
        return len(self._slots.get(broker, []))

    def start(self, broker: BrokerSettings, count: int) -> list[Worker]:
        """Add instances until `broker` has `count`; returns the new ones."""
        slots = self._slots.setdefault(broker.name, [])
        added = []
        while not self._closed and len(slots) < count:
            worker = self.make(broker, len(slots))
            stop = asyncio.Event()
            task = asyncio.create_task(supervise(worker, stop, self.max_backoff, self.on_event),
                                       name=f"supervise:{worker.name}")
            slots.append(_Slot(worker, stop, task))
            added.append(worker)
        return added

    async def scale(self, broker: BrokerSettings, count: int) -> None:
        """Run exactly `count` instances of `broker`: start new ones or drain the newest."""
        self.start(broker, count)
        slots = self._slots.get(broker.name, [])
        removed, self._slots[broker.name] = slots[count:], slots[:count]
        await self._stop(removed)

    async def stop_all(self, brokers: list[str] | None = None) -> None:
        """Drain and remove every instance (of `brokers`, or of all)."""
        names = list(self._slots) if brokers is None else brokers
        removed = [slot for name in names for slot in self._slots.pop(name, [])]
        await self._stop(removed)

    async def close(self) -> None:
        self._closed = True
        await self.stop_all()

    @staticmethod
    async def _stop(slots: list[_Slot]) -> None:
        for slot in slots:
            slot.stop.set()
        if slots:
            await asyncio.gather(*(slot.task for slot in slots), return_exceptions=True)
