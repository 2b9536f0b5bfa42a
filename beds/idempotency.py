"""The stored form of an idempotency key: one request's key, scoped by op and caller.

Layer: domain. Pure; no I/O.

A write op that declares `idempotency_key` gets its key from the caller's params or, by default,
from the AMQP message id. Message ids are chosen by callers, so the same value may come from two
callers, or from one caller for two different ops. The routine therefore never sees the raw
value: BEDS passes `scoped_key(...)`, a SHA-256 over (template.op, caller, key), 64 hex digits
that fit `request_log.request_id VARCHAR(64)`. Two callers sharing a message id, or `users.create`
reusing a `customer.pay` id, are two different keys. The routine adds the other half of the
contract: it stores a hash of its params with the key and answers CONFLICT when the same key
comes back with different params (schema/mysql/060_idempotency.sql).
"""

from __future__ import annotations

import hashlib

_SEPARATOR = "\x1f"   # unit separator: cannot occur in a template/op name or a validated key


def scoped_key(template: str, op: str, caller: str | None, key: str) -> str:
    """The value the routine records for `key` sent by `caller` (the AMQP user_id, None when
    the request carried none) to `template.op`."""
    scope = _SEPARATOR.join((f"{template}.{op}", caller or "", key))
    return hashlib.sha256(scope.encode()).hexdigest()
