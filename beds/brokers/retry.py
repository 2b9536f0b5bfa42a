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


def delivery_count(headers: dict[str, Any] | None) -> int:
    value = (headers or {}).get("x-delivery-count", 0)
    return value if isinstance(value, int) else 0


def safe_to_repeat(error: RequestError, op: Op | None) -> bool:
    """Only a failure that did not run, a read, or an idempotent write may run again."""
    if not error.retryable:
        return False
    if error.details.get("ran") is False:
        return True
    return op is not None and (op.kind is OpKind.READ or op.idempotency_key is not None)


def retry_delay(error: RequestError, op: Op | None, broker: BrokerSettings,
                headers: dict[str, Any] | None, deadline: float | None) -> float | None:
    """Seconds to wait before requeueing, or None: answer the caller with the error now."""
    if broker.queue_type is not QueueType.QUORUM or not safe_to_repeat(error, op):
        return None
    attempt = delivery_count(headers)
    if attempt >= broker.retries:
        return None
    delay: float = min(FIRST_DELAY * 2.0 ** attempt, MAX_DELAY)
    if deadline is not None and time.time() + delay * 2 > deadline:
        return None   # no time for another attempt: the caller hears now
    return delay
