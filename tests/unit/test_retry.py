"""Which transient failures are retried by requeueing, and when the caller is answered instead."""

from __future__ import annotations

import time
from dataclasses import replace

from beds.brokers.retry import retry_delay, safe_to_repeat
from beds.config import BrokerSettings, OpKind, QueueType
from beds.errors import DbUnavailable, ValidationFailed
from beds.templates.model import Op, OpTarget

READ = Op("fetch", OpKind.READ, OpTarget.PROCEDURE, "p")
WRITE = Op("create", OpKind.WRITE, OpTarget.PROCEDURE, "p")
IDEMPOTENT = replace(WRITE, params=("request_id",), idempotency_key="request_id")
BROKER = BrokerSettings("r", "q", (OpKind.READ,), ("*",), 1, 8, QueueType.QUORUM, retries=3)


def test_only_what_may_run_again_is_retried() -> None:
    down = DbUnavailable("lost")
    assert safe_to_repeat(down, READ)
    assert safe_to_repeat(down, IDEMPOTENT)
    assert not safe_to_repeat(down, WRITE)                          # may have committed
    assert safe_to_repeat(DbUnavailable("refused", ran=False), WRITE)   # never started
    assert not safe_to_repeat(ValidationFailed("x"), READ)


def test_backoff_grows_then_the_caller_is_answered() -> None:
    delays = [retry_delay(DbUnavailable("x"), READ, BROKER, {"x-delivery-count": n}, None)
              for n in range(5)]
    assert delays == [0.2, 0.4, 0.8, None, None]


def test_no_retry_without_a_delivery_count_or_past_the_deadline() -> None:
    classic = replace(BROKER, queue_type=QueueType.CLASSIC)
    assert retry_delay(DbUnavailable("x"), READ, classic, None, None) is None
    soon = time.time() + 0.1
    assert retry_delay(DbUnavailable("x"), READ, BROKER, None, soon) is None
