"""SyncClient from plain threads against a node in this process (real RabbitMQ and MariaDB).

The node runs on the test's event loop; the threads run in `asyncio.to_thread`, so the loop keeps
serving while they block."""

from __future__ import annotations

import asyncio
import threading

import pytest

from beds import OpNotFound, SyncClient, ValidationFailed
from tests.support.services import AMQP_URL
from tests.support.stack import RunningNode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
THREADS, CALLS = 8, 50


def io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "beds-sync-client"]


async def test_many_plain_threads_share_one_sync_client(running: RunningNode) -> None:
    before = len(io_threads())

    def work() -> dict[int, list[int]]:
        seen: dict[int, list[int]] = {}
        failures: list[BaseException] = []
        with SyncClient(AMQP_URL, running.stack.exchange) as client:
            def caller(n: int) -> None:
                try:
                    seen[n] = [client.call("film", "fetch", {"film_id": 1 + (n + i) % 20})
                               .data[0]["FID"] for i in range(CALLS)]
                except BaseException as exc:
                    failures.append(exc)
            threads = [threading.Thread(target=caller, args=(n,)) for n in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(io_threads()) == before + 1   # one I/O thread for all callers
        assert not failures, failures
        return seen

    seen = await asyncio.to_thread(work)
    assert seen == {n: [1 + (n + i) % 20 for i in range(CALLS)] for n in range(THREADS)}
    assert len(io_threads()) == before   # close() joined it


async def test_errors_are_raised_in_the_calling_thread_with_their_types(
        running: RunningNode) -> None:
    def work() -> None:
        with SyncClient(AMQP_URL, running.stack.exchange) as client:
            with pytest.raises(ValidationFailed, match="params.film_id: expected int >= 1") as info:
                client.call("film", "fetch", {"film_id": 0})
            assert info.value.code == "VALIDATION_FAILED" and info.value.details["field"] == "film_id"
            with pytest.raises(OpNotFound):
                client.call("film", "nope")
            raw = client.call_raw("film", "nope")
            assert raw["ok"] is False and raw["error"]["code"] == "OP_NOT_FOUND"
            reply = client.call("film", "list", {"category": "Action"}, limit=2, offset=1)
            assert [r["FID"] for r in reply.data] == [2, 3]
        with pytest.raises(RuntimeError, match="not connected"):
            client.call("film", "fetch", {"film_id": 1})
        client.close()   # idempotent

    await asyncio.to_thread(work)
