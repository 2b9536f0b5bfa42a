"""Supervision: every broker instance runs in a `supervise` loop inside one TaskGroup.

Layer: application. A crashed consumer is logged once (with its traceback the first time a given
error appears) and restarted after a capped, jittered backoff that the stop event interrupts.
It never takes the node down.
"""

from __future__ import annotations

import asyncio
import random

from beds.brokers.consumer import ChannelLost, Consumer
from beds.brokers.link import AMQP_ERRORS, sleep_unless
from beds.log import get_logger

log = get_logger("beds.supervisor")
HEALTHY_AFTER = 10.0   # seconds of running that reset the backoff


async def supervise(consumer: Consumer, stop: asyncio.Event, max_backoff: float) -> None:
    delay = 0.1
    seen: set[str] = set()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        try:
            await consumer.run(stop)
            return   # stopped and drained
        except asyncio.CancelledError:
            raise
        except (ChannelLost, *AMQP_ERRORS) as exc:
            if stop.is_set():
                return
            log.warning("broker.disconnected", broker=consumer.broker.name,
                        instance=consumer.instance, error=str(exc) or type(exc).__name__)
        except Exception as exc:
            signature = f"{type(exc).__name__}: {exc}"
            if signature not in seen:
                seen.add(signature)
                log.exception("broker.crashed", broker=consumer.broker.name,
                              instance=consumer.instance)
            else:
                log.error("broker.crashed_again", broker=consumer.broker.name,
                          instance=consumer.instance, error=signature)
        if loop.time() - started > HEALTHY_AFTER:
            delay = 0.1
        await sleep_unless(stop, delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, max_backoff)
        log.info("broker.restarting", broker=consumer.broker.name, instance=consumer.instance)


async def run_pool(consumers: list[Consumer], stop: asyncio.Event, max_backoff: float) -> None:
    async with asyncio.TaskGroup() as group:
        for consumer in consumers:
            group.create_task(supervise(consumer, stop, max_backoff),
                              name=f"supervise:{consumer.name}")
