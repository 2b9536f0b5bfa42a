"""BEDS: Back End Data System. Template RPC over RabbitMQ onto DBA-owned procedures and views.

Public API: the async `Client` and the blocking `SyncClient`, their `Reply`, and every error a
call can raise (the tree is drawn in beds.errors). `beds.testing` holds the test kit.

Layer: interface. The modules of beds read only `__version__` from here.
"""

from beds.client import Client, Reply
from beds.errors import (
    BadRequest,
    BedsError,
    CallerError,
    CallTimeout,
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    Disconnected,
    Forbidden,
    Internal,
    NoRoute,
    OpNotFound,
    ReplyTooLarge,
    RequestError,
    ServerError,
    TemplateNotFound,
    TooLarge,
    ValidationFailed,
    WrongBroker,
)
from beds.syncclient import SyncClient

__version__ = "0.1.0"
__all__ = [
    "BadRequest", "BedsError", "CallTimeout", "CallerError", "Client", "Conflict", "DbError",
    "DbUnavailable", "DeadlineExceeded", "Disconnected", "Forbidden", "Internal", "NoRoute",
    "OpNotFound", "Reply", "ReplyTooLarge", "RequestError", "ServerError", "SyncClient",
    "TemplateNotFound", "TooLarge", "ValidationFailed", "WrongBroker",
]
