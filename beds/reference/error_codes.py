"""The wire protocol's error codes, from the error catalogue in `beds.errors`.

Layer: tooling. Code, retryability and what the node does with the request message come from the
error classes themselves; only the "when" column is prose, and it must name every code.
"""

from __future__ import annotations

from beds import protocol
from beds.errors import ERROR_CODES, Disposition
from beds.reference.markdown import table

WHEN = {
    "BAD_REQUEST": "body not JSON / not UTF-8 / not an object, missing or unknown keys, bad "
                   "`limit`/`offset`/`cursor`, nested deeper than the limit",
    "TOO_LARGE": "body over the BEDS cap (`amqp.max_message_bytes`)",
    "TEMPLATE_NOT_FOUND": "no such template",
    "OP_NOT_FOUND": "the template has no such op (the message lists the ops it has)",
    "VALIDATION_FAILED": "a param/filter fails its declaration, is missing, or is not accepted",
    "WRONG_BROKER": "published to a queue whose broker does not serve that op (e.g. a write to "
                    "the read queue)",
    "FORBIDDEN": "`user_id` missing where required, or not on the template's/op's `allow` list",
    "CONFLICT": "duplicate key",
    "DB_UNAVAILABLE": "database unreachable, connection lost, deadlock, lock wait timeout — "
                      "after the broker's retries",
    "DB_ERROR": "any other database error (`details.errno` / `details.sqlstate`; a DBA's "
                "`SIGNAL` message is passed on)",
    "DEADLINE_EXCEEDED": "the request arrived after its `x-deadline` (nothing ran), or the "
                         "statement was stopped at the deadline or the datasource's limit (a "
                         "write may or may not have committed: retry with the same request id "
                         "only if the op is idempotent)",
    "REPLY_TOO_LARGE": "the result does not fit in one reply (ask for a smaller page)",
    "INTERNAL": "a bug in BEDS (logged with a traceback on the node)",
}
"""Wire code -> when a node answers it. Must cover `beds.errors.ERROR_CODES` exactly."""

_FATE = {Disposition.ACK: "acked", Disposition.DEAD_LETTER: "dead-lettered"}


def error_table() -> str:
    if set(WHEN) != set(ERROR_CODES):
        raise ValueError(f"beds/reference/error_codes.py WHEN must name exactly the wire codes "
                         f"of beds.errors.ERROR_CODES: missing {sorted(set(ERROR_CODES) - set(WHEN))},"
                         f" unknown {sorted(set(WHEN) - set(ERROR_CODES))}")
    rows = [[f"`{code}`", WHEN[code], "**yes**" if cls.retryable else "no",
             _FATE[cls.disposition], f"`beds.errors.{cls.__name__}`"]
            for code, cls in ERROR_CODES.items()]
    return table(["code", "when", "retryable", "the request message", "client raises"], rows)


def protocol_limits() -> str:
    request_keys = ", ".join(f"`{k}`" for k in protocol._EXPECTED_KEYS.split(", "))
    return table(["limit", "value"], [
        ["keys a request body may have", request_keys],
        ["JSON nesting depth", f"at most {protocol.MAX_DEPTH}"],
        ["`cursor` length", f"at most {protocol.MAX_CURSOR} characters"],
    ])
