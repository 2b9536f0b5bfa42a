"""When a transient failure is retried by requeueing the request, and after how long.

Layer: application policy, pure. The attempt count is the broker's own (`x-delivery-count`, set by
quorum queues on redelivery), never an in-process counter: a retry may land on another node.
A classic queue carries no count, so its requests are answered at once.
"""

from __future__ import annotations

import time
from typing import Any

from beds.config import BrokerSettings, OpKind, QueueType
from beds.errors import RequestError
from beds.templates.model import Op

FIRST_DELAY = 0.2     # seconds before the first requeue; doubles per attempt
MAX_DELAY = 2.0


def delivery_count(headers: dict[str, Any] | None, redelivered: bool) -> int:
    """How many times the broker delivered this message before. Read only on a redelivery: on a
    first delivery the header can only be the caller's own (a negative one would mean a zero
    back-off forever); and never below 0."""
    if not redelivered:
        return 0
    value = (headers or {}).get("x-delivery-count", 0)
    return max(value, 0) if type(value) is int else 0


def safe_to_repeat(error: RequestError, op: Op | None) -> bool:
    """Only a failure that did not run, a read, or an idempotent write may run again."""
    if not error.retryable:
        return False
    return may_run_again(op, ran=error.details.get("ran") is not False)


def may_run_again(op: Op | None, ran: bool) -> bool:
    """Running a request again repeats no write: it never reached the database, or its op is a
    read or a write that declares an idempotency key."""
    if not ran:
        return True
    return op is not None and (op.kind is OpKind.READ or op.idempotency_key is not None)


def retry_delay(error: RequestError, op: Op | None, broker: BrokerSettings,
                attempt: int, deadline: float | None) -> float | None:
    """Seconds to wait before requeueing, or None: answer the caller with the error now.
    `attempt`: the broker's delivery count (see `delivery_count`)."""
    if not safe_to_repeat(error, op):
        return None
    return backoff(broker, attempt, deadline)


def backoff(broker: BrokerSettings, attempt: int, deadline: float | None) -> float | None:
    """The delay before requeue number `attempt + 1`, or None when the queue cannot count
    attempts (classic), they are used up, or the deadline leaves no room for another."""
    if broker.queue_type is not QueueType.QUORUM:
        return None
    if attempt >= broker.retries:
        return None
    delay: float = min(FIRST_DELAY * 2.0 ** attempt, MAX_DELAY)
    if deadline is not None and time.time() + delay * 2 > deadline:
        return None   # no time for another attempt: the caller hears now
    return delay
