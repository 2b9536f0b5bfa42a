"""`beds --role appServer --workers 2`: a supervisor, two nodes sharing the queues, restarts."""

from __future__ import annotations

import os
import signal

import pytest

from beds.client import Client
from tests.support.node_process import spawn_node
from tests.support.services import AMQP_URL, consumer_count
from tests.support.stack import Stack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_share_the_queues_restart_and_stop_cleanly(stack: Stack) -> None:
    rbroker = stack.settings.brokers["rBroker"]
    expected = 2 * rbroker.instances
    supervisor = await spawn_node(stack.env_file, "appServer", "--workers", "2")
    try:
        await supervisor.wait_event("node.ready", count=2)
        await wait_for(lambda: _consumers_are(rbroker.queue, expected), 30)
        async with Client(AMQP_URL, stack.exchange, default_timeout=10) as client:
            assert (await client.call("film", "fetch", {"film_id": 1})).data

        started = supervisor.events("worker.started")
        pids = {e["pid"] for e in started}
        assert len(pids) == 2, started
        victim = started[0]["pid"]
        os.kill(victim, signal.SIGKILL)

        await supervisor.wait_event("worker.died")
        died = supervisor.events("worker.died")[0]
        assert died["pid"] == victim and died["code"] == -signal.SIGKILL
        await supervisor.wait_event("worker.started", count=3)
        await supervisor.wait_event("node.ready", count=3)
        replacement = supervisor.events("worker.started")[2]
        assert replacement["worker"] == started[0]["worker"] and replacement["pid"] not in pids
        # The dead worker's consumers are gone and its replacement's are in: 2 x instances again.
        await wait_for(lambda: _consumers_are(rbroker.queue, expected), 30)
        async with Client(AMQP_URL, stack.exchange, default_timeout=10) as client:
            assert (await client.call("film", "fetch", {"film_id": 2})).data

        assert await supervisor.stop(signal.SIGTERM) == 0
        workers = {e["pid"] for e in supervisor.events("worker.started")}
        assert not [pid for pid in workers if alive(pid)], "a worker outlived its supervisor"
        assert {e["code"] for e in supervisor.events("worker.exited")} == {0}
        assert supervisor.events("workers.stopped")[0]["exit_code"] == 0
        assert await consumer_count(rbroker.queue) == 0
    finally:
        if supervisor.proc.returncode is None:
            await supervisor.stop(signal.SIGKILL)


async def _consumers_are(queue: str, count: int) -> bool:
    return await consumer_count(queue) == count
