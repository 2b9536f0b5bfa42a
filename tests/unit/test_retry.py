"""Which transient failures are retried by requeueing, and when the caller is answered instead."""

from __future__ import annotations

import time
from dataclasses import replace

from beds.brokers.retry import delivery_count, may_run_again, retry_delay, safe_to_repeat
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
    delays = [retry_delay(DbUnavailable("x"), READ, BROKER, n, None) for n in range(5)]
    assert delays == [0.2, 0.4, 0.8, None, None]


def test_no_retry_without_a_delivery_count_or_past_the_deadline() -> None:
    classic = replace(BROKER, queue_type=QueueType.CLASSIC)
    assert retry_delay(DbUnavailable("x"), READ, classic, 0, None) is None
    soon = time.time() + 0.1
    assert retry_delay(DbUnavailable("x"), READ, BROKER, 0, soon) is None


def test_the_delivery_count_is_the_brokers_only_on_a_redelivery_and_never_negative() -> None:
    # L5: on a first delivery the header can only be the caller's; a negative count would give
    # a zero back-off and, where nack is not counted, endless retries.
    assert delivery_count({"x-delivery-count": 7}, redelivered=False) == 0
    assert delivery_count({"x-delivery-count": -5}, redelivered=True) == 0
    assert delivery_count({"x-delivery-count": 2}, redelivered=True) == 2
    assert delivery_count({"x-delivery-count": True}, redelivered=True) == 0
    assert delivery_count(None, redelivered=True) == 0


def test_a_lost_reply_may_run_again_only_when_that_repeats_no_write() -> None:
    # F2: a write that may have committed and has no idempotency key must not run again.
    assert not may_run_again(WRITE, ran=True)
    assert may_run_again(WRITE, ran=False)
    assert may_run_again(READ, ran=True)
    assert may_run_again(IDEMPOTENT, ran=True)
    assert not may_run_again(None, ran=True)
