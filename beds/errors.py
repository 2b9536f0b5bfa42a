"""The whole BEDS error tree, in one place.

Layer: foundation. Imports nothing from beds.

    BedsError                      base; never raised itself
    ├── ConfigError                bad config file or key: the CLI exits 2
    ├── TemplateError              bad template file or key: the node refuses to start
    ├── RequestError               outcome of one request; carries a wire code
    │   ├── CallerError            the caller's fault: the request can never succeed as sent
    │   │   ├── BadRequest         BAD_REQUEST        not JSON, not an object, missing keys
    │   │   ├── TooLarge           TOO_LARGE          body over the BEDS size cap
    │   │   ├── TemplateNotFound   TEMPLATE_NOT_FOUND
    │   │   ├── OpNotFound         OP_NOT_FOUND
    │   │   ├── ValidationFailed   VALIDATION_FAILED  a param/filter/limit failed its declaration
    │   │   ├── WrongBroker        WRONG_BROKER       op sent to a queue that does not serve it
    │   │   └── Forbidden          FORBIDDEN          caller (AMQP user_id) missing or not allowed
    │   ├── Conflict               CONFLICT           duplicate key: valid request, the data says no
    │   ├── ReplyTooLarge          REPLY_TOO_LARGE    the result does not fit in one reply: page it
    │   └── ServerError            the service's fault: the request may succeed later as sent
    │       ├── DbUnavailable      DB_UNAVAILABLE     connection lost, deadlock, lock wait (retryable)
    │       ├── DbError            DB_ERROR           any other database error, with its code
    │       ├── DeadlineExceeded   DEADLINE_EXCEEDED  the statement ran past its time limit
    │       └── Internal           INTERNAL           a bug in BEDS; logged with a traceback
    ├── CallTimeout                client side: no reply in time (also a TimeoutError)
    ├── NoRoute                    client side: no queue bound to `<template>.<op>`
    ├── Disconnected               client side: no connection to RabbitMQ (also a ConnectionError)
    ├── TopologyError              RabbitMQ refused a declaration (beds.brokers.topology)
    ├── CommandFailed              an operator command was refused or unanswered (beds.ops.commands)
    └── EndpointError              the scaffold's chat endpoint failed (beds.scaffold.describe)

Each RequestError knows its wire code, whether the caller may retry, and what the consumer does
with the message (`disposition`), so the consumer has one decision point. A caller catches a
group: `CallerError` (fix the request), `ServerError` (the service is in trouble; `retryable` says
whether the same request may be sent again). The three errors defined elsewhere belong to their
module's own seam; `tests/unit/test_public_api.py` checks this drawing against the classes.

The client side raises the same classes from a reply (see `error_from_reply`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class Disposition(StrEnum):
    """What the consumer does with a request message after replying."""

    ACK = "ack"                # the request was valid; its outcome is in the reply
    DEAD_LETTER = "dead_letter"  # poison: reject without requeue -> beds.dlx


class BedsError(Exception):
    """Base of every error BEDS raises."""


class ConfigError(BedsError):
    """A config file or key is wrong. The message names the file and the key."""


class TemplateError(BedsError):
    """A template file or key is wrong. The message names the file and the key."""


class RequestError(BedsError):
    """The outcome of one request that did not succeed."""

    code: ClassVar[str] = "INTERNAL"
    retryable: ClassVar[bool] = False
    disposition: ClassVar[Disposition] = Disposition.ACK

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            error["details"] = self.details
        return error


class CallerError(RequestError):
    """The caller's fault: the request can never succeed as sent (fix it, do not retry).
    The node answers it, then dead-letters the message; it is never requeued."""

    disposition = Disposition.DEAD_LETTER


class BadRequest(CallerError):
    """The body is not a JSON object of the request envelope (keys, types)."""

    code = "BAD_REQUEST"


class TooLarge(CallerError):
    """The request body is over the node's `max_message_bytes`."""

    code = "TOO_LARGE"


class TemplateNotFound(CallerError):
    """No template of that name is served by the node that took the request."""

    code = "TEMPLATE_NOT_FOUND"


class OpNotFound(CallerError):
    """The template has no op of that name; the message lists its ops."""

    code = "OP_NOT_FOUND"


class ValidationFailed(CallerError):
    """A param, filter, limit, offset or cursor failed its declaration; the message names it."""

    code = "VALIDATION_FAILED"


class WrongBroker(CallerError):
    """The request reached a queue whose broker does not serve that op."""

    code = "WRONG_BROKER"


class Forbidden(CallerError):
    """The caller (AMQP user_id) is missing or not allowed to call the op."""

    code = "FORBIDDEN"


class ServerError(RequestError):
    """The service's fault, not the caller's: the database or BEDS is in trouble. The same
    request may succeed later; `retryable` says whether sending it again is safe."""


class Conflict(RequestError):
    """A write hit a unique key (a duplicate)."""

    code = "CONFLICT"


class DbUnavailable(ServerError):
    """Retried by requeueing while the queue's delivery count allows (brokers/retry.py); when
    it never clears, the caller gets this error and the request is dead-lettered for replay."""

    code = "DB_UNAVAILABLE"
    retryable = True
    disposition = Disposition.DEAD_LETTER


class DbError(ServerError):
    """Any other database error; `details` carries the engine's code."""

    code = "DB_ERROR"


class DeadlineExceeded(ServerError):
    """The statement was stopped at its time limit. A write may or may not have committed."""

    code = "DEADLINE_EXCEEDED"


class ReplyTooLarge(RequestError):
    """The result does not fit in one reply (`max_reply_bytes`): page it."""

    code = "REPLY_TOO_LARGE"


class Internal(ServerError):
    """A bug in BEDS (or an unknown code from a newer node); logged with a traceback."""

    code = "INTERNAL"


class CallTimeout(BedsError, TimeoutError):
    """Client side: no reply within the call's timeout. The request may still run."""


class NoRoute(BedsError):
    """Client side: no broker queue is bound to `<template>.<op>` on the exchange."""


class Disconnected(BedsError, ConnectionError):
    """Client side: no connection to RabbitMQ. Either the connection dropped while the call was
    in flight (the request may or may not have run: retry only what is safe to repeat), or no
    endpoint could be reached within the call's timeout (the request was not sent)."""


ERROR_CODES: dict[str, type[RequestError]] = {
    cls.code: cls
    for cls in (
        BadRequest, TooLarge, TemplateNotFound, OpNotFound, ValidationFailed, WrongBroker, Forbidden,
        Conflict, DbUnavailable, DbError, DeadlineExceeded, ReplyTooLarge, Internal,
    )
}


def error_from_reply(error: dict[str, Any]) -> RequestError:
    """Rebuild the typed error a node sent (client side)."""
    cls = ERROR_CODES.get(str(error.get("code")), Internal)
    exc = cls(str(error.get("message", "")), **dict(error.get("details") or {}))
    if cls is Internal and error.get("code") != "INTERNAL":
        exc.details["code"] = error.get("code")
    return exc
